//! A legacy database: detected, validated (tables and columns), and read into where each
//! file's bytes are. Opened read-only: nothing here ever writes to it.

use crate::error::{Error, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The script's four tables and the columns glaciersync reads from them.
const TABLES: &[(&str, &[&str])] = &[
    (
        "glaciersync_files",
        &[
            "profile",
            "basepath",
            "fname",
            "mtime",
            "bytesize",
            "archive_id",
        ],
    ),
    ("glaciersync_hashes", &["archive_id", "hash"]),
    ("glaciersync_tars", &["archive_id", "mtime"]),
    ("glaciersync_tar_files", &["tar_rowid", "file_rowid"]),
];

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The archive holds exactly the file's bytes.
    Whole(String),
    /// A member of this tar archive (the newest tar that holds the file).
    Tar(String),
}

impl Location {
    pub fn archive_id(&self) -> &str {
        match self {
            Location::Whole(a) | Location::Tar(a) => a,
        }
    }
}

/// One row of `glaciersync_files`, with its bytes located.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyFile {
    pub basepath: String,
    pub fname: String,
    /// Seconds since the epoch, as `os.path.getmtime` gave them.
    pub mtime: f64,
    pub size: u64,
    pub location: Location,
}

/// What a legacy database says.
#[derive(Debug, Clone, Default)]
pub struct LegacyDb {
    pub files: Vec<LegacyFile>,
    /// Archive id → lowercase hex SHA-1 of its bytes.
    pub sha1: HashMap<String, String>,
    /// Tar archive id → the tar's mtime (when it was made).
    pub tar_times: HashMap<String, f64>,
    /// Files whose bytes the database places nowhere (no archive, no tar): `basepath/fname`.
    pub unplaced: Vec<String>,
    /// Every archive id the tables name (`glaciersync_hashes`, `glaciersync_tars`, then
    /// `glaciersync_files`), each once, in that order: also the archives no file row points at
    /// any more (a tar all of whose files changed since, a file archive of an older version).
    pub archives: Vec<String>,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Whether `conn` holds any one of the script's four tables: a file with only some of them is
/// still the script's (a damaged one, which [`read`] names in one line), never a catalog of
/// ours to write to.
pub fn has_script_tables(conn: &Connection) -> rusqlite::Result<bool> {
    let names: Vec<String> = TABLES.iter().map(|(t, _)| format!("'{t}'")).collect();
    let n: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ({})",
            names.join(", ")
        ),
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Whether the SQLite file at `path` holds any of the script's tables (and none of ours).
pub fn is_legacy(path: &Path) -> bool {
    let Ok(conn) = open(path) else { return false };
    let ours: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'versions'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    has_script_tables(&conn).unwrap_or(false) && ours == 0
}

/// What is missing from the database: one phrase per table, empty when all is there.
fn missing(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut out = Vec::new();
    for (table, cols) in TABLES {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let have = stmt
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if have.is_empty() {
            out.push(format!("table {table} is missing"));
            continue;
        }
        let lacking: Vec<&str> = cols
            .iter()
            .copied()
            .filter(|c| !have.iter().any(|h| h.eq_ignore_ascii_case(c)))
            .collect();
        if !lacking.is_empty() {
            out.push(format!("table {table} lacks {}", lacking.join(", ")));
        }
    }
    Ok(out)
}

fn unreadable(path: &Path, what: String) -> Error {
    Error::Usage(format!(
        "{}: not a usable database of the 2013 glaciersync script: {what}; restore that file from a copy of `database_dir`, or move it away",
        path.display()
    ))
}

/// Reads and validates the legacy database at `path`.
pub fn read(path: &Path) -> Result<LegacyDb> {
    let conn = open(path).map_err(|e| unreadable(path, e.to_string()))?;
    let problems = missing(&conn).map_err(|e| unreadable(path, e.to_string()))?;
    if !problems.is_empty() {
        return Err(unreadable(path, problems.join("; ")));
    }
    read_tables(&conn).map_err(|e| unreadable(path, e.to_string()))
}

/// A text column as the script wrote it (unicode text; bytes taken as UTF-8); NULL is empty.
fn text(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Null => String::new(),
    }
}

