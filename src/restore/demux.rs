//! One download split into member files: the bytes of an archive's span stream through a
//! [`Demux`], which writes each member to a partial file, verifies its hash, and only then
//! renames it into place (and copies it to the member's other destinations).

use super::dest::{DirCache, set_times_and_mode, system_time};
use super::plan::{ArchivePlan, Member};
use crate::backend::Backend;
use crate::error::BackendErrorKind;
use crate::hash::{Hash32, TreeHasher};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What became of one member: restored to all its destinations, or why not.
pub(super) type MemberResult = std::result::Result<(), String>;

/// Where a destination's bytes go until they are verified: a short hidden name in the same
/// directory (so the rename is atomic), never longer than any final name can be, since a name
/// of NAME_MAX bytes must restore too. It is derived from the final name, so a restore that
/// was killed and runs again writes over its own leftover instead of leaving it behind. Where
/// the usual name would take the path past PATH_MAX although the final one fits, it is as long
/// as the final name (for names of at least 8 bytes, so that it cannot meet a sibling's).
pub(super) fn partial_name(dest: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    /// The longest path the kernel takes, without its terminating NUL.
    const PATH_MAX: usize = 4095;
    let name = dest.file_name().unwrap_or_default();
    let digest = crate::hash::sha256(name.as_bytes()).to_hex();
    let usual = format!(".glaciersync-partial-{}", &digest[..16]);
    let longer_by = usual.len().saturating_sub(name.len());
    if dest.as_os_str().len() + longer_by <= PATH_MAX || name.len() < 8 {
        return dest.with_file_name(usual);
    }
    dest.with_file_name(format!(".{}", &digest[..name.len() - 1]))
}

/// What a member's error adds when its stored copy is lost (missing, short or damaged).
const STORED_AGAIN: &str =
    "its stored copy is lost: the next sync stores it again from the file, where it still exists";

/// Downloads one archive's span into its members. Returns one result per member, in order;
/// adds to `lost` the contents whose stored copy is missing or damaged.
pub(super) fn download(
    backend: &dyn Backend,
    to: &Path,
    dirs: &DirCache,
    archive: &ArchivePlan,
    ticket: Option<&str>,
    lost: &std::sync::Mutex<Vec<Hash32>>,
) -> Vec<MemberResult> {
    let mut demux = Demux {
        to,
        dirs,
        pos: archive.span.start,
        members: &archive.members,
        next: 0,
        cur: None,
        done: Vec::new(),
        write_error: None,
        lost: Vec::new(),
    };
    let got = if archive.span.is_empty() {
        Ok(0)
    } else {
        backend.get(&archive.remote_id, Some(archive.span), ticket, &mut demux)
    };
    let flushed = demux.flush();
    if let Some((_, tmp, _)) = demux.cur.take() {
        let _ = fs::remove_file(tmp);
    }
    // A write that failed (a full disk, say) is what broke the download off: name it, not the
    // download it interrupted.
    // The object is gone, damaged, or shorter than recorded (not a full disk, not a failure
    // that a later run may not meet): what it held is lost.
    // A vault's "not found" may be a retrieval job that expired, not the archive: there only
    // what was read and found damaged counts.
    let broken = demux.write_error.is_none()
        && match &got {
            Err(e) => match e.backend_kind() {
                Some(BackendErrorKind::Corrupt) => true,
                Some(BackendErrorKind::NotFound) => backend.name() != "glacier",
                _ => false,
            },
            Ok(_) => flushed.is_ok(),
        };
    let mut failure = match (&got, &flushed) {
        _ if demux.write_error.is_some() => demux.write_error.take().unwrap_or_default(),
        (Err(e), _) => e.to_string(),
        (_, Err(e)) => e.to_string(),
        _ => "download ended before this file's data".to_string(),
    };
    if broken {
        failure = format!("{failure}; {STORED_AGAIN}");
    }
    let mut results: Vec<Option<MemberResult>> = vec![None; archive.members.len()];
    for (i, r) in std::mem::take(&mut demux.done) {
        results[i] = Some(r);
    }
    let mut lost_here = std::mem::take(&mut demux.lost);
    let results = results
        .into_iter()
        .zip(&archive.members)
        .map(|(r, m)| {
            r.unwrap_or_else(|| {
                if broken {
                    lost_here.push(m.hash);
                }
                Err(failure.clone())
            })
        })
        .collect();
    lost.lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(lost_here);
    results
}

