//! Warm-ups of archived objects: `RestoreObject`, the restore state read back from
//! `x-amz-restore` (so a restore is never requested twice while one is live), and tickets that
//! remember when a restore was asked for, for ETAs.

use super::S3Backend;
use crate::backend::{Tier, WarmState};
use crate::error::{BackendErrorKind, Result};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest};
use std::time::Duration;

impl S3Backend {
    pub(super) async fn warm_up_async(
        &self,
        id: &str,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        let key = self.key(id)?;
        let head = self.head_existing(&key).await?;
        let class = head
            .storage_class()
            .map(|c| c.as_str())
            .unwrap_or("STANDARD")
            .to_string();
        if !is_archive_class(&class) {
            return Ok(WarmState::Ready { ticket: None });
        }
        match restore_state(head.restore()) {
            RestoreState::Done => return Ok(WarmState::Ready { ticket: None }),
            RestoreState::Ongoing => {
                let ticket = ticket
                    .filter(|t| parse_ticket(t).is_some())
                    .map(str::to_string)
                    .unwrap_or_else(|| new_ticket(tier));
                return Ok(WarmState::Pending {
                    eta: pending_eta(&ticket, &class),
                    ticket,
                });
            }
            RestoreState::None => {}
        }
        // Not restored and no restore running: never asked, or the restored copy expired.
        if class == "DEEP_ARCHIVE" && tier == Tier::Expedited {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "{} is in DEEP_ARCHIVE, which has no Expedited retrieval: use the standard \
                     (up to 12 hours) or bulk (up to 48 hours) tier",
                    self.url(&key)
                ),
            ));
        }
        let job = GlacierJobParameters::builder()
            .tier(match tier {
                Tier::Bulk => aws_sdk_s3::types::Tier::Bulk,
                Tier::Standard => aws_sdk_s3::types::Tier::Standard,
                Tier::Expedited => aws_sdk_s3::types::Tier::Expedited,
            })
            .build()
            .map_err(|e| self.err(BackendErrorKind::Permanent, e.to_string()))?;
        self.count(|s| s.restore_object += 1);
        let answer = {
            let _slot = self.limiter.acquire().await;
            self.client
                .restore_object()
                .bucket(&self.bucket)
                .key(&key)
                .restore_request(
                    RestoreRequest::builder()
                        .days(self.restore_days)
                        .glacier_job_parameters(job)
                        .build(),
                )
                .send()
                .await
        };
        if let Err(e) = answer {
            match e.code() {
                // Someone else asked first: it is on its way.
                Some("RestoreAlreadyInProgress") => {}
                // Not archived after all (moved by a lifecycle rule, say).
                Some("ObjectAlreadyInActiveTierError") => {
                    return Ok(WarmState::Ready { ticket: None });
                }
                _ => return Err(self.sdk_err("requesting a restore of", &key, e)),
            }
        }
        let ticket = new_ticket(tier);
        Ok(WarmState::Pending {
            eta: pending_eta(&ticket, &class),
            ticket,
        })
    }
}

pub(super) fn is_archive_class(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum RestoreState {
    /// No restore requested, or the restored copy expired.
    None,
    Ongoing,
    /// A restored copy is readable.
    Done,
}

/// Reads `x-amz-restore`: `ongoing-request="true"`, or `ongoing-request="false",
/// expiry-date="…"`.
pub(super) fn restore_state(header: Option<&str>) -> RestoreState {
    let Some(h) = header else {
        return RestoreState::None;
    };
    let h = h.to_ascii_lowercase().replace(' ', "");
    if h.contains("ongoing-request=\"true\"") {
        RestoreState::Ongoing
    } else if h.contains("ongoing-request=\"false\"") {
        RestoreState::Done
    } else {
        RestoreState::None
    }
}

/// How long a restore takes at most (AWS's documented typical times).
pub(super) fn restore_time(class: &str, tier: Tier) -> Duration {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let deep = class == "DEEP_ARCHIVE";
    match tier {
        Tier::Expedited => Duration::from_secs(5 * 60),
        Tier::Standard if deep => hours(12),
        Tier::Standard => hours(5),
        Tier::Bulk if deep => hours(48),
        Tier::Bulk => hours(12),
    }
}

pub(super) fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A ticket remembers the tier and when the restore was asked for: `s3-restore:<tier>:<time>`.
pub(super) fn new_ticket(tier: Tier) -> String {
    format!("s3-restore:{}:{}", tier.as_str(), now_unix())
}

pub(super) fn parse_ticket(ticket: &str) -> Option<(Tier, i64)> {
    let rest = ticket.strip_prefix("s3-restore:")?;
    let (tier, time) = rest.split_once(':')?;
    Some((Tier::parse(tier)?, time.parse().ok()?))
}

/// The expected wait of a pending restore: what is left of its tier's time, at least a minute
/// once that time has passed (as Glacier's backend estimates an overdue job).
fn pending_eta(ticket: &str, class: &str) -> Duration {
    ticket_eta(ticket, class).unwrap_or(Duration::from_secs(60))
}

pub(super) fn ticket_eta(ticket: &str, class: &str) -> Option<Duration> {
    let (tier, asked) = parse_ticket(ticket)?;
    let elapsed = Duration::from_secs((now_unix() - asked).max(0) as u64);
    restore_time(class, tier)
        .checked_sub(elapsed)
        .filter(|d| !d.is_zero())
}
