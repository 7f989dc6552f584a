//! Destinations: where a restored entry goes (never outside the target directory), the
//! directories on the way (never through a symlink), and the mode and mtime it gets back.

use crate::hash::Hash32;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Joins `tree/rel` under `to`, refusing anything that could leave it.
pub fn safe_dest(to: &Path, tree: &str, rel: &[u8]) -> std::result::Result<PathBuf, String> {
    let tree_ok = !tree.is_empty()
        && tree
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !tree_ok {
        return Err(format!("refusing tree name {tree:?}: not a settings key"));
    }
    let rel_path = Path::new(OsStr::from_bytes(rel));
    let ok = !rel.is_empty()
        && !rel.contains(&0)
        && rel_path
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !ok {
        return Err(format!(
            "refusing path {:?}: it would be written outside the target directory",
            String::from_utf8_lossy(rel)
        ));
    }
    Ok(to.join(tree).join(rel_path))
}

/// Checks the restore's target before anything else happens: it, or the nearest part of it
/// that exists, must be a directory (following symlinks, as `cd` does).
pub fn check_target(to: &Path) -> std::result::Result<(), String> {
    let mut cur = Some(to);
    while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty()) {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) if p == to => {
                return Err(format!(
                    "restore --to {}: it exists and is not a directory: name a directory \
                     (created when missing)",
                    to.display()
                ));
            }
            Ok(_) => {
                return Err(format!(
                    "restore --to {}: {} is not a directory: name a directory (created when \
                     missing)",
                    to.display(),
                    p.display()
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => cur = p.parent(),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(format!(
                    "restore --to {}: a part of it is not a directory: name a directory \
                     (created when missing)",
                    to.display()
                ));
            }
            Err(e) => return Err(format!("restore --to {}: {e}", to.display())),
        }
    }
    Ok(())
}

/// Makes the restore's target (a real run, before anything is requested or written): creates
/// it when missing and checks that a file can be created in it. Everything that stops this
/// (a dangling symlink, a read-only or special file system, no permission) is one line.
pub fn prepare_target(to: &Path) -> std::result::Result<(), String> {
    let fail = |what: String| {
        Err(format!(
            "restore --to {}: {what}: name a directory you can write to",
            to.display()
        ))
    };
    if fs::symlink_metadata(to).is_ok_and(|m| m.file_type().is_symlink()) && !to.exists() {
        return fail("it is a symlink to something that does not exist".into());
    }
    if let Err(e) = fs::create_dir_all(to) {
        return fail(format!("cannot create it ({e})"));
    }
    let probe = to.join(format!(".glaciersync-probe-{}", std::process::id()));
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => fail(format!("cannot write in it ({e})")),
    }
}

/// Creates the directories from `to` down to `dir`, refusing to pass through a symlink.
pub(super) fn make_dirs(to: &Path, dir: &Path) -> io::Result<()> {
    let rel = dir
        .strip_prefix(to)
        .map_err(|_| io::Error::other("outside the target"))?;
    let mut cur = to.to_path_buf();
    fs::create_dir_all(&cur)?;
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symlink: refusing to write through it",
                    cur.display()
                )));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} exists and is not a directory",
                    cur.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Directories already created or checked in this restore, so each is checked once, not once
/// per file (restores write many files into few directories).
#[derive(Default)]
pub(super) struct DirCache {
    known: Mutex<HashSet<PathBuf>>,
}

impl DirCache {
    /// Makes sure `dir` (under `to`) exists, as [`make_dirs`] does.
    pub(super) fn ensure(&self, to: &Path, dir: &Path) -> io::Result<()> {
        if self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(dir)
        {
            return Ok(());
        }
        make_dirs(to, dir)?;
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let mut cur = Some(dir);
        while let Some(d) = cur.filter(|d| d.starts_with(to)) {
            if !known.insert(d.to_path_buf()) {
                break;
            }
            cur = d.parent();
        }
        Ok(())
    }
}

/// A time recorded in nanoseconds since the Unix epoch.
pub(super) fn system_time(mtime_ns: i64) -> SystemTime {
    let abs = Duration::new(
        mtime_ns.unsigned_abs() / 1_000_000_000,
        (mtime_ns.unsigned_abs() % 1_000_000_000) as u32,
    );
    if mtime_ns >= 0 {
        UNIX_EPOCH + abs
    } else {
        UNIX_EPOCH - abs
    }
}

/// The same time for the `filetime` crate.
pub(super) fn file_time(mtime_ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// Gives `path` back its permission bits and mtime.
pub(super) fn set_times_and_mode(path: &Path, mode: u32, mtime_ns: i64) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))?;
    filetime::set_file_mtime(path, file_time(mtime_ns))
}

/// The tree hash of an existing file, or `None` when it cannot be read.
pub(super) fn hash_existing(path: &Path) -> Option<Hash32> {
    let f = File::open(path).ok()?;
    crate::hash::tree_hash_reader(io::BufReader::new(f))
        .ok()
        .map(|(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_never_leave_the_target() {
        let to = Path::new("/restore");
        assert_eq!(
            safe_dest(to, "path", b"a/b.txt").unwrap(),
            Path::new("/restore/path/a/b.txt")
        );
        for bad in [&b"../x"[..], b"/etc/passwd", b"a/../../x", b"", b"a/\0b"] {
            assert!(
                safe_dest(to, "path", bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for bad_tree in ["..", "", "a/b", "/"] {
            assert!(safe_dest(to, bad_tree, b"x").is_err(), "{bad_tree}");
        }
    }

    #[test]
    fn a_target_that_is_a_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("file");
        fs::write(&file, b"x").unwrap();
        let err = check_target(&file).unwrap_err();
        assert!(err.contains("is not a directory"), "{err}");
        assert!(check_target(&file.join("below")).is_err());
        assert!(check_target(d.path()).is_ok());
        assert!(check_target(&d.path().join("new/sub")).is_ok());
        assert!(check_target(Path::new("relative-missing")).is_ok());
    }

    #[test]
    fn make_dirs_refuses_symlinked_components() {
        let d = tempfile::tempdir().unwrap();
        let to = d.path().join("to");
        let outside = d.path().join("outside");
        fs::create_dir_all(to.join("path")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, to.join("path/evil")).unwrap();
        let err = make_dirs(&to, &to.join("path/evil/sub")).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(!outside.join("sub").exists());
    }
}
