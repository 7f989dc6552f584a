//! moto's server as the test command (`scripts/test.sh`) starts it: its URL comes in
//! `GLACIERSYNC_TEST_MOTO`. Without it a test skips with a note, unless
//! `GLACIERSYNC_TEST_DISALLOW_SKIP=1` (as in CI), which turns the skip into a failure.
//! Shared by test binaries through `#[path]`.

#![allow(dead_code)]

/// moto's base URL, or `None` (after a note) when the test is to be skipped.
pub fn url() -> Option<String> {
    match std::env::var("GLACIERSYNC_TEST_MOTO") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ => {
            if std::env::var("GLACIERSYNC_TEST_DISALLOW_SKIP").as_deref() == Ok("1") {
                panic!("GLACIERSYNC_TEST_MOTO is not set but skipping is disallowed");
            }
            eprintln!("skipped: GLACIERSYNC_TEST_MOTO is not set (run scripts/test.sh)");
            None
        }
    }
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    )
}
