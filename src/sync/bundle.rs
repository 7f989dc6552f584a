//! Tar bundles of small files. Members are named as `ls` prints paths (`<tree>/<path>`), so a
//! bundle is a plain tar anyone can read; the catalog records where each member's data starts,
//! so a restore reads a member with one ranged read and never parses the tar.

use crate::hash::{Hash32, TreeHasher};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A file writer that counts and tree-hashes what passes through.
struct Hashing {
    out: BufWriter<File>,
    hasher: TreeHasher,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Header fields of a member.
#[derive(Debug, Clone)]
pub struct MemberMeta<'a> {
    /// `<tree>/<relative path>` as raw bytes.
    pub name: &'a [u8],
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
}

/// A bundle being written to a temporary file.
pub struct BundleWriter {
    builder: tar::Builder<Hashing>,
    path: PathBuf,
}

/// A finished bundle.
#[derive(Debug)]
pub struct FinishedBundle {
    pub path: PathBuf,
    pub tree_hash: Hash32,
    pub size: u64,
}

/// Reads exactly `size` bytes from a source that may have changed: zero-pads a short file,
/// stops at `size`, and hashes the real bytes, so the tar stays well-formed either way.
struct Exact<R> {
    inner: R,
    remaining: u64,
    short: bool,
    hasher: TreeHasher,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = if self.short {
            0
        } else {
            self.inner.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            self.short = true;
            buf[..want].fill(0);
            want
        } else {
            self.hasher.update(&buf[..n]);
            n
        };
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl BundleWriter {
    /// Starts a bundle at `path` (truncating any file there).
    pub fn create(path: &Path) -> io::Result<BundleWriter> {
        let file = crate::private::create_truncated(path)?;
        Ok(BundleWriter {
            builder: tar::Builder::new(Hashing {
                out: BufWriter::with_capacity(1 << 20, file),
                hasher: TreeHasher::new(),
            }),
            path: path.to_path_buf(),
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.builder.get_ref().hasher.len()
    }

    /// Whether no member was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn header(meta: &MemberMeta<'_>) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(meta.size);
        h.set_mode(meta.mode & 0o7777);
        h.set_mtime(meta.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
        h
    }

    /// Appends a member from `data` and returns the offset of its data in the bundle.
    pub fn add_bytes(&mut self, meta: &MemberMeta<'_>, data: &[u8]) -> io::Result<u64> {
        let mut h = Self::header(meta);
        let name = std::ffi::OsStr::from_bytes(meta.name);
        self.builder.append_data(&mut h, name, data)?;
        Ok(self.data_offset(meta.size))
    }

    /// Appends a member read from `source`. Returns the data offset and the tree hash of the
    /// bytes actually read, or `None` when the file no longer has `meta.size` bytes.
    pub fn add_file(
        &mut self,
        meta: &MemberMeta<'_>,
        source: &Path,
    ) -> io::Result<(u64, Option<Hash32>)> {
        let file = File::open(source)?;
        let mut exact = Exact {
            inner: file,
            remaining: meta.size,
            short: false,
            hasher: TreeHasher::new(),
        };
        let mut h = Self::header(meta);
        let name = std::ffi::OsStr::from_bytes(meta.name);
        self.builder.append_data(&mut h, name, &mut exact)?;
        let offset = self.data_offset(meta.size);
        let mut probe = [0u8; 1];
        let longer = exact.inner.read(&mut probe)? > 0;
        let hash = (!exact.short && !longer).then(|| exact.hasher.finish());
        Ok((offset, hash))
    }

    /// The data of the member just appended starts this far from the start.
    fn data_offset(&self, size: u64) -> u64 {
        self.len() - size.div_ceil(512) * 512
    }

    /// Writes the end-of-archive blocks, flushes, and returns the bundle's hash and size.
    pub fn finish(self) -> io::Result<FinishedBundle> {
        let mut inner = self.builder.into_inner()?;
        inner.flush()?;
        let size = inner.hasher.len();
        Ok(FinishedBundle {
            path: self.path,
            tree_hash: inner.hasher.finish(),
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{tree_hash, tree_hash_reader};

    #[test]
    fn offsets_point_at_member_data_and_tar_reads_it() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("b.tar");
        let mut w = BundleWriter::create(&path).unwrap();
        let long_name = format!("path/{}/file.txt", "d".repeat(150));
        let members: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"path/a.txt".to_vec(), b"alpha".to_vec()),
            (long_name.into_bytes(), vec![7u8; 1000]),
            (b"path2/caf\xc3\xa9".to_vec(), vec![]),
            (b"path/raw\xff".to_vec(), b"bytes".to_vec()),
        ];
        let mut offsets = Vec::new();
        for (name, data) in &members {
            let meta = MemberMeta {
                name,
                size: data.len() as u64,
                mode: 0o100640,
                mtime_ns: 1_700_000_000_123_456_789,
            };
            offsets.push(w.add_bytes(&meta, data).unwrap());
        }
        let src = d.path().join("src");
        std::fs::write(&src, b"from a file").unwrap();
        let meta = MemberMeta {
            name: b"path/f",
            size: 11,
            mode: 0o644,
            mtime_ns: 0,
        };
        let (off, hash) = w.add_file(&meta, &src).unwrap();
        assert_eq!(hash, Some(tree_hash(b"from a file")));
        let fin = w.finish().unwrap();
        let bytes = std::fs::read(&fin.path).unwrap();
        assert_eq!(fin.size, bytes.len() as u64);
        assert_eq!(fin.tree_hash, tree_hash_reader(&bytes[..]).unwrap().0);
        for ((_, data), off) in members.iter().zip(&offsets) {
            assert_eq!(&bytes[*off as usize..*off as usize + data.len()], &data[..]);
        }
        assert_eq!(&bytes[off as usize..off as usize + 11], b"from a file");
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<Vec<u8>> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path_bytes().to_vec())
            .collect();
        let mut expected: Vec<Vec<u8>> = members.iter().map(|m| m.0.clone()).collect();
        expected.push(b"path/f".to_vec());
        assert_eq!(names, expected);
    }

    #[test]
    fn a_file_that_changed_size_keeps_the_tar_well_formed() {
        let d = tempfile::tempdir().unwrap();
        let mut w = BundleWriter::create(&d.path().join("b.tar")).unwrap();
        let src = d.path().join("src");
        std::fs::write(&src, b"short").unwrap();
        let meta = MemberMeta {
            name: b"path/x",
            size: 100,
            mode: 0o644,
            mtime_ns: 0,
        };
        assert_eq!(w.add_file(&meta, &src).unwrap().1, None);
        std::fs::write(&src, b"much longer than announced").unwrap();
        let meta2 = MemberMeta { size: 4, ..meta };
        assert_eq!(w.add_file(&meta2, &src).unwrap().1, None);
        let fin = w.finish().unwrap();
        let bytes = std::fs::read(&fin.path).unwrap();
        assert_eq!(tar::Archive::new(&bytes[..]).entries().unwrap().count(), 2);
    }
}
