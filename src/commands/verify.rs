//! `verify`: the catalog's own integrity; `--local` re-hashes files on disk against it;
//! `--remote` compares the backend's listing (or Glacier inventory) with it.

use crate::backend::{ListOutcome, ObjectInfo};
use crate::catalog::{ArchiveKind, Catalog, EntryKind};
use crate::error::Result;
use crate::hash::tree_hash_reader;
use crate::legacy::is_legacy_description;
use crate::report::{Exit, Report};
use crate::settings::Profile;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::{self, Display};
use std::os::unix::ffi::OsStrExt;

/// The catalog key of the Glacier inventory job `verify --remote` waits for. Absent when there
/// is none; earlier versions left an empty value instead, read as none too.
const INVENTORY_TICKET: &str = "inventory_ticket";

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
    /// Archives of the 2013 script in the vault that no database the catalog imported
    /// describes (a run that crashed before uploading its database): kept, never pruned.
    pub legacy_undescribed: Vec<String>,
    /// The remote listing is a job still running (Glacier inventory): run again later.
    pub pending: bool,
}

impl Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: catalog {}, {} files re-hashed, {} archives compared, {} changed since the last sync, {} problems",
            self.name,
            if self.catalog_ok { "ok" } else { "DAMAGED" },
            self.checked_files,
            self.checked_archives,
            self.changed_since_sync.len(),
            self.problems.len()
        )?;
        if !self.legacy_undescribed.is_empty() {
            write!(
                f,
                ", {} archives of the 2013 script that no database describes (kept)",
                self.legacy_undescribed.len()
            )?;
        }
        Ok(())
    }
}

impl Report for VerifyReport {
    /// Problems first (1), then a listing still being prepared (75).
    fn exit_code(&self) -> Exit {
        if !self.problems.is_empty() {
            Exit::Partial
        } else if self.pending {
            Exit::Pending
        } else {
            Exit::Ok
        }
    }
}

