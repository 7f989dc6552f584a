//! Encryption end to end on the local backend: what is stored opens with the reference `age`
//! CLI (bundles untar with GNU tar, catalog copies open as SQLite), holds no plaintext marker
//! and no file name; restore and recover need the right identity and say so in one line;
//! damaged ciphertext loses one archive, never writes a partial file; a profile never mixes
//! plaintext and encrypted archives silently.

use super::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const MARKER: &[u8] = b"PLAINTEXT-MARKER-8c1f5e";
const MARKER_NAME: &str = "secret-marker-name-q7x.txt";

/// `init --age` in the fixture: the identity file, and its recipient.
fn identity(f: &Fixture, name: &str) -> (PathBuf, String) {
    let settings = f.p(format!("{name}/settings.ini"));
    // The sample backs up ~/Documents (HOME is the fixture), which holds no store.
    std::fs::create_dir_all(f.p("Documents")).unwrap();
    f.run(&["init", "--age", settings.to_str().unwrap()])
        .expect(0);
    let id = f.p(format!("{name}/glaciersync-identity.txt"));
    let text = std::fs::read_to_string(&id).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (id, recipient)
}

fn encrypted_settings(recipient: &str, identity: Option<&Path>) -> String {
    let id = identity.map_or(String::new(), |p| {
        format!("age_identity_file = {}\n", p.display())
    });
    settings_with(&format!("age_recipients = {recipient}\n{id}"))
}

/// Source files: small ones (bundled), one named by the marker, one large (1.5 MiB).
fn fill(f: &Fixture) -> Vec<u8> {
    let mut small = MARKER.to_vec();
    small.extend_from_slice(b" and some more text\n");
    f.write(format!("src/{MARKER_NAME}"), &small);
    for i in 0..20 {
        f.write(
            format!("src/dir/f{i}.txt"),
            format!("file {i}\n").as_bytes(),
        );
    }
    let large: Vec<u8> = MARKER.iter().copied().cycle().take(1_500_000).collect();
    f.write("src2/large.bin", &large);
    small
}

fn store_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                // Owner markers are empty and named by a random id (docs/catalog.md).
                if e.file_name() != "owners" {
                    stack.push(e.path());
                }
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn age_decrypt(identity: &Path, object: &Path, out: &Path) {
    let st = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg("-o")
        .arg(out)
        .arg(object)
        .status()
        .expect("the reference `age` CLI (Debian package `age`) is installed");
    assert!(st.success(), "age -d {}", object.display());
}

#[test]
fn what_is_stored_is_opaque_and_opens_with_the_reference_age_cli() {
    let f = Fixture::new();
    let (id, recipient) = identity(&f, "keys");
    f.write_settings(&encrypted_settings(&recipient, Some(&id)));
    let small = fill(&f);
    f.sync();
    let objects = store_files(&f.p("store"));
    assert!(objects.len() >= 3, "{objects:?}");
    let (mut bundles, mut files, mut catalogs) = (0, 0, 0);
    for (i, o) in objects.iter().enumerate() {
        let name = o.to_string_lossy();
        assert!(
            !name.contains(MARKER_NAME) && !name.contains("large"),
            "{name}"
        );
        assert!(name.ends_with(".age"), "{name}");
        let bytes = std::fs::read(o).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER),
            "marker in {name}"
        );
        assert!(
            !bytes
                .windows(MARKER_NAME.len())
                .any(|w| w == MARKER_NAME.as_bytes()),
            "name in {name}"
        );
        let plain = f.p(format!("plain{i}"));
        age_decrypt(&id, o, &plain);
        if name.contains("/bundles/") {
            bundles += 1;
            let into = f.p(format!("untar{i}"));
            std::fs::create_dir(&into).unwrap();
            let st = Command::new("tar")
                .arg("-xf")
                .arg(&plain)
                .arg("-C")
                .arg(&into)
                .status()
                .unwrap();
            assert!(st.success());
            let got = std::fs::read(into.join(format!("path/{MARKER_NAME}"))).unwrap();
            assert_eq!(got, small);
        } else if name.contains("/data/") {
            files += 1;
            assert_eq!(
                std::fs::read(&plain).unwrap(),
                std::fs::read(f.p("src2/large.bin")).unwrap()
            );
        } else if name.contains("/catalog/") {
            catalogs += 1;
            assert!(name.ends_with(".sqlite3.zst.age"), "{name}");
            let sqlite = f.p(format!("catalog{i}.sqlite3"));
            zstd_decompress(&plain, &sqlite);
            let c = glaciersync::catalog::Catalog::open(&sqlite).expect("opens as SQLite");
            assert!(c.stats().unwrap().files >= 22);
        }
    }
    assert_eq!((bundles, files, catalogs), (1, 1, 1));
    let status = f.run(&["status"]);
    status.expect(0);
    assert!(
        status
            .stdout()
            .contains("age-encrypted: 3 archives encrypted"),
        "{}",
        status.stdout()
    );
    f.run(&["restore", "--to", "back"]).expect(0);
    assert_eq!(
        std::fs::read(f.p(format!("back/path/{MARKER_NAME}"))).unwrap(),
        small
    );
    assert_eq!(
        std::fs::read(f.p("back/path2/large.bin")).unwrap(),
        std::fs::read(f.p("src2/large.bin")).unwrap()
    );
    // A rename is never stored again.
    std::fs::rename(f.p("src2/large.bin"), f.p("src2/renamed.bin")).unwrap();
    let s = f.sync();
    assert_eq!(s.deduplicated, 1, "{s:?}");
    assert!(s.uploaded_bytes < 100_000, "{s:?}");
}

