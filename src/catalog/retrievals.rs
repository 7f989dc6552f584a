//! Retrieval requests recorded while restoring from cold storage.

use super::{Catalog, Retrieval};
use crate::error::Result;
use rusqlite::{OptionalExtension, params};

impl Catalog {
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
}
