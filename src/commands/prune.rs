//! `prune` of one profile: plan (dry run: print it), then execute, then store a catalog copy.

use crate::backend::{Backend, ListOutcome, ObjectInfo};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::prune::{PruneOptions, PrunePlan, PruneReport};
use crate::settings::{BackendSettings, Profile};
use std::fmt;

/// What `prune` returns: the plan of a dry run, or what was done.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum PruneOutcome {
    Planned(PrunePlan),
    Pruned(PruneReport),
}

impl fmt::Display for PruneOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneOutcome::Planned(p) => p.fmt(f),
            PruneOutcome::Pruned(r) => r.fmt(f),
        }
    }
}

impl crate::report::Report for PruneOutcome {
    fn exit_code(&self) -> crate::report::Exit {
        match self {
            PruneOutcome::Planned(p) => p.exit_code(),
            PruneOutcome::Pruned(r) => r.exit_code(),
        }
    }
}

/// The options of a prune of `p` at `now`.
pub fn prune_options(p: &Profile, dry_run: bool, now: i64) -> PruneOptions {
    let description_profile = match &p.backend {
        BackendSettings::Glacier { .. } => {
            Some(crate::backend::glacier::description_profile(&p.name))
        }
        _ => None,
    };
    PruneOptions {
        profile: p.name.clone(),
        backend: p.backend.kind().to_string(),
        storage_class: super::storage_class(p).map(str::to_string),
        retention: p.lifecycle.retention,
        keep_catalog_copies: p.lifecycle.keep_catalog_copies,
        min_storage_days: p.lifecycle.min_storage_days,
        now,
        dry_run,
        description_profile,
    }
}

/// The catalog key of the Glacier inventory job `verify --remote` and `prune --unknown` wait for.
const INVENTORY_TICKET: &str = "inventory_ticket";

/// The backend's listing for `prune --dry-run --unknown`, read-only: a listing that needs no
/// job (local, S3), or the finished vault inventory of the job whose ticket `verify --remote`
/// or `prune --unknown` stored. `None` when there is none: no job is started and nothing is
/// written.
fn listing_read_only(backend: &dyn Backend, catalog: &Catalog) -> Result<Option<Vec<ObjectInfo>>> {
    let ticket = catalog.meta(INVENTORY_TICKET)?.filter(|t| !t.is_empty());
    backend.list_ready(ticket.as_deref())
}

/// The backend's listing, for `--unknown`; `None` while a Glacier inventory is being
/// prepared: the first run starts that job (its ticket kept in the catalog, as `verify
/// --remote` keeps it) and a later run reads it.
fn listing(
    p: &Profile,
    backend: &dyn Backend,
    catalog: &mut Catalog,
) -> Result<Option<Vec<ObjectInfo>>> {
    let ticket = catalog.meta(INVENTORY_TICKET)?.filter(|t| !t.is_empty());
    match backend.list(ticket.as_deref())? {
        ListOutcome::Ready(items) => {
            if ticket.is_some() {
                catalog.delete_meta(INVENTORY_TICKET)?;
            }
            Ok(Some(items))
        }
        ListOutcome::Pending { ticket, eta } => {
            catalog.set_meta(INVENTORY_TICKET, &ticket)?;
            crate::log::info(&format!(
                "{}: `prune --unknown` needs the vault inventory, which is being prepared: run the \
                 same command again in about {} (nothing was done)",
                p.name,
                crate::units::duration(eta.map_or(5 * 3600, |d| d.as_secs()))
            ));
            Ok(None)
        }
    }
}

/// Whether two profiles write to the same place, where content-addressed keys would make
/// them share objects (vault archive ids are never shared).
fn same_place(a: &Profile, b: &Profile) -> bool {
    match (&a.backend, &b.backend) {
        (BackendSettings::Local { dir: x }, BackendSettings::Local { dir: y }) => {
            super::canonical_or_same(x) == super::canonical_or_same(y)
        }
        (
            BackendSettings::S3 {
                bucket: b1,
                prefix: p1,
                ..
            },
            BackendSettings::S3 {
                bucket: b2,
                prefix: p2,
                ..
            },
        ) => b1 == b2 && p1 == p2,
        _ => false,
    }
}

