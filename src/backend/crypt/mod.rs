//! The encrypting wrapper: a [`Backend`] around any backend that stores every object as its
//! age encryption (age-encryption.org/v1, X25519 recipients), so `age -d -i KEY OBJECT` gives
//! back exactly what an unencrypted profile stores (a tar bundle, a file's bytes, a SQLite
//! catalog copy).
//!
//! - **Plaintext.** Without recipients it stores plaintext, as the wrapped backend does.
//! - **Write-only.** Writing needs only the recipients (public keys); reading an encrypted
//!   object needs an identity. Without one, reads fail with one line naming
//!   `age_identity_file`.
//! - **Names.** The wrapped backend names an encrypted object by the tree hash of its
//!   *ciphertext* (random for every encryption) plus its header length and `.age`; Glacier
//!   descriptions carry the same. Nothing stored depends on the plaintext alone.
//! - **Ids.** An encrypted object's id is `age:<header length>:<stored size>:<wrapped id>`
//!   ([`layout`]), so a ranged read knows where each 64 KiB chunk lies without fetching the
//!   header first; listings rebuild the same ids from names and descriptions. Ids without the
//!   prefix are plaintext objects (stored before encryption was turned on) and pass through.
//! - **Ranges.** A ranged read fetches the header and nonce and the chunks covering the range;
//!   a warm-up of a range retrieves `[0, end of the last chunk needed)`, one retrieval job
//!   that holds both (Glacier aligns it to megabytes).
//! - **Resume.** Ciphertext is staged under a directory of the profile and kept until stored:
//!   a sync killed mid-upload sends the same bytes again (see [`seal`]).

pub mod layout;
mod open;
mod seal;
#[cfg(test)]
mod tests;

use super::{Backend, ByteRange, ListOutcome, ObjectInfo, ObjectKind, PutMeta, Tier, WarmState};
use crate::error::{BackendErrorKind, Error, Result};
use layout::{Layout, encrypted_id, parse_id};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use age::secrecy::ExposeSecret;
pub use layout::is_encrypted_id;

/// Keys of an encrypting wrapper.
pub struct AgeKeys {
    /// Encrypt to these (empty: this wrapper can only read).
    pub recipients: Vec<age::x25519::Recipient>,
    /// Decrypt with these, or the reason there are none (a message naming the setting).
    pub identities: std::result::Result<Vec<age::x25519::Identity>, String>,
}

impl AgeKeys {
    /// A fresh key pair: encrypts to a new identity and reads with it (tests, benchmarks).
    pub fn generate() -> AgeKeys {
        let id = age::x25519::Identity::generate();
        AgeKeys {
            recipients: vec![id.to_public()],
            identities: Ok(vec![id]),
        }
    }
}

/// Encrypts everything stored in `inner` to the recipients; decrypts with the identities.
pub struct Crypt<B> {
    inner: B,
    keys: AgeKeys,
    staging: PathBuf,
}

impl<B: Backend> Crypt<B> {
    /// `staging` keeps ciphertext until `inner` stored it (it survives a killed run).
    pub fn new(inner: B, keys: AgeKeys, staging: impl Into<PathBuf>) -> Self {
        Crypt {
            inner,
            keys,
            staging: staging.into(),
        }
    }

    fn identities(&self, id: &str) -> Result<&[age::x25519::Identity]> {
        self.keys
            .identities
            .as_deref()
            .map_err(|why| Error::Usage(format!("{id} is age-encrypted: reading it needs {why}")))
    }

    /// The staged ciphertext of `source`: left by an earlier run, or encrypted now.
    /// `check_plain`: `source` may change meanwhile, so its bytes are checked against `meta`.
    fn sealed(&self, meta: &PutMeta, source: &Path, check_plain: bool) -> Result<seal::Sealed> {
        // A backend that renames staged files in has nothing to resume: encrypt afresh, and
        // name the ciphertext by a random id rather than spend a pass hashing it.
        let by_rename = self.inner.stages_by_rename();
        if !by_rename && let Some(s) = seal::find_staged(&self.staging, meta) {
            return Ok(s);
        }
        let how = seal::SealHow {
            check_plain,
            hash_sealed: !by_rename,
        };
        seal::seal(&self.keys.recipients, meta, source, &self.staging, how)
    }

    fn put_sealed(&self, meta: &PutMeta, s: &seal::Sealed) -> Result<String> {
        let outer = PutMeta {
            tree_hash: s.hash,
            size: s.layout.sealed_size,
            age_header: Some(s.layout.header),
            ..meta.clone()
        };
        // A staged file from an earlier run is checked as it is sent (it may have been
        // damaged since); one written just now may be handed over as it is.
        let id = if s.fresh {
            self.inner.put_staged(&outer, &s.path)?
        } else {
            self.inner.put(&outer, &s.path)?
        };
        Ok(encrypted_id(s.layout, &id))
    }

