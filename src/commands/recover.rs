//! `recover`: rebuild a lost local catalog from the backend alone. Lists the backend (for
//! Glacier: an inventory job), picks the newest catalog copy, retrieves it (a thaw where
//! needed), verifies its hash and integrity, and puts it in place. Progress across runs is
//! kept in `<database_dir>/<profile>.recover.json`, since there is no catalog to keep it in.

use crate::backend::{Backend, ByteRange, ListOutcome, ObjectKind, Tier, WarmState};
use crate::catalog::{ArchiveKind, Catalog, NewArchive};
use crate::error::{Error, Result};
use crate::hash::tree_hash_reader;
use crate::report::{Exit, Report};
use crate::settings::Profile;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Display};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `recover` did for one profile.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverReport {
    pub name: String,
    pub backend: String,
    pub state: RecoverState,
    pub catalog_object: Option<String>,
    pub catalog_time: Option<String>,
    pub snapshots: u64,
    pub files: u64,
    pub eta_seconds: Option<u64>,
}

/// Where a `recover` stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecoverState {
    /// The listing or the catalog copy is still being retrieved: run again later.
    #[default]
    Pending,
    /// The catalog is back in place.
    Recovered,
}

/// Empty while pending: `recover` has already said what it waits for.
impl Display for RecoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state {
            RecoverState::Pending => Ok(()),
            RecoverState::Recovered => write!(
                f,
                "{}: recovered the catalog from {} ({} snapshots, {} files)",
                self.name,
                self.catalog_object.as_deref().unwrap_or("?"),
                self.snapshots,
                self.files
            ),
        }
    }
}

impl Report for RecoverReport {
    fn exit_code(&self) -> Exit {
        match self.state {
            RecoverState::Pending => Exit::Pending,
            RecoverState::Recovered => Exit::Ok,
        }
    }
}

/// Progress across runs, kept beside the (absent) catalog.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    list_ticket: Option<String>,
    catalog_id: Option<String>,
    catalog_hash: Option<String>,
    catalog_time: Option<i64>,
    /// The copy's size as listed, so its download is a range that a retry can continue.
    #[serde(default)]
    catalog_size: Option<u64>,
    warm_ticket: Option<String>,
    /// The deltas newer than the full copy, oldest first: applied in this order.
    #[serde(default)]
    deltas: Vec<DeltaObject>,
    /// Retrieval tickets of the deltas, by id.
    #[serde(default)]
    delta_tickets: std::collections::BTreeMap<String, String>,
}

/// A catalog delta to apply after the full copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeltaObject {
    id: String,
    hash: Option<String>,
    time: i64,
    /// From the listing, so the download is a byte range the retry layer can continue.
    #[serde(default)]
    size: u64,
}

fn state_path(p: &Profile) -> PathBuf {
    p.database_dir.join(format!("{}.recover.json", p.name))
}

fn load(p: &Profile) -> State {
    match std::fs::read_to_string(state_path(p)) {
        Ok(t) => serde_json::from_str(&t).unwrap_or_default(),
        Err(_) => State::default(),
    }
}

fn save(p: &Profile, s: &State) -> Result<()> {
    let path = state_path(p);
    let text = serde_json::to_string_pretty(s).expect("state serializes");
    crate::private::write(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))
}

/// One `recover` step's outcome: go on with the value, or wait for a retrieval.
enum Step<T> {
    Ready(T),
    /// The vault's newest database is the 2013 script's: `legacy::recover` takes over.
    Legacy,
    Wait {
        eta: Option<Duration>,
        what: &'static str,
    },
}

impl<T> Step<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Ready(t) => Step::Ready(f(t)),
            Step::Legacy => Step::Legacy,
            Step::Wait { eta, what } => Step::Wait { eta, what },
        }
    }
}

