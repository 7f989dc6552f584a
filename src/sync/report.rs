//! The outcome of a sync: counts, errors, what was stored. It prints itself (`Display`, the
//! text summary) and serializes to the `--json` summary of SPEC.md.

use super::Estimate;
use crate::catalog::SnapshotId;
use crate::report::{Exit, Report};
use crate::units::bytes;
use serde::Serialize;
use std::fmt::{self, Display};
use std::time::Instant;

/// A file that could not be backed up.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileError {
    pub path: String,
    pub error: String,
}

/// How the scanned entries compare with the catalog. Directories are not counted, except
/// that `skipped` counts every entry left out (sockets, FIFOs, devices).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Files and links seen; `new + changed + unchanged = scanned - errors`.
    pub scanned: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub skipped: u64,
}

/// The outcome of syncing one profile: the `--json` summary of SPEC.md, and more.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub name: String,
    pub backend: String,
    pub dry_run: bool,
    #[serde(flatten)]
    pub counts: Counts,
    pub deduplicated: u64,
    pub read_bytes: u64,
    pub uploaded_bytes: u64,
    pub archives_uploaded: u64,
    pub snapshot: Option<SnapshotId>,
    pub resumed: bool,
    pub catalog_backup: Option<String>,
    pub errors: Vec<FileError>,
    /// What a dry run would store (dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Estimate>,
    pub seconds: f64,
}

impl SyncReport {
    /// The summary of a dry run: the plan's counts and estimate, nothing stored.
    pub fn of_plan(
        name: &str,
        backend: &str,
        plan: super::SyncPlan,
        started: Instant,
    ) -> SyncReport {
        SyncReport {
            name: name.to_string(),
            backend: backend.to_string(),
            dry_run: true,
            counts: plan.counts,
            errors: plan.errors,
            plan: Some(plan.estimate),
            seconds: started.elapsed().as_secs_f64(),
            ..Default::default()
        }
    }
}

impl Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(plan) = &self.plan {
            return write!(
                f,
                "{} (dry run): {} scanned, {} new, {} changed, {} unchanged, {} deleted; would read {}, {} small files in about {} bundles, {} large files ({}), {} archives, {} requests, about ${:.4} in requests and ${:.4}/month more storage",
                self.name,
                self.counts.scanned,
                self.counts.new,
                self.counts.changed,
                self.counts.unchanged,
                self.counts.deleted,
                bytes(plan.read_bytes),
                plan.bundled_files,
                plan.archives.saturating_sub(plan.large_files + 1),
                plan.large_files,
                bytes(plan.large_bytes),
                plan.archives,
                plan.requests,
                plan.estimated_upload_usd,
                plan.estimated_added_monthly_usd
            );
        }
        write!(
            f,
            "{}: {} scanned, {} new, {} changed, {} unchanged, {} deleted, {} deduplicated; {} archives ({}) uploaded in {:.1} s",
            self.name,
            self.counts.scanned,
            self.counts.new,
            self.counts.changed,
            self.counts.unchanged,
            self.counts.deleted,
            self.deduplicated,
            self.archives_uploaded,
            bytes(self.uploaded_bytes),
            self.seconds,
        )?;
        if self.counts.skipped > 0 {
            // Never a silent skip: -v names each.
            write!(
                f,
                "; {} skipped (sockets, FIFOs or devices: -v names them)",
                self.counts.skipped
            )?;
        }
        if !self.errors.is_empty() {
            write!(f, "; {} errors", self.errors.len())?;
        }
        Ok(())
    }
}

impl Report for SyncReport {
    /// 1 when some files could not be backed up (each is logged as it fails).
    fn exit_code(&self) -> Exit {
        if self.errors.is_empty() {
            Exit::Ok
        } else {
            Exit::Partial
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::AnyReport;

    fn failed(path: &str) -> FileError {
        FileError {
            path: path.into(),
            error: "permission denied".into(),
        }
    }

    #[test]
    fn sync_summaries() {
        let mut r = SyncReport {
            name: "docs".into(),
            counts: Counts {
                scanned: 6,
                new: 5,
                unchanged: 1,
                ..Default::default()
            },
            archives_uploaded: 2,
            uploaded_bytes: 3 << 20,
            seconds: 1.5,
            ..Default::default()
        };
        assert_eq!(
            r.to_string(),
            "docs: 6 scanned, 5 new, 0 changed, 1 unchanged, 0 deleted, 0 deduplicated; 2 archives (3 MiB) uploaded in 1.5 s"
        );
        assert_eq!(r.exit(), Exit::Ok);
        r.errors.push(failed("path/secret.txt"));
        assert!(
            r.to_string().ends_with("uploaded in 1.5 s; 1 errors"),
            "{r}"
        );
        assert_eq!(r.exit(), Exit::Partial);
        assert_eq!(r.json()["errors"][0]["path"], "path/secret.txt");
        r.plan = Some(Estimate {
            read_bytes: 1536,
            bundled_files: 4,
            large_files: 1,
            large_bytes: 1024,
            archives: 3,
            requests: 4,
            estimated_upload_usd: 0.0002,
            ..Default::default()
        });
        assert_eq!(
            r.to_string(),
            "docs (dry run): 6 scanned, 5 new, 0 changed, 1 unchanged, 0 deleted; would read 1.5 KiB, 4 small files in about 1 bundles, 1 large files (1 KiB), 3 archives, 4 requests, about $0.0002 in requests and $0.0000/month more storage"
        );
    }
}
