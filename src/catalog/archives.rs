//! Stored contents and the archives holding them, and the figures for `status`.

use super::{
    ArchiveKind, ArchiveRow, Catalog, NewArchive, NewContent, SnapshotId, Stats, VersionRecord,
    h2s, hash_col,
};

/// An archive the backend confirmed stored, with its contents and the versions using them.
#[derive(Debug, Clone)]
pub struct ArchiveCommit {
    pub archive: NewArchive,
    pub contents: Vec<NewContent>,
    pub versions: Vec<VersionRecord>,
}
use crate::error::Result;
use crate::hash::Hash32;
use rusqlite::{Transaction, params};
use std::collections::HashSet;

impl Catalog {
    /// How many contents are stored.
    pub fn content_count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM contents", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Calls `f` with every stored content hash, in the table's order.
    pub fn for_each_content(&self, mut f: impl FnMut(&Hash32)) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash FROM contents")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            f(&hash_col(row, 0).map_err(|e| self.err(e))?);
        }
        Ok(())
    }

    /// Every stored content hash.
    pub fn known_contents(&self) -> Result<HashSet<Hash32>> {
        self.hash_set("SELECT hash FROM contents")
    }

    /// The hashes a query of one hash column returns.
    pub(super) fn hash_set(&self, sql: &str) -> Result<HashSet<Hash32>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| hash_col(r, 0))
            .and_then(|rows| rows.collect::<rusqlite::Result<HashSet<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
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
        let id = Self::insert_stored(&tx, archive, contents, versions, snapshot)
            .map_err(|e| Self::err_at(&path, e))?;
        tx.commit().map_err(|e| Self::err_at(&path, e))?;
        Ok(id)
    }

    /// [`commit_archive`](Self::commit_archive) of several archives, and `versions` of
    /// contents stored before, in one transaction. A sync gathers what it stored for a second
    /// or two: one commit per bundle wrote the pages of the `contents` index that each one's
    /// random hashes touched, again for every bundle (5 GB of writes for a first backup of a
    /// million small files).
    pub fn commit_archives(
        &mut self,
        stored: &[ArchiveCommit],
        versions: &[VersionRecord],
        snapshot: SnapshotId,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let run = || -> rusqlite::Result<()> {
            let mut contents = Vec::new();
            for a in stored {
                let id = Self::insert_archive(&tx, &a.archive)?;
                contents.extend(a.contents.iter().map(|c| (c, id)));
            }
            // In hash order: each page of the `contents` B-tree is then visited once a batch,
            // not once for every random hash that lands on it.
            contents.sort_unstable_by_key(|x| x.0.hash.0);
            Self::insert_contents(&tx, &contents)?;
            for a in stored {
                Self::insert_versions(&tx, &a.versions, snapshot)?;
            }
            Self::insert_versions(&tx, versions, snapshot)
        };
        run().map_err(|e| Self::err_at(&path, e))?;
        tx.commit().map_err(|e| Self::err_at(&path, e))
    }

    fn insert_stored(
        tx: &Transaction<'_>,
        archive: &NewArchive,
        contents: &[NewContent],
        versions: &[VersionRecord],
        snapshot: SnapshotId,
    ) -> rusqlite::Result<i64> {
        let archive_id = Self::insert_archive(tx, archive)?;
        let with_id: Vec<(&NewContent, i64)> = contents.iter().map(|c| (c, archive_id)).collect();
        Self::insert_contents(tx, &with_id)?;
        Self::insert_versions(tx, versions, snapshot)?;
        Ok(archive_id)
    }

    /// Records contents, each in its archive (by id).
    fn insert_contents(
        tx: &Transaction<'_>,
        contents: &[(&NewContent, i64)],
    ) -> rusqlite::Result<()> {
        // A content found lost (almost never) moves to the archive that stores it again.
        let any_lost: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM lost_contents)", [], |r| {
                r.get(0)
            })?;
        let mut ins = tx.prepare_cached(if any_lost {
            "INSERT INTO contents (hash, size, archive_id, offset) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (hash) DO UPDATE SET archive_id = excluded.archive_id,
                 offset = excluded.offset
             WHERE contents.hash IN (SELECT hash FROM lost_contents)"
        } else {
            "INSERT INTO contents (hash, size, archive_id, offset) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (hash) DO NOTHING"
        })?;
        for (c, archive_id) in contents {
            ins.execute(params![
                h2s(&c.hash),
                c.size as i64,
                archive_id,
                c.offset as i64
            ])?;
        }
        drop(ins);
        if any_lost {
            let mut found = tx.prepare_cached("DELETE FROM lost_contents WHERE hash = ?1")?;
            for (c, _) in contents {
                found.execute([h2s(&c.hash)])?;
            }
        }
        Ok(())
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
                    tree_hash: hash_col(r, 4)?,
                    backend: r.get(5)?,
                    stored_at: r.get(6)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
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
}
