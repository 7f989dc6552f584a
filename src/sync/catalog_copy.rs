//! Storing a consistent copy of the catalog in the backend at the end of a sync, so a lost
//! machine can be recovered from the backend alone.

use super::SyncOptions;
use crate::backend::{Backend, ObjectKind, PutMeta};
use crate::catalog::{ArchiveKind, Catalog, NewArchive};
use crate::error::{Error, Result};
use std::path::Path;

/// Meta key: "1" while the catalog has changes that no copy in the backend holds.
pub(super) const BACKUP_PENDING: &str = "catalog_backup_pending";

/// Stores a consistent copy of the catalog in the backend and records it. The catalog owes a
/// copy until then, whatever stops this midway.
pub fn backup_catalog(
    opts: &SyncOptions,
    backend: &dyn Backend,
    catalog: &mut Catalog,
) -> Result<String> {
    crate::private::create_dir(&opts.staging_dir).map_err(|e| Error::io(&opts.staging_dir, e))?;
    let copy = opts
        .staging_dir
        .join(format!("catalog-{}.sqlite3", std::process::id()));
    let _ = std::fs::remove_file(&copy);
    let result = (|| {
        catalog.backup_to(&copy)?;
        // The copy says no backup is pending: it is the backup.
        Catalog::open(&copy)?.set_meta(BACKUP_PENDING, "0")?;
        let file = std::fs::File::open(&copy).map_err(|e| Error::io(&copy, e))?;
        let (hash, size) = crate::hash::tree_hash_reader(std::io::BufReader::new(file))
            .map_err(|e| Error::io(&copy, e))?;
        // `recover` takes the copy with the latest time, in seconds: each copy gets a later
        // second than the one before, even when two syncs end within one second.
        let last = catalog
            .archives()?
            .into_iter()
            .filter(|a| a.kind == ArchiveKind::Catalog)
            .map(|a| a.stored_at)
            .max();
        let created = last.map_or(super::now_secs(), |last| super::now_secs().max(last + 1));
        let id = backend.put(
            &PutMeta {
                kind: ObjectKind::Catalog,
                tree_hash: hash,
                size,
                profile: opts.profile.clone(),
                created,
                age_header: None,
            },
            &copy,
        )?;
        catalog.record_archive(&NewArchive {
            remote_id: id.clone(),
            kind: ArchiveKind::Catalog,
            size,
            tree_hash: hash,
            backend: backend.name().to_string(),
            stored_at: created,
        })?;
        catalog.set_meta(BACKUP_PENDING, "0")?;
        Ok(id)
    })();
    let _ = std::fs::remove_file(&copy);
    result
}

/// Removes temporary files a killed sync left in the staging directory.
pub fn clean_staging(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
