//! Retrieval jobs: initiating one for an archive (or a range of it), checking on it, and the
//! ticket the caller keeps between warm-ups: the job and the archive range it retrieves.

use super::ranges::retrieval_candidates;
use super::{GlacierBackend, short};
use crate::backend::{ByteRange, Tier, WarmState};
use crate::error::{BackendErrorKind, Result};
use crate::log;
use aws_sdk_glacier::error::ProvideErrorMetadata;
use aws_sdk_glacier::operation::initiate_job::InitiateJobOutput;
use aws_sdk_glacier::types::{JobParameters, StatusCode};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the caller keeps between warm-ups (and passes to `get`): the job and what it retrieves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Ticket {
    pub(super) job: String,
    /// An inventory job (for `list`) rather than an archive retrieval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) inventory: bool,
    /// First archive byte the job retrieves.
    #[serde(default)]
    pub(super) start: u64,
    /// End (exclusive) of the retrieved range; none: to the archive's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) end: Option<u64>,
    /// The archive's size, once Glacier told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) size: Option<u64>,
    /// The retrieved range is tree-hash aligned (Glacier sends checksums for aligned downloads).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) aligned: bool,
}

impl Ticket {
    pub(super) fn encode(&self) -> String {
        serde_json::to_string(self).expect("tickets serialize")
    }

    pub(super) fn decode(text: &str) -> Option<Ticket> {
        serde_json::from_str(text).ok()
    }

    /// The archive-absolute end of the job output, when known.
    pub(super) fn output_end(&self) -> Option<u64> {
        self.end.or(self.size)
    }

    /// Whether the job's output holds `want` (none: the whole archive).
    pub(super) fn covers(&self, want: Option<ByteRange>) -> bool {
        match want {
            None => self.start == 0 && (self.end.is_none() || self.end == self.size),
            Some(r) => self.start <= r.start && self.end.is_none_or(|e| r.end <= e),
        }
    }
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Bulk => "Bulk",
        Tier::Standard => "Standard",
        Tier::Expedited => "Expedited",
    }
}

/// The longest a retrieval of this tier usually takes.
fn tier_duration(tier: Tier) -> Duration {
    match tier {
        Tier::Expedited => Duration::from_secs(5 * 60),
        Tier::Standard => Duration::from_secs(5 * 3600),
        Tier::Bulk => Duration::from_secs(12 * 3600),
    }
}

/// Expected remaining wait of a job started at `created` (ISO 8601) that takes up to `total`.
pub(super) fn remaining(total: Duration, created: Option<&str>) -> Duration {
    let elapsed = created
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|c| chrono::Utc::now().signed_duration_since(c))
        .and_then(|d| d.to_std().ok())
        .unwrap_or_default();
    total
        .saturating_sub(elapsed)
        .max(Duration::from_secs(60).min(total))
}

impl GlacierBackend {
    fn initiate_retrieval(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
    ) -> Result<WarmState> {
        let candidates = match range {
            Some(r) => retrieval_candidates(r),
            None => vec![None],
        };
        let last = candidates.len() - 1;
        for (i, candidate) in candidates.into_iter().enumerate() {
            let mut params = JobParameters::builder()
                .r#type("archive-retrieval")
                .archive_id(id)
                .tier(tier_name(tier));
            if let Some((s, e)) = candidate {
                params = params.retrieval_byte_range(format!("{s}-{}", e - 1));
            }
            let result = self.call(
                self.client
                    .initiate_job()
                    .vault_name(&*self.ctx.vault)
                    .job_parameters(params.build())
                    .send(),
            );
            match result {
                Ok(out) => {
                    let ticket = Ticket {
                        job: self.job_id(&out)?,
                        inventory: false,
                        start: candidate.map_or(0, |c| c.0),
                        end: candidate.map(|c| c.1),
                        size: None,
                        aligned: false,
                    };
                    return Ok(WarmState::Pending {
                        ticket: ticket.encode(),
                        eta: tier_duration(tier),
                    });
                }
                Err(e)
                    if i < last
                        && e.code() == Some("InvalidParameterValueException")
                        && candidate.is_some() =>
                {
                    log::debug(&format!(
                        "glacier: range {candidate:?} of {} refused ({}), trying the next",
                        short(id),
                        e.message().unwrap_or_default()
                    ));
                }
                Err(e) => {
                    return Err(self.ctx.map(
                        &format!("requesting the retrieval of archive {}", short(id)),
                        e,
                    ));
                }
            }
        }
        unreachable!("the last candidate either succeeds or returns its error")
    }

    /// The id of the job InitiateJob started.
    pub(super) fn job_id(&self, out: &InitiateJobOutput) -> Result<String> {
        match out.job_id() {
            Some(job) if !job.is_empty() => Ok(job.to_string()),
            _ => Err(self.err(
                BackendErrorKind::Permanent,
                "InitiateJob answered without a job id",
            )),
        }
    }

    /// DescribeJob; `Ok(None)` when Glacier does not know the job (expired or never existed).
    pub(super) fn describe_job(
        &self,
        job: &str,
    ) -> Result<Option<aws_sdk_glacier::operation::describe_job::DescribeJobOutput>> {
        match self.call(
            self.client
                .describe_job()
                .vault_name(&*self.ctx.vault)
                .job_id(job)
                .send(),
        ) {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                let e = self.ctx.map("checking a retrieval job", e);
                if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    pub(super) fn warm_up_archive(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        if range.is_some_and(|r| r.is_empty()) {
            return Ok(WarmState::Ready { ticket: None });
        }
        let Some(text) = ticket else {
            return self.initiate_retrieval(id, range, tier);
        };
        let tk = match Ticket::decode(text) {
            Some(tk) if !tk.inventory && tk.covers(range) => tk,
            _ => {
                log::warn(&format!(
                    "the retrieval ticket of archive {} does not fit this request; requesting the retrieval again",
                    short(id)
                ));
                return self.initiate_retrieval(id, range, tier);
            }
        };
        let Some(job) = self.describe_job(&tk.job)? else {
            log::warn(&format!(
                "Glacier no longer knows the retrieval job of archive {} (job outputs last 24 hours); requested the retrieval again",
                short(id)
            ));
            return self.initiate_retrieval(id, range, tier);
        };
        if job.archive_id().is_some_and(|a| a != id) {
            log::warn(&format!(
                "the retrieval ticket given for archive {} belongs to another archive; requesting the retrieval again",
                short(id)
            ));
            return self.initiate_retrieval(id, range, tier);
        }
        let job_tier = job.tier().and_then(Tier::parse).unwrap_or(tier);
        match job.status_code() {
            Some(StatusCode::Succeeded) => {
                let mut tk = tk;
                if let Some(size) = job.archive_size_in_bytes().filter(|s| *s > 0) {
                    tk.size = Some(size as u64);
                }
                tk.aligned = job.sha256_tree_hash().is_some_and(|h| !h.is_empty());
                Ok(WarmState::Ready {
                    ticket: Some(tk.encode()),
                })
            }
            Some(StatusCode::Failed) => Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "the retrieval job of archive {} failed: {}",
                    short(id),
                    job.status_message().unwrap_or("no reason given")
                ),
            )),
            _ => Ok(WarmState::Pending {
                ticket: text.to_string(),
                eta: remaining(tier_duration(job_tier), job.creation_date()),
            }),
        }
    }
}
