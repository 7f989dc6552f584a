//! Reading an object, or a range of it, into a writer: exactly the bytes asked for or an error
//! that says whether a retry can help.

use super::S3Backend;
use crate::backend::ByteRange;
use crate::backend::aws;
use crate::error::{BackendErrorKind, Error, Result};
use std::io::Write;

impl S3Backend {
    pub(super) async fn get_async(
        &self,
        id: &str,
        range: Option<ByteRange>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let key = self.key(id)?;
        if let Some(r) = range {
            if r.start > r.end {
                return Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("{}: invalid range {}..{}", self.url(&key), r.start, r.end),
                ));
            }
            if r.is_empty() {
                // HTTP cannot ask for no bytes; check the object and the range instead.
                let head = self.head_existing(&key).await?;
                let size = head.content_length().unwrap_or(0).max(0) as u64;
                if r.end > size {
                    return Err(self.outside(&key, r, size));
                }
                return Ok(0);
            }
        }
        let mut request = self.client.get_object().bucket(&self.bucket).key(&key);
        if let Some(r) = range {
            request = request.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let _slot = self.limiter.acquire().await;
        self.count(|s| s.get_object += 1);
        let answer = request.send().await.map_err(|e| {
            let err = self.sdk_err("reading", &key, e);
            match err.backend_kind() {
                Some(BackendErrorKind::NotWarm) => self.err(
                    BackendErrorKind::NotWarm,
                    format!(
                        "{} is archived and not restored: warm it up (restore) first",
                        self.url(&key)
                    ),
                ),
                _ => err,
            }
        })?;
        let length = answer.content_length().unwrap_or(-1).max(-1);
        let expected = match range {
            Some(r) => {
                if length != r.len() as i64 {
                    // S3 cuts a range that reaches past the end; refuse rather than return less.
                    let size = total_size(answer.content_range()).unwrap_or(0);
                    return Err(self.outside(&key, r, size));
                }
                r.len()
            }
            None if length >= 0 => length as u64,
            None => {
                return Err(self.err(
                    BackendErrorKind::Transient,
                    format!("reading {}: no length in the answer", self.url(&key)),
                ));
            }
        };
        let mut body = answer.body;
        let mut written = 0u64;
        loop {
            let chunk = match body.try_next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(self.body_err(&key, written, expected, &e)),
            };
            let room = expected - written;
            let take = (chunk.len() as u64).min(room) as usize;
            out.write_all(&chunk[..take]).map_err(|e| {
                self.err(
                    BackendErrorKind::Permanent,
                    format!("writing what was read from {}: {e}", self.url(&key)),
                )
            })?;
            written += take as u64;
            if take < chunk.len() {
                return Err(self.err(
                    BackendErrorKind::Corrupt,
                    format!(
                        "reading {}: the service sent more than the {expected} bytes asked for",
                        self.url(&key)
                    ),
                ));
            }
        }
        if written != expected {
            return Err(self.err(
                BackendErrorKind::Transient,
                format!(
                    "reading {}: the answer broke off after {written} of {expected} bytes",
                    self.url(&key)
                ),
            ));
        }
        Ok(written)
    }

    fn outside(&self, key: &str, r: ByteRange, size: u64) -> Error {
        // Shorter than what was stored: damaged.
        let kind = match r.start <= r.end {
            true => BackendErrorKind::Corrupt,
            false => BackendErrorKind::Permanent,
        };
        self.err(
            kind,
            format!(
                "range {}..{} is outside {} ({size} bytes)",
                r.start,
                r.end,
                self.url(key)
            ),
        )
    }

    fn body_err(&self, key: &str, written: u64, expected: u64, e: &dyn std::error::Error) -> Error {
        let text = aws::source_chain(e);
        let kind = if text.to_ascii_lowercase().contains("checksum mismatch") {
            BackendErrorKind::Corrupt
        } else {
            BackendErrorKind::Transient
        };
        self.err(
            kind,
            format!(
                "reading {} (after {written} of {expected} bytes): {text}",
                self.url(key)
            ),
        )
    }
}

/// The whole size from `Content-Range: bytes 0-9/1234`.
pub(super) fn total_size(content_range: Option<&str>) -> Option<u64> {
    content_range?.rsplit_once('/')?.1.trim().parse().ok()
}
