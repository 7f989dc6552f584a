//! Running the glaciersync binary from a test: `-c s.ini --json` in a directory, with short
//! retry back-offs. Shared by test binaries through `#[path]`.

#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Runs `glaciersync -c s.ini --json ARGS` in `dir`: (exit code, the JSON document, stderr).
pub fn run_json(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_glaciersync"))
        .current_dir(dir)
        .env("GLACIERSYNC_RETRY_BASE_MS", "50")
        .args(["-c", "s.ini", "--json"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: bad JSON ({e}); stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// Same files with the same bytes under `a` and `b` (`diff -r`; mtimes are not compared).
pub fn assert_same_tree(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trees differ:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
