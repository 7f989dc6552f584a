//! Profiles: global values and defaults, trees, backends and their keys, AWS options, names,
//! and secrets kept out of messages.

use super::*;

#[test]
fn profile_values_win_over_global() {
    let text = "[global]\n\
        aws_region_name = us-east-1\n\
        concurrency = 2\n\
        storage_class = glacier\n\
        bucket = shared\n\
        backend = s3\n\
        exclude = *.bak\n\
        part_size = 16MiB\n\
        [a]\n\
        aws_region_name = eu-west-1\n\
        concurrency = 9\n\
        storage_class = standard_ia\n\
        exclude = *.tmp\n\
        path = /a\n\
        [b]\n\
        path = /b\n";
    let s = ok(text);
    let (a, b) = (&s.profiles[0], &s.profiles[1]);
    assert_eq!(a.aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(a.concurrency, 9);
    assert_eq!(a.exclude, vec!["*.tmp"]);
    assert_eq!(
        a.backend,
        BackendSettings::S3 {
            bucket: "shared".into(),
            prefix: "a/".into(),
            storage_class: "STANDARD_IA".into()
        }
    );
    assert_eq!(b.aws.region.as_deref(), Some("us-east-1"));
    assert_eq!(b.concurrency, 2);
    assert_eq!(b.exclude, vec!["*.bak"]);
    assert_eq!(b.part_size, 16 * MIB);
    assert_eq!(
        b.backend,
        BackendSettings::S3 {
            bucket: "shared".into(),
            prefix: "b/".into(),
            storage_class: "GLACIER".into()
        }
    );
}

#[test]
fn global_section_is_optional_and_defaults_apply() {
    let p = one("[docs]\nlocal_dir = /s\npath = /d\n");
    assert_eq!(p.concurrency, DEFAULT_CONCURRENCY);
    assert_eq!(
        p.archive_byte_size_threshold,
        DEFAULT_ARCHIVE_BYTE_SIZE_THRESHOLD
    );
    assert_eq!(p.part_size, DEFAULT_PART_SIZE);
    assert_eq!(
        p.database_dir,
        PathBuf::from("/home/u/.local/share/glaciersync")
    );
    assert_eq!(
        p.catalog_path(),
        PathBuf::from("/home/u/.local/share/glaciersync/docs.sqlite3")
    );
    assert!(p.aws.access_key.is_none() && p.aws.region.is_none());
}

#[test]
fn trees_are_required_non_empty_ordered_and_distinct() {
    let e = err("[global]\nconcurrency = 2\n\n[pics]\nvault_name = v\n");
    assert_contains(&e, &[":4:", "[pics]", "`path"]);
    let e = err("[p]\nlocal_dir = /s\npath =\n");
    assert_contains(&e, &[":3:", "`path`", "no value"]);
    let e = err("[p]\nlocal_dir = /s\npath = /a\npath2 = /a\n");
    assert_contains(&e, &[":4:", "`path2`", "`path`"]);
    let e = err("[p]\nlocal_dir = /s\npath = \"/my docs\"\n");
    assert_contains(&e, &[":3:", "quote"]);
    // Numeric order whatever the file order; gaps are kept (a tree keeps its key).
    let p = one("[p]\nlocal_dir = /s\npath10 = /j\npath3 = /c\npath = /a\npath2 = /b\n");
    let keys: Vec<&str> = p.trees.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["path", "path2", "path3", "path10"]);
    assert_eq!(p.trees[3].root, PathBuf::from("/j"));
    assert_eq!(p.trees[3].line, 3);
}

#[test]
fn no_profile_is_an_error() {
    let e = err("[global]\nconcurrency = 2\n");
    assert_contains(&e, &["no profile"]);
    let e = err("");
    assert_contains(&e, &["no profile"]);
}

