//! A strict Glacier test server (`tests/servers/glacier_strict.py`) started for one test, with
//! its test-control endpoint. Shared by the test binaries that need it (`#[path]` module).

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        let python = std::env::var("GLACIERSYNC_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        // cargo sets CARGO_MANIFEST_DIR when it runs a test too: the checkout the test runs in.
        let script = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("tests/servers/glacier_strict.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} {}: {e}", script.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the server said {line:?} instead of PORT <n>"));
        Server { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One raw HTTP/1.1 request; returns (status, headers, body).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head, resp[split + 4..].to_vec())
    }

    pub fn control(&self, req: Value) -> Value {
        let (status, _, body) = self.raw("POST", "/_control", &[], req.to_string().as_bytes());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "control {req}: {v}");
        v
    }

    pub fn counters(&self) -> Value {
        self.control(json!({"action": "counters"}))
    }

    pub fn count(&self, op: &str) -> u64 {
        self.counters()["counters"][op].as_u64().unwrap_or(0)
    }

    pub fn state(&self, vault: &str) -> Value {
        self.control(json!({"action": "state", "vault": vault}))
    }

    /// A signed-looking request as another tool would send it.
    pub fn glacier(
        &self,
        method: &str,
        path: &str,
        mut headers: Vec<(&str, String)>,
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        headers.push((
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=other/x".into(),
        ));
        headers.push(("x-amz-glacier-version", "2012-06-01".into()));
        self.raw(method, path, &headers, body)
    }
}
