//! The commands: each joins settings, catalog and backend for one profile and returns a
//! [`Report`] that prints itself (text or JSON) and decides the exit code. The CLI stays thin;
//! everything testable is here.

pub mod age;
mod init;
mod inspect;
mod prune;
mod recover;
mod verify;

pub use crate::report::{AnyReport, Channel, Exit, Report};
pub use init::{InitArg, InitReport, init, init_arg};
pub use inspect::{LsEntry, LsReport, StatusReport, ls, status};
pub use prune::{PruneOutcome, dead_but_held, prune, prune_options};
pub use recover::{RecoverReport, RecoverState, recover};
pub use verify::{VerifyOptions, VerifyReport, verify};

use crate::backend::Backend;
use crate::backend::local::LocalBackend;
use crate::backend::retry::{RetryPolicy, Retrying};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::restore::{RestoreArgs, RestoreOptions, RestoreOutcome};
use crate::scan::TreeSpec;
use crate::settings::{BackendSettings, Profile};
use crate::sync::{SyncOptions, SyncReport};
use std::fs::File;
use std::path::PathBuf;

/// Builds the profile's backend, wrapped in retries, then in the encrypting wrapper (which
/// stores plaintext when the profile has no recipients, and reads encrypted objects only with
/// its identity).
pub fn open_backend(p: &Profile) -> Result<Box<dyn Backend>> {
    Ok(age::wrap(p, open_plain_backend(p)?))
}

fn open_plain_backend(p: &Profile) -> Result<Box<dyn Backend>> {
    let retry = RetryPolicy::standard();
    Ok(match &p.backend {
        BackendSettings::Local { dir } => {
            Box::new(Retrying::with_policy(LocalBackend::new(dir), retry))
        }
        other => open_remote(p, other, retry)?,
    })
}

fn open_remote(p: &Profile, b: &BackendSettings, retry: RetryPolicy) -> Result<Box<dyn Backend>> {
    use crate::backend::glacier::{GlacierBackend, GlacierOptions};
    use crate::backend::s3::{S3Backend, S3Options};
    match b {
        BackendSettings::Glacier { vault } => Ok(Box::new(Retrying::with_policy(
            GlacierBackend::new(GlacierOptions {
                aws: p.aws.clone(),
                vault: vault.clone(),
                part_size: p.part_size,
                concurrency: p.concurrency,
            })?
            .for_profile(&p.name),
            retry,
        ))),
        BackendSettings::S3 {
            bucket,
            prefix,
            storage_class,
        } => Ok(Box::new(Retrying::with_policy(
            S3Backend::new(S3Options {
                aws: p.aws.clone(),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                storage_class: storage_class.clone(),
                part_size: p.part_size,
                concurrency: p.concurrency,
                ..S3Options::default()
            })?,
            retry,
        ))),
        BackendSettings::Local { dir } => Ok(Box::new(LocalBackend::new(dir))),
    }
}

/// The profile's exclusive lock, held while a command writes its catalog.
pub struct ProfileLock {
    _file: File,
}

