//! Catalog deltas: the rows that changed since a mark, written to a small SQLite file, and
//! applied to a copy of the catalog. Rows are written whole, so applying a delta is an upsert:
//! a delta made from mark `M` applies to any copy taken at or after `M` and before the delta,
//! and applying overlapping deltas in the order they were made gives the newest rows.
//!
//! What changes between two marks: new snapshots (ids only grow), new archives and the contents
//! inside them, versions that began or ended in a new snapshot, and the small `meta` and
//! `retrievals` tables, which every delta carries whole.

use super::Catalog;
use crate::error::{Error, Result};
use rusqlite::OptionalExtension;
use std::path::Path;

/// Where the catalog stood when a copy or delta of it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaMark {
    /// The newest snapshot (complete: copies are made after a snapshot is finished).
    pub snapshot: i64,
    /// The newest archive.
    pub archive: i64,
}

impl DeltaMark {
    pub fn to_text(self) -> String {
        format!("{}:{}", self.snapshot, self.archive)
    }

    pub fn parse(s: &str) -> Option<DeltaMark> {
        let (a, b) = s.split_once(':')?;
        Some(DeltaMark {
            snapshot: a.parse().ok()?,
            archive: b.parse().ok()?,
        })
    }
}

/// Each table: its columns, and what a delta from mark (`{s}` snapshot, `{a}` archive) holds.
/// `None`: the whole table, replaced when applied.
const TABLES: &[(&str, &str, Option<&str>)] = &[
    (
        "snapshots",
        "id, started_at, finished_at, status",
        Some("id > {s}"),
    ),
    (
        "archives",
        "id, remote_id, kind, size, tree_hash, backend, stored_at",
        Some("id > {a}"),
    ),
    (
        "contents",
        "hash, size, archive_id, offset",
        Some("archive_id > {a}"),
    ),
    (
        "versions",
        "id, tree, path, kind, size, mtime_ns, mode, hash, target, since, until",
        Some("since > {s} OR until > {s}"),
    ),
    ("meta", "key, value", None),
    (
        "retrievals",
        "archive_id, range_start, range_end, tier, ticket, requested_at",
        None,
    ),
];

/// How applying a delta row meets a row already there (by primary key).
fn upsert(table: &str) -> &'static str {
    match table {
        "snapshots" => {
            "ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at,
             finished_at = excluded.finished_at, status = excluded.status"
        }
        "archives" => {
            "ON CONFLICT (id) DO UPDATE SET remote_id = excluded.remote_id, kind = excluded.kind,
             size = excluded.size, tree_hash = excluded.tree_hash, backend = excluded.backend,
             stored_at = excluded.stored_at"
        }
        "contents" => "ON CONFLICT (hash) DO NOTHING",
        // Only `until` changes in a version once written; a clash on the one-current-version
        // index is an error, never a silent replace.
        "versions" => "ON CONFLICT (id) DO UPDATE SET until = excluded.until",
        _ => "",
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| Error::Usage(format!("{}: not a UTF-8 path", p.display())))
}

impl Catalog {
    /// Where the catalog stands now.
    pub fn delta_mark(&self) -> Result<DeltaMark> {
        self.conn
            .query_row(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM snapshots),
                        (SELECT COALESCE(MAX(id), 0) FROM archives)",
                [],
                |r| {
                    Ok(DeltaMark {
                        snapshot: r.get(0)?,
                        archive: r.get(1)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Writes the rows changed since `from` to a new SQLite file `dest` (which must not exist).
    pub fn write_delta(&self, from: DeltaMark, dest: &Path) -> Result<()> {
        let version = self.schema_version()?;
        self.conn
            .execute("ATTACH ?1 AS delta", [path_str(dest)?])
            .map_err(|e| self.err(e))?;
        let mut sql = format!(
            "PRAGMA delta.page_size = 512;
             BEGIN;
             CREATE TABLE delta.delta_info (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO delta.delta_info VALUES ('schema', {version}),
                 ('from_snapshot', {}), ('from_archive', {});",
            from.snapshot, from.archive
        );
        for (table, cols, filter) in TABLES {
            let filter = filter
                .unwrap_or("1")
                .replace("{s}", &from.snapshot.to_string())
                .replace("{a}", &from.archive.to_string());
            sql.push_str(&format!(
                "CREATE TABLE delta.{table} AS SELECT {cols} FROM main.{table} WHERE {filter};"
            ));
        }
        sql.push_str("COMMIT;");
        let done = self.conn.execute_batch(&sql);
        if done.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        let detached = self.conn.execute_batch("DETACH delta");
        done.and(detached).map_err(|e| self.err(e))
    }

    /// Applies the delta file `src` in one transaction. A delta written by another schema
    /// version is refused.
    pub fn apply_delta(&mut self, src: &Path) -> Result<()> {
        let version = self.schema_version()?;
        self.conn
            .execute("ATTACH ?1 AS delta", [path_str(src)?])
            .map_err(|e| self.err(e))?;
        let result = self.apply_attached(version);
        let detached = self.conn.execute_batch("DETACH delta");
        result?;
        detached.map_err(|e| self.err(e))
    }

    fn apply_attached(&mut self, version: i64) -> Result<()> {
        let theirs: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM delta.delta_info WHERE key = 'schema'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if theirs != Some(version) {
            return Err(Error::Integrity(format!(
                "{}: a catalog delta of schema version {theirs:?} cannot be applied to schema version {version}",
                self.path.display()
            )));
        }
        let path = self.path.clone();
        let tx = self.tx()?;
        for (table, cols, filter) in TABLES {
            let mut sql = String::new();
            if filter.is_none() {
                sql.push_str(&format!("DELETE FROM main.{table};"));
            }
            let order = if *table == "versions" {
                "ORDER BY id"
            } else {
                ""
            };
            sql.push_str(&format!(
                "INSERT INTO main.{table} ({cols}) SELECT {cols} FROM delta.{table} WHERE true {order} {};",
                upsert(table)
            ));
            tx.execute_batch(&sql).map_err(|e| Self::err_at(&path, e))?;
        }
        tx.commit().map_err(|e| Self::err_at(&path, e))
    }
}
