//! Settings files as the binary reads them: the seed file of the original script, every kind of
//! bad settings (exit 2, one clear line naming file, line and key), `init`, `-p`.

use super::common::*;

/// The settings file of the original 2013 script, as its users have it.
const SEED: &str = include_str!("../fixtures/original-2013.ini");

#[test]
fn seed_file_of_the_original_script_loads_and_sync_names_the_missing_path() {
    let f = Fixture::new();
    let db = f.p("catalogs");
    std::fs::create_dir(&db).unwrap();
    // Unchanged but for a database_dir that exists here.
    let text = SEED.replace(
        "database_dir: /path/to/dbdir",
        &format!("database_dir: {}", db.display()),
    );
    assert_ne!(text, SEED);
    f.write_settings(&text);

    let r = f.run(&["sync"]);
    r.expect(2);
    let line = r.one_stderr_line();
    for part in ["path", r"C:\Users\user\Pictures", "path not found"] {
        assert!(line.contains(part), "{line:?} should name {part:?}");
    }
    // The line is about the first tree, not the others.
    assert!(!line.contains("MyPictures"), "{line}");
    assert!(
        line.contains(&f.settings_path().display().to_string()),
        "{line}"
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout());
    // Nothing was created.
    assert!(std::fs::read_dir(&db).unwrap().next().is_none());

    // With --json: the same exit code and a JSON document naming the error.
    let r = f.run(&["--json", "sync"]);
    r.expect(2);
    let err = r.profile()["error"].as_str().unwrap().to_string();
    assert!(err.contains("path not found"), "{err}");
}

/// Runs `sync` with `text` as the settings and expects exit 2 with one line on stderr that
/// names the settings file and `line`, and contains every one of `parts`.
#[track_caller]
fn bad_settings(text: &str, line: usize, parts: &[&str]) {
    let f = Fixture::with_settings(text);
    let r = f.run(&["sync"]);
    r.expect(2);
    let err = r.one_stderr_line();
    let at = format!("{}:{line}:", f.settings_path().display());
    assert!(err.contains(&at), "{err:?} should name {at:?}");
    for p in parts {
        assert!(err.contains(p), "{err:?} should contain {p:?}");
    }
    assert!(!f.p("store").exists(), "nothing may be stored");
    assert!(!f.catalog().exists(), "no catalog may be created");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    bad_settings(&settings_with("colour = blue"), 8, &["`colour`", "[docs]"]);
    // A typo gets a suggestion.
    bad_settings(
        "[global]\ndatabase_dir = db\n[docs]\nlocal_dir = store\npath = src\nexcludes = *.tmp\n",
        6,
        &["`excludes`", "exclude"],
    );
    // In [global] too.
    bad_settings(
        "[global]\ndatabase_dir = db\nverbose = 1\n[docs]\nlocal_dir = store\npath = src\n",
        3,
        &["`verbose`", "[global]"],
    );
}

#[test]
fn missing_tree_directory_is_named() {
    let f = Fixture::with_settings(&SETTINGS.replace("path2 = src2", "path2 = nowhere"));
    let r = f.run(&["sync"]);
    r.expect(2);
    let err = r.one_stderr_line();
    let at = format!("{}:6:", f.settings_path().display());
    for p in [at.as_str(), "path2", "nowhere", "path not found"] {
        assert!(err.contains(p), "{err:?} should contain {p:?}");
    }
    assert!(!f.catalog().exists());
    assert!(f.stored("").is_empty());
}

#[test]
fn profile_without_any_path() {
    bad_settings(
        "[global]\ndatabase_dir = db\n[docs]\nlocal_dir = store\n",
        3,
        &["[docs]", "`path"],
    );
}

#[test]
fn threshold_not_a_number() {
    bad_settings(
        &SETTINGS.replace("= 1MiB", "= lots"),
        7,
        &["`archive_byte_size_threshold`", "not a number"],
    );
}

#[test]
fn backend_without_its_required_key() {
    bad_settings(
        "[global]\ndatabase_dir = db\n[docs]\nbackend = local\npath = src\n",
        3,
        &["[docs]", "`local_dir`"],
    );
    bad_settings(
        "[global]\ndatabase_dir = db\n[docs]\nbackend = s3\npath = src\n",
        3,
        &["[docs]", "`bucket`"],
    );
    bad_settings(
        "[global]\ndatabase_dir = db\n[docs]\nbackend = glacier\npath = src\n",
        3,
        &["[docs]", "`vault_name`"],
    );
}

