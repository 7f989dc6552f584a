//! Reading a changed file once: its tree hash, and (for small files) its bytes, so a bundle
//! member is written from exactly the bytes that were hashed. A file that changes while it is
//! read is read once more, then reported.

use crate::error::io_message;
use crate::hash::{Hash32, TreeHasher};
use crate::scan::mtime_ns;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What one read of a file gave.
#[derive(Debug)]
pub struct ReadFile {
    pub hash: Hash32,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    /// The bytes, when the file was no larger than the keep limit.
    pub bytes: Option<Vec<u8>>,
}

/// Reads and hashes `path`, keeping the bytes when the file is at most `keep_limit` long.
pub fn read_file(path: &Path, keep_limit: u64) -> Result<ReadFile, String> {
    for attempt in 0..2 {
        match read_once(path, keep_limit) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) if attempt == 0 => continue,
            Ok(None) => {
                return Err(
                    "changed while being read (twice); it will be tried again at the next sync"
                        .into(),
                );
            }
            Err(e) => return Err(io_message(&e)),
        }
    }
    unreachable!("the loop returns")
}

/// One attempt; `Ok(None)` when the file changed during the read.
fn read_once(path: &Path, keep_limit: u64) -> io::Result<Option<ReadFile>> {
    let mut file = File::open(path)?;
    let before = file.metadata()?;
    if !before.is_file() {
        return Err(io::Error::other("is no longer a regular file"));
    }
    let keep = before.len() <= keep_limit;
    let mut bytes = if keep {
        Vec::with_capacity(before.len() as usize)
    } else {
        Vec::new()
    };
    let mut hasher = TreeHasher::new();
    // No larger than the file (and one byte to see its end): zeroing a 256 KiB buffer for each
    // small file was 7 % of a first backup of a million small files.
    let mut buf = vec![
        0u8;
        (before.len() as usize)
            .saturating_add(1)
            .clamp(4096, 256 * 1024)
    ];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if keep {
            if bytes.len() + n > keep_limit as usize {
                return Ok(None);
            }
            bytes.extend_from_slice(&buf[..n]);
        }
    }
    let after = file.metadata()?;
    let size = hasher.len();
    if size != before.len()
        || after.len() != before.len()
        || mtime_ns(&after) != mtime_ns(&before)
        || after.ctime() != before.ctime()
        || after.ctime_nsec() != before.ctime_nsec()
    {
        return Ok(None);
    }
    Ok(Some(ReadFile {
        hash: hasher.finish(),
        size,
        mtime_ns: mtime_ns(&before),
        mode: before.mode(),
        bytes: keep.then_some(bytes),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::tree_hash;

    #[test]
    fn keeps_small_files_and_streams_large_ones() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let r = read_file(&p, 10).unwrap();
        assert_eq!(r.hash, tree_hash(b"hello"));
        assert_eq!(r.bytes.as_deref(), Some(&b"hello"[..]));
        let r = read_file(&p, 4).unwrap();
        assert_eq!((r.size, r.bytes), (5, None));
    }

    #[test]
    fn unreadable_and_missing_files_are_named_errors() {
        let err = read_file(Path::new("/nonexistent/x"), 10).unwrap_err();
        assert_eq!(err, "not found");
    }
}
