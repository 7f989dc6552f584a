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

/// What reading a legacy tar taught about a member that is a symlink (`tarfile.add` stored
/// a symlink as one; the script's row has its target's size and mtime): its versions become
/// symlinks to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySymlink {
    pub member: Vec<u8>,
    /// Where the member's header ends in the tar (it has no bytes): marks it read.
    pub offset: u64,
    pub target: Vec<u8>,
}

/// The mode a symlink learned from a legacy tar gets (what `lstat` gives a symlink on Linux).
pub const LEGACY_SYMLINK_MODE: u32 = 0o120777;

const IMPORT_ARCHIVE: &str =
    "INSERT INTO archives (remote_id, kind, size, tree_hash, backend, stored_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (remote_id) DO NOTHING";

impl Catalog {
    /// A database of the 2013 script (any one of its tables) is never migrated in place:
    /// `sync` adopts it first, or names what is missing from it.
    pub(super) fn refuse_legacy_tables(&self) -> Result<()> {
        let legacy = crate::legacy::db::has_script_tables(&self.conn).map_err(|e| self.err(e))?;
        if !legacy {
            return Ok(());
        }
        Err(crate::error::Error::Usage(format!(
            "{} is a database of the 2013 glaciersync script: run `glaciersync sync` (or `restore`) to adopt it (its tables are kept in a backup file)",
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
        let ids = import
            .archives
            .iter()
            .map(|a| Self::insert_legacy_archive(tx, a))
            .collect::<rusqlite::Result<Vec<i64>>>()?;
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

    /// Records a legacy archive (unless known) and what the legacy database says of it.
    fn insert_legacy_archive(tx: &Transaction<'_>, a: &LegacyArchiveIn) -> rusqlite::Result<i64> {
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
        Ok(id)
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
    /// member's bytes start, turns the versions of members that are symlinks (`links`) into
    /// symlinks, and (`measured`: size and tree hash of the whole archive) records what the
    /// archive is when the catalog only had estimates. One transaction.
    pub fn legacy_resolve(
        &mut self,
        archive: (i64, &str),
        resolved: &[LegacyResolved],
        links: &[LegacySymlink],
        measured: Option<(u64, Hash32)>,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.tx()?;
        Self::resolve_in(&tx, archive, resolved, measured).map_err(|e| Self::err_at(&path, e))?;
        Self::symlinks_in(&tx, archive, links).map_err(|e| Self::err_at(&path, e))?;
        tx.commit().map_err(|e| Self::err_at(&path, e))
    }

    /// Versions naming the placeholder of a symlink member become that symlink (size 0, no
    /// hash; mtime kept), and the placeholder's `contents` row goes. One pass over `versions`.
    fn symlinks_in(
        tx: &Transaction<'_>,
        (archive_id, remote_id): (i64, &str),
        links: &[LegacySymlink],
    ) -> rusqlite::Result<()> {
        if links.is_empty() {
            return Ok(());
        }
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS legacy_links (ph BLOB PRIMARY KEY, target BLOB NOT NULL);
             DELETE FROM temp.legacy_links;",
        )?;
        for l in links {
            let ph = legacy_placeholder(remote_id, &l.member);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO temp.legacy_links (ph, target) VALUES (?1, ?2)",
            )?
            .execute(params![h2s(&ph), l.target])?;
            Self::note_member_offset(tx, archive_id, &l.member, l.offset)?;
        }
        tx.execute(
            "UPDATE versions SET kind = 'symlink', size = 0, mode = ?1, hash = NULL,
                    target = (SELECT target FROM temp.legacy_links l WHERE l.ph = versions.hash)
              WHERE hash IN (SELECT ph FROM temp.legacy_links)",
            [LEGACY_SYMLINK_MODE],
        )?;
        tx.execute_batch("DELETE FROM contents WHERE hash IN (SELECT ph FROM temp.legacy_links);")
    }

    /// Records where member `member` of legacy tar `archive_id` starts, now that it was read.
    fn note_member_offset(
        tx: &Transaction<'_>,
        archive_id: i64,
        member: &[u8],
        offset: u64,
    ) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "UPDATE legacy_members SET offset = ?3 WHERE archive_id = ?1 AND member = ?2",
        )?
        .execute(params![archive_id, member, offset as i64])?;
        Ok(())
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
        // Placeholder → real hash of every member read, then one pass over `versions` (it has
        // no index by hash: one UPDATE per member would scan it once per member).
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS legacy_map (ph BLOB PRIMARY KEY, real BLOB NOT NULL);
             DELETE FROM temp.legacy_map;",
        )?;
        for r in resolved {
            let ph = legacy_placeholder(remote_id, &r.member);
            tx.prepare_cached(
                "INSERT OR IGNORE INTO contents (hash, size, archive_id, offset) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![h2s(&r.hash), r.size as i64, archive_id, r.offset as i64])?;
            tx.prepare_cached("INSERT OR REPLACE INTO temp.legacy_map (ph, real) VALUES (?1, ?2)")?
                .execute(params![h2s(&ph), h2s(&r.hash)])?;
            Self::note_member_offset(tx, archive_id, &r.member, r.offset)?;
        }
        tx.execute_batch(
            "UPDATE versions SET hash = (SELECT real FROM temp.legacy_map m WHERE m.ph = versions.hash)
              WHERE hash IN (SELECT ph FROM temp.legacy_map);
             DELETE FROM contents WHERE hash IN (SELECT ph FROM temp.legacy_map);",
        )?;
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
            &[],
            Some((size, tree_hash)),
        )
    }

