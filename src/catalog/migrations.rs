//! Numbered schema migrations, applied in order when a catalog is opened. `PRAGMA user_version`
//! holds how many have been applied. Never edit a released migration: add a new one.

/// Migration `i` (0-based) takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema. See docs/catalog.md.
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE snapshots (
    id          INTEGER PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT NOT NULL CHECK (status IN ('running', 'complete'))
);

CREATE TABLE archives (
    id          INTEGER PRIMARY KEY,
    remote_id   TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('file', 'bundle', 'catalog')),
    size        INTEGER NOT NULL,
    tree_hash   TEXT NOT NULL,
    backend     TEXT NOT NULL,
    stored_at   INTEGER NOT NULL
);

CREATE TABLE contents (
    hash        TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    archive_id  INTEGER NOT NULL REFERENCES archives (id),
    offset      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX contents_archive ON contents (archive_id);

CREATE TABLE versions (
    id          INTEGER PRIMARY KEY,
    tree        TEXT NOT NULL,
    path        BLOB NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('file', 'symlink', 'dir')),
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    mode        INTEGER NOT NULL,
    hash        TEXT REFERENCES contents (hash),
    target      BLOB,
    since       INTEGER NOT NULL REFERENCES snapshots (id),
    until       INTEGER REFERENCES snapshots (id),
    CHECK ((kind = 'file') = (hash IS NOT NULL)),
    CHECK ((kind = 'symlink') = (target IS NOT NULL))
);
CREATE UNIQUE INDEX versions_current ON versions (tree, path) WHERE until IS NULL;
CREATE INDEX versions_span ON versions (since, until);
CREATE INDEX versions_hash ON versions (hash);

CREATE TABLE retrievals (
    archive_id   INTEGER NOT NULL REFERENCES archives (id),
    range_start  INTEGER NOT NULL,
    range_end    INTEGER NOT NULL,
    tier         TEXT NOT NULL,
    ticket       TEXT,
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (archive_id, range_start, range_end)
);
"#,
    // 2: the compact schema (issue 10). Hashes as 32-byte blobs instead of 64-character hex;
    // the indexes no query uses dropped (versions_span, versions_hash, contents_archive);
    // archives of kind 'catalog-delta' (incremental catalog backups).
    // Rows keep their ids. Run with foreign keys off and checked before the commit.
    r#"
CREATE TABLE archives_new (
    id          INTEGER PRIMARY KEY,
    remote_id   TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('file', 'bundle', 'catalog', 'catalog-delta')),
    size        INTEGER NOT NULL,
    tree_hash   BLOB NOT NULL CHECK (length(tree_hash) = 32),
    backend     TEXT NOT NULL,
    stored_at   INTEGER NOT NULL
);
INSERT INTO archives_new (id, remote_id, kind, size, tree_hash, backend, stored_at)
    SELECT id, remote_id, kind, size, unhex(tree_hash), backend, stored_at FROM archives;

CREATE TABLE contents_new (
    hash        BLOB PRIMARY KEY CHECK (length(hash) = 32),
    size        INTEGER NOT NULL,
    archive_id  INTEGER NOT NULL REFERENCES archives (id),
    offset      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO contents_new (hash, size, archive_id, offset)
    SELECT unhex(hash), size, archive_id, offset FROM contents ORDER BY unhex(hash);

CREATE TABLE versions_new (
    id          INTEGER PRIMARY KEY,
    tree        TEXT NOT NULL,
    path        BLOB NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('file', 'symlink', 'dir')),
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    mode        INTEGER NOT NULL,
    hash        BLOB REFERENCES contents (hash),
    target      BLOB,
    since       INTEGER NOT NULL REFERENCES snapshots (id),
    until       INTEGER REFERENCES snapshots (id),
    CHECK ((kind = 'file') = (hash IS NOT NULL)),
    CHECK ((kind = 'symlink') = (target IS NOT NULL))
);
INSERT INTO versions_new (id, tree, path, kind, size, mtime_ns, mode, hash, target, since, until)
    SELECT id, tree, path, kind, size, mtime_ns, mode, unhex(hash), target, since, until
    FROM versions ORDER BY id;

DROP TABLE versions;
DROP TABLE contents;
DROP TABLE archives;
ALTER TABLE archives_new RENAME TO archives;
ALTER TABLE contents_new RENAME TO contents;
ALTER TABLE versions_new RENAME TO versions;
CREATE UNIQUE INDEX versions_current ON versions (tree, path) WHERE until IS NULL;
"#,
    // 3: prune. The S3 storage class data was sent to, from when (`storage_classes`), and the
    // archives prune took out of the catalog, until and after the backend deleted them
    // (`pruned_archives`). See docs/catalog.md.
    r#"
CREATE TABLE storage_classes (
    since INTEGER NOT NULL,
    class TEXT NOT NULL
);

CREATE TABLE pruned_archives (
    remote_id  TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    backend    TEXT NOT NULL,
    marked_at  INTEGER NOT NULL,
    deleted_at INTEGER
);
"#,
    // 4: what the 2013 script's databases say about their archives, once imported. See
    // docs/catalog.md ("Legacy archives").
    r#"
CREATE TABLE legacy_archives (
    archive_id  INTEGER PRIMARY KEY REFERENCES archives (id),
    sha1        TEXT NOT NULL,
    tar         INTEGER NOT NULL,
    listed      INTEGER NOT NULL
);

CREATE TABLE legacy_members (
    archive_id  INTEGER NOT NULL REFERENCES archives (id),
    member      BLOB NOT NULL,
    size        INTEGER NOT NULL,
    offset      INTEGER,
    PRIMARY KEY (archive_id, member)
);
"#,
    // 5: archives.encrypted, 1 for an age-encrypted archive (its remote_id starts with
    // `age:`, as the encrypting backend wrapper names them). Generated, so every way of
    // recording an archive gets it right.
    r#"
ALTER TABLE archives ADD COLUMN encrypted INTEGER
    GENERATED ALWAYS AS (substr(remote_id, 1, 4) = 'age:') VIRTUAL;
"#,
    // 6: contents whose stored copy was found missing or damaged (by `verify --remote` or a
    // restore): taken out of `contents`, so the next sync stores them again from any file that
    // still has them. See docs/catalog.md ("Lost contents").
    r#"
CREATE TABLE lost_contents (
    hash     BLOB PRIMARY KEY CHECK (length(hash) = 32),
    found_at INTEGER NOT NULL,
    why      TEXT NOT NULL
) WITHOUT ROWID;
"#,
];