/// Writes a ranged download into member files, verifying each as it completes.
struct Demux<'a> {
    to: &'a Path,
    dirs: &'a DirCache,
    pos: u64,
    members: &'a [Member],
    next: usize,
    cur: Option<(File, PathBuf, TreeHasher)>,
    done: Vec<(usize, MemberResult)>,
    /// The first failed write into a member's file, with the destination it was for.
    write_error: Option<String>,
    /// Members whose bytes did not match their hash.
    lost: Vec<Hash32>,
}

impl Demux<'_> {
    fn open_member(&mut self, i: usize) -> io::Result<()> {
        let dest = &self.members[i].dests[0].path;
        if let Some(parent) = dest.parent() {
            self.dirs.ensure(self.to, parent)?;
        }
        let tmp = partial_name(dest);
        let f = File::create(&tmp)?;
        self.cur = Some((f, tmp, TreeHasher::new()));
        Ok(())
    }

    fn finish_member(&mut self, i: usize) {
        let (file, tmp, hasher) = self.cur.take().expect("member open");
        let m = &self.members[i];
        let result = (|| -> MemberResult {
            let got = hasher.finish();
            if got != m.hash {
                drop(file);
                let _ = fs::remove_file(&tmp);
                self.lost.push(m.hash);
                return Err(format!(
                    "downloaded content does not match its recorded hash (expected {}, got {got}): not restored; {STORED_AGAIN}",
                    m.hash
                ));
            }
            // Mode and mtime through the open handle (no second open). Like cp and tar, no
            // fsync per file: a restore interrupted by a crash is simply run again, and files
            // already in place are verified by hash and kept.
            let first = &m.dests[0];
            // Holes skipped at the end still count: the length is the recorded size.
            file.set_len(m.size)
                .and_then(|()| {
                    file.set_permissions(fs::Permissions::from_mode(first.mode & 0o7777))
                        .and_then(|()| file.set_modified(system_time(first.mtime_ns)))
                })
                .map_err(|e| e.to_string())?;
            drop(file);
            place(self.to, self.dirs, &tmp, m)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        self.done.push((i, result));
    }

    /// Members of size zero at the current position need no bytes.
    fn settle_empty(&mut self) -> io::Result<()> {
        while self.next < self.members.len()
            && self.members[self.next].size == 0
            && self.members[self.next].offset <= self.pos
        {
            let i = self.next;
            self.next += 1;
            match self.open_member(i) {
                Ok(()) => self.finish_member(i),
                Err(e) => self.done.push((i, Err(e.to_string()))),
            }
        }
        Ok(())
    }

    /// Writes what belongs to the open member; returns the bytes taken.
    fn feed(&mut self, rest: &[u8]) -> io::Result<usize> {
        let m = &self.members[self.next];
        let end = m.offset + m.size;
        let take = ((end - self.pos) as usize).min(rest.len());
        let (file, _, hasher) = self.cur.as_mut().expect("open");
        if let Err(e) = write_sparse(file, self.pos - m.offset, &rest[..take]) {
            self.write_error = Some(format!("writing {}: {e}", m.dests[0].path.display()));
            return Err(e);
        }
        hasher.update(&rest[..take]);
        self.pos += take as u64;
        if self.pos == end {
            let i = self.next;
            self.finish_member(i);
            self.next += 1;
        }
        Ok(take)
    }
}

/// Blocks of this size that hold only zeros are not written but skipped over, so a sparse
/// file comes back sparse (the file system's block size, as `cp --sparse` and restic use).
const SPARSE_BLOCK: u64 = 4096;

/// Writes `data`, which belongs at `at` in the file (the file's position is there), seeking
/// over whole aligned blocks of zeros instead of writing them.
fn write_sparse(file: &mut File, at: u64, data: &[u8]) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut off = 0usize;
    let mut pos = at;
    while off < data.len() {
        let to_boundary = (SPARSE_BLOCK - pos % SPARSE_BLOCK) as usize;
        let piece = &data[off..off + to_boundary.min(data.len() - off)];
        if piece.len() as u64 == SPARSE_BLOCK && is_zero(piece) {
            file.seek(SeekFrom::Current(SPARSE_BLOCK as i64))?;
        } else {
            file.write_all(piece)?;
        }
        off += piece.len();
        pos += piece.len() as u64;
    }
    Ok(())
}

