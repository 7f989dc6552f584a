//! What `prune` asks of the catalog and the one transaction in which it forgets snapshots,
//! their versions and the archives only they needed. Order and crash safety: docs/catalog.md.

use super::{ArchiveRow, Catalog, SnapshotId};
use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;

/// Versions no kept snapshot shows once `prune_forget` is forgotten.
const DEAD_VERSIONS: &str = "SELECT v.id FROM versions v WHERE NOT EXISTS (
    SELECT 1 FROM snapshots s WHERE s.id >= v.since AND (v.until IS NULL OR s.id < v.until)
      AND s.id NOT IN (SELECT id FROM temp.prune_forget))";

/// Data archives (`file`, `bundle`: never catalog copies or any other kind) holding no content
/// that a version outside `prune_dead` needs. Archives of the 2013 script (`legacy_archives`)
/// are never taken: they may be all that holds a file the script backed up. The live archives
/// are one uncorrelated set (one pass over the versions, each looking its content up by hash),
/// so the cost grows with versions + archives, never with their product.
const DEAD_ARCHIVES: &str = "SELECT a.id FROM archives a WHERE a.kind IN ('file', 'bundle')
     AND a.id NOT IN (SELECT archive_id FROM legacy_archives)
     AND a.id NOT IN (SELECT c.archive_id FROM versions v JOIN contents c ON c.hash = v.hash
                       WHERE v.id NOT IN (SELECT id FROM temp.prune_dead))";

/// An archive taken out of the catalog by `prune`, to be (or already) deleted in the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedArchive {
    pub remote_id: String,
    pub kind: String,
    pub size: u64,
    pub backend: String,
    pub marked_at: i64,
    pub deleted_at: Option<i64>,
}

/// An object to take out: a catalog archive (by id) or one the catalog never knew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doomed {
    Archive(i64),
    Unknown {
        remote_id: String,
        kind: String,
        size: u64,
    },
}

/// The S3 class data stored at `stored_at` went to, from the `(since, class)` history of
/// [`Catalog::storage_classes`] (oldest first); `None` when stored before every record.
pub fn storage_class_at(history: &[(i64, String)], stored_at: i64) -> Option<&str> {
    history
        .iter()
        .rev()
        .find(|(since, _)| *since <= stored_at)
        .map(|(_, c)| c.as_str())
}

/// What forgetting some snapshots would leave dead.
#[derive(Debug, Clone, Default)]
pub struct Dead {
    pub versions: u64,
    pub archives: Vec<ArchiveRow>,
}

/// Fills the temporary tables `prune_forget` (with `forget`) and `prune_dead`.
fn fill_temp(conn: &Connection, forget: &[SnapshotId]) -> rusqlite::Result<u64> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS prune_forget (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS prune_dead (id INTEGER PRIMARY KEY);
         DELETE FROM temp.prune_forget; DELETE FROM temp.prune_dead;",
    )?;
    let mut ins = conn.prepare_cached("INSERT OR IGNORE INTO temp.prune_forget (id) VALUES (?)")?;
    for id in forget {
        ins.execute([id])?;
    }
    let n = conn.execute(
        &format!("INSERT INTO temp.prune_dead (id) {DEAD_VERSIONS}"),
        [],
    )?;
    Ok(n as u64)
}

impl Catalog {
    /// The versions and data archives that forgetting `forget` would leave unneeded (with
    /// `forget` empty: those already unneeded). Writes only temporary tables.
    pub fn dead_after_forget(&self, forget: &[SnapshotId]) -> Result<Dead> {
        let run = || -> rusqlite::Result<(u64, HashSet<i64>)> {
            let versions = fill_temp(&self.conn, forget)?;
            let mut stmt = self.conn.prepare(DEAD_ARCHIVES)?;
            let ids = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<HashSet<i64>>>()?;
            Ok((versions, ids))
        };
        let (versions, ids) = run().map_err(|e| self.err(e))?;
        let mut archives = self.archives()?;
        archives.retain(|a| ids.contains(&a.id));
        Ok(Dead { versions, archives })
    }

    /// In one transaction: forgets the snapshots `forget` and the versions only they showed
    /// (a kept version's `since`/`until` moves to the next kept snapshot), and moves `doomed`
    /// into `pruned_archives` (an archive with its contents and retrievals). Refuses, changing
    /// nothing, if a kept version still needs a doomed archive.
    pub fn forget_and_mark(
        &mut self,
        forget: &[SnapshotId],
        doomed: &[Doomed],
        now: i64,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let refused = (|| -> rusqlite::Result<Option<String>> {
            fill_temp(&tx, forget)?;
            forget_versions(&tx)?;
            if let Some(why) = still_needed(&tx, doomed)? {
                return Ok(Some(why));
            }
            for d in doomed {
                mark(&tx, d, now)?;
            }
            tx.execute_batch(
                "DELETE FROM contents WHERE archive_id IN (SELECT id FROM temp.prune_doomed);
                 DELETE FROM archives WHERE id IN (SELECT id FROM temp.prune_doomed);",
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('catalog_backup_pending', '1')
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [],
            )?;
            // Deltas carry new and changed rows, never deleted ones: after a prune the next
            // catalog backup must be a full copy (no base), or a recover would bring the
            // forgotten rows back.
            tx.execute("DELETE FROM meta WHERE key = 'catalog_backup_base'", [])?;
            Ok(None)
        })()
        .map_err(|e| Self::err_at(&path, e))?;
        if let Some(why) = refused {
            return Err(Error::Catalog {
                path,
                message: format!("prune refused, nothing changed: {why}"),
            });
        }
        tx.commit().map_err(|e| Self::err_at(&path, e))
    }

