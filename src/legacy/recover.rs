//! `recover` from a vault whose newest database archive is the script's (`glaciersync sqlite3
//! db <time>`): retrieve it (a Glacier job: exit 75 until ready), check it (the vault's tree
//! hash, the script's tables), and import it into a catalog of ours. A database archive that
//! cannot be read is passed over for the next newest, and that is said. Progress across runs
//! is kept in `<database_dir>/<profile>.recover-legacy.json`.

use super::{db, import};
use crate::backend::{Backend, ObjectInfo, ObjectKind, Tier, WarmState};
use crate::commands::{RecoverReport, RecoverState};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{Hash32, tree_hash_reader};
use crate::settings::Profile;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Candidate {
    id: String,
    time: i64,
    tree_hash: Option<String>,
    /// The description's time as written (`YYYY-MM-DD HH:MM:SS.ffffff`): it orders two
    /// databases of the same second.
    #[serde(default)]
    stamp: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The script's database archives, newest first; unreadable ones are dropped.
    candidates: Vec<Candidate>,
    /// Every archive of the vault: id, size, tree hash.
    listing: Vec<(String, u64, Option<String>)>,
    warm_ticket: Option<String>,
}

fn state_path(p: &Profile) -> PathBuf {
    p.database_dir
        .join(format!("{}.recover-legacy.json", p.name))
}

fn save(p: &Profile, s: &State) -> Result<()> {
    let path = state_path(p);
    let text = serde_json::to_string(s).expect("state serializes");
    crate::private::write(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))
}

fn when(t: i64) -> String {
    crate::timespec::format(t)
}

/// Whether the newest database in `items` is the script's (none of ours is newer): then a
/// legacy recover begins (its state saved) and `true` is returned.
pub fn begin(p: &Profile, items: &[ObjectInfo]) -> Result<bool> {
    let candidates = candidates(items);
    if candidates.is_empty() {
        return Ok(false);
    }
    let listing = items
        .iter()
        .map(|o| (o.id.clone(), o.size, o.listed_tree_hash.map(|h| h.to_hex())))
        .collect();
    crate::private::create_dir(&p.database_dir).map_err(|e| Error::io(&p.database_dir, e))?;
    save(
        p,
        &State {
            candidates,
            listing,
            warm_ticket: None,
        },
    )?;
    Ok(true)
}

/// The script's database archives, newest first; none when a catalog copy of ours is as new.
fn candidates(items: &[ObjectInfo]) -> Vec<Candidate> {
    let ours = items
        .iter()
        .filter(|o| o.kind == Some(ObjectKind::Catalog))
        .filter_map(|o| o.created)
        .max();
    let mut candidates: Vec<Candidate> = items
        .iter()
        .filter_map(|o| {
            let description = o.description.as_deref()?;
            let time = super::parse_db_description(description)?;
            Some(Candidate {
                id: o.id.clone(),
                time,
                tree_hash: o.listed_tree_hash.map(|h| h.to_hex()),
                stamp: description.to_string(),
            })
        })
        .collect();
    candidates.sort_by(|a, b| (b.time, &b.stamp, &b.id).cmp(&(a.time, &a.stamp, &a.id)));
    match (candidates.first(), ours) {
        (Some(newest), Some(ours)) if ours >= newest.time => Vec::new(),
        _ => candidates,
    }
}

/// Carries on the legacy recover begun earlier; `None` when none was begun.
pub fn resume(p: &Profile, backend: &dyn Backend, tier: Tier) -> Result<Option<RecoverReport>> {
    let Ok(text) = std::fs::read_to_string(state_path(p)) else {
        return Ok(None);
    };
    let Ok(mut state) = serde_json::from_str::<State>(&text) else {
        let _ = std::fs::remove_file(state_path(p));
        return Ok(None);
    };
    let mut report = RecoverReport {
        name: p.name.clone(),
        backend: backend.name().to_string(),
        ..Default::default()
    };
    loop {
        let Some(c) = state.candidates.first().cloned() else {
            let _ = std::fs::remove_file(state_path(p));
            return Err(Error::Usage(format!(
                "{}: no readable database of the 2013 script in {}: nothing to recover from",
                p.name,
                backend.describe()
            )));
        };
        report.catalog_object = Some(c.id.clone());
        report.catalog_time = Some(when(c.time));
        let outcome = match backend.warm_up(&c.id, None, tier, state.warm_ticket.as_deref()) {
            Err(e) if unusable(&e) => Err(e.to_string()),
            Err(e) => return Err(e),
            Ok(WarmState::Pending { ticket, eta }) => {
                state.warm_ticket = Some(ticket);
                save(p, &state)?;
                return Ok(Some(pending(p, &c, eta, report)));
            }
            Ok(WarmState::Ready { ticket }) => fetch(p, backend, &c, ticket.as_deref())?,
        };
        match outcome {
            Ok((tmp, legacy)) => {
                install(p, backend, &state, &c, &tmp, &legacy, &mut report)?;
                return Ok(Some(report));
            }
            Err(why) => pass_over(p, &mut state, &why)?,
        }
    }
}

/// A database archive the backend says is gone or damaged: no retry brings it back.
fn unusable(e: &Error) -> bool {
    matches!(
        e.backend_kind(),
        Some(BackendErrorKind::NotFound | BackendErrorKind::Corrupt)
    )
}

