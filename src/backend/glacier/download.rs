//! Downloads from the output of a finished job: the fewest tree-hash nodes that cover the
//! wanted bytes, each verified against Glacier's checksum when it sends one, and written only
//! once verified.

use super::errors::not_found_as;
use super::ranges::{aligned_pieces, exact_pieces};
use super::retrieval::Ticket;
use super::{BACKEND, GlacierBackend, MAX_DOWNLOAD_WINDOW, short};
use crate::backend::ByteRange;
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::tree_hash;
use aws_sdk_glacier::operation::get_job_output::builders::GetJobOutputFluentBuilder;
use std::io::Write;

impl GlacierBackend {
    fn download_window(&self) -> u64 {
        self.part_size.min(MAX_DOWNLOAD_WINDOW)
    }

    pub(super) fn get_archive(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        if let Some(r) = range {
            if r.start > r.end {
                return Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("invalid range {}..{} of {}", r.start, r.end, short(id)),
                ));
            }
            if r.is_empty() {
                return Ok(0);
            }
        }
        let Some(ticket) = ticket else {
            return Err(self.err(
                BackendErrorKind::NotWarm,
                format!(
                    "archive {} is in cold storage: request its retrieval (warm it up) first",
                    short(id)
                ),
            ));
        };
        let tk = Ticket::decode(ticket)
            .filter(|t| !t.inventory)
            .ok_or_else(|| {
                self.err(
                    BackendErrorKind::Permanent,
                    format!("unreadable retrieval ticket for archive {}", short(id)),
                )
            })?;
        if !tk.covers(range) {
            let what = match range {
                Some(r) => format!("bytes {}..{}", r.start, r.end),
                None => "the whole archive".to_string(),
            };
            return Err(self.err(
                BackendErrorKind::NotWarm,
                format!(
                    "the retrieval of archive {} does not hold {what}: warm that up first",
                    short(id)
                ),
            ));
        }
        let (a, b) = match range {
            Some(r) => (r.start, r.end),
            None => match tk.output_end() {
                Some(end) => (0, end),
                None => {
                    // Size unknown (the server did not say): one request for the whole output.
                    let data = self.fetch_all(id, &tk)?;
                    write_out(out, &data)?;
                    return Ok(data.len() as u64);
                }
            },
        };
        let window = self.download_window();
        let pieces = match tk.size {
            // Glacier sends checksums for tree-hash aligned downloads of aligned jobs.
            Some(size) if tk.aligned && b <= size => aligned_pieces(a, b, size, window),
            _ => exact_pieces(a, b, window),
        };
        let mut written = 0u64;
        for (ws, we) in pieces {
            let data = self.fetch(id, &tk, ws, we)?;
            let from = (a.max(ws) - ws) as usize;
            let to = (b.min(we) - ws) as usize;
            write_out(out, &data[from..to])?;
            written += (to - from) as u64;
        }
        Ok(written)
    }

    /// Fetches archive bytes `[ws, we)` from the output of the job in `ticket`, verified against
    /// Glacier's checksum when it sends one.
    fn fetch(&self, id: &str, ticket: &Ticket, ws: u64, we: u64) -> Result<Vec<u8>> {
        let js = ticket.start;
        let whole_output = ws == js && ticket.output_end() == Some(we);
        let (rel_start, rel_end) = (ws - js, we - js); // job-relative, end exclusive
        let mut request = self
            .client
            .get_job_output()
            .vault_name(&*self.ctx.vault)
            .job_id(&ticket.job);
        if !whole_output {
            request = request.range(format!("bytes={rel_start}-{}", rel_end - 1));
        }
        let what = format!("downloading bytes {ws}-{} of archive {}", we - 1, short(id));
        let JobOutput {
            content_range,
            body,
        } = self.job_output(
            request,
            &what,
            " (the retrieval job expired: job outputs last 24 hours; warm the archive up again)",
        )?;
        let want_len = (rel_end - rel_start) as usize;
        if let Some(text) = content_range.as_deref() {
            let Some((a, b)) = parse_content_range(text) else {
                return Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("{what}: unreadable Content-Range {text:?}"),
                ));
            };
            if (a, b + 1) != (rel_start, rel_end) {
                return Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("{what}: Glacier sent bytes {a}-{b} of the job output instead"),
                ));
            }
            if body.len() != want_len {
                return Err(self.err(
                    BackendErrorKind::Transient,
                    format!("{what}: got {} of {want_len} bytes", body.len()),
                ));
            }
            return Ok(body);
        }
        // No Content-Range: the whole output came back (asked for, or the server ignored the
        // Range header). Its offsets are job-relative. A server that ignores the retrieval range
        // as well (moto) sends the whole archive, whose offsets agree with the job's only when
        // the job starts at 0.
        let full_job = ticket.output_end().map(|e| (e - js) as usize) == Some(body.len());
        if (full_job || js == 0) && body.len() >= rel_end as usize {
            Ok(if body.len() == want_len {
                body
            } else {
                body[rel_start as usize..rel_end as usize].to_vec()
            })
        } else {
            Err(self.err(
                BackendErrorKind::Transient,
                format!("{what}: got {} bytes, expected {want_len}", body.len()),
            ))
        }
    }

    /// The whole output of a job in one request (inventories, archives of unknown size).
    pub(super) fn fetch_all(&self, what: &str, tk: &Ticket) -> Result<Vec<u8>> {
        let request = self
            .client
            .get_job_output()
            .vault_name(&*self.ctx.vault)
            .job_id(&tk.job);
        let what = format!("downloading the output of job for {}", short(what));
        let out = self.job_output(request, &what, " (the job expired: outputs last 24 hours)")?;
        Ok(out.body)
    }

    /// Sends a GetJobOutput request under the backend-wide limit and reads its whole body,
    /// verified against Glacier's checksum when it sends one. `expired` is added to the message
    /// when Glacier no longer knows the job (the error is then `NotWarm`).
    fn job_output(
        &self,
        request: GetJobOutputFluentBuilder,
        what: &str,
        expired: &str,
    ) -> Result<JobOutput> {
        let (content_range, checksum, body) = self.call(async {
            let out = request.send().await.map_err(|e| {
                not_found_as(self.ctx.map(what, e), BackendErrorKind::NotWarm, expired)
            })?;
            let content_range = out.content_range().map(str::to_string);
            let checksum = out.checksum().map(str::to_string);
            let body = out.body.collect().await.map_err(|e| {
                self.err(
                    BackendErrorKind::Transient,
                    format!("{what}: the download broke off: {e}"),
                )
            })?;
            Ok::<_, Error>((content_range, checksum, body.into_bytes().to_vec()))
        })?;
        if let Some(sum) = checksum {
            let got = tree_hash(&body);
            if !got.to_hex().eq_ignore_ascii_case(sum.trim()) {
                return Err(self.err(
                    BackendErrorKind::Corrupt,
                    format!(
                        "{what}: the bytes received do not match Glacier's checksum (tree hash {got}, expected {sum}): the download was corrupted"
                    ),
                ));
            }
        }
        Ok(JobOutput {
            content_range,
            body,
        })
    }
}

fn write_out(out: &mut dyn Write, data: &[u8]) -> Result<()> {
    out.write_all(data).map_err(|e| {
        Error::backend(
            BACKEND,
            BackendErrorKind::Permanent,
            format!("writing downloaded bytes: {e}"),
        )
    })
}

/// Parses `bytes a-b/total` (total may be `*`).
pub(super) fn parse_content_range(text: &str) -> Option<(u64, u64)> {
    let rest = text.trim().strip_prefix("bytes")?.trim_start();
    let (range, _total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// What a GetJobOutput request brought back (its checksum already verified).
struct JobOutput {
    /// Which bytes of the job output these are, when the server says.
    content_range: Option<String>,
    body: Vec<u8>,
}