    /// Archives taken out of the catalog whose deletion in the backend is not confirmed yet.
    pub fn pending_deletions(&self) -> Result<Vec<PrunedArchive>> {
        self.pruned("WHERE deleted_at IS NULL")
    }

    /// The remote ids of every archive prune took out (deleted or not).
    pub fn pruned_ids(&self) -> Result<HashSet<String>> {
        Ok(self.pruned("")?.into_iter().map(|p| p.remote_id).collect())
    }

    fn pruned(&self, filter: &str) -> Result<Vec<PrunedArchive>> {
        let sql = format!(
            "SELECT remote_id, kind, size, backend, marked_at, deleted_at FROM pruned_archives
             {filter} ORDER BY marked_at, remote_id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(PrunedArchive {
                remote_id: r.get(0)?,
                kind: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                backend: r.get(3)?,
                marked_at: r.get(4)?,
                deleted_at: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| self.err(e))
    }

    /// Records that the backend deleted (or no longer has) `remote_id`.
    pub fn mark_deleted(&mut self, remote_id: &str, now: i64) -> Result<()> {
        self.mark_deleted_many(&[remote_id.to_string()], now)
    }

    /// Records several deletions in one transaction.
    pub fn mark_deleted_many(&mut self, remote_ids: &[String], now: i64) -> Result<()> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let run = || -> rusqlite::Result<()> {
            let mut stmt = tx.prepare_cached(
                "UPDATE pruned_archives SET deleted_at = ?2 WHERE remote_id = ?1",
            )?;
            for id in remote_ids {
                stmt.execute(params![id, now])?;
            }
            Ok(())
        };
        run().map_err(|e| Self::err_at(&path, e))?;
        tx.commit().map_err(|e| Self::err_at(&path, e))
    }

    /// Drops the record of a pruned archive (its key is in use again).
    pub fn forget_pruned(&mut self, remote_id: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM pruned_archives WHERE remote_id = ?",
                [remote_id],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Notes that data goes to S3 class `class` from `now` on (nothing when it already does).
    pub fn note_storage_class(&mut self, class: &str, now: i64) -> Result<()> {
        let history = self.storage_classes()?;
        if history.last().is_some_and(|(_, c)| c == class) {
            return Ok(());
        }
        self.conn
            .execute(
                "INSERT INTO storage_classes (since, class) VALUES (?1, ?2)",
                params![now, class],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// `(since, class)` pairs, oldest first.
    pub fn storage_classes(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT since, class FROM storage_classes ORDER BY since, rowid")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))
    }
}

/// Deletes the versions in `prune_dead`, moves kept versions' ends off forgotten snapshots,
/// then deletes those snapshots.
fn forget_versions(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DELETE FROM versions WHERE id IN (SELECT id FROM temp.prune_dead);
         UPDATE versions SET since = (SELECT MIN(s.id) FROM snapshots s WHERE s.id >= versions.since
                AND s.id NOT IN (SELECT id FROM temp.prune_forget))
          WHERE since IN (SELECT id FROM temp.prune_forget);
         UPDATE versions SET until = (SELECT MIN(s.id) FROM snapshots s WHERE s.id >= versions.until
                AND s.id NOT IN (SELECT id FROM temp.prune_forget))
          WHERE until IN (SELECT id FROM temp.prune_forget);
         DELETE FROM snapshots WHERE id IN (SELECT id FROM temp.prune_forget);",
    )
}

/// Fills `temp.prune_doomed` with the doomed archives; `Some(reason)` when a kept version still
/// needs one of them. One pass over the versions (each content looked up by its hash), so
/// `contents` needs no index by archive.
fn still_needed(tx: &Connection, doomed: &[Doomed]) -> rusqlite::Result<Option<String>> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS prune_doomed (id INTEGER PRIMARY KEY);
         DELETE FROM temp.prune_doomed;",
    )?;
    let mut insert =
        tx.prepare_cached("INSERT OR IGNORE INTO temp.prune_doomed (id) VALUES (?)")?;
    for d in doomed {
        if let Doomed::Archive(id) = d {
            insert.execute([id])?;
        }
    }
    let needed: Option<(i64, i64)> = tx
        .query_row(
            "SELECT c.archive_id, COUNT(*) FROM versions v JOIN contents c ON c.hash = v.hash
             WHERE c.archive_id IN (SELECT id FROM temp.prune_doomed)
             GROUP BY c.archive_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(needed.map(|(id, n)| format!("archive {id} still holds the content of {n} kept versions")))
}

/// Moves one doomed object into `pruned_archives` (its contents and archive row go afterwards,
/// all at once).
fn mark(tx: &Connection, d: &Doomed, now: i64) -> rusqlite::Result<()> {
    let id = match d {
        Doomed::Unknown {
            remote_id,
            kind,
            size,
        } => {
            tx.prepare_cached(
                "INSERT INTO pruned_archives (remote_id, kind, size, backend, marked_at)
                 VALUES (?1, ?2, ?3, '', ?4) ON CONFLICT (remote_id) DO NOTHING",
            )?
            .execute(params![remote_id, kind, *size as i64, now])?;
            return Ok(());
        }
        Doomed::Archive(id) => *id,
    };
    tx.prepare_cached(
        "INSERT INTO pruned_archives (remote_id, kind, size, backend, marked_at)
         SELECT remote_id, kind, size, backend, ?2 FROM archives WHERE id = ?1
         ON CONFLICT (remote_id) DO UPDATE SET deleted_at = NULL, marked_at = excluded.marked_at",
    )?
    .execute(params![id, now])?;
    tx.prepare_cached("DELETE FROM retrievals WHERE archive_id = ?")?
        .execute([id])?;
    Ok(())
}
