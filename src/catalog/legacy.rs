//! What the 2013 script's databases say, once imported (`legacy_archives`, `legacy_members`):
//! the import itself, the questions a restore asks, and what a restore or an inventory teaches.
//!
//! Imported file versions name a *placeholder* content until their bytes have been read once:
//! [`legacy_placeholder`] of the archive and the tar member, a SHA-256 of a fixed prefix and
//! those two names. The legacy database has no SHA-256 of any file, only SHA-1s of whole
//! archives. The first restore that reads the archive replaces each placeholder by the real
//! tree hash of the member's bytes ([`Catalog::legacy_resolve`]), so later restores and syncs
//! treat those contents like any other. See docs/catalog.md ("Legacy archives").

use super::{ArchiveKind, ArchiveRow, Catalog, SnapshotId, VersionRecord, h2s};
use crate::error::Result;
use crate::hash::Hash32;
use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// The content identity an imported file has until its bytes are read: stable per (archive,
/// member), so identical files sharing one archive share one placeholder.
pub fn legacy_placeholder(remote_id: &str, member: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(b"glaciersync legacy member\0");
    h.update(remote_id.as_bytes());
    h.update(b"\0");
    h.update(member);
    Hash32(h.finalize().into())
}

/// An archive of the 2013 script, as an import records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyArchiveIn {
    pub remote_id: String,
    /// A tar of small files (else one file's bytes).
    pub tar: bool,
    /// Lowercase hex SHA-1 of the archive's bytes (its description and `glaciersync_hashes`).
    pub sha1: String,
    /// From the vault inventory when `listed`, else an estimate (at least the members' bytes).
    pub size: u64,
    /// From the vault inventory; `None` when unknown (an adopted database has no inventory).
    pub tree_hash: Option<Hash32>,
    pub stored_at: i64,
    pub backend: String,
}

/// A file's bytes inside a legacy archive: a tar member found by name, or (empty name) the
/// whole archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMemberIn {
    /// Index into [`LegacyImportIn::archives`].
    pub archive: usize,
    pub member: Vec<u8>,
    pub size: u64,
}

/// Everything one legacy database adds to the catalog: one snapshot of its files.
#[derive(Debug, Clone, Default)]
pub struct LegacyImportIn {
    /// The snapshot's time: the database's description (or file time), seconds since the epoch.
    pub time: i64,
    pub archives: Vec<LegacyArchiveIn>,
    pub members: Vec<LegacyMemberIn>,
    /// File versions (their `hash` is set by the import) and the index of their member.
    pub versions: Vec<(VersionRecord, usize)>,
}

/// A legacy archive as a restore needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyArchiveInfo {
    pub sha1: String,
    pub tar: bool,
    /// Size and tree hash in `archives` are the vault's (else estimates).
    pub listed: bool,
    pub members: Vec<LegacyMemberRow>,
}

/// One member a legacy database places in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMemberRow {
    pub member: Vec<u8>,
    pub size: u64,
    /// Data offset in the tar, known once the tar has been read.
    pub offset: Option<u64>,
    pub placeholder: Hash32,
}

/// What reading a legacy archive taught about one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyResolved {
    pub member: Vec<u8>,
    pub offset: u64,
    pub size: u64,
    /// The tree hash of the member's bytes.
    pub hash: Hash32,
}

const IMPORT_ARCHIVE: &str =
    "INSERT INTO archives (remote_id, kind, size, tree_hash, backend, stored_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (remote_id) DO NOTHING";

impl Catalog {
    /// A database of the 2013 script is never migrated in place: `sync` adopts it first.
    pub(super) fn refuse_legacy_tables(&self) -> Result<()> {
        let legacy: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'glaciersync_files'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if legacy == 0 {
            return Ok(());
        }
        Err(crate::error::Error::Usage(format!(
            "{} is a database of the 2013 glaciersync script: run `glaciersync sync` to adopt it (its tables are kept in a backup file)",
            self.path.display()
        )))
    }

