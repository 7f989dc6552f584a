//! The wrapper over the local backend: the conformance suite, ranges across chunk boundaries,
//! names that reveal nothing, missing and wrong identities, damaged ciphertext, and staged
//! ciphertext reused after a failed upload.

use super::*;
use crate::backend::local::LocalBackend;
use crate::backend::testsuite::{self, content, meta_for};

fn keys() -> (AgeKeys, age::x25519::Identity) {
    let id = age::x25519::Identity::generate();
    let keys = AgeKeys {
        recipients: vec![id.to_public()],
        identities: Ok(vec![id.clone()]),
    };
    (keys, id)
}

fn wrapper(dir: &Path) -> Crypt<LocalBackend> {
    Crypt::new(
        LocalBackend::new(dir.join("store")),
        keys().0,
        dir.join("staging"),
    )
}

/// The local backend as a backend that sends what it stores would look to the wrapper: it
/// checks every staged file's bytes against the hash announced (no renaming), so the wrapper
/// hashes each ciphertext and resumes from staged ones.
struct Sending(LocalBackend);

impl Backend for Sending {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn needs_warm_up(&self, kind: ObjectKind) -> bool {
        self.0.needs_warm_up(kind)
    }
    fn prepare(&self) -> Result<()> {
        self.0.prepare()
    }
    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        self.0.put(meta, source)
    }
    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        self.0.get(id, range, ticket, out)
    }
    fn warm_up(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        self.0.warm_up(id, range, tier, ticket)
    }
    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        self.0.list(ticket)
    }
    fn delete(&self, id: &str) -> Result<()> {
        self.0.delete(id)
    }
}

fn put(b: &dyn Backend, dir: &Path, kind: ObjectKind, data: &[u8]) -> String {
    let src = dir.join("src");
    std::fs::write(&src, data).unwrap();
    b.put(&meta_for(kind, data), &src).expect("put")
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn the_wrapper_passes_the_conformance_suite_over_the_local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let b = wrapper(dir.path());
    testsuite::run_all(&b, &testsuite::SuiteOptions::default());
    b.cleanup().unwrap();
    assert!(
        all_files(&dir.path().join("staging")).is_empty(),
        "staging emptied"
    );
}

#[test]
fn the_wrapper_passes_the_conformance_suite_over_a_backend_that_checks_what_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let b = Crypt::new(
        Sending(LocalBackend::new(dir.path().join("store"))),
        keys().0,
        dir.path().join("staging"),
    );
    testsuite::run_all(&b, &testsuite::SuiteOptions::default());
}

#[test]
fn over_the_local_backend_ciphertext_is_named_by_a_random_id_and_over_others_by_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(200_000, 9);
    let src = dir.path().join("src");
    std::fs::write(&src, &data).unwrap();
    let meta = meta_for(ObjectKind::File, &data);
    let stored_hash = |b: &dyn Backend, store: &str, id: &str| {
        let (_, inner) = layout::parse_id(id).unwrap();
        let mut back = Vec::new();
        b.get(id, None, None, &mut back).unwrap();
        assert_eq!(back, data);
        let file = std::fs::File::open(dir.path().join(store).join(inner)).unwrap();
        let (hash, _) = crate::hash::tree_hash_reader(file).unwrap();
        let named = crate::backend::parse_object_key(inner).unwrap().tree_hash;
        (named, hash)
    };
    // The local backend renames staged files in: no pass over the ciphertext to hash it, and
    // two encryptions of the same content get two unrelated names.
    let local = wrapper(dir.path());
    assert!(local.inner.stages_by_rename());
    let a = local.put(&meta, &src).unwrap();
    let b = local.put(&meta, &src).unwrap();
    assert_ne!(a, b);
    for id in [&a, &b] {
        let (named, hash) = stored_hash(&local, "store", id);
        assert_ne!(
            named, hash,
            "named by a random id, not by the ciphertext's hash"
        );
        assert_ne!(named, meta.tree_hash, "nor by the plaintext's");
    }
    // A backend that checks what it is sent gets the ciphertext's true hash.
    let sending = Crypt::new(
        Sending(LocalBackend::new(dir.path().join("store2"))),
        keys().0,
        dir.path().join("staging2"),
    );
    let c = sending.put(&meta, &src).unwrap();
    let (named, hash) = stored_hash(&sending, "store2", &c);
    assert_eq!(named, hash);
}

#[test]
fn ranges_across_chunk_boundaries_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let b = wrapper(dir.path());
    let c = layout::CHUNK as usize;
    let data = content(3 * c + 100, 5);
    let id = put(&b, dir.path(), ObjectKind::Bundle, &data);
    for (s, e) in [
        (0, 0),
        (0, 10),
        (c, c + 1),
        (c - 1, c + 1),
        (2 * c, 3 * c),
        (c + 7, 3 * c + 100),
        (3 * c, 3 * c + 100),
        (3 * c + 99, 3 * c + 100),
    ] {
        let mut out = Vec::new();
        let r = ByteRange {
            start: s as u64,
            end: e as u64,
        };
        let n = b.get(&id, Some(r), None, &mut out).unwrap();
        assert_eq!(n as usize, e - s);
        assert!(out == data[s..e], "range {s}..{e}");
    }
    let mut out = Vec::new();
    let past = ByteRange {
        start: 0,
        end: data.len() as u64 + 1,
    };
    assert!(b.get(&id, Some(past), None, &mut out).is_err());
}

