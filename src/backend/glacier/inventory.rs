//! Listing a vault: an inventory job, checked on like a retrieval, whose JSON output lists the
//! archives (kind, tree hash and time only for those glaciersync wrote).

use super::description::parse_description;
use super::errors::not_found_as;
use super::retrieval::{Ticket, remaining};
use super::{BACKEND, GlacierBackend};
use crate::backend::{ListOutcome, ObjectInfo};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::Hash32;
use crate::log;
use aws_sdk_glacier::types::{JobParameters, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// Inventories take about as long as a standard retrieval.
const INVENTORY_DURATION: Duration = Duration::from_secs(5 * 3600);

/// Inventory job output (JSON).
#[derive(Deserialize)]
struct Inventory {
    #[serde(rename = "ArchiveList", default)]
    archive_list: Vec<InventoryArchive>,
}

#[derive(Deserialize)]
struct InventoryArchive {
    #[serde(rename = "ArchiveId")]
    archive_id: String,
    #[serde(rename = "ArchiveDescription", default)]
    archive_description: Option<String>,
    #[serde(rename = "Size", default)]
    size: u64,
    #[serde(rename = "SHA256TreeHash", default)]
    tree_hash: Option<String>,
}

/// Parses an inventory into object infos (kind, tree hash and time only for our archives).
pub(super) fn parse_inventory(body: &[u8]) -> Result<Vec<ObjectInfo>> {
    let inv: Inventory = serde_json::from_slice(body).map_err(|e| {
        Error::backend(
            BACKEND,
            BackendErrorKind::Permanent,
            format!("cannot read the vault inventory: {e}"),
        )
    })?;
    let mut out: Vec<ObjectInfo> = inv
        .archive_list
        .into_iter()
        .map(|a| {
            let ours = a.archive_description.as_deref().and_then(parse_description);
            ObjectInfo {
                id: a.archive_id,
                size: a.size,
                kind: ours.as_ref().map(|d| d.kind),
                tree_hash: ours.as_ref().map(|d| d.tree_hash),
                age_header: ours.as_ref().and_then(|d| d.age_header),
                created: ours.as_ref().and_then(|d| d.time),
                profile: ours.as_ref().map(|d| d.profile.clone()),
                listed_tree_hash: a.tree_hash.as_deref().and_then(Hash32::from_hex),
                description: a.archive_description,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

impl GlacierBackend {
    fn initiate_inventory(&self) -> Result<ListOutcome> {
        let out = self
            .call(
                self.client
                    .initiate_job()
                    .vault_name(&*self.ctx.vault)
                    .job_parameters(
                        JobParameters::builder()
                            .r#type("inventory-retrieval")
                            .format("JSON")
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| {
                not_found_as(
                    self.ctx.map("requesting the vault inventory", e),
                    BackendErrorKind::NotFound,
                    " (Glacier makes a vault's first inventory about a day after its first upload)",
                )
            })?;
        let ticket = Ticket {
            job: self.job_id(&out)?,
            inventory: true,
            start: 0,
            end: None,
            size: None,
            aligned: false,
        };
        Ok(ListOutcome::Pending {
            ticket: ticket.encode(),
            eta: Some(INVENTORY_DURATION),
        })
    }

    /// The inventory of the job `ticket` names, if it has succeeded; `None` with no ticket, a
    /// ticket that does not fit, a job Glacier no longer knows or one still running. Starts
    /// nothing.
    pub(super) fn finished_inventory(
        &self,
        ticket: Option<&str>,
    ) -> Result<Option<Vec<ObjectInfo>>> {
        let Some(tk) = ticket.and_then(Ticket::decode).filter(|t| t.inventory) else {
            return Ok(None);
        };
        let Some(job) = self.describe_job(&tk.job)? else {
            return Ok(None);
        };
        match job.status_code() {
            Some(StatusCode::Succeeded) => {
                let body = self.fetch_all("inventory", &tk)?;
                Ok(Some(parse_inventory(&body)?))
            }
            _ => Ok(None),
        }
    }

    pub(super) fn list_archives(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        let Some(text) = ticket else {
            return self.initiate_inventory();
        };
        let Some(tk) = Ticket::decode(text).filter(|t| t.inventory) else {
            log::warn("the inventory ticket does not fit; requesting the vault inventory again");
            return self.initiate_inventory();
        };
        let Some(job) = self.describe_job(&tk.job)? else {
            log::warn(&format!(
                "Glacier no longer knows the inventory job of vault {} (job outputs last 24 hours); requested the inventory again",
                self.ctx.vault
            ));
            return self.initiate_inventory();
        };
        match job.status_code() {
            Some(StatusCode::Succeeded) => {
                let body = self.fetch_all("inventory", &tk)?;
                Ok(ListOutcome::Ready(parse_inventory(&body)?))
            }
            Some(StatusCode::Failed) => Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "the inventory job of vault {} failed: {}",
                    self.ctx.vault,
                    job.status_message().unwrap_or("no reason given")
                ),
            )),
            _ => Ok(ListOutcome::Pending {
                ticket: text.to_string(),
                eta: Some(remaining(INVENTORY_DURATION, job.creation_date())),
            }),
        }
    }
}
