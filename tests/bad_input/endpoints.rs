//! Endpoints that refuse connections, accept them and never answer, or answer garbage: `sync`
//! stops with exit 2 and one line naming the endpoint, in bounded time (the timeouts are set
//! low here), and records nothing.

use super::helpers::*;
use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A listener that accepts connections and answers each with `answer` (none: never).
fn server(answer: Option<&'static [u8]>) -> String {
    server_after(0, answer)
}

/// [`server`], answering the first `ok` requests with an empty 200 first.
fn server_after(ok: usize, answer: Option<&'static [u8]>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (i, mut c) in listener.incoming().flatten().enumerate() {
            let empty: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            let answer = if i < ok { Some(empty) } else { answer };
            match answer {
                None => held.push(c),
                Some(a) => {
                    let _ = c.set_read_timeout(Some(Duration::from_millis(300)));
                    let _ = c.read(&mut [0u8; 65536]);
                    let _ = c.write_all(a);
                }
            }
        }
    });
    url
}

/// Settings of a remote profile at `url` with waits of 1 s.
fn remote(f: &Fixture, url: &str, profile: &str) {
    f.write_settings(&format!(
        "[global]\ndatabase_dir = db\naws_access_key = testing\naws_secret_key = testing\n\
         aws_region_name = us-east-1\nendpoint_url = {url}\nconnect_timeout = 1\n\
         read_timeout = 1s\nstall_timeout = 1s\nrequest_timeout = 5s\n[docs]\npath = src\n{profile}\n"
    ));
}

/// `sync` against it: exit 2 within `limit`, one line naming the endpoint, no snapshot.
fn fails_clearly(url: &str, profile: &str, words: &[&str]) {
    let f = fixture();
    remote(&f, url, profile);
    let started = Instant::now();
    let r = f.run(&["sync"]);
    let took = started.elapsed();
    let mut all = words.to_vec();
    all.push(url);
    one_line(&r, 2, &all);
    assert!(took < Duration::from_secs(90), "bounded: {took:?}");
    // The trees are untouched and back up elsewhere.
    f.write_settings(SETTINGS);
    nothing_lost(&f);
}

const S3: &str = "backend = s3\nbucket = bkt\n";
const VAULT: &str = "vault_name = v\n";

fn refused_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

#[test]
fn s3_endpoint_that_refuses() {
    fails_clearly(&refused_url(), S3, &["bkt"]);
}

#[test]
fn s3_endpoint_that_never_answers() {
    fails_clearly(&server(None), S3, &["no answer", "bkt"]);
}

/// The bucket checks out, then the endpoint falls silent: the first upload (with its body
/// sent) times out, a few times, and the sync stops.
#[test]
fn s3_endpoint_that_falls_silent_during_uploads() {
    fails_clearly(&server_after(1, None), S3, &["no answer", "uploading"]);
}

#[test]
fn vault_endpoint_that_never_answers() {
    fails_clearly(&server(None), VAULT, &["no answer"]);
}

#[test]
fn s3_endpoint_that_answers_no_http() {
    fails_clearly(&server(Some(b"garbage\r\n\r\n\x00\x01")), S3, &["bkt"]);
}

#[test]
fn vault_endpoint_that_answers_html() {
    let answer: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 17\r\nConnection: close\r\n\r\n<html>oops</html>";
    fails_clearly(&server(Some(answer)), VAULT, &["unreadable answer"]);
}

/// An endpoint that answers every request with a 200 and an HTML page (a captive portal, a
/// misconfigured proxy): the bucket "checks out" and every upload "succeeds", but nothing was
/// stored, so the sync must not say it backed anything up.
#[test]
fn s3_endpoint_that_answers_200_to_everything() {
    let answer: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 17\r\nConnection: close\r\n\r\n<html>oops</html>";
    fails_clearly(&server(Some(answer)), S3, &["without an ETag"]);
}
