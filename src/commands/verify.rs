//! `verify`: the catalog's own integrity; `--local` re-hashes files on disk against it;
//! `--remote` compares the backend's listing (or Glacier inventory) with it.

use crate::backend::ListOutcome;
use crate::catalog::{Catalog, EntryKind};
use crate::error::Result;
use crate::hash::tree_hash_reader;
use crate::settings::Profile;
use serde::Serialize;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    pub local: bool,
    pub remote: bool,
}

/// What `verify` found. `problems` make the exit code 1.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub name: String,
    pub catalog_ok: bool,
    pub checked_files: u64,
    pub checked_archives: u64,
    /// Files changed on disk since the last sync (not a fault of the backup).
    pub changed_since_sync: Vec<String>,
    pub problems: Vec<String>,
    /// The remote listing is a job still running (Glacier inventory): run again later.
    pub pending: bool,
}

pub fn verify(p: &Profile, opts: VerifyOptions) -> Result<VerifyReport> {
    let mut catalog = Catalog::open_existing(&p.catalog_path(), &p.name)?;
    let mut report = VerifyReport {
        name: p.name.clone(),
        ..Default::default()
    };
    let problems = catalog.check()?;
    report.catalog_ok = problems.is_empty();
    report
        .problems
        .extend(problems.into_iter().map(|m| format!("catalog: {m}")));
    if opts.local {
        verify_local(p, &catalog, &mut report)?;
    }
    if opts.remote {
        verify_remote(p, &mut catalog, &mut report)?;
    }
    Ok(report)
}

fn verify_local(p: &Profile, catalog: &Catalog, report: &mut VerifyReport) -> Result<()> {
    let Some(snap) = catalog.snapshot_at(None)? else {
        return Ok(());
    };
    let roots: HashMap<&str, &std::path::Path> = p
        .trees
        .iter()
        .map(|t| (t.key.as_str(), t.root.as_path()))
        .collect();
    for v in catalog.versions_at(snap.id)? {
        if v.rec.kind != EntryKind::File {
            continue;
        }
        let Some(root) = roots.get(v.rec.tree.as_str()) else {
            continue;
        };
        let path = root.join(std::ffi::OsStr::from_bytes(&v.rec.path));
        let shown = v.rec.display_path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                report.changed_since_sync.push(format!("{shown}: gone"));
                continue;
            }
        };
        if meta.len() != v.rec.size || crate::scan::mtime_ns(&meta) != v.rec.mtime_ns {
            report.changed_since_sync.push(format!("{shown}: changed"));
            continue;
        }
        report.checked_files += 1;
        let hash =
            std::fs::File::open(&path).and_then(|f| tree_hash_reader(std::io::BufReader::new(f)));
        match hash {
            Ok((h, _)) if Some(h) == v.rec.hash => {}
            Ok((h, _)) => report.problems.push(format!(
                "{shown}: content differs from the backup with the same size and mtime (expected {}, found {h}): the file may be damaged",
                v.rec.hash.map(|h| h.to_hex()).unwrap_or_default()
            )),
            Err(e) => report
                .problems
                .push(format!("{shown}: {}", crate::error::io_message(&e))),
        }
    }
    Ok(())
}

fn verify_remote(p: &Profile, catalog: &mut Catalog, report: &mut VerifyReport) -> Result<()> {
    let backend = super::open_backend(p)?;
    let ticket = catalog.meta("inventory_ticket")?;
    let listed = match backend.list(ticket.as_deref())? {
        ListOutcome::Pending { ticket, eta } => {
            catalog.set_meta("inventory_ticket", &ticket)?;
            report.pending = true;
            crate::log::info(&format!(
                "{}: the backend's inventory is being prepared; run `verify --remote` again in about {}",
                p.name,
                crate::restore::human_duration(eta.map_or(5 * 3600, |d| d.as_secs()))
            ));
            return Ok(());
        }
        ListOutcome::Ready(items) => items,
    };
    if ticket.is_some() {
        catalog.set_meta("inventory_ticket", "")?;
    }
    let by_id: HashMap<&str, u64> = listed.iter().map(|o| (o.id.as_str(), o.size)).collect();
    let archives = catalog.archives()?;
    for a in &archives {
        report.checked_archives += 1;
        match by_id.get(a.remote_id.as_str()) {
            None => report.problems.push(format!(
                "archive {} ({}, {} bytes) is missing from the backend",
                a.remote_id,
                a.kind.as_str(),
                a.size
            )),
            Some(&size) if size != a.size => report.problems.push(format!(
                "archive {} has {size} bytes in the backend, {} in the catalog",
                a.remote_id, a.size
            )),
            Some(_) => {}
        }
    }
    let known: std::collections::HashSet<&str> =
        archives.iter().map(|a| a.remote_id.as_str()).collect();
    for o in &listed {
        if !known.contains(o.id.as_str()) {
            report.problems.push(format!(
                "object {} ({} bytes) is stored but unknown to the catalog (left by an interrupted sync?)",
                o.id, o.size
            ));
        }
    }
    Ok(())
}