fn is_zero(b: &[u8]) -> bool {
    let words = b.chunks_exact(16);
    let tail = words.remainder();
    words
        .map(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")))
        .all(|w| w == 0)
        && tail.iter().all(|&x| x == 0)
}

/// Moves a verified temp file into place and copies it to the other destinations.
pub(super) fn place(to: &Path, dirs: &DirCache, tmp: &Path, m: &Member) -> MemberResult {
    let first = &m.dests[0].path;
    fs::rename(tmp, first).map_err(|e| e.to_string())?;
    for dest in &m.dests[1..] {
        if let Some(parent) = dest.path.parent() {
            dirs.ensure(to, parent).map_err(|e| e.to_string())?;
        }
        let t = partial_name(&dest.path);
        copy_sparse(first, &t).map_err(|e| e.to_string())?;
        set_times_and_mode(&t, dest.mode, dest.mtime_ns).map_err(|e| e.to_string())?;
        fs::rename(&t, &dest.path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Copies `from` to `to` as the download wrote `from`: blocks of zeros become holes, so every
/// copy of a sparse file comes back sparse too.
fn copy_sparse(from: &Path, to: &Path) -> io::Result<()> {
    /// Writes what it is given at its position, sparsely.
    struct Sparse {
        file: File,
        pos: u64,
    }
    impl Write for Sparse {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            write_sparse(&mut self.file, self.pos, buf)?;
            self.pos += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut dst = Sparse {
        file: File::create(to)?,
        pos: 0,
    };
    crate::hash::copy_hashing(&mut File::open(from)?, &mut dst, false).map_err(|e| match e {
        crate::hash::CopyError::Read(e) | crate::hash::CopyError::Write(e) => e,
    })?;
    // Holes skipped at the end still count.
    dst.file.set_len(dst.pos)
}

impl Write for Demux<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            self.settle_empty()?;
            if self.cur.is_none() {
                // Skip bytes before the next member (tar headers, padding, other members).
                let Some(m) = self.members.get(self.next) else {
                    self.pos += rest.len() as u64;
                    return Ok(buf.len());
                };
                if self.pos < m.offset {
                    let skip = ((m.offset - self.pos) as usize).min(rest.len());
                    self.pos += skip as u64;
                    rest = &rest[skip..];
                    continue;
                }
                if let Err(e) = self.open_member(self.next) {
                    // This member's bytes are skipped; the others still restore.
                    self.done.push((self.next, Err(e.to_string())));
                    self.next += 1;
                    continue;
                }
            }
            let took = self.feed(rest)?;
            rest = &rest[took..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.settle_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_are_short_stable_and_beside_the_file() {
        let long = format!("/to/path/{}", "n".repeat(255));
        let p = partial_name(Path::new(&long));
        assert_eq!(p.parent(), Some(Path::new("/to/path")));
        assert!(p.file_name().unwrap().len() <= 40, "{p:?}");
        assert_eq!(
            p,
            partial_name(Path::new(&long)),
            "a rerun finds its leftover"
        );
        assert_ne!(p, partial_name(Path::new("/to/path/other")));
    }

    #[test]
    fn near_path_max_a_partial_name_is_no_longer_than_the_final_one() {
        let deep = format!("/{}/", "d".repeat(4070));
        let dest = PathBuf::from(format!("{deep}final-name-20-bytes!"));
        assert_eq!(dest.as_os_str().len(), 4092);
        let p = partial_name(&dest);
        assert_eq!(p.as_os_str().len(), dest.as_os_str().len(), "{p:?}");
        assert_eq!(p.parent(), dest.parent());
        assert!(p.file_name().unwrap().to_string_lossy().starts_with('.'));
        assert_eq!(p, partial_name(&dest), "stable");
        // Far from the limit, the usual name.
        let short = partial_name(Path::new("/to/final-name-20-bytes!"));
        assert!(short.to_string_lossy().contains(".glaciersync-partial-"));
    }

    #[test]
    fn zero_blocks_are_skipped_and_the_rest_written() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("f");
        let mut data = vec![0u8; 5 * SPARSE_BLOCK as usize];
        data[SPARSE_BLOCK as usize + 7] = 1;
        let mut f = File::create(&path).unwrap();
        // Written from an unaligned start, in two pieces.
        f.write_all(&[9u8; 100]).unwrap();
        write_sparse(&mut f, 100, &data[..3000]).unwrap();
        write_sparse(&mut f, 3100, &data[3000..]).unwrap();
        f.set_len(100 + data.len() as u64).unwrap();
        drop(f);
        let back = fs::read(&path).unwrap();
        assert_eq!(&back[..100], &[9u8; 100]);
        assert!(back[100..] == data[..]);
    }
}