/// Rebuilds the profile's catalog from the backend, or says what it waits for.
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
    if let Some(r) = crate::legacy::recover::resume(p, &*backend, tier)? {
        return Ok(r);
    }
    let mut state = load(p);
    let step = find_newest_copy(p, &*backend, &mut state)?;
    if let Step::Legacy = step {
        return crate::legacy::recover::resume(p, &*backend, tier)?.ok_or_else(|| {
            Error::Usage(format!(
                "{}: the recover of the 2013 script's database could not keep its state in {}: check that directory and run `recover` again",
                p.name,
                p.database_dir.display()
            ))
        });
    }
    if let Step::Ready(id) = &step {
        report.catalog_object = Some(id.clone());
        report.catalog_time = state.catalog_time.map(crate::timespec::format);
    }
    let step = match step {
        Step::Ready(id) => {
            super::age::check_identity(p, crate::backend::crypt::is_encrypted_id(&id))?;
            match warm_up(p, &*backend, &mut state, &id, tier)? {
                Step::Ready(t) => warm_up_deltas(p, &*backend, &mut state, tier)?.map(|()| t),
                wait => wait,
            }
        }
        Step::Wait { eta, what } => Step::Wait { eta, what },
        Step::Legacy => Step::Legacy,
    };
    match step {
        Step::Ready(ticket) => install(p, &*backend, &state, ticket.as_deref(), &mut report)?,
        Step::Wait { eta, what } => wait(p, &mut report, eta, what),
        Step::Legacy => {}
    }
    Ok(report)
}

fn wait(p: &Profile, report: &mut RecoverReport, eta: Option<Duration>, what: &str) {
    let secs = eta.map_or(5 * 3600, |d| d.as_secs());
    crate::log::info(&format!(
        "{}: {what}; run `glaciersync recover` again in about {}",
        p.name,
        crate::units::duration(secs)
    ));
    report.state = RecoverState::Pending;
    report.eta_seconds = Some(secs);
}

/// The id of the newest catalog copy the backend lists (for Glacier: once the inventory is in).
fn find_newest_copy(p: &Profile, backend: &dyn Backend, state: &mut State) -> Result<Step<String>> {
    if let Some(id) = &state.catalog_id {
        return Ok(Step::Ready(id.clone()));
    }
    let items = match backend.list(state.list_ticket.as_deref())? {
        ListOutcome::Pending { ticket, eta } => {
            state.list_ticket = Some(ticket);
            save(p, state)?;
            let what = "the backend's inventory is being prepared";
            return Ok(Step::Wait { eta, what });
        }
        ListOutcome::Ready(items) => items,
    };
    if crate::legacy::recover::begin(p, &items)? {
        let _ = std::fs::remove_file(state_path(p));
        return Ok(Step::Legacy);
    }
    let newest = items
        .iter()
        .filter(|o| o.kind == Some(ObjectKind::Catalog))
        .max_by_key(|o| (o.created.unwrap_or(0), o.id.clone()))
        .cloned()
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: no catalog copy found in {}: nothing to recover from",
                p.name,
                backend.describe()
            ))
        })?;
    state.catalog_id = Some(newest.id.clone());
    state.catalog_hash = newest.tree_hash.map(|h| h.to_hex());
    state.catalog_time = newest.created;
    state.catalog_size = Some(newest.size);
    state.deltas = deltas_after(&items, newest.created.unwrap_or(0));
    state.list_ticket = None;
    save(p, state)?;
    Ok(Step::Ready(newest.id))
}

/// The deltas newer than the full copy made at `after`, oldest first. Each catalog object
/// got a later second than every one uploaded before it, recorded or not.
fn deltas_after(items: &[crate::backend::ObjectInfo], after: i64) -> Vec<DeltaObject> {
    let mut deltas: Vec<DeltaObject> = items
        .iter()
        .filter(|o| o.kind == Some(ObjectKind::CatalogDelta))
        .filter_map(|o| {
            let time = o.created?;
            (time > after).then(|| DeltaObject {
                id: o.id.clone(),
                hash: o.tree_hash.map(|h| h.to_hex()),
                time,
                size: o.size,
            })
        })
        .collect();
    deltas.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    deltas
}

