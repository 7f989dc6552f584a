//! A fault-injecting HTTP relay for one test, in front of moto (S3 or Glacier) or the strict
//! vault server. It passes each request on and, for a chosen share of them, does one of the
//! things a real network and a real service do now and then:
//! - `Throttle`: answers 503 SlowDown (S3) or 400 ThrottlingException (Glacier) without
//!   passing the request on;
//! - `FailAfter`: passes the request on (it takes effect), then answers 500 instead;
//! - `Reset`: passes the request on, then closes the connection without an answer;
//! - `Truncate`: passes the request on, then sends the first half of the answer and closes;
//! - `Delay`: holds the answer back a while, then sends it whole.
//!
//! Each connection carries one request (the relay asks both sides for `Connection: close`). It
//! also renames moto's ListParts root element (see `s3_relay.rs`), so multipart uploads can
//! resume on moto. Shared by test binaries through `#[path]`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the relay does to a request chosen for a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    FailAfter,
    Reset,
    Truncate,
    Delay,
}

pub const ALL_FAULTS: [Fault; 5] = [
    Fault::Throttle,
    Fault::FailAfter,
    Fault::Reset,
    Fault::Truncate,
    Fault::Delay,
];

pub struct FaultRelay {
    pub url: String,
    state: Arc<State>,
}

struct State {
    upstream: String,
    /// Share of requests that get a fault, in percent.
    percent: AtomicU64,
    rng: Mutex<u64>,
    requests: AtomicU64,
    injected: Mutex<Vec<(Fault, String)>>,
    delay_ms: AtomicU64,
    stopped: AtomicBool,
    /// Faults for the next requests whose request line contains a text: (text, fault, how
    /// many more).
    targeted: Mutex<Vec<(String, Fault, usize)>>,
}

impl FaultRelay {
    /// A relay to `upstream` (`http://host:port`) that injects no faults until told.
    pub fn start(upstream: &str) -> FaultRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .into(),
            percent: AtomicU64::new(0),
            rng: Mutex::new(0x9E37_79B9_7F4A_7C15),
            requests: AtomicU64::new(0),
            injected: Mutex::new(Vec::new()),
            delay_ms: AtomicU64::new(300),
            stopped: AtomicBool::new(false),
            targeted: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if shared.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(client, &state);
                });
            }
        });
        FaultRelay { url, state }
    }

    /// From now on, `percent` % of requests get a fault (the kinds in turn, at random).
    pub fn set_faults(&self, percent: u64) {
        self.state.percent.store(percent, Ordering::SeqCst);
    }

    /// The next `times` requests whose request line (`GET /bucket/key?query HTTP/1.1`)
    /// contains `text` get `fault`, whatever the share.
    pub fn fault_next(&self, text: &str, fault: Fault, times: usize) {
        let mut t = self.state.targeted.lock().unwrap();
        t.push((text.to_string(), fault, times));
    }

    /// Faults injected so far.
    pub fn faults(&self) -> usize {
        self.state.injected.lock().unwrap().len()
    }

    /// Faults injected so far, by kind.
    pub fn faults_of(&self, kind: Fault) -> usize {
        let log = self.state.injected.lock().unwrap();
        log.iter().filter(|(k, _)| *k == kind).count()
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// One line for a test's output: requests, and faults by kind.
    pub fn summary(&self) -> String {
        let by_kind: Vec<String> = ALL_FAULTS
            .iter()
            .map(|k| format!("{k:?} {}", self.faults_of(*k)))
            .collect();
        format!(
            "{} requests, {} faults ({})",
            self.requests(),
            self.faults(),
            by_kind.join(", ")
        )
    }
}

