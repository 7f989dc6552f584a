//! Reading an encrypted object, streamed: the wrapped backend's download runs on a scoped
//! thread and feeds the decryptor through a small bounded pipe, so no object is ever held in
//! memory whole. A ranged read fetches the header (and nonce) and then only the chunks that
//! cover the range, and lets the age crate seek to the first of them.

use super::layout::{Layout, NONCE};
use crate::backend::{Backend, ByteRange};
use crate::error::{BackendErrorKind, Error, Result};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct PipeReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    gone: Arc<AtomicBool>,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(v) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::SeqCst);
    }
}

/// Runs `fetch` (a download into a writer) on a thread and `consume` on what it writes. A
/// download error wins over the reader's, unless the reader stopped first.
fn piped<T>(
    fetch: impl FnOnce(&mut dyn Write) -> Result<u64> + Send,
    consume: impl FnOnce(PipeReader) -> Result<T>,
) -> Result<T> {
    let (tx, rx) = sync_channel(2);
    let gone = Arc::new(AtomicBool::new(false));
    let reader = PipeReader {
        rx,
        cur: Vec::new(),
        pos: 0,
        gone: Arc::clone(&gone),
    };
    std::thread::scope(|s| {
        let fetcher = s.spawn(move || fetch(&mut PipeWriter { tx }));
        let consumed = consume(reader);
        let fetched = fetcher.join().expect("download thread does not panic");
        match (fetched, consumed) {
            (Err(e), Err(_)) if !gone.load(Ordering::SeqCst) => Err(e),
            (Err(e), Ok(_)) if !gone.load(Ordering::SeqCst) => Err(e),
            (_, consumed) => consumed,
        }
    })
}

fn corrupt(id: &str, what: impl std::fmt::Display) -> Error {
    Error::backend(
        "age",
        BackendErrorKind::Corrupt,
        format!(
            "{id}: the encrypted object is damaged or truncated ({what}); nothing of it was kept"
        ),
    )
}

fn decrypt_error(id: &str, e: age::DecryptError) -> Error {
    match e {
        age::DecryptError::NoMatchingKeys => Error::backend(
            "age",
            BackendErrorKind::Auth,
            format!(
                "no identity in `age_identity_file` matches the recipients of {id}: \
                 use the identity this backup was encrypted to"
            ),
        ),
        other => corrupt(id, other),
    }
}

/// Decrypts `input` (an age file, or a sparse view of one) with `ids`, skipping to plaintext
/// `skip` and writing `limit` bytes (all when `None`) to `out`.
fn decrypt(
    id: &str,
    input: impl Read + Seek,
    ids: &[age::x25519::Identity],
    skip: u64,
    limit: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64> {
    let decryptor = age::Decryptor::new(input).map_err(|e| decrypt_error(id, e))?;
    let mut plain = decryptor
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| decrypt_error(id, e))?;
    if skip > 0 {
        plain
            .seek(SeekFrom::Start(skip))
            .map_err(|e| corrupt(id, e))?;
    }
    copy_limited(id, &mut plain, limit, out)
}

fn copy_limited(
    id: &str,
    from: &mut dyn Read,
    limit: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    loop {
        let want = limit.map_or(buf.len() as u64, |l| (l - done).min(buf.len() as u64));
        if want == 0 {
            break;
        }
        let n = match from.read(&mut buf[..want as usize]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(id, e)),
        };
        out.write_all(&buf[..n]).map_err(|e| {
            Error::backend(
                "age",
                BackendErrorKind::Permanent,
                format!("writing {id}: {e}"),
            )
        })?;
        done += n as u64;
    }
    if let Some(l) = limit
        && done != l
    {
        return Err(corrupt(id, format!("{done} of {l} bytes")));
    }
    Ok(done)
}

/// A reader over a whole pipe that can only say where it is: what the age crate asks of a
/// reader before any seek.
struct Forward<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Read for Forward<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> Seek for Forward<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            SeekFrom::Current(0) => Ok(self.pos),
            SeekFrom::Start(p) if p == self.pos => Ok(p),
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "stream cannot seek",
            )),
        }
    }
}

