//! zstd compression of catalog objects (full copies and deltas): a SQLite file of hashes and
//! paths shrinks to about half. `zstd -d` gives back the SQLite file. Objects stored before
//! compression are plain SQLite files; [`unpack`] tells the two apart by their first bytes.

use crate::error::{Error, Result};
use crate::hash::{Hash32, HashingWriter};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

/// zstd's default level: about 300 MB/s on one core, and within a few percent of the higher
/// levels on a catalog (random hashes do not compress at any level).
const LEVEL: i32 = 3;

/// The first bytes of a zstd frame.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Compresses `src` into a new file `dst`, streamed; returns the tree hash and the length of
/// what it wrote (hashed on the way, not read again).
pub fn compress(src: &Path, dst: &Path) -> Result<(Hash32, u64)> {
    let input = File::open(src).map_err(|e| Error::io(src, e))?;
    let output = crate::private::create_truncated(dst).map_err(|e| Error::io(dst, e))?;
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, output), true);
    zstd::stream::copy_encode(BufReader::new(input), &mut out, LEVEL)
        .map_err(|e| Error::io(dst, e))?;
    out.flush().map_err(|e| Error::io(dst, e))?;
    match out.finish() {
        (Some(hash), len) => Ok((hash, len)),
        (None, _) => unreachable!("made with a hasher"),
    }
}

/// Makes `out` the SQLite file that the downloaded catalog object `downloaded` holds:
/// decompressed when it is zstd, moved as it is when it is a plain copy. `what` names the
/// object in the error for a damaged one.
pub fn unpack(downloaded: &Path, out: &Path, what: &str) -> Result<()> {
    let mut head = [0u8; 4];
    let mut f = File::open(downloaded).map_err(|e| Error::io(downloaded, e))?;
    let n = f.read(&mut head).map_err(|e| Error::io(downloaded, e))?;
    drop(f);
    if n < head.len() || head != MAGIC {
        return std::fs::rename(downloaded, out).map_err(|e| Error::io(out, e));
    }
    let input = File::open(downloaded).map_err(|e| Error::io(downloaded, e))?;
    let output = crate::private::create_truncated(out).map_err(|e| Error::io(out, e))?;
    let mut sink = BufWriter::with_capacity(1 << 20, output);
    let done = zstd::stream::copy_decode(BufReader::new(input), &mut sink)
        .and_then(|()| sink.flush())
        .and_then(|()| sink.get_ref().sync_all());
    let _ = std::fs::remove_file(downloaded);
    done.map_err(|e| {
        let _ = std::fs::remove_file(out);
        Error::Integrity(format!(
            "{what} does not decompress ({e}): it is damaged; `sync --full-catalog-copy` on a \
             machine that still has the catalog stores a new one"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_files_unpack_to_their_bytes_and_plain_ones_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        std::fs::write(p("a"), &data).unwrap();
        let (hash, len) = compress(&p("a"), &p("a.zst")).unwrap();
        let packed = std::fs::read(p("a.zst")).unwrap();
        assert!(packed.len() < data.len() / 4, "{}", packed.len());
        assert_eq!(
            (hash, len),
            (crate::hash::tree_hash(&packed), packed.len() as u64)
        );
        unpack(&p("a.zst"), &p("a.out"), "copy").unwrap();
        assert_eq!(std::fs::read(p("a.out")).unwrap(), data);
        assert!(!p("a.zst").exists());

        std::fs::write(p("plain"), b"SQLite format 3\0...").unwrap();
        unpack(&p("plain"), &p("plain.out"), "copy").unwrap();
        assert_eq!(
            std::fs::read(p("plain.out")).unwrap(),
            b"SQLite format 3\0..."
        );
    }

    #[test]
    fn a_damaged_stream_is_an_integrity_error_naming_the_object_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        std::fs::write(p("a"), &data).unwrap();
        compress(&p("a"), &p("a.zst")).unwrap();
        let mut packed = std::fs::read(p("a.zst")).unwrap();
        packed.truncate(packed.len() / 2);
        std::fs::write(p("a.zst"), &packed).unwrap();
        let err = unpack(&p("a.zst"), &p("a.out"), "catalog copy X").unwrap_err();
        assert!(matches!(err, Error::Integrity(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("catalog copy X does not decompress")
        );
        assert!(!p("a.out").exists());
    }
}
