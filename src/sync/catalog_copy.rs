//! Backing up the catalog at the end of a sync, so a lost machine can be recovered from the
//! backend alone: a full copy now and then, and in between a small delta of the rows that
//! changed since the previous copy or delta.
//!
//! A full copy is made when there is no recorded base to make a delta from (the first backup,
//! a catalog upgraded or recovered), after [`MAX_DELTAS`] deltas, or when the deltas since the
//! full copy would add up to more than 1/[`DELTA_FRACTION`] of it. `recover` applies the newest
//! full copy, then every delta newer than it, oldest first.
//!
//! Crash safety: the base (the mark a delta is made from) moves only after the backend
//! confirmed the object stored, so a delta that was uploaded but not recorded is followed by
//! one made from the same base, holding the same rows and newer ones; applied after it, the
//! newer delta wins. Each object's time is noted before it is uploaded and the next one gets a
//! later second, so the order of uploads is the order of times even for unrecorded ones.

use super::SyncOptions;
use crate::backend::{Backend, ObjectKind, PutMeta};
use crate::catalog::{ArchiveKind, Catalog, DeltaMark, NewArchive};
use crate::error::{Error, Result};
use std::path::Path;

/// Meta key: "1" while the catalog has changes that no copy in the backend holds.
pub const BACKUP_PENDING: &str = "catalog_backup_pending";
/// Meta key: the mark of the last recorded copy or delta; absent: the next backup is full.
pub const BACKUP_BASE: &str = "catalog_backup_base";
/// Meta key: deltas recorded since the last full copy, and their bytes.
const BACKUP_DELTAS: &str = "catalog_backup_deltas";
const BACKUP_DELTA_BYTES: &str = "catalog_backup_delta_bytes";
/// Meta key: bytes of the last full copy.
const BACKUP_FULL_BYTES: &str = "catalog_backup_full_bytes";
/// Meta key: the time given to the last catalog object before its upload.
pub const BACKUP_LAST_TIME: &str = "catalog_backup_last_time";

/// Deltas between two full copies at most.
pub const MAX_DELTAS: u64 = 50;
/// The deltas since a full copy add up to at most 1/DELTA_FRACTION of it, or to at most
/// MIN_DELTA_BYTES for a small catalog (a few KiB of deltas beat a full copy of any size).
pub const DELTA_FRACTION: u64 = 4;
pub const MIN_DELTA_BYTES: u64 = 1 << 20;