#[test]
fn stored_names_and_bytes_reveal_neither_content_nor_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let b = wrapper(dir.path());
    let data = b"MARKER-plaintext-7f3a MARKER-plaintext-7f3a".repeat(100);
    let id = put(&b, dir.path(), ObjectKind::File, &data);
    let plain_hash = crate::hash::tree_hash(&data).to_hex();
    assert!(!id.contains(&plain_hash));
    for f in all_files(&dir.path().join("store")) {
        assert!(
            !f.to_string_lossy().contains(&plain_hash),
            "{}",
            f.display()
        );
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(20).any(|w| w == &data[..20]),
            "{}",
            f.display()
        );
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    }
    // Storing the same content again makes another ciphertext: names do not repeat.
    let again = put(&b, dir.path(), ObjectKind::File, &data);
    assert_ne!(id, again);
}

#[test]
fn reading_without_or_with_a_wrong_identity_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = wrapper(dir.path());
    let data = content(200_000, 3);
    let id = put(&b, dir.path(), ObjectKind::Bundle, &data);
    let (k, _) = keys();
    let recipients = vec![];
    let wrong = Crypt::new(
        LocalBackend::new(dir.path().join("store")),
        AgeKeys {
            recipients,
            identities: k.identities,
        },
        dir.path().join("staging"),
    );
    let mut out = Vec::new();
    let e = wrong.get(&id, None, None, &mut out).unwrap_err();
    assert!(e.to_string().contains("no identity"), "{e}");
    assert!(out.is_empty());
    let e = wrong
        .get(
            &id,
            Some(ByteRange {
                start: 70_000,
                end: 70_010,
            }),
            None,
            &mut out,
        )
        .unwrap_err();
    assert!(e.to_string().contains("no identity"), "{e}");
    assert!(out.is_empty());
    let none = Crypt::new(
        LocalBackend::new(dir.path().join("store")),
        AgeKeys {
            recipients: vec![],
            identities: Err("`age_identity_file`".into()),
        },
        dir.path().join("staging"),
    );
    let e = none.get(&id, None, None, &mut out).unwrap_err();
    assert!(e.to_string().contains("age_identity_file"), "{e}");
    assert!(out.is_empty());
}

#[test]
fn damaged_or_truncated_ciphertext_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let b = wrapper(dir.path());
    let data = content(300_000, 4);
    let id = put(&b, dir.path(), ObjectKind::Bundle, &data);
    let (_, inner) = layout::parse_id(&id).unwrap();
    let path = dir.path().join("store").join(inner);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 100] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let mut out = Vec::new();
    let e = b.get(&id, None, None, &mut out).unwrap_err();
    assert_eq!(e.backend_kind(), Some(BackendErrorKind::Corrupt), "{e}");
    let last = ByteRange {
        start: 299_000,
        end: 300_000,
    };
    let e = b.get(&id, Some(last), None, &mut Vec::new()).unwrap_err();
    assert_eq!(e.backend_kind(), Some(BackendErrorKind::Corrupt), "{e}");
    std::fs::write(&path, &good[..n - 70_000]).unwrap();
    let e = b.get(&id, None, None, &mut Vec::new()).unwrap_err();
    assert!(e.backend_kind().is_some(), "{e}");
}

#[test]
fn staged_ciphertext_survives_a_failed_upload_and_is_sent_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(100_000, 6);
    let src = dir.path().join("src");
    std::fs::write(&src, &data).unwrap();
    let meta = meta_for(ObjectKind::File, &data);
    let (k, _) = keys();
    let how = seal::SealHow {
        check_plain: true,
        hash_sealed: true,
    };
    let sealed = seal::seal(&k.recipients, &meta, &src, &dir.path().join("staging"), how).unwrap();
    let staged = std::fs::read(&sealed.path).unwrap();
    // A later run finds it and stores exactly those bytes (over a backend that sends what it
    // stores; the local backend has nothing to resume and encrypts afresh).
    let b = Crypt::new(
        Sending(LocalBackend::new(dir.path().join("store"))),
        k,
        dir.path().join("staging"),
    );
    let id = b.put(&meta, &src).unwrap();
    let (_, inner) = layout::parse_id(&id).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("store").join(inner)).unwrap(),
        staged
    );
    assert!(!sealed.path.exists(), "removed once stored");
}

#[test]
fn plaintext_objects_get_the_wrapped_range_encrypted_ones_start_at_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let b = wrapper(dir.path());
    let want = ByteRange {
        start: 4_837_376,
        end: 4_939_776,
    };
    // A plaintext bundle of a profile without keys, or stored before encryption was on:
    // exactly what the wrapped backend asks for (here: the range itself), not from byte 0.
    assert_eq!(b.retrieval_range("bundles/ab.tar", 6_175_744, want), want);
    let id = put(&b, dir.path(), ObjectKind::Bundle, &content(100_000, 3));
    let r = b.retrieval_range(&id, 6_175_744, want);
    assert_eq!((r.start, r.end), (0, 76 * layout::CHUNK), "{r:?}");
}
