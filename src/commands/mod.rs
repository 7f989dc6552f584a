//! The commands: each joins settings, catalog and backend for one profile and returns a
//! [`Report`] that prints itself (text or JSON) and decides the exit code. The CLI stays thin;
//! everything testable is here.

pub mod age;
mod init;
mod inspect;
mod recover;
mod verify;

pub use crate::report::{AnyReport, Channel, Exit, Report};
pub use init::{InitReport, init};
pub use inspect::{LsEntry, LsReport, StatusReport, ls, status};
pub use recover::{RecoverReport, RecoverState, recover};
pub use verify::{VerifyOptions, VerifyReport, verify};

use crate::backend::Backend;
use crate::backend::local::LocalBackend;
use crate::backend::retry::Retrying;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::restore::{RestoreArgs, RestoreOptions, RestoreOutcome};
use crate::scan::TreeSpec;
use crate::settings::{BackendSettings, Profile};
use crate::sync::{SyncOptions, SyncReport};
use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

/// Tries per backend call before a transient error is reported.
const ATTEMPTS: u32 = 6;

/// Builds the profile's backend, wrapped in retries, then in the encrypting wrapper (which
/// stores plaintext when the profile has no recipients, and reads encrypted objects only with
/// its identity).
pub fn open_backend(p: &Profile) -> Result<Box<dyn Backend>> {
    Ok(age::wrap(p, open_plain_backend(p)?))
}

fn open_plain_backend(p: &Profile) -> Result<Box<dyn Backend>> {
    let base = Duration::from_millis(
        std::env::var("GLACIERSYNC_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500),
    );
    Ok(match &p.backend {
        BackendSettings::Local { dir } => {
            Box::new(Retrying::new(LocalBackend::new(dir), ATTEMPTS, base))
        }
        other => open_remote(p, other, base)?,
    })
}

fn open_remote(p: &Profile, b: &BackendSettings, base: Duration) -> Result<Box<dyn Backend>> {
    use crate::backend::glacier::{GlacierBackend, GlacierOptions};
    use crate::backend::s3::{S3Backend, S3Options};
    match b {
        BackendSettings::Glacier { vault } => Ok(Box::new(Retrying::new(
            GlacierBackend::new(GlacierOptions {
                aws: p.aws.clone(),
                vault: vault.clone(),
                part_size: p.part_size,
                concurrency: p.concurrency,
            })?
            .for_profile(&p.name),
            ATTEMPTS,
            base,
        ))),
        BackendSettings::S3 {
            bucket,
            prefix,
            storage_class,
        } => Ok(Box::new(Retrying::new(
            S3Backend::new(S3Options {
                aws: p.aws.clone(),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                storage_class: storage_class.clone(),
                part_size: p.part_size,
                concurrency: p.concurrency,
                ..S3Options::default()
            })?,
            ATTEMPTS,
            base,
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
    std::fs::create_dir_all(&p.database_dir).map_err(|e| Error::io(&p.database_dir, e))?;
    let path = p.database_dir.join(format!("{}.lock", p.name));
    let file = File::options()
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

/// The options of `sync`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncFlags {
    /// Plan only.
    pub dry_run: bool,
    /// Store plaintext although the profile has encrypted archives.
    pub allow_plaintext: bool,
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
    crate::sync::clean_staging(&opts.staging_dir);
    let mut catalog = Catalog::open(&p.catalog_path())?;
    age::check_no_silent_plaintext(p, &catalog, flags.allow_plaintext)?;
    let plan = crate::sync::plan(&opts, &catalog, progress)?;
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
    let catalog = if path.exists() {
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

/// `restore` of one profile: plans, then carries the plan out (a dry run returns the plan).
pub fn restore(p: &Profile, args: &RestoreArgs, progress: &Progress) -> Result<RestoreOutcome> {
    let _lock = lock(p)?;
    let mut catalog = Catalog::open_existing(&p.catalog_path(), &p.name)?;
    let backend = open_backend(p)?;
    let opts = RestoreOptions {
        args: args.clone(),
        profile: p.name.clone(),
        concurrency: p.concurrency,
    };
    let plan = crate::restore::plan(&opts, &*backend, &catalog)?;
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

/// The storage class data goes to, for cost estimates.
pub fn storage_class(p: &Profile) -> Option<&str> {
    match &p.backend {
        BackendSettings::S3 { storage_class, .. } => Some(storage_class),
        _ => None,
    }
}
