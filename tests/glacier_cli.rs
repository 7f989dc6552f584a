//! The CLI end to end against the strict Glacier server (`tests/servers/glacier_strict.py`),
//! for what moto's Glacier lacks: multipart uploads of large files, and ranged retrieval of a
//! few small files out of a large bundle.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/glacier_server.rs"]
mod glacier_server;

use glacier_server::Server;
use glaciersync::backend::testsuite::content;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Runs the CLI in `dir`: (exit code, the JSON of the first profile, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let (code, json, stderr) = cli::run_json(dir, args);
    (code, json["profiles"][0].clone(), stderr)
}

/// Restores until done (the server finishes jobs at once, but each first request waits).
fn restore_until_done(dir: &Path, args: &[&str]) -> Value {
    let (code, first, err) = run(dir, args);
    assert_eq!(code, 75, "the first run requests and waits: {err}\n{first}");
    assert!(first["requested"].as_u64().unwrap() > 0, "{first}");
    let (code, second, err) = run(dir, args);
    assert_eq!(code, 0, "{err}\n{second}");
    assert_eq!(second["requested"], 0, "nothing requested twice: {second}");
    second
}

#[test]
fn multipart_sync_and_ranged_restore_through_the_cli() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.ini"),
        format!(
            "[global]\naws_access_key = testing\naws_secret_key = testing\naws_region_name = us-east-1\nendpoint_url = {}\ndatabase_dir = db\n\n[p]\nvault_name = strict-vault\npath = src\narchive_byte_size_threshold = 8MiB\npart_size = 1MiB\n",
            server.url()
        ),
    )
    .unwrap();
    let src = d.join("src");
    std::fs::create_dir_all(src.join("small")).unwrap();
    // 60 files of 100 KiB: one bundle of about 6 MiB (under the 8 MiB threshold).
    for i in 0..60 {
        std::fs::write(
            src.join(format!("small/{i:02}.bin")),
            content(100 * 1024, i),
        )
        .unwrap();
    }
    // A large file: 9.5 MiB, its own archive, in 1 MiB parts.
    std::fs::write(
        src.join("large.bin"),
        content(9 * (1 << 20) + (1 << 19), 99),
    )
    .unwrap();

    let (code, p, err) = run(d, &["sync"]);
    assert_eq!(code, 0, "{err}\n{p}");
    assert_eq!(p["new"], 61);
    let counters = server.counters()["counters"].clone();
    assert_eq!(
        counters["UploadMultipartPart"].as_u64(),
        Some(10 + 6),
        "the large file and the bundle go up in 1 MiB parts: {counters}"
    );

    // Restoring one small file retrieves a few megabytes of the bundle around it, not all of
    // it: its megabyte-aligned range, at most doubled to a tree-hash-aligned one (so the
    // download comes with a checksum). One file: where two files land in a bundle depends on
    // which parallel read finishes first.
    let (code, plan, err) = run(d, &["restore", "--to", "out", "--dry-run", "small/30.bin"]);
    assert_eq!(code, 0, "{err}");
    let saved = plan["bytes_saved_by_ranges"].as_u64().unwrap();
    assert!(
        saved >= 1 << 20,
        "ranged retrieval spares most of the bundle: {plan}"
    );
    assert!(!d.join("out").exists(), "a dry run writes nothing");

    let done = restore_until_done(
        d,
        &[
            "restore",
            "--to",
            "out",
            "--tier",
            "expedited",
            "small/30.bin",
        ],
    );
    assert_eq!(done["restored"], 1, "{done}");
    assert_eq!(
        std::fs::read(d.join("out/path/small/30.bin")).unwrap(),
        std::fs::read(src.join("small/30.bin")).unwrap(),
    );
    assert!(
        !d.join("out/path/small/00.bin").exists(),
        "only what was asked for"
    );
    let log = server.counters()["log"].clone();
    let ranges: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["RetrievalByteRange"].as_str().map(String::from))
        .collect();
    assert_eq!(ranges.len(), 1, "one ranged job: {ranges:?}");
    let (a, b) = ranges[0].split_once('-').unwrap();
    let len = b.parse::<u64>().unwrap() + 1 - a.parse::<u64>().unwrap();
    assert!(
        len <= 4 << 20,
        "a megabyte-aligned range around the member: {ranges:?}"
    );

    // Everything, including the multipart file, with its tree hashes checked on the way.
    let done = restore_until_done(d, &["restore", "--to", "all", "--tier", "bulk"]);
    assert_eq!(done["restored"], 61, "{done}");
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(d.join("all/path"))
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
}
