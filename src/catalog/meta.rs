//! The `meta` key/value table, the schema version, and copies of the whole catalog.

use super::Catalog;
use crate::error::{Error, Result};
use rusqlite::{OptionalExtension, params};
use std::path::Path;

impl Catalog {
    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
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

    /// Writes a consistent copy of the catalog to `dest` (which must not exist).
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let dest_str = dest
            .to_str()
            .ok_or_else(|| Error::Usage(format!("{}: not a UTF-8 path", dest.display())))?;
        // An empty file is allowed as the target: created first, it is private.
        crate::private::create_file(dest).map_err(|e| Error::io(dest, e))?;
        self.conn
            .execute("VACUUM INTO ?1", [dest_str])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