    /// Legacy archives that hold no content: no file needs them (an imported database names
    /// them, but no file row points at them any more, or every version that did is gone).
    pub fn legacy_unneeded(&self) -> Result<HashSet<i64>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT archive_id FROM legacy_archives
                  WHERE archive_id NOT IN (SELECT archive_id FROM contents)",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<HashSet<i64>>>())
            .map_err(|e| self.err(e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EntryKind;
    use crate::hash::tree_hash;

    fn version(path: &str, size: u64) -> VersionRecord {
        VersionRecord {
            tree: "path".into(),
            path: path.as_bytes().to_vec(),
            kind: EntryKind::File,
            size,
            mtime_ns: 5,
            mode: 0o100644,
            hash: None,
            target: None,
        }
    }

    /// W: one file's bytes, shared by two identical files; T: a tar of two files.
    fn import() -> LegacyImportIn {
        let archive = |id: &str, tar, size, tree_hash| LegacyArchiveIn {
            remote_id: id.into(),
            tar,
            sha1: "ab".repeat(20),
            size,
            tree_hash,
            stored_at: 3,
            backend: "glacier".into(),
        };
        let member = |archive, name: &str, size| LegacyMemberIn {
            archive,
            member: name.as_bytes().to_vec(),
            size,
        };
        LegacyImportIn {
            time: 1_368_000_000,
            archives: vec![
                archive("W", false, 4, Some(tree_hash(b"wwww"))),
                archive("T", true, 10240, None),
            ],
            members: vec![member(0, "", 4), member(1, "h/c", 3), member(1, "h/d", 2)],
            versions: vec![
                (version("a", 4), 0),
                (version("b", 4), 0),
                (version("c", 3), 1),
                (version("d", 2), 2),
            ],
        }
    }

    #[test]
    fn an_import_is_one_complete_snapshot_of_placeholders() {
        let mut cat = Catalog::open_in_memory().unwrap();
        let snap = cat.import_legacy(&import()).unwrap();
        let s = cat.snapshot_at(None).unwrap().unwrap();
        assert_eq!((s.id, s.finished_at), (snap, Some(1_368_000_000)));
        let vs = cat.versions_at(snap).unwrap();
        assert_eq!(vs.len(), 4);
        assert_eq!(
            vs[0].rec.hash, vs[1].rec.hash,
            "identical files, one archive"
        );
        assert_eq!(vs[0].rec.hash, Some(legacy_placeholder("W", b"")));
        assert_eq!(vs[2].rec.hash, Some(legacy_placeholder("T", b"h/c")));
        assert_eq!(vs[2].location.as_ref().unwrap().0.remote_id, "T");
        assert_eq!(cat.stats().unwrap().contents, 3);
        assert!(cat.check().unwrap().is_empty());
        assert_eq!(
            cat.meta("catalog_backup_pending").unwrap().as_deref(),
            Some("1")
        );
        let t = vs[2].location.clone().unwrap().0;
        let info = cat.legacy_archive(&t).unwrap().unwrap();
        assert!(info.tar && !info.listed);
        assert_eq!(info.members.len(), 2);
        assert!(info.members.iter().all(|m| m.offset.is_none()));
        assert_eq!(cat.legacy_unlisted().unwrap().len(), 1);
        let ours = cat.archives().unwrap();
        assert_eq!(ours.len(), 2);
    }

    #[test]
    fn an_archive_no_file_needs_is_known_and_unneeded() {
        let mut im = import();
        im.archives.push(LegacyArchiveIn {
            remote_id: "OLD".into(),
            tar: true,
            sha1: "cd".repeat(20),
            size: 10240,
            tree_hash: None,
            stored_at: 2,
            backend: "glacier".into(),
        });
        let mut cat = Catalog::open_in_memory().unwrap();
        cat.import_legacy(&im).unwrap();
        let all = cat.archives().unwrap();
        assert_eq!(all.len(), 3);
        let old = all.iter().find(|a| a.remote_id == "OLD").unwrap();
        assert_eq!(cat.legacy_unneeded().unwrap(), HashSet::from([old.id]));
        assert!(cat.legacy_unlisted().unwrap().contains(&old.id));
        let info = cat.legacy_archive(old).unwrap().unwrap();
        assert!(info.tar && info.members.is_empty());
        assert!(cat.check().unwrap().is_empty());
    }

    #[test]
    fn reading_an_archive_replaces_placeholders_by_real_hashes() {
        let mut cat = Catalog::open_in_memory().unwrap();
        let snap = cat.import_legacy(&import()).unwrap();
        let t = cat.versions_at(snap).unwrap()[2]
            .location
            .clone()
            .unwrap()
            .0;
        let resolved = [
            LegacyResolved {
                member: b"h/c".to_vec(),
                offset: 512,
                size: 3,
                hash: tree_hash(b"ccc"),
            },
            LegacyResolved {
                member: b"h/d".to_vec(),
                offset: 1536,
                size: 2,
                hash: tree_hash(b"dd"),
            },
        ];
        cat.legacy_resolve(
            (t.id, "T"),
            &resolved,
            &[],
            Some((10240, tree_hash(b"tar"))),
        )
        .unwrap();
        let vs = cat.versions_at(snap).unwrap();
        assert_eq!(vs[2].rec.hash, Some(tree_hash(b"ccc")));
        assert_eq!(vs[3].location.as_ref().unwrap().1, 1536);
        assert_eq!(
            vs[3].location.as_ref().unwrap().0.tree_hash,
            tree_hash(b"tar")
        );
        assert_eq!(cat.stats().unwrap().contents, 3);
        assert!(cat.check().unwrap().is_empty());
        let info = cat
            .legacy_archive(&vs[3].location.as_ref().unwrap().0)
            .unwrap()
            .unwrap();
        assert!(info.listed);
        assert_eq!(info.members[1].offset, Some(1536));
        assert!(cat.legacy_unlisted().unwrap().is_empty());
    }

    #[test]
    fn a_member_read_as_a_symlink_makes_its_versions_symlinks() {
        let mut cat = Catalog::open_in_memory().unwrap();
        let snap = cat.import_legacy(&import()).unwrap();
        let t = cat.versions_at(snap).unwrap()[2]
            .location
            .clone()
            .unwrap()
            .0;
        let resolved = [LegacyResolved {
            member: b"h/c".to_vec(),
            offset: 512,
            size: 3,
            hash: tree_hash(b"ccc"),
        }];
        let links = [LegacySymlink {
            member: b"h/d".to_vec(),
            offset: 1536,
            target: b"../c".to_vec(),
        }];
        cat.legacy_resolve((t.id, "T"), &resolved, &links, None)
            .unwrap();
        let vs = cat.versions_at(snap).unwrap();
        let d = &vs[3].rec;
        assert_eq!(
            (d.kind, d.size, d.hash, d.target.as_deref(), d.mode),
            (
                EntryKind::Symlink,
                0,
                None,
                Some(&b"../c"[..]),
                LEGACY_SYMLINK_MODE
            )
        );
        assert_eq!(d.mtime_ns, 5, "the row's mtime is kept");
        assert_eq!(vs[2].rec.hash, Some(tree_hash(b"ccc")));
        // W's placeholder, c's real hash: d's placeholder is gone.
        assert_eq!(cat.stats().unwrap().contents, 2);
        assert!(cat.check().unwrap().is_empty());
        let info = cat.legacy_archive(&t).unwrap().unwrap();
        assert!(info.members.iter().all(|m| m.offset.is_some()));
    }

    #[test]
    fn a_script_database_is_never_migrated_in_place() {
        // Any one of the script's tables makes the file the script's.
        for (i, table) in [
            "glaciersync_files (profile text, basepath text)",
            "glaciersync_hashes (archive_id text, hash text)",
            "glaciersync_tars (archive_id text, mtime real)",
            "glaciersync_tar_files (tar_rowid integer, file_rowid integer)",
        ]
        .iter()
        .enumerate()
        {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.sqlite3");
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(&format!("CREATE TABLE {table};")).unwrap();
            drop(c);
            let before = std::fs::read(&path).unwrap();
            let msg = Catalog::open(&path).err().unwrap().to_string();
            assert!(
                msg.contains("2013 glaciersync script") && msg.contains("sync"),
                "{i}: {msg}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), before, "{i}");
            assert!(crate::legacy::db::is_legacy(&path), "{i}");
        }
    }
}
