//! Carrying out a [`RestorePlan`]: warm-ups (each new request recorded in the catalog),
//! downloads of several archives at once, then symlinks and directories.

use super::RestoreReport;
use super::demux::{MemberResult, download};
use super::dest::{DirCache, file_time, make_dirs, set_times_and_mode};
use super::plan::{ArchivePlan, Dest, Link, RestorePlan};
use crate::backend::{Backend, Tier, WarmState};
use crate::catalog::{Catalog, Retrieval};
use crate::error::Result;
use crate::log;
use crate::progress::Progress;
use crate::sync::FileError;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// An archive readable now, with the ticket its warm-up gave.
type Ready<'p> = (&'p ArchivePlan, Option<String>);

/// Carries out `plan`: what is readable is restored, what must be thawed is requested (or
/// checked on) and reported pending.
pub fn execute(
    plan: RestorePlan,
    backend: &dyn Backend,
    catalog: &mut Catalog,
    progress: &Progress,
) -> Result<RestoreReport> {
    let mut report = RestoreReport {
        name: plan.name.clone(),
        backend: plan.backend.clone(),
        snapshot: plan.snapshot,
        selected: plan.totals.selected,
        already_present: plan.totals.already_present,
        errors: plan.errors.clone(),
        ..RestoreReport::default()
    };
    super::dest::prepare_target(&plan.to).map_err(crate::error::Error::Usage)?;
    for d in &plan.in_place {
        let _ = set_times_and_mode(&d.path, d.mode, d.mtime_ns);
    }
    let ready = warm_up(&plan.archives, plan.tier, backend, catalog, &mut report)?;
    let learned = Mutex::new(Vec::new());
    let lost = Mutex::new(Vec::new());
    let results = download_all(&plan, ready, backend, progress, &learned, &lost);
    record(results, &plan.to, catalog, &mut report)?;
    forget_lost(
        lost.into_inner().unwrap_or_else(|e| e.into_inner()),
        catalog,
    )?;
    super::legacy::record(
        learned.into_inner().unwrap_or_else(|e| e.into_inner()),
        catalog,
    )?;
    // Symlinks after files, so no file is written through a restored link.
    for link in &plan.links {
        match restore_link(&plan.to, plan.overwrite, link) {
            Ok(true) => report.links += 1,
            Ok(false) => report.already_present += 1,
            Err(e) => report.errors.push(failed(&link.file, e)),
        }
    }
    // Directories last, deepest first (the plan's order), so their mtimes stick.
    for dir in &plan.dirs {
        match restore_dir(&plan.to, dir) {
            Ok(()) => report.dirs += 1,
            Err(e) => report.errors.push(failed(&dir.file, e)),
        }
    }
    if report.pending > 0 {
        log::info(&format!(
            "{}: {} retrieval(s) pending ({} bytes); run the same command again in about {}",
            report.name,
            report.pending,
            report.pending_bytes,
            crate::units::duration(report.eta_seconds.unwrap_or(0))
        ));
    }
    Ok(report)
}

fn failed(file: &str, e: io::Error) -> FileError {
    FileError {
        path: file.to_string(),
        error: e.to_string(),
    }
}

/// Requests or checks on what cold storage must thaw; returns the archives readable now.
fn warm_up<'p>(
    archives: &'p [ArchivePlan],
    tier: Tier,
    backend: &dyn Backend,
    catalog: &mut Catalog,
    report: &mut RestoreReport,
) -> Result<Vec<Ready<'p>>> {
    let mut ready = Vec::new();
    let mut max_eta: Option<Duration> = None;
    for a in archives {
        let Some(thaw) = &a.thaw else {
            ready.push((a, None));
            continue;
        };
        let saved = thaw.requested.as_ref().map(|r| r.ticket.as_str());
        let range = (!thaw.whole).then_some(thaw.range);
        match backend.warm_up(&a.remote_id, range, tier, saved)? {
            WarmState::Ready { ticket } => ready.push((a, ticket)),
            WarmState::Pending { ticket, eta } => {
                if saved != Some(ticket.as_str()) {
                    report.requested += 1;
                    catalog.save_retrieval(&Retrieval {
                        archive_id: a.id,
                        range_start: a.span.start,
                        range_end: a.span.end,
                        tier: tier.as_str().to_string(),
                        ticket: Some(ticket),
                        requested_at: chrono::Utc::now().timestamp(),
                    })?;
                }
                report.pending += 1;
                report.pending_bytes += thaw.range.len();
                max_eta = Some(max_eta.map_or(eta, |m| m.max(eta)));
            }
        }
    }
    report.eta_seconds = max_eta.map(|d| d.as_secs());
    Ok(ready)
}