/// Refuses to prune a profile that shares its directory or bucket prefix with another profile
/// of the settings file: an object one of them no longer needs may be the other's.
fn check_alone(p: &Profile, settings_file: &std::path::Path) -> Result<()> {
    let settings = crate::settings::load(settings_file)?;
    match settings
        .profiles
        .iter()
        .find(|q| q.name != p.name && same_place(p, q))
    {
        Some(q) => Err(Error::Usage(format!(
            "profiles [{}] and [{}] store into the same place ({}): prune could delete what [{}] \
             still needs; nothing was done: give each profile its own `prefix` or `local_dir`",
            p.name,
            q.name,
            p.backend.kind(),
            q.name
        ))),
        None => Ok(()),
    }
}

/// `prune [--dry-run] [--unknown]` of one profile. A profile never synced has nothing to do.
pub fn prune(
    p: &Profile,
    settings_file: &std::path::Path,
    dry_run: bool,
    unknown: bool,
) -> Result<PruneOutcome> {
    check_alone(p, settings_file)?;
    let now = chrono::Utc::now().timestamp();
    let opts = prune_options(p, dry_run, now);
    let path = p.catalog_path();
    if !path.exists() {
        let catalog = Catalog::open_in_memory()?;
        let plan = crate::prune::plan(&opts, &catalog, None)?;
        return Ok(if dry_run {
            PruneOutcome::Planned(plan)
        } else {
            PruneOutcome::Pruned(PruneReport {
                name: plan.name,
                backend: plan.backend,
                ..Default::default()
            })
        });
    }
    let _lock = if dry_run { None } else { Some(super::lock(p)?) };
    let mut catalog = Catalog::open(&path)?;
    let backend = super::open_backend(p)?;
    // A store another catalog writes to (another settings file, another machine): refused.
    crate::owner::check_sole_owner(&catalog, &*backend, &p.name)?;
    if dry_run {
        // Read-only: no lock, no catalog write, no job started in the backend.
        let listed = match unknown {
            true => listing_read_only(&*backend, &catalog)?,
            false => None,
        };
        let mut plan = crate::prune::plan(&opts, &catalog, listed.as_deref())?;
        plan.inventory_needed = unknown && listed.is_none();
        return Ok(PruneOutcome::Planned(plan));
    }
    let listed = if unknown {
        match listing(p, &*backend, &mut catalog)? {
            Some(items) => Some(items),
            None => {
                return Ok(PruneOutcome::Pruned(PruneReport {
                    name: p.name.clone(),
                    backend: p.backend.kind().to_string(),
                    waiting_for_inventory: true,
                    ..Default::default()
                }));
            }
        }
    } else {
        None
    };
    let plan = crate::prune::plan(&opts, &catalog, listed.as_deref())?;
    let mut report = crate::prune::execute(plan, &*backend, &mut catalog, now)?;
    // The next sync stores a copy of the changed catalog. Prune uploads nothing itself, so a
    // kill leaves no object the catalog does not know.
    report.catalog_backup_pending = catalog.meta("catalog_backup_pending")?.as_deref() == Some("1");
    Ok(PruneOutcome::Pruned(report))
}

/// Records that what this sync stores goes to S3 class `class`. On a change the record starts
/// at the next whole second, after waiting for it, so that every archive stored before has an
/// earlier `stored_at` and every one stored after a later or equal one: no archive's class is
/// ever in doubt.
pub(super) fn note_storage_class(catalog: &mut Catalog, class: &str) -> Result<()> {
    if catalog
        .storage_classes()?
        .last()
        .is_some_and(|(_, c)| c == class)
    {
        return Ok(());
    }
    let now = chrono::Utc::now();
    let next = now.timestamp() + 1;
    let wait = 1_000_000_000 - u64::from(now.timestamp_subsec_nanos().min(999_999_999));
    std::thread::sleep(std::time::Duration::from_nanos(wait));
    catalog.note_storage_class(class, next)
}

/// Bytes no kept version needs that are held by their minimum storage duration, and until
/// when (for `status`): what `prune` would hold with no snapshot forgotten.
pub fn dead_but_held(p: &Profile, catalog: &Catalog) -> Result<(u64, Option<String>)> {
    let mut opts = prune_options(p, true, chrono::Utc::now().timestamp());
    opts.retention = crate::prune::Retention::default();
    let plan = crate::prune::plan(&opts, catalog, None)?;
    Ok((plan.totals.bytes_held, plan.totals.held_until))
}
