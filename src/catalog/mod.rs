//! The catalog: one SQLite database per profile recording snapshots, file versions, stored
//! contents and archives. Schema and meaning: `docs/catalog.md`. Knows nothing of backends.
//!
//! Invariants kept by this module:
//! - a version of a file is inserted only together with (or after) the content it names;
//! - at most one snapshot is `running`, and it is the newest: a sync resumes it;
//! - each (tree, path) has at most one current version (`until IS NULL`).

mod archives;
mod check;
mod current;
mod delta;
mod encryption;
mod legacy;
mod lost;
pub use encryption::EncryptionStats;
mod meta;
mod migrations;
pub use migrations::MIGRATIONS;
mod prune;
mod retrievals;
mod snapshots;
mod versions;

pub use archives::ArchiveCommit;
pub use current::{CurrentLookup, CurrentMeta};
pub use delta::DeltaMark;
pub use legacy::{
    LEGACY_SYMLINK_MODE, LegacyArchiveIn, LegacyArchiveInfo, LegacyImportIn, LegacyMemberIn,
    LegacyMemberRow, LegacyResolved, LegacySymlink, legacy_placeholder,
};

use crate::error::{Error, Result};
use crate::hash::Hash32;
pub use prune::{Dead, Doomed, PrunedArchive, storage_class_at};
use rusqlite::{Connection, Transaction};
use std::path::{Path, PathBuf};

pub type SnapshotId = i64;

/// What a version records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Symlink,
    Dir,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Symlink => "symlink",
            EntryKind::Dir => "dir",
        }
    }

    fn parse(s: &str) -> EntryKind {
        match s {
            "symlink" => EntryKind::Symlink,
            "dir" => EntryKind::Dir,
            _ => EntryKind::File,
        }
    }
}

/// What an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    File,
    Bundle,
    Catalog,
    /// The rows a catalog copy would add to the copy or delta before it.
    CatalogDelta,
}

impl ArchiveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveKind::File => "file",
            ArchiveKind::Bundle => "bundle",
            ArchiveKind::Catalog => "catalog",
            ArchiveKind::CatalogDelta => "catalog-delta",
        }
    }

    fn parse(s: &str) -> ArchiveKind {
        match s {
            "bundle" => ArchiveKind::Bundle,
            "catalog" => ArchiveKind::Catalog,
            "catalog-delta" => ArchiveKind::CatalogDelta,
            _ => ArchiveKind::File,
        }
    }
}

/// One version of one entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Settings key of the tree: `path`, `path2`, …
    pub tree: String,
    /// Path relative to the tree root, `/`-separated, raw bytes (lossless for non-UTF-8 names).
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Unix permission bits (and file type bits as `lstat` gives them).
    pub mode: u32,
    /// Content identity (tree hash) of a file.
    pub hash: Option<Hash32>,
    /// Target of a symlink, raw bytes.
    pub target: Option<Vec<u8>>,
}

impl VersionRecord {
    /// The path as `ls` prints it: `<tree>/<relative path>`, lossy for non-UTF-8 bytes.
    pub fn display_path(&self) -> String {
        format!("{}/{}", self.tree, String::from_utf8_lossy(&self.path))
    }

    /// The path as raw bytes: `<tree>/<relative path>`.
    pub fn full_path_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.tree.len() + 1 + self.path.len());
        v.extend_from_slice(self.tree.as_bytes());
        v.push(b'/');
        v.extend_from_slice(&self.path);
        v
    }
}

/// The current version of an entry, with its row id.
#[derive(Debug, Clone)]
pub struct CurrentVersion {
    pub id: i64,
    pub rec: VersionRecord,
}

/// A stored archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRow {
    pub id: i64,
    pub remote_id: String,
    pub kind: ArchiveKind,
    pub size: u64,
    pub tree_hash: Hash32,
    pub backend: String,
    pub stored_at: i64,
}

/// An archive about to be recorded.
#[derive(Debug, Clone)]
pub struct NewArchive {
    pub remote_id: String,
    pub kind: ArchiveKind,
    pub size: u64,
    pub tree_hash: Hash32,
    pub backend: String,
    pub stored_at: i64,
}

/// A content stored inside an archive, at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewContent {
    pub hash: Hash32,
    pub size: u64,
    pub offset: u64,
}

/// A version with where its content lives.
#[derive(Debug, Clone)]
pub struct LocatedVersion {
    pub rec: VersionRecord,
    /// For files: the archive and the offset of the content inside it.
    pub location: Option<(ArchiveRow, u64)>,
}

/// A snapshot row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub complete: bool,
}

/// A recorded retrieval request (restore from cold storage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieval {
    pub archive_id: i64,
    pub range_start: u64,
    pub range_end: u64,
    pub tier: String,
    pub ticket: Option<String>,
    pub requested_at: i64,
}

/// Figures for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub files: u64,
    pub file_bytes: u64,
    pub versions: u64,
    pub contents: u64,
    pub archives: u64,
    pub stored_bytes: u64,
    pub last_sync: Option<i64>,
    pub pending_retrievals: u64,
}