impl Drop for FaultRelay {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

impl State {
    /// The fault for the next request, if it gets one.
    fn draw(&self, line: &str) -> Option<Fault> {
        let mut targeted = self.targeted.lock().unwrap();
        if let Some(t) = targeted
            .iter_mut()
            .find(|(text, _, left)| *left > 0 && line.contains(text.as_str()))
        {
            t.2 -= 1;
            return Some(t.1);
        }
        drop(targeted);
        let percent = self.percent.load(Ordering::SeqCst);
        let mut x = self.rng.lock().unwrap();
        // xorshift64*: reproducible from run to run for one order of requests.
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if (r >> 32) % 100 >= percent {
            return None;
        }
        Some(ALL_FAULTS[((r >> 8) % ALL_FAULTS.len() as u64) as usize])
    }
}

/// A request or answer: its head (without the blank line) and its body.
struct Message {
    head: String,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// The head with `Connection: close` in place of any connection header (and without
    /// `Expect`, which the relay has answered itself).
    fn closing_head(&self) -> String {
        let mut lines: Vec<&str> = self
            .head
            .split("\r\n")
            .filter(|l| {
                let k = l
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                k != "connection" && k != "expect" && k != "keep-alive"
            })
            .collect();
        lines.push("Connection: close");
        lines.join("\r\n")
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n\r\n", self.closing_head()).into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one message: the head, then `Content-Length` bytes of body (or, without one, up to
/// the end when `to_end`). `client` gets a `100 Continue` when the request expects one.
fn read_message(
    stream: &mut TcpStream,
    to_end: bool,
    client: bool,
    no_body: bool,
) -> std::io::Result<Message> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let split = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut msg = Message {
        head,
        body: buf[split + 4..].to_vec(),
    };
    if client
        && msg
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let status = msg.head.split(' ').nth(1).unwrap_or("");
    if no_body || status == "204" || status == "304" {
        msg.body.clear();
        return Ok(msg);
    }
    match msg
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => {
            while msg.body.len() < len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(std::io::Error::other("closed before the body's end"));
                }
                msg.body.extend_from_slice(&chunk[..n]);
            }
            msg.body.truncate(len);
        }
        None if to_end => {
            stream.read_to_end(&mut msg.body)?;
        }
        None => {}
    }
    Ok(msg)
}

/// Whether the request is for the vault API (Glacier) rather than S3.
fn is_glacier(request: &Message) -> bool {
    let target = request.head.split(' ').nth(1).unwrap_or("");
    target.contains("/vaults")
}

fn error_answer(status: &str, glacier: bool, code: &str, message: &str) -> Vec<u8> {
    let (ctype, body) = if glacier {
        (
            "application/json",
            format!(r#"{{"code":"{code}","message":"{message}","type":"Server"}}"#),
        )
    } else {
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
            ),
        )
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn serve(mut client: TcpStream, state: &State) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let request = read_message(&mut client, false, true, false)?;
    state.requests.fetch_add(1, Ordering::SeqCst);
    let line = request.head.lines().next().unwrap_or("").to_string();
    let fault = state.draw(&line);
    if let Some(f) = fault {
        state.injected.lock().unwrap().push((f, line));
    }
    let glacier = is_glacier(&request);
    if fault == Some(Fault::Throttle) {
        let answer = if glacier {
            error_answer(
                "400 Bad Request",
                true,
                "ThrottlingException",
                "Rate exceeded",
            )
        } else {
            error_answer(
                "503 Slow Down",
                false,
                "SlowDown",
                "Please reduce your request rate.",
            )
        };
        client.write_all(&answer)?;
        return client.shutdown(Shutdown::Both);
    }
    let mut server = TcpStream::connect(&state.upstream)?;
    server.set_read_timeout(Some(Duration::from_secs(60)))?;
    server.write_all(&request.bytes())?;
    let head_request = request.head.starts_with("HEAD ");
    let answer = read_message(&mut server, true, false, head_request)?;
    let answer = fix_list_parts_root(answer).bytes();
    match fault {
        Some(Fault::FailAfter) => {
            let answer = if glacier {
                error_answer(
                    "500 Internal Server Error",
                    true,
                    "ServiceUnavailableException",
                    "fault after the request took effect",
                )
            } else {
                error_answer(
                    "500 Internal Server Error",
                    false,
                    "InternalError",
                    "fault after the request took effect",
                )
            };
            client.write_all(&answer)?;
        }
        Some(Fault::Reset) => {}
        Some(Fault::Truncate) => {
            // The first half, and a pause, so the client has taken those bytes in before the
            // connection closes (as when a line drops mid-transfer).
            client.write_all(&answer[..answer.len() / 2])?;
            client.flush()?;
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(Fault::Delay) => {
            std::thread::sleep(Duration::from_millis(state.delay_ms.load(Ordering::SeqCst)));
            client.write_all(&answer)?;
        }
        _ => client.write_all(&answer)?,
    }
    client.shutdown(Shutdown::Both)
}

/// moto calls ListParts' root `ListPartsResponse` where S3 says `ListPartsResult`.
fn fix_list_parts_root(mut answer: Message) -> Message {
    let body = String::from_utf8_lossy(&answer.body);
    if !(body.starts_with("<?xml") && body.contains("<ListPartsResponse")) {
        return answer;
    }
    let body = body
        .replace("<ListPartsResponse", "<ListPartsResult")
        .replace("</ListPartsResponse>", "</ListPartsResult>");
    answer.head = answer
        .head
        .split("\r\n")
        .map(|line| {
            if line.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {}", body.len())
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    answer.body = body.into_bytes();
    answer
}