/// Downloads the ready archives, `plan.concurrency` at once. Returns each archive's results,
/// one per member.
fn download_all<'p>(
    plan: &RestorePlan,
    ready: Vec<Ready<'p>>,
    backend: &dyn Backend,
    progress: &Progress,
    learned: &Mutex<Vec<super::legacy::Learned>>,
    lost: &Mutex<Vec<crate::hash::Hash32>>,
) -> Vec<(&'p ArchivePlan, Vec<MemberResult>)> {
    let total: u64 = ready.iter().map(|(a, _)| a.span.len()).sum();
    let bar = progress.bytes_bar("restore", total);
    let files = |a: &ArchivePlan| a.members.iter().map(|m| m.dests.len() as u64).sum::<u64>();
    let files_total: u64 = ready.iter().map(|(a, _)| files(a)).sum();
    let files_done = AtomicU64::new(0);
    let queue = Mutex::new(ready.into_iter());
    let dirs = DirCache::default();
    let results = Mutex::new(Vec::new());
    // A full disk stops the restore: every later file would fail the same way, and on cold
    // storage each archive still downloaded costs money.
    let disk_full = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..plan.concurrency.max(1) {
            s.spawn(|| {
                loop {
                    if disk_full.load(Ordering::Relaxed) {
                        return;
                    }
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((a, ticket)) = next else { return };
                    let r = match a.legacy {
                        Some(_) => super::legacy::download(
                            backend,
                            &plan.to,
                            &dirs,
                            a,
                            ticket.as_deref(),
                            learned,
                        ),
                        None => download(backend, &plan.to, &dirs, a, ticket.as_deref(), lost),
                    };
                    if r.iter().any(|x| x.as_ref().is_err_and(|e| is_disk_full(e))) {
                        disk_full.store(true, Ordering::Relaxed);
                    }
                    bar.inc(a.span.len());
                    let n = files_done.fetch_add(files(a), Ordering::Relaxed) + files(a);
                    bar.set_message(format!("{n}/{files_total} files"));
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((a, r));
                }
            });
        }
    });
    bar.finish_and_clear();
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Takes the contents whose stored copy was missing or damaged out of the catalog, so that the
/// next sync stores them again from the files that still hold them; the next catalog backup is
/// a full copy (deltas carry no deletions).
fn forget_lost(lost: Vec<crate::hash::Hash32>, catalog: &mut Catalog) -> Result<()> {
    if lost.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp();
    if catalog.mark_lost(&lost, "found missing or damaged by a restore", now)? > 0 {
        crate::sync::owe_full_copy(catalog)?;
    }
    Ok(())
}

/// Whether a member's error is the file system's "no space left" (or its quota's).
fn is_disk_full(e: &str) -> bool {
    e.contains("(os error 28)") || e.contains("(os error 122)")
}

/// Counts what was restored, lists what failed, and forgets the retrieval of every archive
/// whose members all took their places. A full disk is one error, the first file it stopped.
fn record(
    results: Vec<(&ArchivePlan, Vec<MemberResult>)>,
    to: &Path,
    catalog: &mut Catalog,
    report: &mut RestoreReport,
) -> Result<()> {
    let mut disk_full_named = false;
    for (a, rs) in results {
        let mut all_ok = true;
        for (m, r) in a.members.iter().zip(rs) {
            for d in &m.dests {
                match &r {
                    Ok(()) => {
                        report.restored += 1;
                        report.restored_bytes += m.size;
                    }
                    Err(e) if is_disk_full(e) => {
                        all_ok = false;
                        if !std::mem::replace(&mut disk_full_named, true) {
                            report.errors.push(FileError {
                                path: d.file.clone(),
                                error: format!(
                                    "{e}: the restore stopped here; make room under {} and run \
                                     the same restore again (files already restored are kept)",
                                    to.display()
                                ),
                            });
                        }
                    }
                    Err(e) => {
                        all_ok = false;
                        report.errors.push(FileError {
                            path: d.file.clone(),
                            error: e.clone(),
                        });
                    }
                }
            }
        }
        if all_ok {
            catalog.delete_retrieval(a.id, a.span.start, a.span.end)?;
        }
    }
    Ok(())
}

/// Creates one symlink. `Ok(false)`: the same link is already there.
fn restore_link(to: &Path, overwrite: bool, link: &Link) -> io::Result<bool> {
    let dest = &link.path;
    let target = OsStr::from_bytes(&link.target);
    if let Some(parent) = dest.parent() {
        make_dirs(to, parent)?;
    }
    if let Ok(m) = fs::symlink_metadata(dest) {
        if m.file_type().is_symlink() && fs::read_link(dest)?.as_os_str() == target {
            return Ok(false);
        }
        if !overwrite {
            return Err(io::Error::other(format!(
                "{} exists: not overwritten (use --overwrite)",
                dest.display()
            )));
        }
        if m.is_dir() {
            return Err(io::Error::other(format!(
                "{} is a directory",
                dest.display()
            )));
        }
        fs::remove_file(dest)?;
    }
    std::os::unix::fs::symlink(target, dest)?;
    let t = file_time(link.mtime_ns);
    let _ = filetime::set_symlink_file_times(dest, t, t);
    Ok(true)
}

/// Creates one directory (if missing) and gives it back its mode and mtime.
fn restore_dir(to: &Path, dir: &Dest) -> io::Result<()> {
    make_dirs(to, &dir.path)?;
    set_times_and_mode(&dir.path, dir.mode, dir.mtime_ns)
}
