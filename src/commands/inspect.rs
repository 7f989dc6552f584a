//! `ls` and `status`: read-only views of a profile's catalog.

use crate::catalog::{Catalog, EntryKind};
use crate::error::Result;
use crate::report::{Channel, Exit, Report};
use crate::select::Selection;
use crate::settings::Profile;
use serde::Serialize;
use std::fmt::{self, Display};
use std::io::Write;

/// One line of `ls`.
#[derive(Debug, Clone, Serialize)]
pub struct LsEntry {
    /// `<tree>/<relative path>`, lossy for names that are not UTF-8.
    pub path: String,
    /// The same as raw bytes (for printing non-UTF-8 names exactly).
    #[serde(skip)]
    pub raw_path: Vec<u8>,
    pub kind: &'static str,
    pub size: u64,
    pub mtime: String,
}

/// `ls` of one profile: one line per file, `path<TAB>size<TAB>mtime`, on stdout.
#[derive(Debug, Clone, Serialize)]
pub struct LsReport {
    pub name: String,
    pub files: Vec<LsEntry>,
}

/// The text with names that are not UTF-8 made lossy; [`Report::write_text`] prints them exactly.
impl Display for LsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.files {
            writeln!(f, "{}\t{}\t{}", e.path, e.size, e.mtime)?;
        }
        Ok(())
    }
}

impl Report for LsReport {
    fn exit_code(&self) -> Exit {
        Exit::Ok
    }

    fn channel(&self) -> Channel {
        Channel::Stdout
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for e in &self.files {
            out.write_all(&e.raw_path)?;
            writeln!(out, "\t{}\t{}", e.size, e.mtime)?;
        }
        Ok(())
    }
}

/// The files as they stood at `at` (default: the last sync), filtered by `patterns`.
pub fn ls(p: &Profile, at: Option<i64>, patterns: &[String]) -> Result<LsReport> {
    let catalog = Catalog::open_existing(&p.catalog_path(), &p.name)?;
    let selection = Selection::new(patterns)?;
    let snapshot = crate::restore::snapshot_at(&catalog, at, &p.name)?;
    let mut files = Vec::new();
    catalog.for_each_version_at(snapshot.id, |v| {
        if v.rec.kind != EntryKind::Dir && selection.matches(&v.rec.tree, &v.rec.path) {
            files.push(LsEntry {
                path: v.rec.display_path(),
                raw_path: v.rec.full_path_bytes(),
                kind: v.rec.kind.as_str(),
                size: v.rec.size,
                mtime: crate::timespec::format_ns(v.rec.mtime_ns),
            });
        }
        Ok(())
    })?;
    Ok(LsReport {
        name: p.name.clone(),
        files,
    })
}

/// `status` of one profile.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub name: String,
    pub backend: String,
    pub catalog: String,
    pub files: u64,
    pub file_bytes: u64,
    pub versions: u64,
    pub contents: u64,
    pub archives: u64,
    pub stored_bytes: u64,
    pub last_sync: Option<String>,
    pub snapshots: u64,
    pub interrupted_sync: bool,
    pub pending_retrievals: u64,
    pub estimated_monthly_usd: f64,
    /// Bytes no kept version needs, held until their minimum storage duration has passed.
    pub dead_bytes_held: u64,
    /// When the last of them may go (`YYYY-MM-DD`).
    pub dead_held_until: Option<String>,
    /// Whether new objects are age-encrypted, and how much is stored either way.
    pub encrypting: bool,
    pub encryption: crate::catalog::EncryptionStats,
}

impl Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} backend, {} files ({} bytes), {} versions, {} archives ({} bytes stored), last sync {}{}, {} pending retrievals, about ${:.2}/month",
            self.name,
            self.backend,
            self.files,
            self.file_bytes,
            self.versions,
            self.archives,
            self.stored_bytes,
            self.last_sync.as_deref().unwrap_or("never"),
            if self.interrupted_sync {
                " (a later sync was interrupted: run sync to finish it)"
            } else {
                ""
            },
            self.pending_retrievals,
            self.estimated_monthly_usd
        )?;
        if self.dead_bytes_held > 0 {
            write!(
                f,
                ", {} dead but held until {} (minimum storage duration; prune deletes them then)",
                crate::units::bytes(self.dead_bytes_held),
                self.dead_held_until.as_deref().unwrap_or("?")
            )?;
        }
        self.fmt_encryption(f)
    }
}

impl StatusReport {
    /// `, age-encrypted (… still plaintext)` when any of it is, or will be.
    fn fmt_encryption(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.encryption;
        if !self.encrypting && e.encrypted_archives == 0 {
            return Ok(());
        }
        let state = if self.encrypting {
            "age-encrypted"
        } else {
            "encryption OFF"
        };
        write!(f, ", {state}: {} archives encrypted", e.encrypted_archives)?;
        if e.plaintext_archives > 0 {
            write!(
                f,
                ", {} archives ({}) still plaintext",
                e.plaintext_archives,
                crate::units::bytes(e.plaintext_bytes)
            )?;
        }
        Ok(())
    }
}