/// An open catalog.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

/// A hash as the catalog stores it (a 32-byte blob, since schema version 2): bind hashes only
/// through this, and read them only through [`s2h`] / [`hash_col`] / [`opt_hash_col`].
fn h2s(h: &Hash32) -> &[u8] {
    &h.0
}

/// A hash read back from the catalog's storage form.
fn s2h(b: &[u8]) -> rusqlite::Result<Hash32> {
    let bytes: [u8; 32] = b.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            format!("bad hash: {} bytes, not 32", b.len()).into(),
        )
    })?;
    Ok(Hash32(bytes))
}

/// The hash in column `i` of a row.
fn hash_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Hash32> {
    s2h(r.get_ref(i)?.as_blob()?)
}

/// The hash or NULL in column `i` of a row.
fn opt_hash_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Hash32>> {
    r.get_ref(i)?.as_blob_or_null()?.map(s2h).transpose()
}

impl Catalog {
    /// Opens (creating when missing) the catalog at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Catalog> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            crate::private::create_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        if path != Path::new(":memory:") {
            crate::private::create_file(path).map_err(|e| Error::io(path, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Self::err_at(path, e))?;
        let mut cat = Catalog {
            conn,
            path: path.to_path_buf(),
        };
        // Before anything writes to the file (even the journal mode).
        cat.refuse_legacy_tables()?;
        cat.configure()?;
        cat.migrate()?;
        Ok(cat)
    }

    /// Opens an existing catalog; a missing one is an error that says what to do.
    pub fn open_existing(path: &Path, profile: &str) -> Result<Catalog> {
        if !path.exists() {
            return Err(Error::Usage(format!(
                "no catalog for profile {profile} at {}: run `glaciersync sync` first, or `glaciersync recover` to rebuild it from the backend",
                path.display()
            )));
        }
        Self::open(path)
    }

    /// An in-memory catalog, for tests.
    pub fn open_in_memory() -> Result<Catalog> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| Self::err_at(&path, e))?;
        let mut cat = Catalog { conn, path };
        cat.configure()?;
        cat.migrate()?;
        Ok(cat)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err_at(path: &Path, e: rusqlite::Error) -> Error {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        let damaged = matches!(e.sqlite_error_code(), Some(DatabaseCorrupt | NotADatabase));
        let mut message = e.to_string();
        if damaged {
            message.push_str(
                ": the catalog is damaged: move it (and its -wal file) away, then run \
                 `glaciersync recover` to rebuild it from the backend",
            );
        }
        Error::Catalog {
            path: path.to_path_buf(),
            message,
        }
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Self::err_at(&self.path, e)
    }

    fn configure(&mut self) -> Result<()> {
        self.conn
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| self.err(e))?;
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| self.err(e))
    }

    /// Gives SQLite a page cache of `mib` MiB and checkpoints the WAL every `mib` MiB, for a
    /// run that writes much (a sync). Inserts of random content hashes touch pages all over
    /// the `contents` index: with the default 2 MB cache each transaction read them back from
    /// the file and a checkpoint ran after nearly every commit. At a million files a 32 MiB
    /// cache took a tenth off a first backup's CPU time (bench/README.md).
    pub fn set_write_cache(&mut self, mib: u32) -> Result<()> {
        let pages = u64::from(mib) * 1024 * 1024 / 4096;
        self.conn
            .execute_batch(&format!(
                "PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = {pages};",
                u64::from(mib) * 1024
            ))
            .map_err(|e| self.err(e))
    }

    fn migrate(&mut self) -> Result<()> {
        let version: usize = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(|e| self.err(e))? as usize;
        let target = migrations::MIGRATIONS.len();
        if version > target {
            return Err(Error::Catalog {
                path: self.path.clone(),
                message: format!(
                    "schema version {version} is newer than this glaciersync knows ({target}): upgrade glaciersync"
                ),
            });
        }
        if version == target {
            return Ok(());
        }
        // Foreign keys off while tables are rebuilt (SQLite's recommended way), and checked
        // before each migration commits.
        self.conn
            .execute_batch("PRAGMA foreign_keys = OFF")
            .map_err(|e| self.err(e))?;
        for (i, sql) in migrations::MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| Self::err_at(&self.path, e))?;
            tx.execute_batch(sql)
                .and_then(|()| {
                    let broken: i64 =
                        tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                            r.get(0)
                        })?;
                    if broken > 0 {
                        return Err(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                            Some(format!(
                                "migration {} left {broken} rows whose references are missing",
                                i + 1
                            )),
                        ));
                    }
                    Ok(())
                })
                .and_then(|()| tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)))
                .and_then(|()| tx.commit())
                .map_err(|e| Self::err_at(&self.path, e))?;
        }
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON")
            .map_err(|e| self.err(e))
    }

    fn tx(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Self::err_at(&path, e))
    }
}

#[cfg(test)]
mod tests;
