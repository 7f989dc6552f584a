//! A relay in front of a moto server (S3), started for one test. Shared by the test binaries
//! that need it (`#[path]` module).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A relay in front of a moto server, for what moto cannot do alone:
/// - It renames the root element of ListParts answers: moto (5.2.1 to 5.2.5 at least) calls it
///   `ListPartsResponse` where S3 says `ListPartsResult`, and the Rust SDK refuses anything
///   else, so no SDK client can list the parts of an upload on moto.
/// - It counts the requests in flight at the server, as the server sees them.
/// - It checks the payload hash each request was signed with (`x-amz-content-sha256`)
///   against its body, which moto never does and AWS always does.
/// - It logs every request line as it arrives, with the server's answer once there is one, so
///   a test can count UploadPart and CompleteMultipartUpload requests (also of a client killed
///   midway: a request counts from its first line on).
/// - It can hold back the answers to UploadPart requests, so that parts the server has stored
///   stay in flight for the client a while.
///
/// moto closes every connection after one answer (so the SDK opens one per request), which
/// keeps the relay simple: one connection, one request.
pub struct Relay {
    pub url: String,
    state: Arc<RelayState>,
}

#[derive(Default)]
struct RelayState {
    active: AtomicUsize,
    peak: AtomicUsize,
    hashes_checked: AtomicUsize,
    hashes_wrong: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    upload_part_delay_ms: AtomicU64,
}

/// One request as the relay saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path as sent (path style: `/<bucket>/<key>`), without the query.
    pub path: String,
    /// The query string, without the `?`.
    pub query: String,
    /// The status the server answered with; `None` while (or if never) answered.
    pub status: Option<u16>,
    /// Whether the whole request (its body as long as `Content-Length` says) was passed on to
    /// the server: one that is not, when its client is gone, was cut short and is never
    /// answered.
    pub whole: bool,
    /// Whether the answer was handed on to the client.
    pub delivered: bool,
}

impl Request {
    fn parse(line: &str) -> Option<Request> {
        let mut words = line.split(' ');
        let method = words.next()?.to_string();
        let target = words.next()?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Some(Request {
            method,
            path: path.to_string(),
            query: query.to_string(),
            status: None,
            whole: false,
            delivered: false,
        })
    }

    /// The value of a query parameter (`Some("")` for one without a value).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// `PUT <key>?partNumber=N&uploadId=U`.
    pub fn is_upload_part(&self) -> bool {
        self.method == "PUT"
            && self.param("partNumber").is_some()
            && self.param("uploadId").is_some()
    }

    /// `POST <key>?uploadId=U`.
    pub fn is_complete_multipart(&self) -> bool {
        self.method == "POST" && self.param("uploadId").is_some()
    }

    /// `GET <key>?uploadId=U`.
    pub fn is_list_parts(&self) -> bool {
        self.method == "GET" && self.param("uploadId").is_some()
    }

    /// The part number of an UploadPart.
    pub fn part_number(&self) -> Option<u32> {
        self.param("partNumber")?.parse().ok()
    }

    /// Whether the request is about `key` (path style, under any bucket).
    pub fn is_for(&self, key: &str) -> bool {
        self.path.ends_with(&format!("/{key}"))
    }
}

impl Relay {
    pub fn start(upstream: &str) -> Relay {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(RelayState::default());
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let state = Arc::clone(&shared);
                let now = state.active.fetch_add(1, Ordering::SeqCst) + 1;
                state.peak.fetch_max(now, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = relay(client, &upstream, &state);
                });
            }
        });
        Relay { url, state }
    }

    /// Most requests the server had in flight at once.
    pub fn peak(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    /// Requests signed with the hash of their payload: (how many, how many of them wrongly).
    pub fn payload_hashes(&self) -> (usize, usize) {
        (
            self.state.hashes_checked.load(Ordering::SeqCst),
            self.state.hashes_wrong.load(Ordering::SeqCst),
        )
    }

    /// Holds back each answer to an UploadPart for `delay` (after the server gave it).
    pub fn delay_upload_part_answers(&self, delay: std::time::Duration) {
        self.state
            .upload_part_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Every request so far, in the order their first lines arrived.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// UploadPart requests so far, counted from their first line on: a part cut short (by a
    /// killed client, say) counts too.
    pub fn upload_parts(&self) -> usize {
        self.count(Request::is_upload_part)
    }

    /// UploadPart requests the server answered with 200: parts it stored.
    pub fn upload_parts_stored(&self) -> usize {
        self.count(|r| r.is_upload_part() && r.status == Some(200))
    }

    /// CompleteMultipartUpload requests so far.
    pub fn complete_multipart_uploads(&self) -> usize {
        self.count(Request::is_complete_multipart)
    }

    fn count(&self, f: impl Fn(&Request) -> bool) -> usize {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| f(r))
            .count()
    }
}

