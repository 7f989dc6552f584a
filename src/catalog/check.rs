//! `check`: SQLite's integrity check plus this schema's own invariants.

use super::Catalog;
use crate::error::Result;

impl Catalog {
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
