"""One run of the 2013 glaciersync script, as it wrote its database and its vault, for tests.

Writes what LEGACY.md describes: the four tables, archives described by the SHA-1 of their
bytes (a file above the threshold, a tar of small files built by `tarfile` in GNU format with
members named by absolute path, a tar of one file uploaded as that file), identical contents
uploaded once, and at the end the database uploaded as `glaciersync sqlite3 db <local time>`.
Talks to a Glacier endpoint (moto) through boto3.

    python script2013.py --endpoint URL --vault V --db FILE --profile P --threshold N \
        --root DIR [--windows-basepath 'C:\\Users\\me\\Pictures'] [--no-db-upload] \
        [--drop-member REL] [--garbage-db] [--member-encoding cp1252]

--windows-basepath: spell the tree as Windows did (basepath, backslash fnames, tar members
without the drive), while reading the files from DIR. --no-db-upload: a run that crashed before
its database upload. --drop-member REL: leave that file out of its tar (yet record it there).
--garbage-db: upload a newer "database" that is not one. --member-encoding: how tar member
names are encoded (Python 2.7's tarfile used the file system encoding: UTF-8 on Linux, `mbcs`,
the ANSI code page, on Windows: cp1252 on Western systems); UTF-8 when not given.

Hard-linked files and symlinks go into the tar as `tarfile.add` stores them: the second path of
a hard-linked pair as a hard-link entry naming the first, a symlink as a symlink entry (while
the database row, from `os.path.getmtime`/`getsize`, has its target's mtime and size).
"""

import argparse
import datetime
import hashlib
import io
import os
import sqlite3
import tarfile
import tempfile

import boto3

SCHEMA = [
    "CREATE TABLE glaciersync_files (profile text, basepath text, fname text, mtime real,"
    " bytesize integer, archive_id text)",
    "CREATE INDEX glaciersyncfiles_profile_basepath_fname ON glaciersync_files"
    " (profile, basepath, fname)",
    "CREATE TABLE glaciersync_hashes (archive_id text, hash text)",
    "CREATE INDEX glaciersynchashes_hash ON glaciersync_hashes (hash)",
    "CREATE TABLE glaciersync_tars (archive_id text, mtime real)",
    "CREATE TABLE glaciersync_tar_files (tar_rowid integer, file_rowid integer)",
]