/// Relays one request; it stops counting as in flight once the server has answered, before
/// the client can see the answer and send the next.
fn relay(client: TcpStream, upstream: &str, state: &Arc<RelayState>) -> std::io::Result<()> {
    let exchange = forward(&client, upstream, state);
    state.active.fetch_sub(1, Ordering::SeqCst);
    let (request, answer, logged) = exchange?;
    if let Some(i) = logged {
        let status = String::from_utf8_lossy(&answer[..answer.len().min(64)])
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok());
        let upload_part = {
            let mut log = state.requests.lock().unwrap();
            log[i].status = status;
            log[i].is_upload_part()
        };
        let delay = state.upload_part_delay_ms.load(Ordering::SeqCst);
        if upload_part && delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
    }
    check_payload_hash(&request, state);
    (&client).write_all(&fix_list_parts_root(answer))?;
    if let Some(i) = logged {
        state.requests.lock().unwrap()[i].delivered = true;
    }
    client.shutdown(std::net::Shutdown::Both)
}

/// Sends what the client sends to the server until the server has answered; returns the
/// request as sent, the answer, and where the request is in the log. The request line is
/// logged as soon as it has arrived, before its body.
type Exchange = (Vec<u8>, Vec<u8>, Option<usize>);

fn forward(
    client: &TcpStream,
    upstream: &str,
    state: &Arc<RelayState>,
) -> std::io::Result<Exchange> {
    let server = TcpStream::connect(upstream)?;
    let (mut from_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
    let sent = Arc::new(Mutex::new((Vec::new(), None)));
    let record = Arc::clone(&sent);
    let state = Arc::clone(state);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        // The request's length, once its head is in: head, blank line and body.
        let mut length: Option<usize> = None;
        loop {
            match from_client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let (received, logged) = {
                        let (request, logged) = &mut *record.lock().unwrap();
                        request.extend_from_slice(&buf[..n]);
                        if logged.is_none() {
                            *logged = log_request_line(request, &state);
                        }
                        if length.is_none() {
                            length = request_length(request);
                        }
                        (request.len(), *logged)
                    };
                    if to_server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    if let (Some(i), Some(len)) = (logged, length)
                        && received >= len
                    {
                        state.requests.lock().unwrap()[i].whole = true;
                    }
                }
            }
        }
    });
    let mut answer = Vec::new();
    (&server).read_to_end(&mut answer)?;
    let (request, logged) = sent.lock().unwrap().clone();
    Ok((request, answer, logged))
}

/// The length of the whole request (head, blank line, `Content-Length` bytes of body), once its
/// head has arrived.
fn request_length(request: &[u8]) -> Option<usize> {
    let split = request.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&request[..split]).to_ascii_lowercase();
    let body = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    Some(split + 4 + body)
}

/// Logs the request line once it is complete; returns its place in the log.
fn log_request_line(request: &[u8], state: &RelayState) -> Option<usize> {
    let end = request.windows(2).position(|w| w == b"\r\n")?;
    let parsed = Request::parse(&String::from_utf8_lossy(&request[..end]))?;
    let mut log = state.requests.lock().unwrap();
    log.push(parsed);
    Some(log.len() - 1)
}

fn check_payload_hash(request: &[u8], state: &RelayState) {
    let Some(split) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return;
    };
    let head = String::from_utf8_lossy(&request[..split]).to_ascii_lowercase();
    let header = |name: &str| {
        head.split("\r\n")
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let Some(hash) = header("x-amz-content-sha256:").filter(|h| h.len() == 64) else {
        return; // unsigned or streaming payloads
    };
    let body = &request[split + 4..];
    if header("content-length:").and_then(|l| l.parse().ok()) != Some(body.len()) {
        return;
    }
    state.hashes_checked.fetch_add(1, Ordering::SeqCst);
    if glaciersync::hash::sha256(body).to_hex() != hash {
        state.hashes_wrong.fetch_add(1, Ordering::SeqCst);
    }
}

fn fix_list_parts_root(answer: Vec<u8>) -> Vec<u8> {
    let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer;
    };
    let body = String::from_utf8_lossy(&answer[split + 4..]);
    if !(body.starts_with("<?xml") && body.contains("<ListPartsResponse")) {
        return answer;
    }
    let body = body
        .replace("<ListPartsResponse", "<ListPartsResult")
        .replace("</ListPartsResponse>", "</ListPartsResult>");
    let head: Vec<String> = String::from_utf8_lossy(&answer[..split])
        .split("\r\n")
        .map(|line| {
            if line.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {}", body.len())
            } else {
                line.to_string()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}