#[test]
fn backend_selection_and_required_keys() {
    // vault_name alone means glacier; nothing means local; backend overrides.
    assert_eq!(
        one("[p]\nvault_name = v\npath = /a\n").backend.kind(),
        "glacier"
    );
    assert_eq!(
        one("[p]\nlocal_dir = /s\npath = /a\n").backend.kind(),
        "local"
    );
    let p = one("[p]\nbackend = S3\nvault_name = v\nbucket = b\npath = /a\n");
    assert_eq!(p.backend.kind(), "s3");
    let e = err("[p]\nbackend = tape\npath = /a\n");
    assert_contains(&e, &[":2:", "`backend`", "`tape`", "glacier, s3 or local"]);

    let e = err("[global]\nconcurrency = 1\n[pics]\nbackend = glacier\npath = /a\n");
    assert!(e.starts_with(&format!("{FILE}:3: ")), "{e}");
    assert_contains(&e, &["[pics]", "`vault_name`"]);
    let e = err("[global]\nconcurrency = 1\n[pics]\nbackend = s3\npath = /a\n");
    assert!(e.starts_with(&format!("{FILE}:3: ")), "{e}");
    assert_contains(&e, &["[pics]", "`bucket`"]);
    let e = err("[global]\nconcurrency = 1\n[pics]\nbackend = local\npath = /a\n");
    assert!(e.starts_with(&format!("{FILE}:3: ")), "{e}");
    assert_contains(&e, &["[pics]", "`local_dir`"]);
    // No backend keys at all: the message lists the choices.
    let e = err("[pics]\npath = /a\n");
    assert_contains(&e, &[":1:", "[pics]", "local_dir", "vault_name", "bucket"]);
}

#[test]
fn vault_names_are_validated() {
    for good in ["v", "my-vault_1.x", &"a".repeat(255)] {
        let p = one(&format!("[p]\nvault_name = {good}\npath = /a\n"));
        assert_eq!(
            p.backend,
            BackendSettings::Glacier {
                vault: good.to_string()
            }
        );
    }
    for bad in ["my vault", "vault/x", "vält", &"a".repeat(256)] {
        let e = err(&format!("[p]\npath = /a\nvault_name = {bad}\n"));
        assert_contains(&e, &[":3:", "`vault_name`", "1 to 255"]);
    }
}

#[test]
fn storage_classes() {
    for class in STORAGE_CLASSES {
        let lower = class.to_lowercase();
        let p = one(&format!(
            "[p]\nbackend = s3\nbucket = b\nstorage_class = {lower}\npath = /a\n"
        ));
        let BackendSettings::S3 { storage_class, .. } = p.backend else {
            panic!()
        };
        assert_eq!(storage_class, *class);
    }
    let p = one("[p]\nbackend = s3\nbucket = b\npath = /a\n");
    let BackendSettings::S3 { storage_class, .. } = p.backend else {
        panic!()
    };
    assert_eq!(storage_class, "DEEP_ARCHIVE");
    let e = err("[p]\nbackend = s3\nbucket = b\nstorage_class = REDUCED_REDUNDANCY\npath = /a\n");
    assert_contains(
        &e,
        &[
            ":4:",
            "`storage_class`",
            "REDUCED_REDUNDANCY",
            "DEEP_ARCHIVE",
        ],
    );
}

#[test]
fn s3_prefix_and_bucket() {
    let prefix_of = |text: &str| match one(text).backend {
        BackendSettings::S3 { prefix, .. } => prefix,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        prefix_of("[pics]\nbackend = s3\nbucket = b\npath = /a\n"),
        "pics/"
    );
    assert_eq!(
        prefix_of("[pics]\nbackend = s3\nbucket = b\nprefix = x/y\npath = /a\n"),
        "x/y/"
    );
    assert_eq!(
        prefix_of("[pics]\nbackend = s3\nbucket = b\nprefix = x/\npath = /a\n"),
        "x/"
    );
    assert_eq!(
        prefix_of("[pics]\nbackend = s3\nbucket = b\nprefix =\npath = /a\n"),
        ""
    );
    let e = err("[pics]\nbackend = s3\nbucket = s3://b/x\npath = /a\n");
    assert_contains(&e, &[":3:", "`bucket`", "bare bucket name"]);
}

#[test]
fn part_size_rules() {
    let glacier = |ps: &str| format!("[p]\nvault_name = v\npath = /a\npart_size = {ps}\n");
    let s3 = |ps: &str| format!("[p]\nbackend = s3\nbucket = b\npath = /a\npart_size = {ps}\n");
    for good in ["1MiB", "2M", "128MiB", "4GiB", "1048576"] {
        assert!(one(&glacier(good)).part_size >= MIB, "{good}");
    }
    for bad in ["3MiB", "512K", "8GiB", "1000000", "0"] {
        let e = err(&glacier(bad));
        assert_contains(&e, &[":4:", "`part_size`", "Glacier", bad]);
    }
    for good in ["5MiB", "6M", "5GiB", "100000000"] {
        one(&s3(good));
    }
    for bad in ["4MiB", "6GiB", "1"] {
        let e = err(&s3(bad));
        assert_contains(&e, &[":5:", "`part_size`", "S3", bad]);
    }
    assert_eq!(
        one("[p]\nlocal_dir = /s\npath = /a\npart_size = 3MiB\n").part_size,
        3 * MIB
    );
    let e = err("[p]\nlocal_dir = /s\npath = /a\npart_size = 0\n");
    assert_contains(&e, &[":4:", "`part_size`"]);
    // A global value that does not suit one profile names its line and the profile.
    let e = err(
        "[global]\npart_size = 3MiB\n[loc]\nlocal_dir = /s\npath = /a\n[gl]\nvault_name = v\npath = /b\n",
    );
    assert_contains(&e, &[":2:", "`part_size`", "[global]", "[gl]"]);
}

