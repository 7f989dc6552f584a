//! The local directory backend: objects are files under a root directory, keyed as
//! [`object_key`] says. Writes are atomic (temp file, fsync, rename, fsync of the directory).

use super::{
    Backend, ByteRange, ListOutcome, OWNERS_DIR, ObjectInfo, ObjectKind, PutMeta, Tier, WarmState,
    changed_while_stored, is_owner_id, object_key, parse_object_key,
};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{CopyError, copy_hashing};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Objects as files under `root`.
pub struct LocalBackend {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file untouched this long was left by a killed upload (a live one writes to its
/// file all along, and another process may share the directory): `cleanup` removes it.
const STALE_TMP: Duration = Duration::from_secs(3600);

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    fn err(&self, kind: BackendErrorKind, msg: impl Into<String>) -> Error {
        Error::backend("local", kind, msg)
    }

    fn io_err(&self, what: &str, path: &Path, e: io::Error) -> Error {
        let kind = match e.kind() {
            io::ErrorKind::NotFound => BackendErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => BackendErrorKind::Auth,
            _ => BackendErrorKind::Permanent,
        };
        self.err(kind, format!("{what} {}: {e}", path.display()))
    }

    /// Maps an id to a path under the root, refusing anything that could leave it.
    fn path_of(&self, id: &str) -> Result<PathBuf> {
        let rel = Path::new(id);
        let safe = !id.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!("refusing object id {id:?}: not a plain relative key"),
            ));
        }
        Ok(self.root.join(rel))
    }

    /// Stores a copy of `source` under its key; `verify`: check its bytes against
    /// `meta.tree_hash` as they are copied (else only their length).
    fn store(&self, meta: &PutMeta, source: &Path, verify: bool) -> Result<String> {
        let key = object_key(meta);
        let dest = self.path_of(&key)?;
        if let Ok(existing) = fs::metadata(&dest)
            && existing.len() == meta.size
            && holds(&dest, meta)
        {
            return Ok(key);
        }
        let dir = dest.parent().expect("keys have a directory");
        crate::private::create_dir(dir).map_err(|e| self.io_err("creating", dir, e))?;
        let tmp_dir = self.root.join("tmp");
        crate::private::create_dir(&tmp_dir).map_err(|e| self.io_err("creating", &tmp_dir, e))?;
        let tmp = tmp_dir.join(format!(
            "{}.{}.{}",
            meta.tree_hash,
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self
            .copy_checked(meta, source, &tmp, verify)
            .and_then(|()| {
                fs::rename(&tmp, &dest).map_err(|e| self.io_err("renaming into", &dest, e))?;
                sync_dir(dir).map_err(|e| self.io_err("syncing", dir, e))
            });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| key)
    }

    /// Copies `source` to `tmp` and syncs it; checks its size, and with `verify` its tree
    /// hash, against `meta`.
    fn copy_checked(&self, meta: &PutMeta, source: &Path, tmp: &Path, verify: bool) -> Result<()> {
        let mut src = File::open(source).map_err(|e| Error::io(source, e))?;
        let mut dst =
            crate::private::create_truncated(tmp).map_err(|e| self.io_err("creating", tmp, e))?;
        let (read, size) = copy_hashing(&mut src, &mut dst, verify).map_err(|e| match e {
            CopyError::Read(e) => Error::io(source, e),
            CopyError::Write(e) => self.io_err("writing", tmp, e),
        })?;
        let hash = read.unwrap_or(meta.tree_hash);
        if size != meta.size || hash != meta.tree_hash {
            return Err(changed_while_stored(
                "local",
                source,
                meta,
                &format!("read {size} bytes with tree hash {hash}"),
            ));
        }
        dst.sync_all().map_err(|e| self.io_err("syncing", tmp, e))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether the object already at `dest` holds `meta`'s content. Only a sync that stores a key
/// already there asks (an upload a killed run did not record, or a content found damaged and
/// stored again), so reading it back is rare; a damaged object is then written over.
fn holds(dest: &Path, meta: &PutMeta) -> bool {
    File::open(dest)
        .and_then(|f| crate::hash::tree_hash_reader(io::BufReader::new(f)))
        .is_ok_and(|(h, n)| h == meta.tree_hash && n == meta.size)
}

impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    fn needs_warm_up(&self, _kind: ObjectKind) -> bool {
        false
    }

    fn stages_by_rename(&self) -> bool {
        true
    }

    fn prepare(&self) -> Result<()> {
        for sub in ["", "data", "bundles", "catalog", "tmp"] {
            let dir = self.root.join(sub);
            crate::private::create_dir(&dir).map_err(|e| self.io_err("creating", &dir, e))?;
        }
        Ok(())
    }

    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        self.store(meta, source, true)
    }

    /// Renames the staged file into place (after an fsync) when it has the announced size and
    /// lies on the same file system; copies it as `put` does otherwise.
    fn put_staged(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        let key = object_key(meta);
        let dest = self.path_of(&key)?;
        let fits = fs::metadata(source).is_ok_and(|m| m.len() == meta.size);
        if !fits || fs::metadata(&dest).is_ok_and(|m| m.len() == meta.size) {
            return self.put(meta, source);
        }
        let dir = dest.parent().expect("keys have a directory");
        crate::private::create_dir(dir).map_err(|e| self.io_err("creating", dir, e))?;
        File::open(source)
            .and_then(|f| f.sync_all())
            .map_err(|e| self.io_err("syncing", source, e))?;
        if fs::rename(source, &dest).is_err() {
            // Another file system: a copy, whose bytes the caller vouches for (the encrypting
            // wrapper names a fresh ciphertext by a random id, not by its hash).
            return self.store(meta, source, false);
        }
        sync_dir(dir).map_err(|e| self.io_err("syncing", dir, e))?;
        Ok(key)
    }

    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        _ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let path = self.path_of(id)?;
        let mut file = File::open(&path).map_err(|e| self.io_err("opening", &path, e))?;
        let size = file
            .metadata()
            .map_err(|e| self.io_err("reading", &path, e))?
            .len();
        let range = range.unwrap_or(ByteRange {
            start: 0,
            end: size,
        });
        if range.end > size || range.start > range.end {
            // Shorter than what was stored: damaged.
            let kind = match range.start <= range.end {
                true => BackendErrorKind::Corrupt,
                false => BackendErrorKind::Permanent,
            };
            return Err(self.err(
                kind,
                format!(
                    "range {}..{} is outside {id} ({size} bytes)",
                    range.start, range.end
                ),
            ));
        }
        file.seek(SeekFrom::Start(range.start))
            .map_err(|e| self.io_err("seeking", &path, e))?;
        // Large reads: restores pass whole bundles through here.
        let mut reader = io::BufReader::with_capacity(1 << 20, file.take(range.len()));
        let copied = io::copy(&mut reader, out).map_err(|e| self.io_err("reading", &path, e))?;
        if copied != range.len() {
            return Err(self.err(
                BackendErrorKind::Corrupt,
                format!("{id}: short read ({copied} of {} bytes)", range.len()),
            ));
        }
        Ok(copied)
    }

    fn warm_up(
        &self,
        id: &str,
        _range: Option<ByteRange>,
        _tier: Tier,
        _ticket: Option<&str>,
    ) -> Result<WarmState> {
        let path = self.path_of(id)?;
        fs::metadata(&path).map_err(|e| self.io_err("reading", &path, e))?;
        Ok(WarmState::Ready { ticket: None })
    }

    fn owners(&self) -> Result<Option<Vec<String>>> {
        let dir = self.root.join(OWNERS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(Vec::new())),
            Err(e) => return Err(self.io_err("listing", &dir, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_err("listing", &dir, e))?;
            ids.push(entry.file_name().to_string_lossy().into_owned());
        }
        ids.sort();
        Ok(Some(ids))
    }

    fn mark_owner(&self, id: &str) -> Result<()> {
        if !is_owner_id(id) {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!("refusing owner id {id:?}: not a hex id"),
            ));
        }
        let dir = self.root.join(OWNERS_DIR);
        crate::private::create_dir(&dir).map_err(|e| self.io_err("creating", &dir, e))?;
        let path = dir.join(id);
        crate::private::create_truncated(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| self.io_err("writing", &path, e))
    }

    fn list(&self, _ticket: Option<&str>) -> Result<ListOutcome> {
        let mut out = Vec::new();
        for top in ["data", "bundles", "catalog"] {
            let dir = self.root.join(top);
            if !dir.exists() {
                continue;
            }
            let mut stack = vec![dir];
            while let Some(dir) = stack.pop() {
                let entries = fs::read_dir(&dir).map_err(|e| self.io_err("listing", &dir, e))?;
                for entry in entries {
                    let entry = entry.map_err(|e| self.io_err("listing", &dir, e))?;
                    let path = entry.path();
                    let meta = entry
                        .metadata()
                        .map_err(|e| self.io_err("reading", &path, e))?;
                    if meta.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(&self.root) else {
                        continue;
                    };
                    let id = rel.to_string_lossy().replace('\\', "/");
                    let parsed = parse_object_key(&id);
                    out.push(ObjectInfo {
                        size: meta.len(),
                        kind: parsed.map(|p| p.kind),
                        tree_hash: parsed.map(|p| p.tree_hash),
                        created: parsed.and_then(|p| p.created),
                        age_header: parsed.and_then(|p| p.age_header),
                        profile: None,
                        description: None,
                        listed_tree_hash: None,
                        id,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ListOutcome::Ready(out))
    }

    fn delete(&self, id: &str) -> Result<()> {
        let path = self.path_of(id)?;
        fs::remove_file(&path).map_err(|e| self.io_err("deleting", &path, e))
    }

    fn cleanup(&self) -> Result<()> {
        let dir = self.root.join("tmp");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io_err("listing", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.io_err("listing", &dir, e))?;
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TMP));
            if stale {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| self.io_err("deleting", &path, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_backend_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("store"));
        crate::backend::testsuite::run_all(&backend, &Default::default());
    }

    #[test]
    fn cleanup_removes_stale_temporary_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path());
        backend.cleanup().unwrap();
        backend.prepare().unwrap();
        let (stale, live) = (dir.path().join("tmp/a.1.0"), dir.path().join("tmp/b.2.0"));
        fs::write(&stale, b"left by a killed upload").unwrap();
        fs::write(&live, b"being written").unwrap();
        let old = std::time::SystemTime::now() - 2 * STALE_TMP;
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        backend.cleanup().unwrap();
        assert!(!stale.exists());
        assert!(live.exists());
    }

    #[test]
    fn ids_that_leave_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path());
        for id in ["../x", "/etc/passwd", "", "data/../../x"] {
            let mut sink = Vec::new();
            assert!(backend.get(id, None, None, &mut sink).is_err(), "{id}");
            assert!(backend.delete(id).is_err(), "{id}");
        }
    }
}