/// Checks the profile's catalog (and its files or backend); logs what changed (`-v`) and
/// every problem found.
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
    for c in &report.changed_since_sync {
        crate::log::verbose(&format!("{}: {c}", report.name));
    }
    for prob in &report.problems {
        crate::log::error(&format!("{}: {prob}", report.name));
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

/// The inventory job to wait for, if any.
fn inventory_ticket(catalog: &Catalog) -> Result<Option<String>> {
    Ok(catalog.meta(INVENTORY_TICKET)?.filter(|t| !t.is_empty()))
}

fn verify_remote(p: &Profile, catalog: &mut Catalog, report: &mut VerifyReport) -> Result<()> {
    let backend = super::open_backend(p)?;
    let ticket = inventory_ticket(catalog)?;
    let listed = match backend.list(ticket.as_deref())? {
        ListOutcome::Pending { ticket, eta } => {
            catalog.set_meta(INVENTORY_TICKET, &ticket)?;
            report.pending = true;
            crate::log::info(&format!(
                "{}: the backend's inventory is being prepared; run `verify --remote` again in about {}",
                p.name,
                crate::units::duration(eta.map_or(5 * 3600, |d| d.as_secs()))
            ));
            return Ok(());
        }
        ListOutcome::Ready(items) => items,
    };
    if catalog.meta(INVENTORY_TICKET)?.is_some() {
        catalog.delete_meta(INVENTORY_TICKET)?;
    }
    let by_id: HashMap<&str, u64> = listed.iter().map(|o| (o.id.as_str(), o.size)).collect();
    learn_legacy_sizes(catalog, &listed)?;
    let archives = catalog.archives()?;
    check_archives(p, catalog, &archives, &by_id, report)?;
    let known: std::collections::HashSet<&str> =
        archives.iter().map(|a| a.remote_id.as_str()).collect();
    // Taken out of the catalog by prune: being deleted, or deleted and still in an inventory.
    let pruned = catalog.pruned_ids()?;
    // A catalog copy stored by a sync or prune that was stopped before recording it.
    let backup_unrecorded = catalog.meta("catalog_backup_pending")?.as_deref() == Some("1");
    for o in &listed {
        let unrecorded_copy =
            backup_unrecorded && o.kind == Some(crate::backend::ObjectKind::Catalog);
        if known.contains(o.id.as_str()) || pruned.contains(&o.id) || unrecorded_copy {
            continue;
        }
        if let Some(d) = o
            .description
            .as_deref()
            .filter(|d| is_legacy_description(d))
        {
            legacy_unknown(p, o, d, report);
        } else {
            report.problems.push(format!(
                "object {} ({} bytes) is stored but unknown to the catalog (left by an interrupted sync?)",
                o.id, o.size
            ));
        }
    }
    Ok(())
}

/// Checks each archive of the catalog against the listing (`by_id`: id and size). A data
/// archive missing or of another size where listings are current is marked lost (the next sync
/// stores its contents again); a lost catalog copy owes a full one.
fn check_archives(
    p: &Profile,
    catalog: &mut Catalog,
    archives: &[crate::catalog::ArchiveRow],
    by_id: &HashMap<&str, u64>,
    report: &mut VerifyReport,
) -> Result<()> {
    let unneeded = catalog.legacy_unneeded()?;
    let mut catalog_copy_lost = false;
    let mut data_lost = false;
    // A vault's inventory is a day old: an archive stored since is missing from it, not lost.
    let listing_is_current = !matches!(p.backend, crate::settings::BackendSettings::Glacier { .. });
    for a in archives {
        report.checked_archives += 1;
        let data = matches!(a.kind, ArchiveKind::File | ArchiveKind::Bundle);
        if data
            && !unneeded.contains(&a.id)
            && !by_id.contains_key(a.remote_id.as_str())
            && catalog.archive_contents(a.id)? == 0
        {
            // Found missing before, and all it held is stored again elsewhere: nothing lost
            // (prune takes it out of the catalog).
            continue;
        }
        let mut problem = match by_id.get(a.remote_id.as_str()) {
            // Kept for the record of what the script stored: its loss loses no file.
            None if unneeded.contains(&a.id) => {
                crate::log::verbose(&format!(
                    "{}: archive {} of the 2013 script, which no file needs now, is not in the backend",
                    p.name, a.remote_id
                ));
                continue;
            }
            None => format!(
                "archive {} ({}, {} bytes) is missing from the backend",
                a.remote_id,
                a.kind.as_str(),
                a.size
            ),
            Some(&size) if size != a.size => format!(
                "archive {} has {size} bytes in the backend, {} in the catalog",
                a.remote_id, a.size
            ),
            Some(_) => continue,
        };
        if listing_is_current && data {
            let now = chrono::Utc::now().timestamp();
            let n = catalog.mark_archive_lost(a.id, &problem, now)?;
            if n > 0 {
                data_lost = true;
                problem.push_str(&format!(
                    "; the next sync stores its {n} content(s) again from the files that \
                     still hold them"
                ));
            }
        }
        report.problems.push(problem);
        catalog_copy_lost |= matches!(a.kind, ArchiveKind::Catalog | ArchiveKind::CatalogDelta);
    }
    if catalog_copy_lost || data_lost {
        // Deltas carry no deletions: only a full copy forgets the lost contents too.
        owe_full_catalog_copy(p, catalog, catalog_copy_lost)?;
    }
    Ok(())
}

/// Legacy archives whose size and tree hash the catalog only estimated get the vault's.
fn learn_legacy_sizes(catalog: &mut Catalog, listed: &[ObjectInfo]) -> Result<()> {
    let unlisted = catalog.legacy_unlisted()?;
    if unlisted.is_empty() {
        return Ok(());
    }
    let by_id: HashMap<&str, &ObjectInfo> = listed.iter().map(|o| (o.id.as_str(), o)).collect();
    for a in catalog.archives()? {
        if let (true, Some(o)) = (unlisted.contains(&a.id), by_id.get(a.remote_id.as_str()))
            && let Some(h) = o.listed_tree_hash
        {
            catalog.legacy_learn(&a, o.size, h)?;
        }
    }
    Ok(())
}

/// An archive the 2013 script wrote that the catalog does not know: its databases are not
/// data; any other is listed (a run that crashed before its database upload left it).
fn legacy_unknown(p: &Profile, o: &ObjectInfo, description: &str, report: &mut VerifyReport) {
    if description.starts_with(crate::legacy::DB_DESCRIPTION_PREFIX) {
        crate::log::verbose(&format!(
            "{}: archive {} is a database of the 2013 script ({description})",
            p.name, o.id
        ));
        return;
    }
    let line = format!(
        "archive {} ({} bytes, SHA-1 {description}) was stored by the 2013 script but no database the catalog imported describes it (a run that crashed before uploading its database?); it is kept",
        o.id, o.size
    );
    crate::log::warn(&format!("{}: {line}", p.name));
    report.legacy_undescribed.push(line);
}

/// A catalog copy or delta the backend lost (`copy_lost`; later deltas would build on it) or
/// contents taken out as lost: the next sync stores a full copy (no base), and says so now.
fn owe_full_catalog_copy(p: &Profile, catalog: &mut Catalog, copy_lost: bool) -> Result<()> {
    use crate::sync::{BACKUP_BASE, BACKUP_PENDING};
    catalog.delete_meta(BACKUP_BASE)?;
    catalog.set_meta(BACKUP_PENDING, "1")?;
    if !copy_lost {
        return Ok(());
    }
    crate::log::warn(&format!(
        "{}: a catalog copy in the backend is missing or damaged: the next sync stores a full copy",
        p.name
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::AnyReport;

    #[test]
    fn the_inventory_ticket_is_absent_or_a_job() {
        let mut c = Catalog::open_in_memory().unwrap();
        assert_eq!(inventory_ticket(&c).unwrap(), None);
        c.set_meta(INVENTORY_TICKET, "job-1").unwrap();
        assert_eq!(inventory_ticket(&c).unwrap().as_deref(), Some("job-1"));
        c.delete_meta(INVENTORY_TICKET).unwrap();
        assert_eq!(c.meta(INVENTORY_TICKET).unwrap(), None);
        assert_eq!(inventory_ticket(&c).unwrap(), None);
        // What earlier versions left behind when the job was done.
        c.set_meta(INVENTORY_TICKET, "").unwrap();
        assert_eq!(inventory_ticket(&c).unwrap(), None);
    }

    #[test]
    fn problems_exit_1_before_a_pending_listing_exits_75() {
        let mut r = VerifyReport {
            name: "docs".into(),
            catalog_ok: true,
            checked_files: 3,
            checked_archives: 2,
            changed_since_sync: vec!["path/a.txt: changed".into()],
            ..Default::default()
        };
        assert_eq!(
            r.to_string(),
            "docs: catalog ok, 3 files re-hashed, 2 archives compared, 1 changed since the last sync, 0 problems"
        );
        assert_eq!(r.exit(), Exit::Ok);
        r.pending = true;
        assert_eq!(r.exit(), Exit::Pending);
        r.catalog_ok = false;
        r.problems.push("catalog: damaged".into());
        assert_eq!(r.exit(), Exit::Partial);
        assert!(r.to_string().contains("catalog DAMAGED"), "{r}");
        assert_eq!(r.json()["problems"][0], "catalog: damaged");
    }
}