/// The deltas made readable (thaws in cold storage, requested together).
fn warm_up_deltas(
    p: &Profile,
    backend: &dyn Backend,
    state: &mut State,
    tier: Tier,
) -> Result<Step<()>> {
    let mut longest: Option<Duration> = None;
    for d in state.deltas.clone() {
        let ticket = state.delta_tickets.get(&d.id).cloned();
        match backend.warm_up(&d.id, None, tier, ticket.as_deref())? {
            WarmState::Pending { ticket, eta } => {
                state.delta_tickets.insert(d.id.clone(), ticket);
                longest = Some(longest.map_or(eta, |l| l.max(eta)));
            }
            WarmState::Ready { ticket: Some(t) } => {
                state.delta_tickets.insert(d.id.clone(), t);
            }
            WarmState::Ready { ticket: None } => {
                state.delta_tickets.remove(&d.id);
            }
        }
    }
    save(p, state)?;
    Ok(match longest {
        Some(eta) => Step::Wait {
            eta: Some(eta),
            what: "the catalog deltas are being retrieved",
        },
        None => Step::Ready(()),
    })
}

/// The copy made readable (a thaw in cold storage): the ticket to read it with.
fn warm_up(
    p: &Profile,
    backend: &dyn Backend,
    state: &mut State,
    id: &str,
    tier: Tier,
) -> Result<Step<Option<String>>> {
    match backend.warm_up(id, None, tier, state.warm_ticket.as_deref())? {
        WarmState::Pending { ticket, eta } => {
            state.warm_ticket = Some(ticket);
            save(p, state)?;
            let what = "the catalog copy is being retrieved";
            Ok(Step::Wait {
                eta: Some(eta),
                what,
            })
        }
        WarmState::Ready { ticket } => Ok(Step::Ready(ticket)),
    }
}

/// Downloads and checks the copy, then puts it in place of the catalog.
fn install(
    p: &Profile,
    backend: &dyn Backend,
    state: &State,
    ticket: Option<&str>,
    report: &mut RecoverReport,
) -> Result<()> {
    crate::private::create_dir(&p.database_dir).map_err(|e| Error::io(&p.database_dir, e))?;
    let tmp = p.database_dir.join(format!("{}.recovering", p.name));
    let cat = match download_and_check(p, backend, state, ticket, &tmp) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(tmp.with_extension("download"));
            // Start over next time (list again, pick again).
            let _ = std::fs::remove_file(state_path(p));
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
    let dest = p.catalog_path();
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    let _ = std::fs::remove_file(state_path(p));
    report.state = RecoverState::Recovered;
    Ok(())
}

/// Downloads the copy to `tmp`, checks its hash and integrity, and records it in itself.
fn download_and_check(
    p: &Profile,
    backend: &dyn Backend,
    state: &State,
    ticket: Option<&str>,
    tmp: &Path,
) -> Result<Catalog> {
    let id = state.catalog_id.as_deref().expect("found before");
    let download = tmp.with_extension("download");
    let (size, hash) = fetch(backend, id, state.catalog_size, ticket, &download)?;
    if let Some(expected) = &state.catalog_hash
        && &hash.to_hex() != expected
    {
        let _ = std::fs::remove_file(&download);
        return Err(Error::Integrity(format!(
            "{}: the downloaded catalog copy {id} does not match its hash: run `recover` again; \
             if it fails the same way the copy is damaged, and `sync --full-catalog-copy` on a \
             machine that still has the catalog stores a new one",
            p.name
        )));
    }
    let what = format!("{}: the catalog copy {id}", p.name);
    crate::zst::unpack(&download, tmp, &what)?;
    let mut cat = Catalog::open(tmp)?;
    let delta_sizes = apply_deltas(p, backend, state, &mut cat, tmp)?;
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
        remote_id: id.to_string(),
        kind: ArchiveKind::Catalog,
        size,
        tree_hash: hash,
        backend: backend.name().to_string(),
        stored_at: state
            .catalog_time
            .unwrap_or_else(|| chrono::Utc::now().timestamp()),
    })?;
    // The backend holds this state: the next sync's catalog backup is a delta from here, with
    // a later time than every catalog object listed.
    let last = state
        .deltas
        .last()
        .map_or(state.catalog_time, |d| Some(d.time));
    crate::sync::note_recovered(&mut cat, size, &delta_sizes, last.unwrap_or(0))?;
    Ok(cat)
}

