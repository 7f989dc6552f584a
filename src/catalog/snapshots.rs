//! Snapshots: starting or resuming one, finishing it, and finding them again.

use super::{Catalog, Snapshot, SnapshotId};
use crate::error::Result;
use rusqlite::{OptionalExtension, params};

impl Catalog {
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
}
