//! Walking the trees of a profile: a parallel walk (the `ignore` crate's walker) that applies
//! gitignore-style excludes, never follows symlinks, and reports every entry with `lstat`
//! metadata. Sockets, FIFOs and devices are skipped with a note.

use crate::catalog::EntryKind;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::{WalkBuilder, WalkState};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A tree to walk: the settings key that names it and its root directory.
#[derive(Debug, Clone)]
pub struct TreeSpec {
    pub key: String,
    pub root: PathBuf,
}

/// One entry found by the walk.
#[derive(Debug, Clone)]
pub struct ScanEntry {
    pub tree: String,
    /// Relative path, `/`-separated raw bytes.
    pub rel: Vec<u8>,
    pub abs: PathBuf,
    pub kind: EntryKind,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    pub target: Option<Vec<u8>>,
}

/// What the walk reports.
#[derive(Debug)]
pub enum ScanEvent {
    Entry(ScanEntry),
    /// Something could not be read. `rel` is the path under the tree when known: entries below
    /// it must not be taken as deleted.
    Error {
        tree: String,
        rel: Option<Vec<u8>>,
        message: String,
    },
    /// A socket, FIFO or device: not backed up.
    Skipped {
        tree: String,
        rel: Vec<u8>,
        why: &'static str,
    },
}

/// Compiles exclude patterns (gitignore syntax) anchored at `root`.
pub fn excludes(root: &Path, patterns: &[String]) -> Result<Gitignore, String> {
    let mut b = GitignoreBuilder::new(root);
    for p in patterns {
        b.add_line(None, p)
            .map_err(|e| format!("bad exclude pattern {p:?}: {e}"))?;
    }
    b.build().map_err(|e| format!("bad exclude patterns: {e}"))
}

/// Nanoseconds since the epoch of a file's modification time.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn rel_bytes(root: &Path, path: &Path) -> Option<Vec<u8>> {
    let rel = path.strip_prefix(root).ok()?;
    Some(rel.as_os_str().as_bytes().to_vec())
}

fn error_path(err: &ignore::Error) -> Option<&Path> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child),
        _ => None,
    }
}

fn error_message(err: &ignore::Error) -> String {
    match err {
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => error_message(err),
        ignore::Error::Io(e) => crate::error::io_message(e),
        other => other.to_string(),
    }
}

/// Builds an entry from `lstat` metadata, or says why the entry is not backed up.
pub fn entry_from_metadata(
    tree: &str,
    root: &Path,
    abs: &Path,
    meta: &std::fs::Metadata,
) -> Result<Option<ScanEntry>, ScanEvent> {
    let Some(rel) = rel_bytes(root, abs) else {
        return Ok(None);
    };
    if rel.is_empty() {
        return Ok(None);
    }
    let ft = meta.file_type();
    let skipped = |why| ScanEvent::Skipped {
        tree: tree.to_string(),
        rel: rel.clone(),
        why,
    };
    let (kind, size, target) = if ft.is_symlink() {
        let target = std::fs::read_link(abs).map_err(|e| ScanEvent::Error {
            tree: tree.to_string(),
            rel: Some(rel.clone()),
            message: crate::error::io_message(&e),
        })?;
        (
            EntryKind::Symlink,
            0,
            Some(target.as_os_str().as_bytes().to_vec()),
        )
    } else if ft.is_dir() {
        (EntryKind::Dir, 0, None)
    } else if ft.is_file() {
        (EntryKind::File, meta.len(), None)
    } else if ft.is_fifo() {
        return Err(skipped("a FIFO"));
    } else if ft.is_socket() {
        return Err(skipped("a socket"));
    } else if ft.is_block_device() || ft.is_char_device() {
        return Err(skipped("a device"));
    } else {
        return Err(skipped("of an unknown type"));
    };
    Ok(Some(ScanEntry {
        tree: tree.to_string(),
        rel,
        abs: abs.to_path_buf(),
        kind,
        size,
        mtime_ns: mtime_ns(meta),
        mode: meta.mode(),
        target,
    }))
}

/// Events gathered per walker thread and handed over in batches (one channel send per batch
/// instead of one per entry). What is left is handed over when the thread's visitor is dropped,
/// which happens before the walk returns.
struct Batch<'s> {
    events: Vec<ScanEvent>,
    sink: &'s (dyn Fn(Vec<ScanEvent>) + Sync),
}

impl Batch<'_> {
    const SIZE: usize = 256;

    fn push(&mut self, ev: ScanEvent) {
        self.events.push(ev);
        if self.events.len() >= Self::SIZE {
            (self.sink)(std::mem::replace(
                &mut self.events,
                Vec::with_capacity(Self::SIZE),
            ));
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.events.is_empty() {
            (self.sink)(std::mem::take(&mut self.events));
        }
    }
}