/// The whole plaintext of `inner_id`.
pub(super) fn read_all(
    inner: &dyn Backend,
    id: &str,
    inner_id: &str,
    ticket: Option<&str>,
    ids: &[age::x25519::Identity],
    out: &mut dyn Write,
) -> Result<u64> {
    piped(
        |w| inner.get(inner_id, None, ticket, w),
        |r| decrypt(id, Forward { inner: r, pos: 0 }, ids, 0, None, out),
    )
}

/// The header (and nonce) in memory, then the chunks from `chunks_start` streamed: the
/// stored bytes a ranged read needs, at their places.
struct Sparse<R> {
    head: Vec<u8>,
    chunks: R,
    chunks_start: u64,
    chunks_read: bool,
    pos: u64,
}

impl<R: Read> Read for Sparse<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() as u64 {
            let from = &self.head[self.pos as usize..];
            let n = buf.len().min(from.len());
            buf[..n].copy_from_slice(&from[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        if self.pos < self.chunks_start {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "gap in a sparse read",
            ));
        }
        self.chunks_read = true;
        let n = self.chunks.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> Seek for Sparse<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let to = match pos {
            SeekFrom::Current(0) => return Ok(self.pos),
            SeekFrom::Start(p) => p,
            _ => return Err(io::Error::new(io::ErrorKind::Unsupported, "sparse seek")),
        };
        let ok = to <= self.head.len() as u64
            || to == self.pos
            || (to == self.chunks_start && !self.chunks_read);
        if !ok {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "sparse seek"));
        }
        self.pos = to;
        Ok(to)
    }
}

/// Plaintext `want` of `inner_id`: its header, then only the chunks that hold `want`.
pub(super) fn read_range(
    inner: &dyn Backend,
    id: &str,
    (layout, inner_id): (Layout, &str),
    want: ByteRange,
    ticket: Option<&str>,
    ids: &[age::x25519::Identity],
    out: &mut dyn Write,
) -> Result<u64> {
    let plain_size = layout
        .plain_size()
        .ok_or_else(|| corrupt(id, "its size does not fit its header"))?;
    if want.start > want.end || want.end > plain_size {
        return Err(Error::backend(
            "age",
            BackendErrorKind::Permanent,
            format!(
                "range {}..{} is outside {id} ({plain_size} bytes)",
                want.start, want.end
            ),
        ));
    }
    if want.is_empty() {
        return Ok(0);
    }
    // Seeking to a chunk's first byte makes the age crate look at the file's end: start one
    // byte before, in the chunk before, instead.
    let from = if want.start > 0 && want.start.is_multiple_of(super::layout::CHUNK) {
        want.start - 1
    } else {
        want.start
    };
    let (sealed, _) = layout.sealed_range(ByteRange {
        start: from,
        end: want.end,
    });
    let head_range = ByteRange {
        start: 0,
        end: layout.payload_start(),
    };
    let mut head = Vec::with_capacity((layout.header + NONCE) as usize);
    inner.get(inner_id, Some(head_range), ticket, &mut head)?;
    piped(
        |w| inner.get(inner_id, Some(sealed), ticket, w),
        |r| {
            let sparse = Sparse {
                head,
                chunks: r,
                chunks_start: sealed.start,
                chunks_read: false,
                pos: 0,
            };
            let mut sink = Skip {
                inner: out,
                skip: want.start - from,
            };
            let n = decrypt(id, sparse, ids, from, Some(want.end - from), &mut sink)?;
            Ok(n - (want.start - from))
        },
    )
}

/// Drops the first `skip` bytes written through it.
struct Skip<'a> {
    inner: &'a mut dyn Write,
    skip: u64,
}

impl Write for Skip<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let drop = (self.skip as usize).min(buf.len());
        self.skip -= drop as u64;
        self.inner.write_all(&buf[drop..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
