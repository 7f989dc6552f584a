//! Odd trees: special files are skipped (never waited on), links stay links, every name the
//! file system accepted comes back, hard links come back as files, sparse files come back
//! sparse, and a file that grows while it is read is caught up with by the next sync.

use super::helpers::*;
use crate::common::*;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// A sync that must not hang: exit 0, no errors, `skipped` special files, said in the text
/// summary and named with -v.
fn sync_skipping(f: &Fixture, skipped: u64, name: &str) {
    let r = f.run(&["--json", "sync"]);
    r.expect(0);
    assert_eq!(r.profile()["skipped"], skipped, "{}", r.stdout());
    assert!(r.stderr.trim().is_empty(), "{}", r.stderr);
    let r = f.run(&["-v", "sync"]);
    r.expect(0);
    let all = format!("{}{}", r.stdout(), r.stderr);
    assert!(all.contains(&format!("{skipped} skipped")), "{all}");
    assert!(all.contains(name), "{all}");
}

#[test]
fn a_fifo_is_skipped_not_read() {
    let f = fixture();
    let status = std::process::Command::new("mkfifo")
        .arg(f.p("src/dir/pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    sync_skipping(&f, 1, "dir/pipe");
    std::fs::remove_file(f.p("src/dir/pipe")).unwrap();
    nothing_lost(&f);
}

#[test]
fn a_socket_is_skipped() {
    let f = fixture();
    let _sock = std::os::unix::net::UnixListener::bind(f.p("src/dir/sock")).unwrap();
    sync_skipping(&f, 1, "dir/sock");
    std::fs::remove_file(f.p("src/dir/sock")).unwrap();
    nothing_lost(&f);
}

#[test]
fn a_symlink_loop_stays_a_pair_of_links() {
    let f = fixture();
    std::os::unix::fs::symlink("b", f.p("src/dir/a")).unwrap();
    std::os::unix::fs::symlink("a", f.p("src/dir/b")).unwrap();
    nothing_lost(&f);
}

#[test]
fn a_link_to_the_root_is_not_followed() {
    let f = fixture();
    std::os::unix::fs::symlink("/", f.p("src/root")).unwrap();
    let s = f.sync();
    assert!(s.scanned < 20, "the link was not followed: {s:#?}");
    nothing_lost(&f);
}

#[test]
fn a_name_of_name_max_bytes() {
    let f = fixture();
    let name = "n".repeat(255);
    f.write(format!("src/dir/{name}"), b"a long name\n");
    // And one large enough for its own archive.
    f.write(
        format!("src/{}", "L".repeat(255)),
        &Rng::new(5).bytes(1 << 21),
    );
    nothing_lost(&f);
}

/// A file whose restored path is a few bytes under PATH_MAX (4095): the restore's partial file
/// must fit too.
#[test]
fn a_path_just_under_path_max() {
    let f = fixture();
    // Where `nothing_lost` restores the first tree, and how long the path may get.
    let restored = f.p("restored0/path").as_os_str().len();
    let name = "f".repeat(20);
    let mut left = 4090 - restored - (1 + name.len());
    let mut rel = String::from("src");
    while left > 0 {
        let mut k = left.saturating_sub(1).min(200);
        if left - (k + 1) == 1 {
            k -= 1;
        }
        rel.push('/');
        rel.push_str(&"d".repeat(k));
        left -= k + 1;
    }
    let file = f.write(format!("{rel}/{name}"), b"deep down\n");
    assert_eq!(
        file.as_os_str().len() - f.p("src").as_os_str().len() + restored,
        4090
    );
    nothing_lost(&f);
}

#[test]
fn a_directory_and_a_file_of_name_max_bytes() {
    let f = fixture();
    let dir = "d".repeat(255);
    f.write(format!("src/{dir}/{}", "f".repeat(255)), b"deep\n");
    nothing_lost(&f);
}

#[test]
fn newlines_and_tabs_in_names() {
    let f = fixture();
    f.write("src/dir/new\nline", b"one\n");
    f.write("src/dir/tab\there", b"two\n");
    nothing_lost(&f);
}

#[test]
fn a_name_that_is_not_utf8() {
    let f = fixture();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(f.p("src/dir").join(name), b"latin-1\n").unwrap();
    nothing_lost(&f);
}

#[test]
fn hard_links_come_back_as_both_files() {
    let f = fixture();
    f.write("src/dir/first", b"linked content\n");
    std::fs::hard_link(f.p("src/dir/first"), f.p("src/dir/second")).unwrap();
    nothing_lost(&f);
}

#[test]
fn empty_files_and_directories() {
    let f = fixture();
    f.write("src/empty.txt", b"");
    std::fs::create_dir_all(f.p("src/empty/dir")).unwrap();
    nothing_lost(&f);
}

#[test]
fn a_sparse_file_comes_back_sparse() {
    let f = fixture();
    let path = f.p("src/sparse.img");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(48 << 20).unwrap();
    drop(file);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(20 << 20)).unwrap();
        file.write_all(b"some data in the middle").unwrap();
    }
    // A copy (the same content: one download, then copied) and a hard link.
    std::fs::copy(&path, f.p("src/sparse-copy.img")).unwrap();
    std::fs::hard_link(&path, f.p("src/sparse-link.img")).unwrap();
    let src_blocks = blocks(&path);
    nothing_lost(&f);
    for name in ["sparse.img", "sparse-copy.img", "sparse-link.img"] {
        let back = f.p(format!("restored0/path/{name}"));
        assert_eq!(std::fs::metadata(&back).unwrap().len(), 48 << 20);
        assert!(
            blocks(&back) <= src_blocks + 64,
            "{name}: 48 MiB of zeros written: {} blocks for {src_blocks}",
            blocks(&back)
        );
    }
}

#[test]
fn a_file_growing_while_it_is_read() {
    let f = fixture();
    let path = f.p("src/growing.log");
    std::fs::write(&path, Rng::new(9).bytes(4 << 20)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                file.write_all(&[b'x'; 4096]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let r = f.run(&["--json", "sync"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    // Either it was read whole before it grew on, or it is named (exit 1) and read next time.
    match r.code {
        0 => {}
        1 => {
            one_line(&r, 1, &["growing.log"]);
        }
        _ => panic!("exit {}: {}", r.code, r.stderr),
    }
    std::thread::sleep(Duration::from_millis(1100));
    nothing_lost(&f);
}