/// Walks `tree` with `threads` threads, handing every event to `sink` in batches. Paths in
/// `skip` (and everything below them) are left out. Returns `false` when the root itself could
/// not be read (nothing below it may be taken as deleted).
pub fn walk(
    tree: &TreeSpec,
    exclude: &Gitignore,
    skip: &[PathBuf],
    threads: usize,
    sink: &(dyn Fn(Vec<ScanEvent>) + Sync),
) -> bool {
    let root_error = match std::fs::metadata(&tree.root) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!(
            "{} = {}: not a directory",
            tree.key,
            tree.root.display()
        )),
        Err(e) => {
            let what = if e.kind() == std::io::ErrorKind::NotFound {
                "path not found".to_string()
            } else {
                crate::error::io_message(&e)
            };
            Some(format!(
                "{} = {}: {what}; fix `{}` in the settings file",
                tree.key,
                tree.root.display(),
                tree.key
            ))
        }
    };
    if let Some(message) = root_error {
        sink(vec![ScanEvent::Error {
            tree: tree.key.clone(),
            rel: None,
            message,
        }]);
        return false;
    }
    let root = tree.root.clone();
    let walker = WalkBuilder::new(&tree.root)
        .standard_filters(false)
        .follow_links(false)
        .threads(threads.max(1))
        .filter_entry({
            let exclude = exclude.clone();
            let skip = skip.to_vec();
            move |e| {
                if e.depth() == 0 {
                    return true;
                }
                let is_dir = e.file_type().is_some_and(|t| t.is_dir());
                !exclude.matched(e.path(), is_dir).is_ignore()
                    && !skip.iter().any(|p| e.path() == p)
            }
        })
        .build_parallel();
    walker.run(|| {
        let root = root.clone();
        let mut batch = Batch {
            events: Vec::with_capacity(Batch::SIZE),
            sink,
        };
        Box::new(move |result| {
            let event = match result {
                Ok(entry) if entry.depth() == 0 => None,
                Ok(entry) => match entry.metadata() {
                    Ok(meta) => match entry_from_metadata(&tree.key, &root, entry.path(), &meta) {
                        Ok(Some(e)) => Some(ScanEvent::Entry(e)),
                        Ok(None) => None,
                        Err(ev) => Some(ev),
                    },
                    Err(err) => Some(ScanEvent::Error {
                        tree: tree.key.clone(),
                        rel: rel_bytes(&root, entry.path()),
                        message: error_message(&err),
                    }),
                },
                Err(err) => Some(ScanEvent::Error {
                    tree: tree.key.clone(),
                    rel: error_path(&err).and_then(|p| rel_bytes(&root, p)),
                    message: error_message(&err),
                }),
            };
            if let Some(ev) = event {
                batch.push(ev);
            }
            WalkState::Continue
        })
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collect(root: &Path, patterns: &[&str]) -> (Vec<String>, Vec<String>) {
        let tree = TreeSpec {
            key: "path".into(),
            root: root.to_path_buf(),
        };
        let pats: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        let ex = excludes(root, &pats).unwrap();
        let found = Mutex::new(Vec::new());
        let other = Mutex::new(Vec::new());
        walk(&tree, &ex, &[], 2, &|batch| {
            for ev in batch {
                match ev {
                    ScanEvent::Entry(e) => found
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&e.rel).to_string()),
                    ScanEvent::Skipped { rel, why, .. } => other
                        .lock()
                        .unwrap()
                        .push(format!("skip {} {why}", String::from_utf8_lossy(&rel))),
                    ScanEvent::Error { message, .. } => other.lock().unwrap().push(message),
                }
            }
        });
        let mut f = found.into_inner().unwrap();
        f.sort();
        (f, other.into_inner().unwrap())
    }

    #[test]
    fn excludes_follow_gitignore_rules() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for p in [
            "a.txt",
            "b.log",
            "build/out.o",
            "src/build/keep.rs",
            "src/main.rs",
            ".hidden",
        ] {
            let p = r.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
        }
        let (found, _) = collect(r, &["*.log", "/build/"]);
        assert_eq!(
            found,
            [
                ".hidden",
                "a.txt",
                "src",
                "src/build",
                "src/build/keep.rs",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn symlinks_are_not_followed_and_fifos_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("real")).unwrap();
        std::fs::write(r.join("real/f"), b"x").unwrap();
        std::os::unix::fs::symlink("real", r.join("link")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(r.join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        let (found, other) = collect(r, &[]);
        assert_eq!(found, ["link", "real", "real/f"]);
        assert_eq!(other, ["skip pipe a FIFO"]);
    }

    #[test]
    fn a_missing_root_is_one_clear_error() {
        let (found, other) = collect(Path::new("/nonexistent/glaciersync/root"), &[]);
        assert!(found.is_empty());
        assert_eq!(other.len(), 1);
        assert!(
            other[0].contains("path not found") && other[0].contains("path ="),
            "{}",
            other[0]
        );
    }
}