#[test]
fn identity_file_is_private_and_the_settings_encrypt_to_it() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.p("Documents")).unwrap();
    let r = f.run(&["init", "--age", f.p("k/settings.ini").to_str().unwrap()]);
    r.expect(0);
    assert!(r.stderr.contains("without it nobody"), "{}", r.stderr);
    let id = f.p("k/glaciersync-identity.txt");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&id).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let settings = std::fs::read_to_string(f.p("k/settings.ini")).unwrap();
    let text = std::fs::read_to_string(&id).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap();
    assert!(settings.contains(&format!("\nage_recipients = {recipient}\n")));
    assert!(settings.contains(&format!("\nage_identity_file = {}\n", id.display())));
    // The reference CLI derives the same recipient from the identity.
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&id)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), recipient);
    // Never overwritten.
    f.run(&["init", "--age", f.p("k/settings.ini").to_str().unwrap()])
        .expect(2);
    assert_eq!(std::fs::read_to_string(&id).unwrap(), text);
}

#[test]
fn restore_without_or_with_a_wrong_identity_exits_2_and_writes_nothing() {
    let f = Fixture::new();
    let (id, recipient) = identity(&f, "keys");
    let (wrong, _) = identity(&f, "other");
    f.write_settings(&encrypted_settings(&recipient, None));
    fill(&f);
    f.sync(); // write-only: no identity needed
    let r = f.run(&["restore", "--to", "back"]);
    r.expect(2);
    assert!(
        r.one_stderr_line().contains("age_identity_file"),
        "{}",
        r.stderr
    );
    assert!(!f.p("back").exists() || store_files(&f.p("back")).is_empty());
    f.write_settings(&encrypted_settings(&recipient, Some(&wrong)));
    let r = f.run(&["restore", "--to", "back"]);
    r.expect(2);
    assert!(r.one_stderr_line().contains("no identity"), "{}", r.stderr);
    assert!(!f.p("back").exists() || store_files(&f.p("back")).is_empty());
    // Recover from an empty machine: the same checks, then it works with the identity.
    std::fs::remove_dir_all(f.p("db")).unwrap();
    let r = f.run(&["recover"]);
    r.expect(2);
    assert!(r.one_stderr_line().contains("no identity"), "{}", r.stderr);
    f.write_settings(&encrypted_settings(&recipient, None));
    let r = f.run(&["recover"]);
    r.expect(2);
    assert!(
        r.one_stderr_line().contains("age_identity_file"),
        "{}",
        r.stderr
    );
    f.write_settings(&encrypted_settings(&recipient, Some(&id)));
    f.run(&["recover"]).expect(0);
    f.run(&["restore", "--to", "back"]).expect(0);
    assert_eq!(
        std::fs::read(f.p("back/path2/large.bin")).unwrap(),
        std::fs::read(f.p("src2/large.bin")).unwrap()
    );
}

#[test]
fn damaged_ciphertext_fails_its_archive_and_leaves_no_partial_file() {
    let f = Fixture::new();
    let (id, recipient) = identity(&f, "keys");
    f.write_settings(&encrypted_settings(&recipient, Some(&id)));
    fill(&f);
    f.sync();
    let large = store_files(&f.p("store"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/data/"))
        .unwrap();
    let mut bytes = std::fs::read(&large).unwrap();
    let n = bytes.len();
    bytes[n - 1000] ^= 0x40;
    std::fs::write(&large, &bytes).unwrap();
    let r = f.run(&["restore", "--to", "back"]);
    r.expect(1);
    assert!(r.stderr.contains("damaged"), "{}", r.stderr);
    assert!(!f.p("back/path2/large.bin").exists());
    let leftovers: Vec<_> = store_files(&f.p("back/path2"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(
        f.p(format!("back/path/{MARKER_NAME}")).exists(),
        "other archives restored"
    );
}

#[test]
fn turning_encryption_on_counts_plaintext_and_off_needs_a_flag() {
    let f = Fixture::new();
    let (id, recipient) = identity(&f, "keys");
    fill(&f);
    f.sync();
    f.write_settings(&encrypted_settings(&recipient, Some(&id)));
    f.write("src/new.txt", b"new after encryption");
    f.sync();
    let status = f.run(&["status"]);
    status.expect(0);
    let line = status.stdout();
    assert!(
        line.contains("age-encrypted: 2 archives encrypted"),
        "{line}"
    );
    assert!(
        line.contains("3 archives") && line.contains("still plaintext"),
        "{line}"
    );
    f.run(&["restore", "--to", "back"]).expect(0);
    assert!(f.p("back/path/new.txt").exists() && f.p("back/path2/large.bin").exists());
    f.write_settings(&settings_with(""));
    f.write("src/newer.txt", b"newer");
    let r = f.run(&["sync"]);
    r.expect(2);
    assert!(
        r.one_stderr_line().contains("--allow-plaintext"),
        "{}",
        r.stderr
    );
    f.run(&["sync", "--allow-plaintext"]).expect(0);
}