#[test]
fn aws_options() {
    let p = one(
        "[global]\naws_profile = work\nendpoint_url = http://127.0.0.1:9000\n[p]\nbackend = s3\nbucket = b\npath = /a\n",
    );
    assert_eq!(p.aws.profile.as_deref(), Some("work"));
    assert_eq!(p.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
    let e = err("[global]\nendpoint_url = 127.0.0.1:9000\n[p]\nlocal_dir = /s\npath = /a\n");
    assert_contains(&e, &[":2:", "`endpoint_url`", "http://"]);
    let e = err("[global]\naws_access_key = AKIA\n[p]\nlocal_dir = /s\npath = /a\n");
    assert_contains(&e, &[":2:", "`aws_access_key`", "`aws_secret_key`"]);
}

#[test]
fn profile_names_must_suit_a_file_name() {
    for bad in ["a/b", "..", ".hidden", "a\\b", "c:d"] {
        let e = err(&format!("[{bad}]\nlocal_dir = /s\npath = /a\n"));
        assert_contains(&e, &[":1:", "profile name"]);
    }
    let p = one("[My Photos-2.0]\nlocal_dir = /s\npath = /a\n");
    assert_eq!(p.name, "My Photos-2.0");
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    const SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET";
    const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
    let cases = [
        // A secret on a line that is not `key = value`.
        format!("[global]\naws_secret_key {SECRET}\n"),
        format!("[global]\n{SECRET}\n"),
        // A secret continued on an indented line.
        format!(
            "[global]\naws_access_key = {ACCESS}\naws_secret_key = {SECRET}\n  {SECRET}\n[p]\nlocal_dir=/s\npath=/a\n"
        ),
        // Set twice.
        format!("[global]\naws_secret_key = {SECRET}\naws_secret_key = {SECRET}\n"),
        // One of the pair missing.
        format!("[global]\naws_secret_key = {SECRET}\n[p]\nlocal_dir=/s\npath=/a\n"),
        format!("[global]\naws_access_key = {ACCESS}\n[p]\nlocal_dir=/s\npath=/a\n"),
        // Another error in a file holding them.
        format!(
            "[global]\naws_access_key = {ACCESS}\naws_secret_key = {SECRET}\n[p]\npath=/a\nconcurrency = x\nlocal_dir=/s\n"
        ),
    ];
    for text in &cases {
        let e = err(text);
        assert!(!e.contains(SECRET) && !e.contains(ACCESS), "{e}");
        let debug = format!("{:?}", parse_with(text, Path::new(FILE), &home_env()));
        assert!(
            !debug.contains(SECRET) && !debug.contains(ACCESS),
            "{debug}"
        );
    }
    let s = ok(&format!(
        "[global]\naws_access_key = {ACCESS}\naws_secret_key = {SECRET}\n[p]\nlocal_dir=/s\npath=/a\n"
    ));
    assert_eq!(s.profiles[0].aws.secret_key.as_deref(), Some(SECRET));
    let debug = format!("{s:?} {:?} {:#?}", s.profiles[0], s.profiles[0].aws);
    assert!(
        !debug.contains(SECRET) && !debug.contains(ACCESS),
        "{debug}"
    );
}

#[test]
fn exclude_on_its_own() {
    let exclude = |text: &str| {
        with_scope(text, |s| {
            crate::settings::profile::exclude(s).map_err(|e| e.to_string())
        })
    };
    assert_eq!(exclude("[p]\n"), Ok(vec![]));
    assert_eq!(
        exclude("[global]\nexclude = *.bak\n[p]\n"),
        Ok(vec!["*.bak".to_string()])
    );
    // One pattern a line; blank lines and an empty first line are skipped.
    assert_eq!(
        exclude("[p]\nexclude =\n  *.tmp\n\n  .cache/\n"),
        Ok(vec!["*.tmp".to_string(), ".cache/".to_string()])
    );
    let e = exclude("[p]\nexclude = *.tmp\n  [z-a]\n").unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{FILE}:3: `exclude` has a bad gitignore pattern: "
        )),
        "{e}"
    );
}
