//! Versions of entries: the current ones, recording new ones, ending them, and reading a snapshot.

use super::{
    ArchiveKind, ArchiveRow, Catalog, CurrentVersion, EntryKind, LocatedVersion, SnapshotId,
    VersionRecord, h2s, hash_col, opt_hash_col,
};
use crate::error::Result;
use rusqlite::{Transaction, params};
use std::collections::HashMap;

impl Catalog {
    fn read_version(r: &rusqlite::Row<'_>, base: usize) -> rusqlite::Result<VersionRecord> {
        Ok(VersionRecord {
            tree: r.get(base)?,
            path: r.get(base + 1)?,
            kind: EntryKind::parse(&r.get::<_, String>(base + 2)?),
            size: r.get::<_, i64>(base + 3)? as u64,
            mtime_ns: r.get(base + 4)?,
            mode: r.get::<_, i64>(base + 5)? as u32,
            hash: opt_hash_col(r, base + 6)?,
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

    pub(super) fn insert_versions(
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
            let row = params![
                v.tree,
                v.path,
                v.kind.as_str(),
                v.size as i64,
                v.mtime_ns,
                v.mode as i64,
                v.hash.as_ref().map(h2s),
                v.target,
                snapshot
            ];
            // Most versions are of new paths: insert first, and only when the path has a
            // current version (the unique index refuses) end it and insert again. One index
            // search a new file instead of two.
            match ins.execute(row) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
                {
                    end.execute(params![v.tree, v.path, snapshot])?;
                    ins.execute(row)?;
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
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
        let mut out = Vec::new();
        self.for_each_version_at(snapshot, |v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` for each version visible in `snapshot`, ordered by tree and path, with content
    /// locations, one row at a time (a million-file catalog is never held in memory).
    pub fn for_each_version_at(
        &self,
        snapshot: SnapshotId,
        mut f: impl FnMut(LocatedVersion) -> Result<()>,
    ) -> Result<()> {
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
        let mut rows = stmt.query([snapshot]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let v = Self::read_located(r).map_err(|e| self.err(e))?;
            f(v)?;
        }
        Ok(())
    }

    fn read_located(r: &rusqlite::Row<'_>) -> rusqlite::Result<LocatedVersion> {
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
                    tree_hash: hash_col(r, 12)?,
                    backend: r.get(13)?,
                    stored_at: r.get(14)?,
                },
                r.get::<_, i64>(15)? as u64,
            )),
        };
        Ok(LocatedVersion { rec, location })
    }
}