fn meta_u64(catalog: &Catalog, key: &str) -> Result<u64> {
    Ok(catalog.meta(key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// One catalog object ready to upload.
struct Prepared {
    kind: ObjectKind,
    hash: crate::hash::Hash32,
    size: u64,
}

/// Stores a full copy or a delta of the catalog in the backend and records it. The catalog
/// owes a backup until then, whatever stops this midway. Returns the object's id.
pub fn backup_catalog(
    opts: &SyncOptions,
    backend: &dyn Backend,
    catalog: &mut Catalog,
) -> Result<String> {
    crate::private::create_dir(&opts.staging_dir).map_err(|e| Error::io(&opts.staging_dir, e))?;
    let file = opts
        .staging_dir
        .join(format!("catalog-{}.sqlite3", std::process::id()));
    let packed = file.with_extension("sqlite3.zst");
    let _ = std::fs::remove_file(&file);
    let result = (|| {
        let mark = catalog.delta_mark()?;
        let prepared = prepare(catalog, &file, &packed)?;
        // A later second than any catalog object before, recorded or not.
        let last = meta_u64(catalog, BACKUP_LAST_TIME)? as i64;
        let created = super::now_secs().max(last + 1);
        catalog.set_meta(BACKUP_LAST_TIME, &created.to_string())?;
        // Written and hashed here: the local backend renames it into place, the encrypting
        // wrapper seals it without hashing it again (S3 and Glacier send it as `put` does).
        let id = backend.put_staged(
            &PutMeta {
                kind: prepared.kind,
                tree_hash: prepared.hash,
                size: prepared.size,
                profile: opts.profile.clone(),
                created,
                age_header: None,
            },
            &packed,
        )?;
        record(catalog, &prepared, &id, backend.name(), created, mark)?;
        Ok(id)
    })();
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&packed);
    result
}

/// Writes a delta from the recorded base to `file`, or a full copy when one is due, and
/// compresses it into `packed`: what is stored.
fn prepare(catalog: &Catalog, file: &Path, packed: &Path) -> Result<Prepared> {
    let base = catalog
        .meta(BACKUP_BASE)?
        .and_then(|b| DeltaMark::parse(&b));
    if let Some(base) = base
        && meta_u64(catalog, BACKUP_DELTAS)? < MAX_DELTAS
    {
        catalog.write_delta(base, file)?;
        let (hash, size) = crate::zst::compress(file, packed)?;
        let total = meta_u64(catalog, BACKUP_DELTA_BYTES)? + size;
        let full = meta_u64(catalog, BACKUP_FULL_BYTES)?;
        if total <= MIN_DELTA_BYTES.max(full / DELTA_FRACTION) {
            return Ok(Prepared {
                kind: ObjectKind::CatalogDelta,
                hash,
                size,
            });
        }
        std::fs::remove_file(file).map_err(|e| Error::io(file, e))?;
    }
    catalog.backup_to(file)?;
    {
        // The copy says no backup is pending (it is the backup) and has no base: a catalog
        // recovered from it makes a full copy first.
        let mut copy = Catalog::open(file)?;
        copy.set_meta(BACKUP_PENDING, "0")?;
        copy.delete_meta(BACKUP_BASE)?;
    }
    let (hash, size) = crate::zst::compress(file, packed)?;
    Ok(Prepared {
        kind: ObjectKind::Catalog,
        hash,
        size,
    })
}

/// Records the stored object and moves the base to `mark`.
fn record(
    catalog: &mut Catalog,
    p: &Prepared,
    id: &str,
    backend: &str,
    created: i64,
    mark: DeltaMark,
) -> Result<()> {
    let kind = match p.kind {
        ObjectKind::CatalogDelta => ArchiveKind::CatalogDelta,
        _ => ArchiveKind::Catalog,
    };
    catalog.record_archive(&NewArchive {
        remote_id: id.to_string(),
        kind,
        size: p.size,
        tree_hash: p.hash,
        backend: backend.to_string(),
        stored_at: created,
    })?;
    let (deltas, delta_bytes) = if kind == ArchiveKind::CatalogDelta {
        (
            meta_u64(catalog, BACKUP_DELTAS)? + 1,
            meta_u64(catalog, BACKUP_DELTA_BYTES)? + p.size,
        )
    } else {
        catalog.set_meta(BACKUP_FULL_BYTES, &p.size.to_string())?;
        (0, 0)
    };
    catalog.set_meta(BACKUP_DELTAS, &deltas.to_string())?;
    catalog.set_meta(BACKUP_DELTA_BYTES, &delta_bytes.to_string())?;
    catalog.set_meta(BACKUP_BASE, &mark.to_text())?;
    catalog.set_meta(BACKUP_PENDING, "0")
}

/// Makes the catalog owe a full copy: the sync that follows stores one even when nothing
/// changed (`sync --full-catalog-copy`, for when a copy in the backend was found damaged; the
/// deltas after it would build on it). Kept until a full copy is recorded, whatever stops the
/// sync.
pub fn owe_full_copy(catalog: &mut Catalog) -> Result<()> {
    catalog.delete_meta(BACKUP_BASE)?;
    catalog.set_meta(BACKUP_PENDING, "1")
}

/// Notes in a catalog that `recover` rebuilt from a full copy of `full_bytes` and deltas of
/// `delta_bytes` (the newest object made at `last_time`) that the backend holds all of it:
/// later deltas are made from here.
pub fn note_recovered(
    catalog: &mut Catalog,
    full_bytes: u64,
    delta_bytes: &[u64],
    last_time: i64,
) -> Result<()> {
    let mark = catalog.delta_mark()?;
    catalog.set_meta(BACKUP_FULL_BYTES, &full_bytes.to_string())?;
    catalog.set_meta(BACKUP_DELTAS, &delta_bytes.len().to_string())?;
    catalog.set_meta(
        BACKUP_DELTA_BYTES,
        &delta_bytes.iter().sum::<u64>().to_string(),
    )?;
    catalog.set_meta(BACKUP_LAST_TIME, &last_time.to_string())?;
    catalog.set_meta(BACKUP_BASE, &mark.to_text())?;
    catalog.set_meta(BACKUP_PENDING, "0")
}

/// Removes temporary files a killed sync left in the staging directory.
pub fn clean_staging(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
