//! Encrypting a source file into the staging directory, streamed: the plaintext is read once,
//! hashed (it must match what the caller announced) and encrypted; the ciphertext is hashed
//! on its way to disk. A staged file is named by what it holds,
//! `<kind>-<plain hash>-<sealed hash>-<header>.age`, and kept until the wrapped backend has
//! stored it, so a sync killed in the middle of a multipart upload sends the very same
//! ciphertext when it resumes (the wrapped backend re-checks its hash while sending it).

use super::layout::{Layout, MAX_HEADER, NONCE};
use crate::backend::{PutMeta, changed_while_stored};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{CopyError, Hash32, HashingWriter, copy_hashing};
use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A staged ciphertext.
#[derive(Debug, Clone)]
pub(super) struct Sealed {
    pub path: PathBuf,
    pub layout: Layout,
    pub hash: Hash32,
    /// Written by this process just now (not found from an earlier run): its hash is of the
    /// bytes written, so it may be handed over without checking it again.
    pub fresh: bool,
}

fn prefix(meta: &PutMeta) -> String {
    format!("{}-{}-", meta.kind.as_str(), meta.tree_hash)
}

/// The staged ciphertext of `meta`'s content left by an earlier run, if any.
pub(super) fn find_staged(staging: &Path, meta: &PutMeta) -> Option<Sealed> {
    let prefix = prefix(meta);
    for entry in fs::read_dir(staging).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".age"))
        else {
            continue;
        };
        let Some((hash, header)) = rest.split_once('-') else {
            continue;
        };
        let (Some(hash), Ok(header)) = (Hash32::from_hex(hash), header.parse::<u64>()) else {
            continue;
        };
        let sealed_size = entry.metadata().ok()?.len();
        return Some(Sealed {
            path: entry.path(),
            layout: Layout {
                header,
                sealed_size,
            },
            hash,
            fresh: false,
        });
    }
    None
}

/// Counts what passes through, for the header's length.
struct Counted<'a, W> {
    inner: &'a mut W,
    written: Rc<Cell<u64>>,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.set(self.written.get() + n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn crypt_err(kind: BackendErrorKind, msg: String) -> Error {
    Error::backend("age", kind, msg)
}

/// What [`seal`] checks and computes besides the ciphertext.
#[derive(Debug, Clone, Copy)]
pub(super) struct SealHow {
    /// Hash the plaintext as it is read and fail unless it is `meta.tree_hash` (a file that
    /// may change meanwhile); else only its length is checked (a file the caller wrote).
    pub check_plain: bool,
    /// Hash the ciphertext: its tree hash names it. Else it is named by a random id (for a
    /// backend that stores staged files without checking them).
    pub hash_sealed: bool,
}

/// A random 256-bit id: the name of a ciphertext that is not hashed.
fn random_id() -> Result<Hash32> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| {
        crypt_err(
            BackendErrorKind::Permanent,
            format!("no random numbers from the system: {e}"),
        )
    })?;
    Ok(Hash32(b))
}

/// Encrypts `source` to `recipients` into `staging`, checking it against `meta`.
pub(super) fn seal(
    recipients: &[age::x25519::Recipient],
    meta: &PutMeta,
    source: &Path,
    staging: &Path,
    how: SealHow,
) -> Result<Sealed> {
    crate::private::create_dir(staging).map_err(|e| Error::io(staging, e))?;
    let tmp = staging.join(format!(
        "tmp.{}.{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = seal_to(recipients, meta, source, &tmp, how).and_then(|(layout, hash)| {
        let name = format!("{}{hash}-{}.age", prefix(meta), layout.header);
        let path = staging.join(name);
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(Sealed {
            path,
            layout,
            hash,
            fresh: true,
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn seal_to(
    recipients: &[age::x25519::Recipient],
    meta: &PutMeta,
    source: &Path,
    tmp: &Path,
    how: SealHow,
) -> Result<(Layout, Hash32)> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| crypt_err(BackendErrorKind::Permanent, format!("age: {e}")))?;
    let file = crate::private::create_truncated(tmp).map_err(|e| Error::io(tmp, e))?;
    let mut sink = HashingWriter::new(BufWriter::with_capacity(1 << 20, file), how.hash_sealed);
    let written = Rc::new(Cell::new(0));
    let counted = Counted {
        inner: &mut sink,
        written: Rc::clone(&written),
    };
    // `wrap_output` writes the header and the nonce at once.
    let mut writer = encryptor
        .wrap_output(counted)
        .map_err(|e| Error::io(tmp, e))?;
    let header = written.get() - NONCE;
    if header > MAX_HEADER {
        return Err(crypt_err(
            BackendErrorKind::Permanent,
            format!(
                "the age header takes {header} bytes (more than {MAX_HEADER}): use fewer recipients"
            ),
        ));
    }
    let (plain_hash, plain_len) = copy_hashed(source, &mut writer, tmp, how.check_plain)?;
    if plain_len != meta.size || plain_hash.is_some_and(|h| h != meta.tree_hash) {
        let what = match plain_hash {
            Some(h) => format!("read {plain_len} bytes with tree hash {h}"),
            None => format!("read {plain_len} bytes"),
        };
        return Err(changed_while_stored("age", source, meta, &what));
    }
    writer.finish().map_err(|e| Error::io(tmp, e))?;
    sink.flush().map_err(|e| Error::io(tmp, e))?;
    let layout = Layout {
        header,
        sealed_size: written.get(),
    };
    let name = match sink.finish().0 {
        Some(h) => h,
        None => random_id()?,
    };
    Ok((layout, name))
}

/// Copies `source` into `out`, returning the length of what was read and, with `hash`, its
/// tree hash.
fn copy_hashed(
    source: &Path,
    out: &mut dyn Write,
    tmp: &Path,
    hash: bool,
) -> Result<(Option<Hash32>, u64)> {
    let mut src = File::open(source).map_err(|e| Error::io(source, e))?;
    copy_hashing(&mut src, out, hash).map_err(|e| match e {
        CopyError::Read(e) => Error::io(source, e),
        CopyError::Write(e) => Error::io(tmp, e),
    })
}
