//! The text summaries and exit codes of `sync` and `restore` (their [`Report`] impls). They
//! belong beside [`SyncReport`] and [`RestoreReport`]; they live here until those modules are
//! reshaped.

use super::report::{Exit, Report};
use crate::restore::RestoreReport;
use crate::sync::SyncReport;
use crate::units::bytes;
use std::fmt::{self, Display};

impl Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(plan) = &self.plan {
            return write!(
                f,
                "{} (dry run): {} scanned, {} new, {} changed, {} unchanged, {} deleted; would read {}, {} small files in about {} bundles, {} large files ({}), {} archives, {} requests, about ${:.4} in requests and ${:.4}/month more storage",
                self.name,
                self.scanned,
                self.new,
                self.changed,
                self.unchanged,
                self.deleted,
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
            self.scanned,
            self.new,
            self.changed,
            self.unchanged,
            self.deleted,
            self.deduplicated,
            self.archives_uploaded,
            bytes(self.uploaded_bytes),
            self.seconds,
        )?;
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

impl Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(plan) = &self.plan {
            return write!(
                f,
                "{} (dry run): {} files selected, {} already in place; would thaw {} objects ({}) with the {} tier, {} spared by ranged retrieval, {} requests",
                self.name,
                self.selected,
                self.already_present,
                plan.objects_to_thaw,
                bytes(plan.bytes_to_thaw),
                plan.tier,
                bytes(plan.bytes_saved_by_ranges),
                plan.requests
            );
        }
        write!(
            f,
            "{}: {} files restored ({}), {} already in place, {} links, {} pending retrievals",
            self.name,
            self.restored,
            bytes(self.restored_bytes),
            self.already_present,
            self.links,
            self.pending,
        )?;
        if !self.errors.is_empty() {
            write!(f, ", {} errors", self.errors.len())?;
        }
        Ok(())
    }
}

impl Report for RestoreReport {
    /// 75 while retrievals are pending, else 1 when some files failed.
    fn exit_code(&self) -> Exit {
        if self.pending > 0 {
            Exit::Pending
        } else if !self.errors.is_empty() {
            Exit::Partial
        } else {
            Exit::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::AnyReport;
    use crate::restore::TierPlan;
    use crate::sync::{FileError, Plan};

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
            scanned: 6,
            new: 5,
            unchanged: 1,
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
        r.plan = Some(Plan {
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

    #[test]
    fn restore_summaries_and_exit_codes() {
        let mut r = RestoreReport {
            name: "docs".into(),
            restored: 3,
            restored_bytes: 2048,
            already_present: 1,
            links: 1,
            ..Default::default()
        };
        assert_eq!(
            r.to_string(),
            "docs: 3 files restored (2 KiB), 1 already in place, 1 links, 0 pending retrievals"
        );
        assert_eq!(Report::exit_code(&r), Exit::Ok);
        r.errors.push(failed("path/b.txt"));
        assert!(r.to_string().ends_with(", 1 errors"), "{r}");
        assert_eq!(Report::exit_code(&r), Exit::Partial);
        r.pending = 2;
        assert_eq!(Report::exit_code(&r), Exit::Pending);
        r.plan = Some(TierPlan {
            tier: "bulk".into(),
            objects_to_thaw: 2,
            bytes_to_thaw: 10 << 30,
            bytes_saved_by_ranges: 0,
            requests: 2,
        });
        assert_eq!(
            r.to_string(),
            "docs (dry run): 0 files selected, 1 already in place; would thaw 2 objects (10 GiB) with the bulk tier, 0 B spared by ranged retrieval, 2 requests"
        );
    }
}
