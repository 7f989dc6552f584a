//! The catalog: one SQLite database per profile recording snapshots, file versions, stored
//! contents and archives. Schema and meaning: `docs/catalog.md`. Knows nothing of backends.
//!
//! Invariants kept by this module:
//! - a version of a file is inserted only together with (or after) the content it names;
//! - at most one snapshot is `running`, and it is the newest: a sync resumes it;
//! - each (tree, path) has at most one current version (`until IS NULL`).

mod migrations;

use crate::error::{Error, Result};
use crate::hash::Hash32;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::{HashMap, HashSet};
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
}

impl ArchiveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveKind::File => "file",
            ArchiveKind::Bundle => "bundle",
            ArchiveKind::Catalog => "catalog",
        }
    }

    fn parse(s: &str) -> ArchiveKind {
        match s {
            "bundle" => ArchiveKind::Bundle,
            "catalog" => ArchiveKind::Catalog,
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

fn h2s(h: &Hash32) -> String {
    h.to_hex()
}

fn s2h(s: &str) -> rusqlite::Result<Hash32> {
    Hash32::from_hex(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("bad hash {s:?}").into(),
        )
    })
}

impl Catalog {
    /// Opens (creating when missing) the catalog at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Catalog> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Self::err_at(path, e))?;
        let mut cat = Catalog {
            conn,
            path: path.to_path_buf(),
        };
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
        Error::Catalog {
            path: path.to_path_buf(),
            message: e.to_string(),
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
        for (i, sql) in migrations::MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| Self::err_at(&self.path, e))?;
            tx.execute_batch(sql)
                .and_then(|()| tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)))
                .and_then(|()| tx.commit())
                .map_err(|e| Self::err_at(&self.path, e))?;
        }
        Ok(())
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn tx(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Self::err_at(&path, e))
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Removes `key` (nothing happens when it is absent).
    pub fn delete_meta(&mut self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?", [key])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Resumes the running snapshot or starts a new one. Returns its id and whether resumed.
    pub fn begin_snapshot(&mut self, now: i64) -> Result<(SnapshotId, bool)> {
        let running: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM snapshots WHERE status = 'running' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(id) = running {
            return Ok((id, true));
        }
        self.conn
            .execute(
                "INSERT INTO snapshots (started_at, status) VALUES (?, 'running')",
                [now],
            )
            .map_err(|e| self.err(e))?;
        Ok((self.conn.last_insert_rowid(), false))
    }

    /// Marks a snapshot complete.
    pub fn finish_snapshot(&mut self, id: SnapshotId, now: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE snapshots SET status = 'complete', finished_at = ?2 WHERE id = ?1",
                params![id, now],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The newest complete snapshot finished at or before `at` (seconds), or the newest of all.
    pub fn snapshot_at(&self, at: Option<i64>) -> Result<Option<Snapshot>> {
        self.conn
            .query_row(
                "SELECT id, started_at, finished_at FROM snapshots
                 WHERE status = 'complete' AND (?1 IS NULL OR finished_at <= ?1)
                 ORDER BY id DESC LIMIT 1",
                [at],
                |r| {
                    Ok(Snapshot {
                        id: r.get(0)?,
                        started_at: r.get(1)?,
                        finished_at: r.get(2)?,
                        complete: true,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, started_at, finished_at, status FROM snapshots ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Snapshot {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    complete: r.get::<_, String>(3)? == "complete",
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    fn read_version(r: &rusqlite::Row<'_>, base: usize) -> rusqlite::Result<VersionRecord> {
        let hash: Option<String> = r.get(base + 6)?;
        Ok(VersionRecord {
            tree: r.get(base)?,
            path: r.get(base + 1)?,
            kind: EntryKind::parse(&r.get::<_, String>(base + 2)?),
            size: r.get::<_, i64>(base + 3)? as u64,
            mtime_ns: r.get(base + 4)?,
            mode: r.get::<_, i64>(base + 5)? as u32,
            hash: hash.as_deref().map(s2h).transpose()?,
            target: r.get(base + 7)?,
        })
    }

    const VERSION_COLS: &'static str =
        "v.tree, v.path, v.kind, v.size, v.mtime_ns, v.mode, v.hash, v.target";

    /// Every current version, keyed by (tree, path).
    pub fn current_versions(&self) -> Result<HashMap<(String, Vec<u8>), CurrentVersion>> {
        let sql = format!(
            "SELECT v.id, {} FROM versions v WHERE v.until IS NULL",
            Self::VERSION_COLS
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        let rows = stmt
            .query_map([], |r| {
                Ok(CurrentVersion {
                    id: r.get(0)?,
                    rec: Self::read_version(r, 1)?,
                })
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let cv = row.map_err(|e| self.err(e))?;
            out.insert((cv.rec.tree.clone(), cv.rec.path.clone()), cv);
        }
        Ok(out)
    }

    /// Every stored content hash.
    pub fn known_contents(&self) -> Result<HashSet<Hash32>> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash FROM contents")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| s2h(&r.get::<_, String>(0)?))
            .and_then(|rows| rows.collect::<rusqlite::Result<HashSet<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    fn insert_versions(
        tx: &Transaction<'_>,
        versions: &[VersionRecord],
        snapshot: SnapshotId,
    ) -> rusqlite::Result<()> {
        let mut end = tx.prepare_cached(
            "UPDATE versions SET until = ?3 WHERE tree = ?1 AND path = ?2 AND until IS NULL",
        )?;
        let mut ins = tx.prepare_cached(
            "INSERT INTO versions (tree, path, kind, size, mtime_ns, mode, hash, target, since)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for v in versions {
            end.execute(params![v.tree, v.path, snapshot])?;
            ins.execute(params![
                v.tree,
                v.path,
                v.kind.as_str(),
                v.size as i64,
                v.mtime_ns,
                v.mode as i64,
                v.hash.as_ref().map(h2s),
                v.target,
                snapshot
            ])?;
        }
        Ok(())
    }

    /// Records an archive that the backend confirmed stored, the contents inside it, and the
    /// versions that use them, in one transaction. Each version supersedes the current version
    /// of its (tree, path).
    pub fn commit_archive(
        &mut self,
        archive: &NewArchive,
        contents: &[NewContent],
        versions: &[VersionRecord],
        snapshot: SnapshotId,
    ) -> Result<i64> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let run = || -> rusqlite::Result<i64> {
            let archive_id = Self::insert_archive(&tx, archive)?;
            let mut ins = tx.prepare_cached(
                "INSERT INTO contents (hash, size, archive_id, offset) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (hash) DO NOTHING",
            )?;
            for c in contents {
                ins.execute(params![
                    h2s(&c.hash),
                    c.size as i64,
                    archive_id,
                    c.offset as i64
                ])?;
            }
            drop(ins);
            Self::insert_versions(&tx, versions, snapshot)?;
            Ok(archive_id)
        };
        let id = run().map_err(|e| Self::err_at(&path, e))?;
        tx.commit().map_err(|e| Self::err_at(&path, e))?;
        Ok(id)
    }

    fn insert_archive(tx: &Transaction<'_>, a: &NewArchive) -> rusqlite::Result<i64> {
        tx.execute(
            "INSERT INTO archives (remote_id, kind, size, tree_hash, backend, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (remote_id) DO UPDATE SET stored_at = excluded.stored_at",
            params![
                a.remote_id,
                a.kind.as_str(),
                a.size as i64,
                h2s(&a.tree_hash),
                a.backend,
                a.stored_at
            ],
        )?;
        tx.query_row(
            "SELECT id FROM archives WHERE remote_id = ?",
            [&a.remote_id],
            |r| r.get(0),
        )
    }

    /// Records an archive with no contents (a catalog copy).
    pub fn record_archive(&mut self, archive: &NewArchive) -> Result<i64> {
        self.commit_archive(archive, &[], &[], 0)
    }

    /// Records versions whose content is already stored (or that have none), in one transaction.
    pub fn record_versions(
        &mut self,
        versions: &[VersionRecord],
        snapshot: SnapshotId,
    ) -> Result<()> {
        if versions.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self.tx()?;
        Self::insert_versions(&tx, versions, snapshot).map_err(|e| Self::err_at(&path, e))?;
        tx.commit().map_err(|e| Self::err_at(&path, e))
    }

    /// Ends the given current versions: their entries are gone as of `snapshot`.
    pub fn mark_gone(&mut self, ids: &[i64], snapshot: SnapshotId) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self.tx()?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE versions SET until = ?2 WHERE id = ?1 AND until IS NULL")
                .map_err(|e| Self::err_at(&path, e))?;
            for id in ids {
                stmt.execute(params![id, snapshot])
                    .map_err(|e| Self::err_at(&path, e))?;
            }
        }
        tx.commit().map_err(|e| Self::err_at(&path, e))
    }

    /// The versions visible in `snapshot`, ordered by tree and path, with content locations.
    pub fn versions_at(&self, snapshot: SnapshotId) -> Result<Vec<LocatedVersion>> {
        let sql = format!(
            "SELECT {}, a.id, a.remote_id, a.kind, a.size, a.tree_hash, a.backend, a.stored_at, c.offset
             FROM versions v
             LEFT JOIN contents c ON c.hash = v.hash
             LEFT JOIN archives a ON a.id = c.archive_id
             WHERE v.since <= ?1 AND (v.until IS NULL OR v.until > ?1)
             ORDER BY v.tree, v.path",
            Self::VERSION_COLS
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([snapshot], |r| {
                let rec = Self::read_version(r, 0)?;
                let archive_id: Option<i64> = r.get(8)?;
                let location = match archive_id {
                    None => None,
                    Some(id) => Some((
                        ArchiveRow {
                            id,
                            remote_id: r.get(9)?,
                            kind: ArchiveKind::parse(&r.get::<_, String>(10)?),
                            size: r.get::<_, i64>(11)? as u64,
                            tree_hash: s2h(&r.get::<_, String>(12)?)?,
                            backend: r.get(13)?,
                            stored_at: r.get(14)?,
                        },
                        r.get::<_, i64>(15)? as u64,
                    )),
                };
                Ok(LocatedVersion { rec, location })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Every archive.
    pub fn archives(&self) -> Result<Vec<ArchiveRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, remote_id, kind, size, tree_hash, backend, stored_at FROM archives ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ArchiveRow {
                    id: r.get(0)?,
                    remote_id: r.get(1)?,
                    kind: ArchiveKind::parse(&r.get::<_, String>(2)?),
                    size: r.get::<_, i64>(3)? as u64,
                    tree_hash: s2h(&r.get::<_, String>(4)?)?,
                    backend: r.get(5)?,
                    stored_at: r.get(6)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// The recorded retrieval for this archive range, if any.
    pub fn retrieval(&self, archive_id: i64, start: u64, end: u64) -> Result<Option<Retrieval>> {
        self.conn
            .query_row(
                "SELECT archive_id, range_start, range_end, tier, ticket, requested_at FROM retrievals
                 WHERE archive_id = ?1 AND range_start = ?2 AND range_end = ?3",
                params![archive_id, start as i64, end as i64],
                |r| {
                    Ok(Retrieval {
                        archive_id: r.get(0)?,
                        range_start: r.get::<_, i64>(1)? as u64,
                        range_end: r.get::<_, i64>(2)? as u64,
                        tier: r.get(3)?,
                        ticket: r.get(4)?,
                        requested_at: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records (or updates) a retrieval request.
    pub fn save_retrieval(&mut self, r: &Retrieval) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO retrievals (archive_id, range_start, range_end, tier, ticket, requested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (archive_id, range_start, range_end)
                 DO UPDATE SET tier = excluded.tier, ticket = excluded.ticket, requested_at = excluded.requested_at",
                params![
                    r.archive_id,
                    r.range_start as i64,
                    r.range_end as i64,
                    r.tier,
                    r.ticket,
                    r.requested_at
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Forgets a retrieval (its data was downloaded).
    pub fn delete_retrieval(&mut self, archive_id: i64, start: u64, end: u64) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM retrievals WHERE archive_id = ?1 AND range_start = ?2 AND range_end = ?3",
                params![archive_id, start as i64, end as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Figures for `status`.
    pub fn stats(&self) -> Result<Stats> {
        let q = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map(|v| v.unwrap_or(0))
                .map_err(|e| self.err(e))
        };
        let last_sync: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(finished_at) FROM snapshots WHERE status = 'complete'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(Stats {
            files: q("SELECT COUNT(*) FROM versions WHERE until IS NULL AND kind = 'file'")? as u64,
            file_bytes: q("SELECT SUM(size) FROM versions WHERE until IS NULL AND kind = 'file'")?
                as u64,
            versions: q("SELECT COUNT(*) FROM versions WHERE kind = 'file'")? as u64,
            contents: q("SELECT COUNT(*) FROM contents")? as u64,
            archives: q("SELECT COUNT(*) FROM archives")? as u64,
            stored_bytes: q("SELECT SUM(size) FROM archives")? as u64,
            last_sync,
            pending_retrievals: q("SELECT COUNT(*) FROM retrievals")? as u64,
        })
    }

    /// Writes a consistent copy of the catalog to `dest` (which must not exist).
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let dest_str = dest
            .to_str()
            .ok_or_else(|| Error::Usage(format!("{}: not a UTF-8 path", dest.display())))?;
        self.conn
            .execute("VACUUM INTO ?1", [dest_str])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// SQLite's integrity check plus this schema's own invariants. Empty when all is well.
    pub fn check(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        problems.extend(rows.into_iter().filter(|r| r != "ok"));
        let checks = [
            (
                "SELECT COUNT(*) FROM versions v LEFT JOIN contents c ON c.hash = v.hash
                 WHERE v.kind = 'file' AND c.hash IS NULL",
                "file versions whose content is not recorded as stored",
            ),
            (
                "SELECT COUNT(*) FROM contents c LEFT JOIN archives a ON a.id = c.archive_id
                 WHERE a.id IS NULL",
                "contents whose archive is missing",
            ),
            (
                "SELECT COUNT(*) FROM contents c JOIN archives a ON a.id = c.archive_id
                 WHERE c.offset + c.size > a.size",
                "contents that extend past the end of their archive",
            ),
            (
                "SELECT COUNT(*) FROM snapshots WHERE status = 'running'
                 AND id <> (SELECT MAX(id) FROM snapshots)",
                "unfinished snapshots that are not the newest",
            ),
            (
                "SELECT COUNT(*) FROM versions WHERE until IS NOT NULL AND until < since",
                "versions that end before they begin",
            ),
        ];
        for (sql, what) in checks {
            let n: i64 = self
                .conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests;
