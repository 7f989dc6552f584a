//! Streaming access to current versions for a sync of any size: look one entry up by
//! (tree, path) through the `versions_current` index, and walk all current versions once to
//! find the ones a walk did not see. Nothing here holds more than one row at a time.

use super::{Catalog, EntryKind, h2s, opt_hash_col};
use crate::error::Result;
use crate::hash::Hash32;
use rusqlite::{CachedStatement, OptionalExtension, params};

/// What a sync compares a scanned entry with: the current version of its (tree, path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentMeta {
    pub id: i64,
    pub kind: EntryKind,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    pub hash: Option<Hash32>,
    pub target: Option<Vec<u8>>,
}

/// A prepared point lookup of current versions, inside one read transaction (one shared
/// lock for the whole walk instead of one `fcntl` lock and unlock per lookup, which was 5 % of
/// a no-change sync).
pub struct CurrentLookup<'c> {
    stmt: CachedStatement<'c>,
    cat: &'c Catalog,
    /// Whether this lookup began the read transaction (and ends it when dropped).
    began: bool,
}

impl Drop for CurrentLookup<'_> {
    fn drop(&mut self) {
        if self.began {
            // A read transaction: ending it cannot lose anything.
            let _ = self.cat.conn.execute_batch("COMMIT");
        }
    }
}

impl CurrentLookup<'_> {
    /// The current version of `tree`/`path`, if any.
    pub fn get(&mut self, tree: &str, path: &[u8]) -> Result<Option<CurrentMeta>> {
        self.stmt
            .query_row(params![tree, path], |r| {
                Ok(CurrentMeta {
                    id: r.get(0)?,
                    kind: EntryKind::parse(r.get_ref(1)?.as_str()?),
                    size: r.get::<_, i64>(2)? as u64,
                    mtime_ns: r.get(3)?,
                    mode: r.get::<_, i64>(4)? as u32,
                    hash: opt_hash_col(r, 5)?,
                    target: r.get(6)?,
                })
            })
            .optional()
            .map_err(|e| self.cat.err(e))
    }
}

impl Catalog {
    /// A point lookup of current versions by (tree, path), for the duration of a walk.
    pub fn current_lookup(&self) -> Result<CurrentLookup<'_>> {
        let began = self.conn.is_autocommit();
        if began {
            self.conn
                .execute_batch("BEGIN DEFERRED")
                .map_err(|e| self.err(e))?;
        }
        let stmt = self.conn.prepare_cached(
            "SELECT id, kind, size, mtime_ns, mode, hash, target FROM versions
             WHERE tree = ?1 AND path = ?2 AND until IS NULL",
        );
        let stmt = match stmt {
            Ok(s) => s,
            Err(e) => {
                if began {
                    let _ = self.conn.execute_batch("COMMIT");
                }
                return Err(self.err(e));
            }
        };
        Ok(CurrentLookup {
            stmt,
            cat: self,
            began,
        })
    }

    /// The highest version id there is (0 when none).
    pub fn max_version_id(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM versions", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// Calls `f(id, tree, path, kind)` for every current version, one row at a time, in id
    /// order.
    pub fn for_each_current(&self, mut f: impl FnMut(i64, &str, &[u8], EntryKind)) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, tree, path, kind FROM versions WHERE until IS NULL ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let mut read = || -> rusqlite::Result<()> {
                let kind = EntryKind::parse(r.get_ref(3)?.as_str()?);
                f(
                    r.get(0)?,
                    r.get_ref(1)?.as_str()?,
                    r.get_ref(2)?.as_blob()?,
                    kind,
                );
                Ok(())
            };
            read().map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Whether a content with this hash is stored (and not found lost since).
    pub fn has_content(&self, hash: &Hash32) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM contents WHERE hash = ?1
                 AND NOT EXISTS (SELECT 1 FROM lost_contents WHERE hash = ?1)",
            )
            .map_err(|e| self.err(e))?;
        stmt.exists([h2s(hash)]).map_err(|e| self.err(e))
    }
}