    /// Records a legacy database as one complete snapshot, in one transaction. Returns it.
    pub fn import_legacy(&mut self, import: &LegacyImportIn) -> Result<SnapshotId> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let snap = Self::import_in(&tx, import).map_err(|e| Self::err_at(&path, e))?;
        tx.commit().map_err(|e| Self::err_at(&path, e))?;
        Ok(snap)
    }

    fn import_in(tx: &Transaction<'_>, import: &LegacyImportIn) -> rusqlite::Result<SnapshotId> {
        tx.execute(
            "INSERT INTO snapshots (started_at, finished_at, status) VALUES (?1, ?1, 'complete')",
            [import.time],
        )?;
        let snap = tx.last_insert_rowid();
        let mut ids = Vec::with_capacity(import.archives.len());
        for a in &import.archives {
            let kind = if a.tar {
                ArchiveKind::Bundle
            } else {
                ArchiveKind::File
            };
            let tree_hash = a.tree_hash.unwrap_or(Hash32([0; 32]));
            tx.prepare_cached(IMPORT_ARCHIVE)?.execute(params![
                a.remote_id,
                kind.as_str(),
                a.size as i64,
                h2s(&tree_hash),
                a.backend,
                a.stored_at
            ])?;
            let id: i64 = tx.query_row(
                "SELECT id FROM archives WHERE remote_id = ?1",
                [&a.remote_id],
                |r| r.get(0),
            )?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO legacy_archives (archive_id, sha1, tar, listed)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, a.sha1, a.tar, a.tree_hash.is_some()])?;
            ids.push(id);
        }
        let mut placeholders = Vec::with_capacity(import.members.len());
        for m in &import.members {
            let remote_id = &import.archives[m.archive].remote_id;
            let ph = legacy_placeholder(remote_id, &m.member);
            let archive_id = ids[m.archive];
            tx.prepare_cached(
                "INSERT OR IGNORE INTO legacy_members (archive_id, member, size) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![archive_id, m.member, m.size as i64])?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO contents (hash, size, archive_id, offset) VALUES (?1, ?2, ?3, 0)",
            )?
            .execute(params![h2s(&ph), m.size as i64, archive_id])?;
            placeholders.push(ph);
        }
        let versions: Vec<VersionRecord> = import
            .versions
            .iter()
            .map(|(v, m)| VersionRecord {
                hash: Some(placeholders[*m]),
                ..v.clone()
            })
            .collect();
        Self::insert_versions(tx, &versions, snap)?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('catalog_backup_pending', '1')",
            [],
        )?;
        Ok(snap)
    }

    /// What the legacy database said about `archive`; `None` for archives of ours.
    pub fn legacy_archive(&self, archive: &ArchiveRow) -> Result<Option<LegacyArchiveInfo>> {
        let head = self
            .conn
            .query_row(
                "SELECT sha1, tar, listed FROM legacy_archives WHERE archive_id = ?1",
                [archive.id],
                |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((sha1, tar, listed)) = head else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT member, size, offset FROM legacy_members WHERE archive_id = ?1
                 ORDER BY member",
            )
            .map_err(|e| self.err(e))?;
        let members = stmt
            .query_map([archive.id], |r| {
                let member: Vec<u8> = r.get(0)?;
                Ok(LegacyMemberRow {
                    placeholder: legacy_placeholder(&archive.remote_id, &member),
                    member,
                    size: r.get::<_, i64>(1)? as u64,
                    offset: r.get::<_, Option<i64>>(2)?.map(|o| o as u64),
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(Some(LegacyArchiveInfo {
            sha1,
            tar,
            listed,
            members,
        }))
    }

    /// Replaces the placeholders of `archive`'s members by the hashes read, records where each
    /// member's bytes start, and (`measured`: size and tree hash of the whole archive) what
    /// the archive is when the catalog only had estimates. One transaction.
    pub fn legacy_resolve(
        &mut self,
        archive: (i64, &str),
        resolved: &[LegacyResolved],
        measured: Option<(u64, Hash32)>,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.tx()?;
        Self::resolve_in(&tx, archive, resolved, measured).map_err(|e| Self::err_at(&path, e))?;
        tx.commit().map_err(|e| Self::err_at(&path, e))
    }

    fn resolve_in(
        tx: &Transaction<'_>,
        (archive_id, remote_id): (i64, &str),
        resolved: &[LegacyResolved],
        measured: Option<(u64, Hash32)>,
    ) -> rusqlite::Result<()> {
        if let Some((size, tree_hash)) = measured {
            let unlisted = tx.execute(
                "UPDATE legacy_archives SET listed = 1 WHERE archive_id = ?1 AND listed = 0",
                [archive_id],
            )?;
            if unlisted > 0 {
                tx.execute(
                    "UPDATE archives SET size = ?2, tree_hash = ?3 WHERE id = ?1",
                    params![archive_id, size as i64, h2s(&tree_hash)],
                )?;
            }
        }
        for r in resolved {
            let ph = h2s(&legacy_placeholder(remote_id, &r.member));
            let real = h2s(&r.hash);
            tx.prepare_cached(
                "INSERT OR IGNORE INTO contents (hash, size, archive_id, offset) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![real, r.size as i64, archive_id, r.offset as i64])?;
            tx.prepare_cached("UPDATE versions SET hash = ?2 WHERE hash = ?1")?
                .execute(params![ph, real])?;
            tx.prepare_cached("DELETE FROM contents WHERE hash = ?1")?
                .execute([ph])?;
            tx.prepare_cached(
                "UPDATE legacy_members SET offset = ?3 WHERE archive_id = ?1 AND member = ?2",
            )?
            .execute(params![archive_id, r.member, r.offset as i64])?;
        }
        Ok(())
    }

    /// Legacy archives whose size and tree hash in `archives` are estimates.
    pub fn legacy_unlisted(&self) -> Result<HashSet<i64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT archive_id FROM legacy_archives WHERE listed = 0")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<HashSet<i64>>>())
            .map_err(|e| self.err(e))
    }

    /// Records a legacy archive's size and tree hash as the vault lists them.
    pub fn legacy_learn(
        &mut self,
        archive: &ArchiveRow,
        size: u64,
        tree_hash: Hash32,
    ) -> Result<()> {
        self.legacy_resolve(
            (archive.id, &archive.remote_id),
            &[],
            Some((size, tree_hash)),
        )
    }

    /// The SHA-1 the legacy database gives each legacy archive, by archive id.
    pub fn legacy_sha1s(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT archive_id, sha1 FROM legacy_archives ORDER BY archive_id")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))
    }
}