/// Drops the newest candidate, saying why and which one comes next.
fn pass_over(p: &Profile, state: &mut State, why: &str) -> Result<()> {
    let c = state.candidates.remove(0);
    let next = state.candidates.first();
    crate::log::warn(&format!(
        "{}: the database archive {} of {} is unreadable ({why}); {}",
        p.name,
        c.id,
        when(c.time),
        next.map_or("there is no older one".to_string(), |n| format!(
            "falling back to the next newest, {} of {}",
            n.id,
            when(n.time)
        ))
    ));
    state.warm_ticket = None;
    save(p, state)
}

fn pending(p: &Profile, c: &Candidate, eta: Duration, mut report: RecoverReport) -> RecoverReport {
    crate::log::info(&format!(
        "{}: the 2013 script's database of {} is being retrieved; run `glaciersync recover` again in about {}",
        p.name,
        when(c.time),
        crate::units::duration(eta.as_secs())
    ));
    report.state = RecoverState::Pending;
    report.eta_seconds = Some(eta.as_secs());
    report
}

/// Downloads a database archive and reads it. Outer error: the backend failed (try again
/// later); inner: the archive is not a readable database (fall back to an older one).
#[allow(clippy::type_complexity)]
fn fetch(
    p: &Profile,
    backend: &dyn Backend,
    c: &Candidate,
    ticket: Option<&str>,
) -> Result<std::result::Result<(PathBuf, db::LegacyDb), String>> {
    crate::private::create_dir(&p.database_dir).map_err(|e| Error::io(&p.database_dir, e))?;
    let tmp = p.database_dir.join(format!("{}.recovering-legacy", p.name));
    let mut f = crate::private::create_truncated(&tmp).map_err(|e| Error::io(&tmp, e))?;
    if let Err(e) = backend.get(&c.id, None, ticket, &mut f) {
        let _ = std::fs::remove_file(&tmp);
        return if unusable(&e) {
            Ok(Err(e.to_string()))
        } else {
            Err(e)
        };
    }
    drop(f);
    let checked = check(&tmp, c).and_then(|()| db::read(&tmp).map_err(|e| e.to_string()));
    Ok(match checked {
        Ok(legacy) => Ok((tmp, legacy)),
        Err(why) => {
            let _ = std::fs::remove_file(&tmp);
            Err(why)
        }
    })
}

fn check(tmp: &Path, c: &Candidate) -> std::result::Result<(), String> {
    let f = std::fs::File::open(tmp).map_err(|e| e.to_string())?;
    let (got, _) = tree_hash_reader(std::io::BufReader::new(f)).map_err(|e| e.to_string())?;
    match c.tree_hash.as_deref() {
        Some(want) if want != got.to_hex() => Err(format!(
            "its bytes do not match the tree hash the vault lists ({want})"
        )),
        _ => Ok(()),
    }
}

/// Imports the database into a catalog of ours at the catalog path; keeps the database beside.
fn install(
    p: &Profile,
    backend: &dyn Backend,
    state: &State,
    c: &Candidate,
    tmp: &Path,
    legacy: &db::LegacyDb,
    report: &mut RecoverReport,
) -> Result<()> {
    let listing: import::Listing = state
        .listing
        .iter()
        .map(|(id, size, h)| (id.clone(), (*size, h.as_deref().and_then(Hash32::from_hex))))
        .collect();
    let trees = super::adopt::trees(p);
    let im = import::build(legacy, &trees, c.time, &listing, backend.name(), None);
    let dest = p.catalog_path();
    super::adopt::write_catalog(&im, &dest)?;
    let kept = super::adopt::backup_path(&dest);
    std::fs::rename(tmp, &kept).map_err(|e| Error::io(&kept, e))?;
    let _ = std::fs::remove_file(state_path(p));
    let what = format!(
        "the 2013 script's database archive {} of {}",
        c.id,
        when(c.time)
    );
    crate::log::info(&super::adopt::summary(p, &what, &im, &kept));
    for f in &legacy.unplaced {
        crate::log::warn(&format!(
            "{}: the legacy database places no archive for {f}: not imported",
            p.name
        ));
    }
    report.state = RecoverState::Recovered;
    report.snapshots = 1;
    report.files = im.catalog.versions.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        id: &str,
        description: &str,
        kind: Option<ObjectKind>,
        created: Option<i64>,
    ) -> ObjectInfo {
        ObjectInfo {
            id: id.into(),
            size: 1,
            kind,
            tree_hash: None,
            created,
            description: Some(description.into()),
            listed_tree_hash: None,
            age_header: None,
            profile: None,
        }
    }

    #[test]
    fn the_newest_database_decides_between_ours_and_the_script() {
        let old = info(
            "a",
            "glaciersync sqlite3 db 2013-05-01 10:00:00.5",
            None,
            None,
        );
        let new = info(
            "b",
            "glaciersync sqlite3 db 2014-05-01 10:00:00",
            None,
            None,
        );
        let data = info("c", &"ab".repeat(20), None, None);
        let got = candidates(&[old.clone(), data.clone(), new.clone()]);
        let ids: Vec<&str> = got.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["b", "a"],
            "newest first, data archives are no databases"
        );
        let ours = |t| info("o", "{}", Some(ObjectKind::Catalog), Some(t));
        assert!(candidates(&[old.clone(), new.clone(), ours(2_000_000_000)]).is_empty());
        assert_eq!(candidates(&[old, new, ours(1_300_000_000)]).len(), 2);
        assert!(candidates(&[data]).is_empty());
    }
}
