//! One process at a time per profile: a second `sync` (or `restore`) is refused while another
//! holds the profile's lock, with exit 2 and a message saying the profile is in use.

use super::common::*;
use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn sync_is_refused_while_the_profile_is_locked() {
    let f = Fixture::new();
    f.write("src/a.txt", b"a");
    f.sync();
    let lock_path = f.p("db/docs.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.try_lock().expect("take the profile's lock");

    f.write("src/b.txt", b"b");
    for args in [&["sync"][..], &["restore", "--to", "out"]] {
        let r = f.run(args);
        r.expect(2);
        let line = r.one_stderr_line();
        assert!(
            line.contains("docs") && line.contains("in use"),
            "{args:?}: {line}"
        );
    }
    assert!(!f.p("out").exists());
    // Nothing was recorded meanwhile.
    assert_eq!(f.ls_paths(None), [b"path/a.txt".to_vec()]);

    drop(lock);
    let s = f.sync();
    assert_eq!(s.new, 1, "{s:#?}");
}

#[test]
fn a_second_sync_is_refused_while_a_first_one_runs() {
    let f = Fixture::new();
    let mut rng = Rng::new(12);
    for i in 0..4 {
        f.write(format!("src2/big{i}.bin"), &rng.bytes(8 << 20));
    }
    let mut first = f
        .command(&["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first one holds the lock: it makes its staging directory once it has it.
    let staging = f.p("db/docs.staging");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !staging.exists() {
        assert!(Instant::now() < deadline, "the first sync never started");
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first sync ended too soon"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = f.run(&["--json", "sync"]);
    let still_running = first.try_wait().unwrap().is_none();
    assert!(first.wait().unwrap().success());
    assert!(still_running, "the first sync was too quick for this test");
    r.expect(2);
    assert!(r.stderr.contains("in use"), "{}", r.stderr);
    let err = r.profile()["error"].as_str().unwrap().to_string();
    assert!(err.contains("in use"), "{err}");
    // Afterwards, the work is done once.
    let s = f.sync();
    assert_eq!((s.unchanged, s.archives_uploaded), (4, 0), "{s:#?}");
}