impl Report for StatusReport {
    fn exit_code(&self) -> Exit {
        Exit::Ok
    }

    fn channel(&self) -> Channel {
        Channel::Stdout
    }
}

pub fn status(p: &Profile) -> Result<StatusReport> {
    let path = p.catalog_path();
    let catalog = Catalog::open_existing(&path, &p.name)?;
    let st = catalog.stats()?;
    let snapshots = catalog.snapshots()?;
    let prices = crate::cost::pricing(p.backend.kind(), super::storage_class(p));
    let (dead_bytes_held, dead_held_until) = super::dead_but_held(p, &catalog)?;
    Ok(StatusReport {
        name: p.name.clone(),
        backend: p.backend.kind().to_string(),
        catalog: path.display().to_string(),
        files: st.files,
        file_bytes: st.file_bytes,
        versions: st.versions,
        contents: st.contents,
        archives: st.archives,
        stored_bytes: st.stored_bytes,
        last_sync: st.last_sync.map(crate::timespec::format),
        snapshots: snapshots.len() as u64,
        interrupted_sync: snapshots.last().is_some_and(|s| !s.complete),
        pending_retrievals: st.pending_retrievals,
        estimated_monthly_usd: prices.monthly(st.stored_bytes, st.archives),
        dead_bytes_held,
        dead_held_until,
        encrypting: p.age.encrypts(),
        encryption: catalog.encrypted_stats()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::AnyReport;

    #[test]
    fn status_is_one_line() {
        let mut r = StatusReport {
            name: "docs".into(),
            backend: "s3".into(),
            catalog: "/db/docs.sqlite".into(),
            files: 3,
            file_bytes: 300,
            versions: 4,
            contents: 3,
            archives: 2,
            stored_bytes: 310,
            last_sync: Some("2024-05-01T10:00:00+00:00".into()),
            snapshots: 2,
            interrupted_sync: false,
            pending_retrievals: 0,
            estimated_monthly_usd: 0.004,
            dead_bytes_held: 0,
            dead_held_until: None,
            encrypting: false,
            encryption: Default::default(),
        };
        assert_eq!(
            r.to_string(),
            "docs: s3 backend, 3 files (300 bytes), 4 versions, 2 archives (310 bytes stored), last sync 2024-05-01T10:00:00+00:00, 0 pending retrievals, about $0.00/month"
        );
        r.last_sync = None;
        r.interrupted_sync = true;
        assert!(
            r.to_string().contains(
                "last sync never (a later sync was interrupted: run sync to finish it), 0 pending"
            ),
            "{r}"
        );
        r.dead_bytes_held = 2048;
        r.dead_held_until = Some("2027-05-30".into());
        assert!(
            r.to_string().ends_with(", 2 KiB dead but held until 2027-05-30 (minimum storage duration; prune deletes them then)"),
            "{r}"
        );
        r.dead_bytes_held = 0;
        r.encrypting = true;
        r.encryption.encrypted_archives = 2;
        r.encryption.plaintext_archives = 1;
        r.encryption.plaintext_bytes = 3 << 20;
        assert!(
            r.to_string().ends_with(
                "age-encrypted: 2 archives encrypted, 1 archives (3 MiB) still plaintext"
            ),
            "{r}"
        );
        assert_eq!(r.channel(), Channel::Stdout);
        assert_eq!(r.exit(), Exit::Ok);
    }

    #[test]
    fn ls_prints_names_that_are_not_utf8_exactly() {
        let entry = |raw: &[u8]| LsEntry {
            path: String::from_utf8_lossy(raw).into_owned(),
            raw_path: raw.to_vec(),
            kind: "file",
            size: 5,
            mtime: "2024-05-01T10:00:00+00:00".into(),
        };
        let r = LsReport {
            name: "docs".into(),
            files: vec![entry(b"path/a.txt"), entry(b"path/caf\xe9")],
        };
        let mut out = Vec::new();
        r.write_text(&mut out).unwrap();
        assert_eq!(
            out,
            b"path/a.txt\t5\t2024-05-01T10:00:00+00:00\npath/caf\xe9\t5\t2024-05-01T10:00:00+00:00\n"
        );
        assert!(r.to_string().contains("path/caf\u{fffd}\t5"), "{r}");
        let json = r.json();
        assert_eq!(json["name"], "docs");
        assert_eq!(json["files"][1]["path"], "path/caf\u{fffd}");
        assert!(json["files"][0].get("raw_path").is_none());
    }
}
