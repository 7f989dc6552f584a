//! `sync` on the machine that ran the script: the catalog file `<database_dir>/<profile>.sqlite3`
//! holds the script's tables. Its bytes are first copied into a backup file beside it (never
//! changed again), then a catalog of ours is built from them in a temporary file and renamed
//! over it, so a kill at any moment leaves either the legacy file or the adopted catalog.

use super::db;
use super::import::{self, Import, Probe};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::settings::Profile;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The profile's trees as (key, root).
pub fn trees(p: &Profile) -> Vec<(String, PathBuf)> {
    p.trees
        .iter()
        .map(|t| (t.key.clone(), t.root.clone()))
        .collect()
}

/// The file on disk, when its size and mtime are the legacy row's: its exact mtime and mode.
/// `os.path.getmtime` gave `sec + nsec * 1e-9` as a double; equal within a microsecond.
fn probe_disk(root: &Path, rel: &str, size: u64, mtime: f64) -> Option<(i64, u32)> {
    let meta = std::fs::symlink_metadata(root.join(rel)).ok()?;
    if !meta.is_file() || meta.len() != size {
        return None;
    }
    let secs = meta.mtime() as f64 + meta.mtime_nsec() as f64 * 1e-9;
    if (secs - mtime).abs() > 1e-6 {
        return None;
    }
    Some((crate::scan::mtime_ns(&meta), meta.mode()))
}

/// Where the legacy file's bytes are kept: `<profile>.sqlite3.legacy-2013`, or with `.N`.
pub(super) fn backup_path(catalog: &Path) -> PathBuf {
    let base = format!("{}.legacy-2013", catalog.display());
    (1..)
        .map(|n| match n {
            1 => PathBuf::from(&base),
            n => PathBuf::from(format!("{base}.{n}")),
        })
        .find(|p| !p.exists())
        .expect("a free name")
}

/// The one line that says what was adopted.
pub fn summary(p: &Profile, what: &str, im: &Import, kept: &Path) -> String {
    let trees: Vec<String> = im
        .trees
        .iter()
        .map(|t| {
            let how = if t.matched {
                ""
            } else {
                " (no tree of the profile has this path)"
            };
            format!("{} → {}{how}", t.basepath, t.key)
        })
        .collect();
    let older = match im.superseded {
        0 => String::new(),
        n => format!(", and {n} older archives no file needs now (kept)"),
    };
    format!(
        "{}: adopted {what}: {} files in {} archives{older} ({}); the legacy tables are kept in {}",
        p.name,
        im.catalog.versions.len(),
        im.catalog.archives.len() - im.superseded,
        trees.join(", "),
        kept.display()
    )
}

/// Builds a catalog of ours holding `im` at `dest`, through a temporary file.
pub fn write_catalog(im: &Import, dest: &Path) -> Result<()> {
    let tmp = PathBuf::from(format!("{}.adopting", dest.display()));
    let remove = |t: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", t.display()));
        }
    };
    remove(&tmp);
    let built = (|| {
        let mut cat = Catalog::open(&tmp)?;
        cat.import_legacy(&im.catalog)?;
        Ok::<(), Error>(())
    })();
    if let Err(e) = built {
        remove(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
}

/// The legacy database at `path` and its import, when that is what `path` holds.
fn read_and_build(p: &Profile, path: &Path) -> Result<Option<(db::LegacyDb, Import)>> {
    if !path.exists() || !db::is_legacy(path) {
        return Ok(None);
    }
    let legacy = db::read(path)?;
    let time = std::fs::metadata(path)
        .map(|m| m.mtime())
        .map_err(|e| Error::io(path, e))?;
    let probe: Probe<'_> = &probe_disk;
    let im = import::build(
        &legacy,
        &trees(p),
        time,
        &Default::default(),
        p.backend.kind(),
        Some(probe),
    );
    Ok(Some((legacy, im)))
}

/// Adopts the legacy database at the profile's catalog path, if that is what it holds.
/// Returns the line it logged.
pub fn adopt(p: &Profile) -> Result<Option<String>> {
    let path = p.catalog_path();
    let Some((legacy, im)) = read_and_build(p, &path)? else {
        return Ok(None);
    };
    let kept = backup_path(&path);
    copy_synced(&path, &kept)?;
    write_catalog(&im, &path)?;
    let line = summary(
        p,
        &format!("the 2013 script's database {}", path.display()),
        &im,
        &kept,
    );
    crate::log::info(&line);
    for f in &legacy.unplaced {
        crate::log::warn(&format!(
            "{}: the legacy database places no archive for {f}: not imported",
            p.name
        ));
    }
    Ok(Some(line))
}

/// For `sync --dry-run`: the legacy database as an in-memory catalog, nothing written.
pub fn in_memory(p: &Profile) -> Result<Option<Catalog>> {
    let path = p.catalog_path();
    let Some((_, im)) = read_and_build(p, &path)? else {
        return Ok(None);
    };
    let mut cat = Catalog::open_in_memory()?;
    cat.import_legacy(&im.catalog)?;
    Ok(Some(cat))
}

fn copy_synced(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map_err(|e| Error::io(to, e))?;
    // A copy takes its source's mode; the script's database holds every file name.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(to, e))?;
    }
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(to, e))
}