/// Takes the profile's lock or says who holds it.
pub fn lock(p: &Profile) -> Result<ProfileLock> {
    crate::private::create_dir(&p.database_dir).map_err(|e| Error::io(&p.database_dir, e))?;
    let path = p.database_dir.join(format!("{}.lock", p.name));
    let file = crate::private::file_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(ProfileLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(format!(
            "profile {} is in use by another glaciersync process (lock {}): wait for it to finish",
            p.name,
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Where a profile's temporary files go.
pub fn staging_dir(p: &Profile) -> PathBuf {
    p.database_dir.join(format!("{}.staging", p.name))
}

fn canonical_or_same(p: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Checks that every tree exists before anything is done.
fn check_trees(p: &Profile, file: &std::path::Path) -> Result<()> {
    for t in &p.trees {
        let problem = match std::fs::metadata(&t.root) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => "not a directory".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "path not found".to_string(),
            Err(e) => crate::error::io_message(&e),
        };
        return Err(Error::Settings {
            file: file.to_path_buf(),
            line: t.line,
            message: format!(
                "[{}] {} = {}: {problem}; fix `{}` or mount the drive",
                p.name,
                t.key,
                t.root.display(),
                t.key
            ),
        });
    }
    Ok(())
}

/// SQLite's page cache while a sync stores and records, in MiB (peak RSS of a first backup of
/// a million small files: 145-160 MiB with it, 110 without; the target is 200).
const SYNC_CACHE_MIB: u32 = 32;

/// The options of `sync`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncFlags {
    /// Plan only.
    pub dry_run: bool,
    /// Store plaintext although the profile has encrypted archives.
    pub allow_plaintext: bool,
    /// End with a full catalog copy, even when nothing changed.
    pub full_catalog_copy: bool,
}

/// `sync` of one profile.
pub fn sync(
    p: &Profile,
    settings_file: &std::path::Path,
    flags: SyncFlags,
    progress: &Progress,
) -> Result<SyncReport> {
    let dry_run = flags.dry_run;
    check_trees(p, settings_file)?;
    let mut skip = vec![canonical_or_same(&p.database_dir)];
    if let BackendSettings::Local { dir } = &p.backend {
        skip.push(canonical_or_same(dir));
    }
    let trees: Vec<TreeSpec> = p
        .trees
        .iter()
        .map(|t| TreeSpec {
            key: t.key.clone(),
            root: canonical_or_same(&t.root),
        })
        .collect();
    let opts = SyncOptions {
        profile: p.name.clone(),
        trees,
        exclude: p.exclude.clone(),
        skip,
        threshold: p.archive_byte_size_threshold,
        part_size: p.part_size,
        concurrency: p.concurrency,
        staging_dir: staging_dir(p),
    };
    let started = std::time::Instant::now();
    if dry_run {
        return sync_plan(p, &opts, progress, started);
    }
    let backend = open_backend(p)?;
    let _lock = lock(p)?;
    // A database of the 2013 script where the catalog belongs: adopted, its tables kept.
    crate::legacy::adopt::adopt(p)?;
    crate::sync::clean_staging(&opts.staging_dir);
    let mut catalog = Catalog::open(&p.catalog_path())?;
    if let Some(class) = storage_class(p) {
        // What prune needs to know the minimum storage duration of what this sync stores.
        prune::note_storage_class(&mut catalog, class)?;
    }
    age::check_no_silent_plaintext(p, &catalog, flags.allow_plaintext)?;
    if flags.full_catalog_copy {
        crate::sync::owe_full_copy(&mut catalog)?;
    }
    let plan = crate::sync::plan(&opts, &catalog, progress)?;
    // After the plan: its lookups do well with the default cache, and a sync that has little
    // to store never fills the larger one.
    catalog.set_write_cache(SYNC_CACHE_MIB)?;
    crate::sync::execute(plan, &opts, &*backend, &mut catalog, progress, started)
}

/// `sync --dry-run`: the plan, priced. Changes nothing: an absent catalog is read as empty,
/// in memory, and the backend is not asked.
fn sync_plan(
    p: &Profile,
    opts: &SyncOptions,
    progress: &Progress,
    started: std::time::Instant,
) -> Result<SyncReport> {
    let path = p.catalog_path();
    let catalog = if let Some(adopted) = crate::legacy::adopt::in_memory(p)? {
        adopted
    } else if path.exists() {
        Catalog::open(&path)?
    } else {
        Catalog::open_in_memory()?
    };
    let mut plan = crate::sync::plan(opts, &catalog, progress)?;
    let backend = p.backend.kind();
    plan.estimate
        .price(&crate::cost::pricing(backend, storage_class(p)));
    Ok(SyncReport::of_plan(&p.name, backend, plan, started))
}

/// `restore` of one profile: plans, prices the plan (each archive at the storage class it was
/// stored in), refuses it over `args.max_cost` (else the profile's `max_restore_cost`) before
/// requesting anything, then carries it out. A dry run returns the plan, or the same refusal
/// when the plan is over the cap.
pub fn restore(p: &Profile, args: &RestoreArgs, progress: &Progress) -> Result<RestoreOutcome> {
    crate::restore::check_target(&args.to).map_err(Error::Usage)?;
    let cap = args.max_cost.or(p.lifecycle.max_restore_cost);
    check_cap(cap)?;
    let _lock = lock(p)?;
    // A database of the 2013 script: adopted (a dry run plans on it in memory).
    let adopted = match args.dry_run {
        true => crate::legacy::adopt::in_memory(p)?,
        false => crate::legacy::adopt::adopt(p).map(|_| None)?,
    };
    let mut catalog = match adopted {
        Some(c) => c,
        None => Catalog::open_existing(&p.catalog_path(), &p.name)?,
    };
    let backend = open_backend(p)?;
    let opts = RestoreOptions {
        args: args.clone(),
        profile: p.name.clone(),
        concurrency: p.concurrency,
    };
    let mut plan = crate::restore::plan(&opts, &*backend, &catalog)?;
    plan.price(&catalog.storage_classes()?, storage_class(p));
    check_cost(p, &plan, cap)?;
    if !plan.dry_run {
        age::check_can_read(p, &catalog)?;
    }
    let outcome = if plan.dry_run {
        RestoreOutcome::Planned(plan)
    } else {
        RestoreOutcome::Restored(crate::restore::execute(
            plan,
            &*backend,
            &mut catalog,
            progress,
        )?)
    };
    for e in outcome.errors() {
        crate::log::error(&format!("{}: {}", e.path, e.error));
    }
    Ok(outcome)
}

/// Refuses a cap that is no amount of US dollars.
fn check_cap(cap: Option<f64>) -> Result<()> {
    if cap.is_some_and(|c| !(c >= 0.0 && c.is_finite())) {
        return Err(Error::Usage(
            "--max-cost: give an amount of US dollars, 0 or more (e.g. --max-cost 5)".into(),
        ));
    }
    Ok(())
}

/// Refuses a restore (or its dry run) whose quote is over `cap` USD: nothing has been
/// requested yet.
fn check_cost(p: &Profile, plan: &crate::restore::RestorePlan, cap: Option<f64>) -> Result<()> {
    match (cap, &plan.quote) {
        (Some(cap), Some(q)) if q.total_usd > cap => Err(Error::Usage(format!(
            "{}: this restore would cost {q}, over the cap of ${cap:.2} (--max-cost or \
             max_restore_cost); nothing was requested{}: raise the cap, choose a cheaper \
             --tier, or restore fewer files",
            p.name,
            if plan.dry_run {
                " (dry run: the restore would stop here too)"
            } else {
                ""
            }
        ))),
        _ => Ok(()),
    }
}

/// The storage class data goes to, for cost estimates.
pub fn storage_class(p: &Profile) -> Option<&str> {
    match &p.backend {
        BackendSettings::S3 { storage_class, .. } => Some(storage_class),
        _ => None,
    }
}
