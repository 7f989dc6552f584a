//! Files: loading one from disk, the original script's file, and the sample.

use super::*;
use crate::settings::keys::{GLOBAL_KEYS, PROFILE_KEYS};

const SEED: &str = include_str!("../../../tests/fixtures/original-2013.ini");

#[test]
fn seed_file_of_the_original_script_loads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.ini");
    std::fs::write(&file, SEED).unwrap();
    let s = load(&file).unwrap();
    assert_eq!(s.file, file);
    assert_eq!(s.profiles.len(), 1);
    let p = &s.profiles[0];
    assert_eq!(p.name, "pictures");
    assert_eq!(p.line, 6);
    assert_eq!(
        p.backend,
        BackendSettings::Glacier {
            vault: "pictures".into()
        }
    );
    assert_eq!(p.backend.kind(), "glacier");
    assert_eq!(p.archive_byte_size_threshold, 1_000_000);
    let trees: Vec<(&str, PathBuf, usize)> = p
        .trees
        .iter()
        .map(|t| (t.key.as_str(), t.root.clone(), t.line))
        .collect();
    assert_eq!(
        trees,
        vec![
            ("path", PathBuf::from(r"C:\Users\user\Pictures"), 9),
            ("path2", PathBuf::from(r"C:\Users\user\MyPictures"), 10),
            ("path3", PathBuf::from(r"c:\pics"), 11),
        ]
    );
    assert_eq!(p.aws.access_key.as_deref(), Some("TheAccessKey"));
    assert_eq!(p.aws.secret_key.as_deref(), Some("TheSecretKey"));
    assert_eq!(p.aws.region.as_deref(), Some("us-east-1"));
    assert_eq!(p.aws.endpoint_url, None);
    assert_eq!(p.aws.profile, None);
    assert_eq!(p.database_dir, PathBuf::from("/path/to/dbdir"));
    assert_eq!(
        p.catalog_path(),
        PathBuf::from("/path/to/dbdir/pictures.sqlite3")
    );
    assert_eq!(p.concurrency, 4);
    assert_eq!(p.part_size, 64 * MIB);
    assert!(p.exclude.is_empty());
}

#[test]
fn sample_parses() {
    let s = ok(SAMPLE);
    assert_eq!(s.profiles.len(), 1);
    let p = &s.profiles[0];
    assert_eq!(p.name, "documents");
    assert_eq!(
        p.backend,
        BackendSettings::Local {
            dir: "/home/u/glaciersync-store".into()
        }
    );
    assert_eq!(p.trees[0].root, PathBuf::from("/home/u/Documents"));
    assert_eq!(p.exclude, vec!["*.tmp", ".cache/", "Thumbs.db"]);
    // With the real environment too, when it has a home.
    if std::env::var_os("HOME").is_some_and(|h| !h.is_empty()) {
        parse(SAMPLE, Path::new(FILE)).unwrap();
    }
}

#[test]
fn sample_documents_every_key_and_its_examples_parse_when_uncommented() {
    for key in GLOBAL_KEYS.iter().chain(PROFILE_KEYS).chain(&["path2"]) {
        assert!(SAMPLE.contains(&format!("{key} =")), "SAMPLE lacks {key}");
    }
    // Uncomment each example: from a commented `# [section]` line to the next blank line.
    let mut in_example = false;
    let uncommented: String = SAMPLE
        .lines()
        .map(|l| {
            if l.starts_with("# [") {
                in_example = true;
            } else if l.trim().is_empty() {
                in_example = false;
            }
            let l = if in_example {
                l.strip_prefix("# ").unwrap_or(l)
            } else {
                l
            };
            format!("{l}\n")
        })
        .collect();
    let s = ok(&uncommented);
    let kinds: Vec<(&str, &str)> = s
        .profiles
        .iter()
        .map(|p| (p.name.as_str(), p.backend.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("documents", "local"),
            ("photos", "s3"),
            ("archive", "glacier")
        ]
    );
    assert_eq!(s.profiles[1].exclude, vec!["*.tmp"]);
    assert_eq!(s.profiles[2].part_size, 128 * MIB);
}

#[test]
fn write_sample_creates_parents_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/settings.ini");
    write_sample(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), SAMPLE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    std::fs::write(&path, "mine").unwrap();
    let e = write_sample(&path).unwrap_err();
    assert!(matches!(e, Error::Usage(_)), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
}

#[test]
fn load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.ini");
    let e = load(&path).unwrap_err();
    assert!(matches!(e, Error::Settings { line: 0, .. }), "{e:?}");
    assert_contains(
        &e.to_string(),
        &[&path.display().to_string(), "glaciersync init"],
    );
    std::fs::write(&path, b"[p]\npath = /\xff\n").unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert_contains(&e, &["UTF-8"]);
}
