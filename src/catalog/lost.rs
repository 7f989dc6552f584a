//! Contents whose stored copy was found missing or damaged. They leave `contents` (so no
//! restore trusts them and no sync deduplicates against them) and wait in `lost_contents`
//! until a sync stores them again from a file that still has them.

use super::{Catalog, h2s};
use crate::error::Result;
use crate::hash::Hash32;
use rusqlite::params;
use std::collections::HashSet;

impl Catalog {
    /// The contents waiting to be stored again (usually none).
    pub fn lost_contents(&self) -> Result<HashSet<Hash32>> {
        self.hash_set("SELECT hash FROM lost_contents")
    }

    /// Marks the stored contents among `hashes` lost (`why`, at `now`): no sync deduplicates
    /// against them any more, so the next one stores them again from a file that holds them,
    /// and their rows move to the new archive. Returns how many were marked.
    pub fn mark_lost(&mut self, hashes: &[Hash32], why: &str, now: i64) -> Result<usize> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let mut marked = 0;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO lost_contents (hash, found_at, why)
                     SELECT hash, ?2, ?3 FROM contents WHERE hash = ?1",
                )
                .map_err(|e| Self::err_at(&path, e))?;
            for h in hashes {
                marked += add
                    .execute(params![h2s(h), now, why])
                    .map_err(|e| Self::err_at(&path, e))?;
            }
        }
        tx.commit().map_err(|e| Self::err_at(&path, e))?;
        Ok(marked)
    }

    /// Marks every content of archive `archive_id` lost; returns how many.
    pub fn mark_archive_lost(&mut self, archive_id: i64, why: &str, now: i64) -> Result<usize> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO lost_contents (hash, found_at, why)
                 SELECT hash, ?2, ?3 FROM contents WHERE archive_id = ?1",
                params![archive_id, now, why],
            )
            .map_err(|e| self.err(e))
    }

    /// How many contents archive `archive_id` holds that no other archive stores since (an
    /// archive found missing whose contents were all stored again holds none).
    pub fn archive_contents(&self, archive_id: i64) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM contents WHERE archive_id = ?1",
                [archive_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ArchiveKind, NewArchive, NewContent};

    fn h(b: u8) -> Hash32 {
        Hash32([b; 32])
    }

    #[test]
    fn lost_contents_leave_contents_until_stored_again() {
        let mut c = Catalog::open_in_memory().unwrap();
        let snap = c.begin_snapshot(1).unwrap().0;
        let archive = |id: &str| NewArchive {
            remote_id: id.into(),
            kind: ArchiveKind::Bundle,
            size: 10,
            tree_hash: h(9),
            backend: "local".into(),
            stored_at: 1,
        };
        let content = |b| NewContent {
            hash: h(b),
            size: 1,
            offset: 0,
        };
        let a = c
            .commit_archive(&archive("a"), &[content(1), content(2)], &[], snap)
            .unwrap();
        c.commit_archive(&archive("b"), &[content(3)], &[], snap)
            .unwrap();
        assert_eq!(c.mark_archive_lost(a, "missing", 5).unwrap(), 2);
        assert_eq!(c.lost_contents().unwrap(), [h(1), h(2)].into());
        assert!(!c.has_content(&h(1)).unwrap() && c.has_content(&h(3)).unwrap());
        // A hash that is no stored content is not lost: nothing to store again.
        assert_eq!(c.mark_lost(&[h(3), h(7)], "damaged", 6).unwrap(), 1);
        assert_eq!(c.lost_contents().unwrap().len(), 3);
        // Stored again: found, and its row moves to the new archive.
        let new = c
            .commit_archive(&archive("c"), &[content(1)], &[], snap)
            .unwrap();
        assert_eq!(c.lost_contents().unwrap(), [h(2), h(3)].into());
        assert!(c.has_content(&h(1)).unwrap());
        assert_eq!(c.archive_contents(new).unwrap(), 1);
        assert_eq!(c.archive_contents(a).unwrap(), 1, "h(2) still points at it");
    }
}
