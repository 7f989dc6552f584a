//! `ls` and `status`: read-only views of a profile's catalog.

use crate::catalog::{Catalog, EntryKind};
use crate::error::Result;
use crate::select::Selection;
use crate::settings::Profile;
use serde::Serialize;

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

/// The files as they stood at `at` (default: the last sync), filtered by `patterns`.
pub fn ls(p: &Profile, at: Option<i64>, patterns: &[String]) -> Result<Vec<LsEntry>> {
    let catalog = Catalog::open_existing(&p.catalog_path(), &p.name)?;
    let selection = Selection::new(patterns)?;
    let snapshot = crate::restore::snapshot_at(&catalog, at, &p.name)?;
    Ok(catalog
        .versions_at(snapshot.id)?
        .into_iter()
        .filter(|v| v.rec.kind != EntryKind::Dir && selection.matches(&v.rec.tree, &v.rec.path))
        .map(|v| LsEntry {
            path: v.rec.display_path(),
            raw_path: v.rec.full_path_bytes(),
            kind: v.rec.kind.as_str(),
            size: v.rec.size,
            mtime: crate::timespec::format_ns(v.rec.mtime_ns),
        })
        .collect())
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
}

pub fn status(p: &Profile) -> Result<StatusReport> {
    let path = p.catalog_path();
    let catalog = Catalog::open_existing(&path, &p.name)?;
    let st = catalog.stats()?;
    let snapshots = catalog.snapshots()?;
    let prices = crate::cost::pricing(p.backend.kind(), super::storage_class(p));
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
    })
}