#[test]
fn missing_settings_file_says_how_to_make_one() {
    let f = Fixture::new();
    std::fs::remove_file(f.settings_path()).unwrap();
    let r = f.run(&["sync"]);
    r.expect(2);
    let err = r.one_stderr_line();
    assert!(err.contains("glaciersync init"), "{err}");
}

#[test]
fn init_writes_the_sample_and_never_overwrites() {
    let f = Fixture::new();
    let target = f.p("conf/new.ini");
    // Its tree is ~/Documents when that exists (HOME is the fixture).
    std::fs::create_dir_all(f.p("Documents")).unwrap();
    std::fs::write(f.p("Documents/a.txt"), b"a").unwrap();
    let r = f.run(&["init".as_ref(), target.as_os_str()]);
    r.expect(0);
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.starts_with("# glaciersync settings"), "{text}");
    assert!(text.contains("[documents]") && text.contains("archive_byte_size_threshold"));

    // The sample is a working settings file.
    let mut c = std::process::Command::new(BIN);
    f.configure(&mut c);
    c.arg("-c").arg(&target).args(["--json", "sync"]);
    let r = run_command(c);
    r.expect(0);
    assert_eq!(r.sync_summary().new, 1);

    // Never overwrites.
    std::fs::write(&target, "mine").unwrap();
    let r = f.run(&["init".as_ref(), target.as_os_str()]);
    r.expect(2);
    let err = r.one_stderr_line();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");

    // The default location (-c) too.
    let r = f.run(&["init"]);
    r.expect(2);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(f.settings_path()).unwrap(),
        SETTINGS
    );
}

#[test]
fn unknown_profile_is_refused() {
    let f = Fixture::new();
    let r = f.run(&["-p", "nope", "sync"]);
    r.expect(2);
    let err = r.one_stderr_line();
    assert!(err.contains("nope") && err.contains("docs"), "{err}");
    assert!(!f.catalog().exists());
    // A known profile works.
    f.write("src/a", b"a");
    let r = f.run(&["-p", "docs", "--json", "sync"]);
    r.expect(0);
    assert_eq!(r.sync_summary().new, 1);
}

#[test]
fn bad_usage_exits_2() {
    let f = Fixture::new();
    f.run(&["sync", "--no-such-flag"]).expect(2);
    f.run(&["restore"]).expect(2); // --to is required
    f.sync();
    let r = f.run(&["ls", "--at", "yesterday"]);
    r.expect(2);
    assert!(r.one_stderr_line().contains("yesterday"), "{}", r.stderr);
}

#[test]
fn several_profiles_each_with_its_catalog_and_summary() {
    let f = Fixture::with_settings(&format!(
        "{SETTINGS}[pics]\nlocal_dir = store-pics\npath = photos\n"
    ));
    f.write("src/a.txt", b"a");
    f.write("photos/p.jpg", b"jpeg");
    let r = f.run(&["--json", "sync"]);
    r.expect(0);
    let doc = r.json();
    let names: Vec<&str> = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs", "pics"]);
    assert!(f.p("db/docs.sqlite3").exists() && f.p("db/pics.sqlite3").exists());
    assert_eq!(files_under(&f.p("store-pics/bundles")).len(), 1);
    let r = f.run(&["-p", "pics", "ls"]);
    r.expect(0);
    assert_eq!(r.stdout().lines().count(), 1);
    assert!(r.stdout().starts_with("path/p.jpg\t4\t"), "{}", r.stdout());

    // One profile failing does not stop the other; the exit code is the worst.
    std::fs::remove_dir(f.p("src2")).unwrap();
    f.write("photos/q.jpg", b"another");
    let r = f.run(&["--json", "sync"]);
    r.expect(2);
    let doc = r.json();
    assert!(
        doc["profiles"][0]["error"]
            .as_str()
            .unwrap()
            .contains("path not found")
    );
    assert_eq!(doc["profiles"][1]["new"], 1, "{doc:#}");
}