fn real(v: ValueRef<'_>) -> f64 {
    match v {
        ValueRef::Integer(i) => i as f64,
        ValueRef::Real(f) => f,
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

fn read_tables(conn: &Connection) -> rusqlite::Result<LegacyDb> {
    let mut db = LegacyDb::default();
    let mut named: HashSet<String> = HashSet::new();
    let mut name = |db: &mut LegacyDb, id: &str| {
        if !id.is_empty() && named.insert(id.to_string()) {
            db.archives.push(id.to_string());
        }
    };
    let mut stmt =
        conn.prepare("SELECT archive_id, hash FROM glaciersync_hashes ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let hash = text(r.get_ref(1)?).to_ascii_lowercase();
        let id = text(r.get_ref(0)?);
        name(&mut db, &id);
        db.sha1.insert(id, hash);
    }
    // Tar rowid → archive id, and each file's newest tar.
    let mut tars: HashMap<i64, String> = HashMap::new();
    let mut stmt =
        conn.prepare("SELECT rowid, archive_id, mtime FROM glaciersync_tars ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id = text(r.get_ref(1)?);
        name(&mut db, &id);
        db.tar_times.insert(id.clone(), real(r.get_ref(2)?));
        tars.insert(r.get(0)?, id);
    }
    let mut newest: HashMap<i64, i64> = HashMap::new();
    let mut stmt = conn.prepare("SELECT tar_rowid, file_rowid FROM glaciersync_tar_files")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (tar, file): (Option<i64>, Option<i64>) = (r.get(0)?, r.get(1)?);
        if let (Some(tar), Some(file)) = (tar, file) {
            let e = newest.entry(file).or_insert(tar);
            *e = (*e).max(tar);
        }
    }
    let mut stmt = conn.prepare(
        "SELECT rowid, basepath, fname, mtime, bytesize, archive_id FROM glaciersync_files
         ORDER BY rowid",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let rowid: i64 = r.get(0)?;
        let basepath = text(r.get_ref(1)?);
        let fname = text(r.get_ref(2)?);
        let archive = text(r.get_ref(5)?);
        name(&mut db, &archive);
        let location = if !archive.is_empty() {
            Some(Location::Whole(archive))
        } else {
            newest
                .get(&rowid)
                .and_then(|t| tars.get(t))
                .map(|a| Location::Tar(a.clone()))
        };
        let Some(location) = location else {
            db.unplaced.push(format!("{basepath}/{fname}"));
            continue;
        };
        db.files.push(LegacyFile {
            basepath,
            fname,
            mtime: real(r.get_ref(3)?),
            size: real(r.get_ref(4)?).max(0.0) as u64,
            location,
        });
    }
    Ok(db)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The script's schema, as its `_create_db` made it.
    pub(crate) const SCHEMA: &str = "
        CREATE TABLE glaciersync_files (profile text, basepath text, fname text, mtime real,
            bytesize integer, archive_id text);
        CREATE INDEX glaciersyncfiles_profile_basepath_fname ON glaciersync_files
            (profile, basepath, fname);
        CREATE TABLE glaciersync_hashes (archive_id text, hash text);
        CREATE INDEX glaciersynchashes_hash ON glaciersync_hashes (hash);
        CREATE TABLE glaciersync_tars (archive_id text, mtime real);
        CREATE TABLE glaciersync_tar_files (tar_rowid integer, file_rowid integer);";

    /// Two runs: a, b, c in tar T1; then b changed (tar T2), c grew past the threshold
    /// (archive BIG), and d is identical to BIG's file.
    pub(crate) fn two_runs(path: &Path) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch(
            "INSERT INTO glaciersync_hashes VALUES ('T1', 'aa11'), ('T2', 'bb22'), ('BIG', 'cc33');
             INSERT INTO glaciersync_tars VALUES ('T1', 100.5), ('T2', 200.5);
             INSERT INTO glaciersync_files VALUES
               ('p', '/home/me/pics', 'a.txt', 10.25, 3, ''),
               ('p', '/home/me/pics', 'sub/b.txt', 150.5, 4, ''),
               ('p', '/home/me/pics', 'c.bin', 160.0, 900, 'BIG'),
               ('p', '/home/me/pics', 'd.bin', 170.0, 900, 'BIG');
             INSERT INTO glaciersync_tar_files VALUES (1, 1), (1, 2), (1, 3), (2, 2);",
        )
        .unwrap();
    }

    #[test]
    fn newer_tars_and_whole_archives_supersede_older_tars() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sqlite3");
        two_runs(&path);
        assert!(is_legacy(&path));
        let db = read(&path).unwrap();
        let loc: Vec<(&str, &Location)> = db
            .files
            .iter()
            .map(|f| (f.fname.as_str(), &f.location))
            .collect();
        assert_eq!(
            loc,
            [
                ("a.txt", &Location::Tar("T1".into())),
                ("sub/b.txt", &Location::Tar("T2".into())),
                ("c.bin", &Location::Whole("BIG".into())),
                ("d.bin", &Location::Whole("BIG".into())),
            ]
        );
        assert_eq!(db.sha1["T2"], "bb22");
        assert_eq!(db.files[0].mtime, 10.25);
        assert!(db.unplaced.is_empty());
        assert_eq!(db.archives, ["T1", "T2", "BIG"]);
    }

    #[test]
    fn archives_no_file_row_points_at_are_named_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sqlite3");
        two_runs(&path);
        let c = Connection::open(&path).unwrap();
        // A third run: every file of T1 changed (tar T3) and c.bin changed (archive BIG2).
        c.execute_batch(
            "INSERT INTO glaciersync_hashes VALUES ('T3', 'dd44'), ('BIG2', 'ee55');
             INSERT INTO glaciersync_tars VALUES ('T3', 300.5);
             UPDATE glaciersync_files SET archive_id = 'BIG2' WHERE fname = 'c.bin';
             INSERT INTO glaciersync_tar_files VALUES (3, 1), (3, 2);",
        )
        .unwrap();
        drop(c);
        let db = read(&path).unwrap();
        assert!(db.files.iter().all(|f| f.location.archive_id() != "T1"));
        assert!(db.files.iter().all(|f| f.location.archive_id() != "T2"));
        assert_eq!(db.archives, ["T1", "T2", "BIG", "T3", "BIG2"]);
    }

    #[test]
    fn missing_tables_and_columns_are_named_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sqlite3");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE glaciersync_files (profile text, basepath text, fname text, mtime real);
             CREATE TABLE glaciersync_hashes (archive_id text, hash text);",
        )
        .unwrap();
        drop(c);
        let msg = read(&path).unwrap_err().to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(
            msg.contains("table glaciersync_files lacks bytesize, archive_id"),
            "{msg}"
        );
        assert!(msg.contains("table glaciersync_tars is missing"), "{msg}");
        assert!(
            msg.contains("table glaciersync_tar_files is missing"),
            "{msg}"
        );
        // Some of the script's tables but not glaciersync_files: still the script's.
        let some = dir.path().join("s.sqlite3");
        let c = Connection::open(&some).unwrap();
        c.execute_batch(
            "CREATE TABLE glaciersync_hashes (archive_id text, hash text);
             CREATE TABLE glaciersync_tars (archive_id text, mtime real);
             CREATE TABLE glaciersync_tar_files (tar_rowid integer, file_rowid integer);",
        )
        .unwrap();
        drop(c);
        assert!(is_legacy(&some));
        let msg = read(&some).unwrap_err().to_string();
        assert!(msg.contains("table glaciersync_files is missing"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        let garbage = dir.path().join("g.sqlite3");
        std::fs::write(&garbage, b"not a database at all, not at all").unwrap();
        assert!(!is_legacy(&garbage));
        assert!(read(&garbage).is_err());
    }
}