/// Downloads each delta, checks its hash, and applies it to `cat`, oldest first. Returns
/// their sizes.
fn apply_deltas(
    p: &Profile,
    backend: &dyn Backend,
    state: &State,
    cat: &mut Catalog,
    tmp: &Path,
) -> Result<Vec<u64>> {
    let file = tmp.with_extension("delta");
    let download = tmp.with_extension("delta.download");
    let result = (|| {
        let mut sizes = Vec::new();
        let mut recorded = Vec::new();
        for d in &state.deltas {
            let _ = std::fs::remove_file(&file);
            let ticket = state.delta_tickets.get(&d.id).map(String::as_str);
            let (size, hash) = fetch(backend, &d.id, Some(d.size), ticket, &download)?;
            if d.hash.as_ref().is_some_and(|h| *h != hash.to_hex()) {
                return Err(Error::Integrity(format!(
                    "{}: the downloaded catalog delta {} does not match its hash: run `recover` again",
                    p.name, d.id
                )));
            }
            let what = format!("{}: the catalog delta {}", p.name, d.id);
            crate::zst::unpack(&download, &file, &what)?;
            cat.apply_delta(&file)?;
            recorded.push(NewArchive {
                remote_id: d.id.clone(),
                kind: ArchiveKind::CatalogDelta,
                size,
                tree_hash: hash,
                backend: backend.name().to_string(),
                stored_at: d.time,
            });
            sizes.push(size);
        }
        // Recorded only once every delta is applied: a later delta holds the archive rows of
        // the deltas before it with their own ids, which a row added here would clash with.
        for a in &recorded {
            cat.record_archive(a)?;
        }
        Ok(sizes)
    })();
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&download);
    result
}

/// Downloads catalog object `id` into `download` (synced); returns the bytes written and their
/// tree hash (of the object as stored, compressed). With its `size` known (from the listing) the
/// download is a byte range, which the retry layer continues at the byte where a broken one
/// stopped (a whole-object get it could only start over).
fn fetch(
    backend: &dyn Backend,
    id: &str,
    size: Option<u64>,
    ticket: Option<&str>,
    download: &Path,
) -> Result<(u64, crate::hash::Hash32)> {
    let mut f = crate::private::create_truncated(download).map_err(|e| Error::io(download, e))?;
    let range = size
        .filter(|&n| n > 0)
        .map(|end| ByteRange { start: 0, end });
    let written = backend.get(id, range, ticket, &mut f)?;
    f.sync_all().map_err(|e| Error::io(download, e))?;
    drop(f);
    let f = std::fs::File::open(download).map_err(|e| Error::io(download, e))?;
    let (hash, _) =
        tree_hash_reader(std::io::BufReader::new(f)).map_err(|e| Error::io(download, e))?;
    Ok((written, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::AnyReport;

    #[test]
    fn a_recovered_catalog_is_summed_up_and_a_pending_one_exits_75() {
        let mut r = RecoverReport {
            name: "docs".into(),
            backend: "local".into(),
            state: RecoverState::Recovered,
            catalog_object: Some("catalog/1.sqlite".into()),
            snapshots: 2,
            files: 7,
            ..Default::default()
        };
        assert_eq!(
            r.to_string(),
            "docs: recovered the catalog from catalog/1.sqlite (2 snapshots, 7 files)"
        );
        assert_eq!(r.exit(), Exit::Ok);
        assert_eq!(r.json()["state"], "recovered");
        r.state = RecoverState::Pending;
        assert_eq!(r.to_string(), "");
        assert_eq!(r.exit(), Exit::Pending);
        assert_eq!(r.json()["state"], "pending");
    }
}
