//! `recover`: rebuild a lost local catalog from the backend alone. Lists the backend (for
//! Glacier: an inventory job), picks the newest catalog copy, retrieves it (a thaw where
//! needed), verifies its hash and integrity, and puts it in place. Progress across runs is
//! kept in `<database_dir>/<profile>.recover.json`, since there is no catalog to keep it in.

use crate::backend::{ListOutcome, ObjectKind, Tier, WarmState};
use crate::catalog::{ArchiveKind, Catalog, NewArchive};
use crate::error::{Error, Result};
use crate::hash::tree_hash_reader;
use crate::settings::Profile;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `recover` did for one profile.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverReport {
    pub name: String,
    pub backend: String,
    /// `recovered` or `pending`.
    pub state: String,
    pub catalog_object: Option<String>,
    pub catalog_time: Option<String>,
    pub snapshots: u64,
    pub files: u64,
    pub eta_seconds: Option<u64>,
}

impl RecoverReport {
    pub fn exit_code(&self) -> u8 {
        if self.state == "pending" { 75 } else { 0 }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    list_ticket: Option<String>,
    catalog_id: Option<String>,
    catalog_hash: Option<String>,
    catalog_time: Option<i64>,
    warm_ticket: Option<String>,
}

fn state_path(p: &Profile) -> PathBuf {
    p.database_dir.join(format!("{}.recover.json", p.name))
}

fn save(p: &Profile, s: &State) -> Result<()> {
    let path = state_path(p);
    let text = serde_json::to_string_pretty(s).expect("state serializes");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

pub fn recover(p: &Profile, tier: Tier) -> Result<RecoverReport> {
    let _lock = super::lock(p)?;
    let dest = p.catalog_path();
    if dest.exists() {
        return Err(Error::Usage(format!(
            "{}: a catalog already exists at {}: move it away first if you want to replace it with the backend's copy",
            p.name,
            dest.display()
        )));
    }
    let backend = super::open_backend(p)?;
    let mut report = RecoverReport {
        name: p.name.clone(),
        backend: backend.name().to_string(),
        ..Default::default()
    };
    let sp = state_path(p);
    let mut state: State = match std::fs::read_to_string(&sp) {
        Ok(t) => serde_json::from_str(&t).unwrap_or_default(),
        Err(_) => State::default(),
    };
    let pending = |report: &mut RecoverReport, eta: Option<std::time::Duration>, what: &str| {
        let secs = eta.map_or(5 * 3600, |d| d.as_secs());
        crate::log::info(&format!(
            "{}: {what}; run `glaciersync recover` again in about {}",
            p.name,
            crate::restore::human_duration(secs)
        ));
        report.state = "pending".into();
        report.eta_seconds = Some(secs);
    };
    if state.catalog_id.is_none() {
        match backend.list(state.list_ticket.as_deref())? {
            ListOutcome::Pending { ticket, eta } => {
                state.list_ticket = Some(ticket);
                save(p, &state)?;
                pending(
                    &mut report,
                    eta,
                    "the backend's inventory is being prepared",
                );
                return Ok(report);
            }
            ListOutcome::Ready(items) => {
                let newest = items
                    .into_iter()
                    .filter(|o| o.kind == Some(ObjectKind::Catalog))
                    .max_by_key(|o| (o.created.unwrap_or(0), o.id.clone()))
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "{}: no catalog copy found in {}: nothing to recover from",
                            p.name,
                            backend.describe()
                        ))
                    })?;
                state.catalog_id = Some(newest.id);
                state.catalog_hash = newest.tree_hash.map(|h| h.to_hex());
                state.catalog_time = newest.created;
                state.list_ticket = None;
                save(p, &state)?;
            }
        }
    }
    let id = state.catalog_id.clone().expect("set above");
    report.catalog_object = Some(id.clone());
    report.catalog_time = state.catalog_time.map(crate::timespec::format);
    let ticket = match backend.warm_up(&id, None, tier, state.warm_ticket.as_deref())? {
        WarmState::Pending { ticket, eta } => {
            state.warm_ticket = Some(ticket);
            save(p, &state)?;
            let eta = Some(eta);
            pending(&mut report, eta, "the catalog copy is being retrieved");
            return Ok(report);
        }
        WarmState::Ready { ticket } => ticket,
    };
    std::fs::create_dir_all(&p.database_dir).map_err(|e| Error::io(&p.database_dir, e))?;
    let tmp = p.database_dir.join(format!("{}.recovering", p.name));
    let result = (|| -> Result<Catalog> {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let size = backend.get(&id, None, ticket.as_deref(), &mut f)?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        let f = std::fs::File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let (hash, _) =
            tree_hash_reader(std::io::BufReader::new(f)).map_err(|e| Error::io(&tmp, e))?;
        if let Some(expected) = &state.catalog_hash
            && &hash.to_hex() != expected
        {
            return Err(Error::Integrity(format!(
                "{}: the downloaded catalog copy {id} does not match its hash: run `recover` again",
                p.name
            )));
        }
        let mut cat = Catalog::open(&tmp)?;
        let problems = cat.check()?;
        if !problems.is_empty() {
            return Err(Error::Integrity(format!(
                "{}: the catalog copy {id} is damaged: {}",
                p.name,
                problems.join("; ")
            )));
        }
        // The copy cannot list itself: record it, so `verify --remote` knows it.
        cat.record_archive(&NewArchive {
            remote_id: id.clone(),
            kind: ArchiveKind::Catalog,
            size,
            tree_hash: hash,
            backend: backend.name().to_string(),
            stored_at: state
                .catalog_time
                .unwrap_or_else(|| chrono::Utc::now().timestamp()),
        })?;
        Ok(cat)
    })();
    let cat = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // Start over next time (list again, pick again).
            let _ = std::fs::remove_file(&sp);
            return Err(e);
        }
    };
    let stats = cat.stats()?;
    report.snapshots = cat.snapshots()?.len() as u64;
    report.files = stats.files;
    drop(cat);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
    }
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    let _ = std::fs::remove_file(&sp);
    report.state = "recovered".into();
    Ok(report)
}