    /// Encrypts `source` (checking it against `meta` when `check_plain`) and stores the
    /// ciphertext in the wrapped backend.
    fn store(&self, meta: &PutMeta, source: &Path, check_plain: bool) -> Result<String> {
        let s = self.sealed(meta, source, check_plain)?;
        let id = match self.put_sealed(meta, &s) {
            // A staged file damaged since an earlier run: encrypt again, once.
            Err(e) if e.backend_kind() == Some(BackendErrorKind::Corrupt) => {
                let _ = std::fs::remove_file(&s.path);
                let fresh = self.sealed(meta, source, check_plain)?;
                let id = self.put_sealed(meta, &fresh);
                (id, fresh.path)
            }
            other => (other, s.path),
        };
        let (id, staged) = id;
        if id.is_ok() {
            let _ = std::fs::remove_file(staged);
        }
        id
    }
}

/// The plaintext range whose warm-up retrieves what a read of `want` needs: from the start
/// (the header) to the end of the last chunk holding `want`.
fn warm_range(plain_size: u64, want: ByteRange) -> ByteRange {
    let end = (want.end.div_ceil(layout::CHUNK) * layout::CHUNK).min(plain_size);
    ByteRange { start: 0, end }
}

impl<B: Backend> Backend for Crypt<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn describe(&self) -> String {
        if self.keys.recipients.is_empty() {
            return self.inner.describe();
        }
        format!("{} (age-encrypted)", self.inner.describe())
    }

    fn needs_warm_up(&self, kind: ObjectKind) -> bool {
        self.inner.needs_warm_up(kind)
    }

    fn prepare(&self) -> Result<()> {
        self.inner.prepare()
    }

    fn put_staged(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        if self.keys.recipients.is_empty() {
            return self.inner.put_staged(meta, source);
        }
        // The caller wrote `source` and hashed it as it did: it is not read twice.
        self.store(meta, source, false)
    }

    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        if self.keys.recipients.is_empty() {
            // No recipients: a plaintext profile (`sync` refuses to mix silently).
            return self.inner.put(meta, source);
        }
        self.store(meta, source, true)
    }

    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let Some((layout, inner_id)) = parse_id(id) else {
            return self.inner.get(id, range, ticket, out);
        };
        let ids = self.identities(id)?;
        match range {
            None => open::read_all(&self.inner, id, inner_id, ticket, ids, out),
            Some(want) => {
                open::read_range(&self.inner, id, (layout, inner_id), want, ticket, ids, out)
            }
        }
    }

    fn warm_up(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        let Some((layout, inner_id)) = parse_id(id) else {
            return self.inner.warm_up(id, range, tier, ticket);
        };
        let sealed = match (range, layout.plain_size()) {
            (Some(r), Some(size)) if r.end < size => {
                let (chunks, _) = layout.sealed_range(warm_range(size, r));
                Some(ByteRange {
                    start: 0,
                    end: chunks.end,
                })
            }
            _ => None,
        };
        self.inner.warm_up(inner_id, sealed, tier, ticket)
    }

    fn retrieval_range(&self, id: &str, object_size: u64, want: ByteRange) -> ByteRange {
        match parse_id(id) {
            // The plaintext range a warm-up of `want` asks for: from the header on.
            Some(_) => warm_range(object_size, want),
            // A plaintext object: exactly what the wrapped backend retrieves.
            None => self.inner.retrieval_range(id, object_size, want),
        }
    }

    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        Ok(match self.inner.list(ticket)? {
            ListOutcome::Ready(items) => {
                ListOutcome::Ready(items.into_iter().map(outer_info).collect())
            }
            pending => pending,
        })
    }

    fn list_ready(&self, ticket: Option<&str>) -> Result<Option<Vec<ObjectInfo>>> {
        Ok(self
            .inner
            .list_ready(ticket)?
            .map(|items| items.into_iter().map(outer_info).collect()))
    }

    fn delete(&self, id: &str) -> Result<()> {
        let inner_id = parse_id(id).map_or(id, |(_, i)| i);
        self.inner.delete(inner_id)
    }

    fn cleanup(&self) -> Result<()> {
        self.inner.cleanup()?;
        // After a successful sync nothing staged is waiting any more.
        if let Ok(entries) = std::fs::read_dir(&self.staging) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }

    // Markers are empty and named by a random id: nothing to encrypt.
    fn owners(&self) -> Result<Option<Vec<String>>> {
        self.inner.owners()
    }

    fn mark_owner(&self, id: &str) -> Result<()> {
        self.inner.mark_owner(id)
    }
}

/// A listed object as the wrapper names it: encrypted ones get their id, plaintext size and
/// no hash (the stored hash is the ciphertext's).
fn outer_info(mut o: super::ObjectInfo) -> super::ObjectInfo {
    let Some(header) = o.age_header else {
        return o;
    };
    let layout = Layout {
        header,
        sealed_size: o.size,
    };
    o.id = encrypted_id(layout, &o.id);
    o.size = layout.plain_size().unwrap_or(o.size);
    o.tree_hash = None;
    o
}
