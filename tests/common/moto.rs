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

/// A bare, unsigned HTTP/1.0 exchange with a server at `base` (`http://host:port`): moto checks
/// no signatures by default, so this reaches its S3 and its own `/moto-api/`. Returns the status
/// and the body.
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