def sha1_of(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            h.update(chunk)
    return h.hexdigest()


class Run:
    def __init__(self, a):
        self.a = a
        self.glacier = boto3.client(
            "glacier",
            endpoint_url=a.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        # CreateVault is idempotent on AWS, as boto's create_vault relied on; moto's replaces
        # an existing vault with an empty one, so only create a missing vault.
        try:
            self.glacier.describe_vault(vaultName=a.vault)
        except self.glacier.exceptions.ClientError:
            self.glacier.create_vault(vaultName=a.vault)
        fresh = not os.path.exists(a.db)
        self.db = sqlite3.connect(a.db)
        if fresh:
            for sql in SCHEMA:
                self.db.execute(sql)
        self.win = a.windows_basepath
        self.basepath = self.win or os.path.abspath(a.root)
        self.tar = []
        self.tar_size = 0
        self.changes = False

    def upload(self, path, description):
        with open(path, "rb") as f:
            body = f.read()
        out = self.glacier.upload_archive(
            vaultName=self.a.vault, archiveDescription=description, body=body
        )
        return out["archiveId"]

    def archive_id(self, path):
        h = sha1_of(path)
        row = self.db.execute(
            "select archive_id from glaciersync_hashes where hash=?", (h,)
        ).fetchone()
        if row:
            return row[0]
        aid = self.upload(path, h)
        self.db.execute("insert into glaciersync_hashes (archive_id, hash) values (?, ?)", (aid, h))
        self.db.commit()
        return aid

    def record(self, item, archive_id):
        insert, update, rel, real, mtime, size = item
        if insert:
            self.db.execute(
                "insert into glaciersync_files (profile, basepath, fname, mtime, bytesize,"
                " archive_id) values (?, ?, ?, ?, ?, ?)",
                (self.a.profile, self.basepath, rel, mtime, size, archive_id),
            )
        if update:
            self.db.execute(
                "update glaciersync_files set mtime=?, bytesize=?, archive_id=?"
                " where profile=? and basepath=? and fname=?",
                (mtime, size, archive_id, self.a.profile, self.basepath, rel),
            )
        self.db.commit()

    def member(self, rel):
        """The name Python's tarfile gives tar.add(<absolute path>)."""
        if self.win:
            full = self.win.rstrip("\\") + "\\" + rel
            return full[2:].replace("\\", "/").lstrip("/")
        return os.path.join(self.basepath, rel).lstrip("/")

    def flush_tar(self):
        if len(self.tar) == 1:
            item = self.tar[0]
            self.record(item, self.archive_id(item[3]))
        elif self.tar:
            fd, tmp = tempfile.mkstemp()
            os.close(fd)
            encoding = self.a.member_encoding or "utf-8"
            with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT, encoding=encoding) as t:
                for item in self.tar:
                    if item[2] == self.a.drop_member:
                        continue
                    if self.win:
                        t.add(item[3], arcname=self.member(item[2]))
                    else:
                        t.add(item[3])  # named by its absolute path, as the script did
            tar_mtime = os.path.getmtime(tmp)
            aid = self.archive_id(tmp)
            os.unlink(tmp)
            cur = self.db.execute(
                "insert into glaciersync_tars (archive_id, mtime) values (?, ?)", (aid, tar_mtime)
            )
            tar_rowid = cur.lastrowid
            self.db.commit()
            for item in self.tar:
                self.record(item, "")
                file_rowid = self.db.execute(
                    "select rowid from glaciersync_files where profile=? and basepath=? and fname=?",
                    (self.a.profile, self.basepath, item[2]),
                ).fetchone()[0]
                self.db.execute(
                    "insert into glaciersync_tar_files (tar_rowid, file_rowid) values (?, ?)",
                    (tar_rowid, file_rowid),
                )
                self.db.commit()
        self.tar, self.tar_size = [], 0

    def process(self, real, rel):
        mtime = os.path.getmtime(real)
        size = os.path.getsize(real)
        row = self.db.execute(
            "select mtime, bytesize from glaciersync_files where profile=? and basepath=? and fname=?",
            (self.a.profile, self.basepath, rel),
        ).fetchone()
        insert = row is None
        update = row is not None and (row[0] != mtime or row[1] != size)
        if not (insert or update):
            return
        self.changes = True
        item = (insert, update, rel, real, mtime, size)
        if size <= self.a.threshold:
            self.tar.append(item)
            self.tar_size += size
            if self.tar_size > self.a.threshold:
                self.flush_tar()
        else:
            self.record(item, self.archive_id(real))

    def run(self):
        root = os.path.abspath(self.a.root)
        sep = "\\" if self.win else os.sep
        for path, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                real = os.path.join(path, name)
                rel = os.path.relpath(real, root).replace(os.sep, sep)
                self.process(real, rel)
        self.flush_tar()
        self.db.close()
        if self.changes and not self.a.no_db_upload:
            self.upload(self.a.db, "glaciersync sqlite3 db " + str(datetime.datetime.now()))
        if self.a.garbage_db:
            body = io.BytesIO(b"this is not a database at all" * 10).getvalue()
            later = datetime.datetime.now() + datetime.timedelta(seconds=5)
            self.glacier.upload_archive(
                vaultName=self.a.vault,
                archiveDescription="glaciersync sqlite3 db " + str(later),
                body=body,
            )


def main():
    p = argparse.ArgumentParser()
    for name in ["--endpoint", "--vault", "--db", "--profile", "--root"]:
        p.add_argument(name, required=True)
    p.add_argument("--threshold", type=int, required=True)
    p.add_argument("--windows-basepath")
    p.add_argument("--no-db-upload", action="store_true")
    p.add_argument("--drop-member")
    p.add_argument("--garbage-db", action="store_true")
    p.add_argument("--member-encoding")
    Run(p.parse_args()).run()


if __name__ == "__main__":
    main()
