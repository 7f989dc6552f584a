//! Settings: each mistake is one line naming the file, line and key; nothing is done (no
//! catalog is made); the corrected settings then work.

use super::helpers::*;
use crate::common::*;

/// Runs `sync` with `text` as the settings: exit 2, one line holding `words`, no catalog;
/// then the good settings back, and nothing lost.
#[track_caller]
fn refused(text: &str, words: &[&str]) {
    let f = fixture();
    f.write_settings(text);
    one_line(&f.run(&["sync"]), 2, words);
    assert!(!f.catalog().exists(), "nothing done");
    f.write_settings(SETTINGS);
    nothing_lost(&f);
}

fn global(extra: &str) -> String {
    SETTINGS.replace("[docs]", &format!("{extra}\n[docs]"))
}

#[test]
fn an_unknown_key() {
    refused(
        &settings_with("colour = blue"),
        &["colour", "settings.ini:"],
    );
}

#[test]
fn a_timeout_that_is_no_duration() {
    refused(
        &global("connect_timeout = soon"),
        &["connect_timeout", "soon"],
    );
}

#[test]
fn a_timeout_of_zero() {
    refused(&global("read_timeout = 0"), &["read_timeout"]);
}

#[test]
fn a_timeout_over_a_day() {
    refused(&global("request_timeout = 48h"), &["request_timeout"]);
}

#[test]
fn a_stall_timeout_with_an_unknown_unit() {
    refused(&global("stall_timeout = 5 weeks"), &["stall_timeout"]);
}

#[test]
fn a_missing_tree() {
    refused(&settings_with("path3 = nowhere"), &["nowhere"]);
}

#[test]
fn a_concurrency_of_zero() {
    refused(&global("concurrency = 0"), &["concurrency"]);
}

#[test]
fn an_access_key_without_its_secret() {
    refused(&global("aws_access_key = AKIAEXAMPLE"), &["aws_secret_key"]);
}

#[test]
fn an_endpoint_that_is_no_http_url() {
    refused(&global("endpoint_url = ftp://example"), &["endpoint_url"]);
}

#[test]
fn a_settings_file_that_is_not_utf8() {
    let f = fixture();
    std::fs::write(f.settings_path(), b"[global]\ndatabase_dir = db\xff\xfe\n").unwrap();
    one_line(&f.run(&["sync"]), 2, &["UTF-8"]);
    f.write_settings(SETTINGS);
    nothing_lost(&f);
}

#[test]
fn a_settings_file_that_is_a_directory() {
    let f = fixture();
    std::fs::remove_file(f.settings_path()).unwrap();
    std::fs::create_dir(f.settings_path()).unwrap();
    one_line(&f.run(&["sync"]), 2, &["settings.ini"]);
    std::fs::remove_dir(f.settings_path()).unwrap();
    f.write_settings(SETTINGS);
    nothing_lost(&f);
}
