//! Values: numbers and sizes, relative paths, `~`.

use super::*;
use crate::settings::values::parse_size;

#[test]
fn numbers_and_sizes() {
    let e = err("[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = lots\n");
    assert!(e.starts_with(&format!("{FILE}:4: ")), "{e}");
    assert_contains(
        &e,
        &["`archive_byte_size_threshold`", "`lots`", "not a number"],
    );
    let e = err("[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = 1.5M\n");
    assert_contains(&e, &[":4:", "`1.5M`"]);
    let e = err("[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = 0\n");
    assert_contains(&e, &[":4:", "at least 1"]);
    let e = err("[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = 99999999999999G\n");
    assert_contains(&e, &[":4:", "too large"]);
    let e = err("[global]\nconcurrency = four\n[p]\nlocal_dir = /s\npath = /a\n");
    assert_contains(&e, &[":2:", "`concurrency`", "`four`"]);
    let e = err("[global]\nconcurrency = 0\n[p]\nlocal_dir = /s\npath = /a\n");
    assert_contains(&e, &[":2:", "`concurrency`", "1 to 64"]);
    let e = err("[global]\nconcurrency = 65\n[p]\nlocal_dir = /s\npath = /a\n");
    assert_contains(&e, &[":2:", "`concurrency`"]);
    assert_eq!(
        one("[global]\nconcurrency = 64\n[p]\nlocal_dir = /s\npath = /a\n").concurrency,
        64
    );
    // Sizes take binary suffixes; concurrency does not.
    let e = err("[global]\nconcurrency = 4K\n[p]\nlocal_dir = /s\npath = /a\n");
    assert_contains(&e, &[":2:", "`4K`"]);
    for (text, want) in [
        ("123", 123),
        ("1k", 1024),
        ("2 KB", 2048),
        ("3KiB", 3072),
        ("16M", 16 * MIB),
        ("16 mb", 16 * MIB),
        ("16MiB", 16 * MIB),
        ("1G", GIB),
        ("2gb", 2 * GIB),
        ("3 GiB", 3 * GIB),
        ("7B", 7),
    ] {
        assert_eq!(parse_size(text), Ok(want), "{text}");
        let p = one(&format!(
            "[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = {text}\n"
        ));
        assert_eq!(p.archive_byte_size_threshold, want, "{text}");
    }
    for bad in ["", "M", "-1", "1 T", "1MiBs", "0x10", "1_000"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
}

#[test]
fn relative_paths_resolve_against_the_settings_dir() {
    let text = "[global]\ndatabase_dir = db\n[p]\nlocal_dir = ../store\npath = docs\npath2 = ./x/./y\npath3 = /abs/./z\n";
    let p = one(text);
    assert_eq!(p.database_dir, PathBuf::from("/etc/gs/db"));
    assert_eq!(
        p.backend,
        BackendSettings::Local {
            dir: "/etc/gs/../store".into()
        }
    );
    assert_eq!(p.trees[0].root, PathBuf::from("/etc/gs/docs"));
    assert_eq!(p.trees[1].root, PathBuf::from("/etc/gs/x/y"));
    assert_eq!(p.trees[2].root, PathBuf::from("/abs/z"));
    // Windows-style absolute paths are kept verbatim, not joined.
    let p = one("[p]\nlocal_dir = \\\\nas\\share\\backup\npath = c:/Users/u\npath2 = D:\n");
    assert_eq!(
        p.backend,
        BackendSettings::Local {
            dir: r"\\nas\share\backup".into()
        }
    );
    assert_eq!(p.trees[0].root, PathBuf::from("c:/Users/u"));
    assert_eq!(p.trees[1].root, PathBuf::from("D:"));
    // A relative settings file name resolves against the working directory.
    let s = parse_with(
        "[p]\nlocal_dir = s\npath = a\n",
        Path::new("conf/settings.ini"),
        &home_env(),
    )
    .unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(s.profiles[0].trees[0].root, cwd.join("conf/a"));
    assert_eq!(s.file, PathBuf::from("conf/settings.ini"));
}

#[test]
fn tilde_expands_to_home() {
    let p = one(
        "[global]\ndatabase_dir = ~/.gs\n[p]\nlocal_dir = ~\npath = ~/Documents\npath2 = ~\\Win\n",
    );
    assert_eq!(p.database_dir, PathBuf::from("/home/u/.gs"));
    assert_eq!(
        p.backend,
        BackendSettings::Local {
            dir: "/home/u".into()
        }
    );
    assert_eq!(p.trees[0].root, PathBuf::from("/home/u/Documents"));
    assert_eq!(p.trees[1].root, PathBuf::from("/home/u/Win"));
    let e = err("[p]\nlocal_dir = /s\npath = ~bob/x\n");
    assert_contains(&e, &[":3:", "`path`", "~user"]);
    let no_home = env_of(&[("XDG_DATA_HOME", "/d")]);
    let e = parse_with(
        "[p]\nlocal_dir = /s\npath = ~/x\n",
        Path::new(FILE),
        &no_home,
    )
    .unwrap_err()
    .to_string();
    assert_contains(&e, &[":3:", "`path`", "HOME"]);
}
