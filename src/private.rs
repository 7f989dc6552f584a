//! Private by default: catalogs hold every file name, so the directory they live in is created
//! readable by its owner only (0700), and catalogs, their lock, copies and staging files are
//! created 0600. Directories and files that already exist keep their modes.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

/// Creates `dir` and any missing parents, each new one mode 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut b = DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir)
}

/// Options that create a file mode 0600 (when it is new).
pub fn file_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    o.mode(0o600);
    o
}

/// Opens `path` for writing, mode 0600 when it is created, emptied when it exists.
pub fn create_truncated(path: &Path) -> io::Result<File> {
    file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Writes `bytes` to `path` (created 0600, emptied when it exists).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    create_truncated(path)?.write_all(bytes)
}

/// Creates `path` empty, mode 0600, unless it exists; the file SQLite then opens keeps that
/// mode, and so do its `-wal` and `-shm` files, which SQLite creates with the database's mode.
pub fn create_file(path: &Path) -> io::Result<()> {
    match file_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_files_are_private_and_old_ones_keep_their_mode() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&d.path().join("a")), 0o700);
        let f = dir.join("x.sqlite3");
        create_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::write(&f, b"kept").unwrap();
        create_file(&f).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"kept");
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o755);
    }
}
