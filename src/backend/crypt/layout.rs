//! Where plaintext bytes sit inside an age file, and the ids of encrypted objects.
//!
//! An age file (age-encryption.org/v1) is a header of `h` bytes (its length depends on the
//! recipients and on a random "grease" stanza), a 16-byte nonce, then the payload in chunks of
//! 64 KiB of plaintext, each followed by a 16-byte Poly1305 tag; the last chunk may be short
//! (and is empty only when the whole plaintext is). So chunk `k` starts at
//! `h + 16 + k * (64 KiB + 16)`.

use crate::backend::ByteRange;

/// Plaintext bytes per STREAM chunk.
pub const CHUNK: u64 = 64 * 1024;
/// Bytes of one full encrypted chunk: the plaintext and its tag.
pub const SEALED_CHUNK: u64 = CHUNK + 16;
/// The payload nonce after the header.
pub const NONCE: u64 = 16;
/// Headers longer than this are refused when encrypting (they would take some 600 recipients).
pub const MAX_HEADER: u64 = 64 * 1024;

/// The layout of one encrypted object: header length and stored (ciphertext) size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub header: u64,
    pub sealed_size: u64,
}

/// Chunks holding `plain` bytes (an empty plaintext still has one, empty, chunk).
fn chunks(plain: u64) -> u64 {
    plain.div_ceil(CHUNK).max(1)
}

/// The stored size of `plain` bytes under a header of `header` bytes.
pub fn sealed_size(header: u64, plain: u64) -> u64 {
    header + NONCE + plain + 16 * chunks(plain)
}

impl Layout {
    /// Where the payload (chunk 0) starts.
    pub fn payload_start(&self) -> u64 {
        self.header + NONCE
    }

    /// The plaintext size, or `None` when `sealed_size` cannot be an age file with this header.
    pub fn plain_size(&self) -> Option<u64> {
        let payload = self.sealed_size.checked_sub(self.payload_start())?;
        let n = payload.div_ceil(SEALED_CHUNK).max(1);
        let plain = payload.checked_sub(16 * n)?;
        (sealed_size(self.header, plain) == self.sealed_size).then_some(plain)
    }

    /// The stored bytes holding the chunks that cover plaintext `want`, and the plaintext
    /// offset of the first of them.
    pub fn sealed_range(&self, want: ByteRange) -> (ByteRange, u64) {
        let first = want.start / CHUNK;
        let end_chunk = want.end.div_ceil(CHUNK).max(first + 1);
        let start = self.payload_start() + first * SEALED_CHUNK;
        let end = (self.payload_start() + end_chunk * SEALED_CHUNK).min(self.sealed_size);
        (ByteRange { start, end }, first * CHUNK)
    }
}

/// The prefix of an encrypted object's id: `age:<header>:<stored size>:<backend id>`.
const ID_PREFIX: &str = "age:";

/// The id the wrapper gives an encrypted object stored under `inner` by the wrapped backend.
pub fn encrypted_id(layout: Layout, inner: &str) -> String {
    format!(
        "{ID_PREFIX}{}:{}:{inner}",
        layout.header, layout.sealed_size
    )
}

/// Whether `id` names an age-encrypted object (see [`encrypted_id`]).
pub fn is_encrypted_id(id: &str) -> bool {
    id.starts_with(ID_PREFIX)
}

/// Splits an id made by [`encrypted_id`]; `None` for a plaintext object's id.
pub fn parse_id(id: &str) -> Option<(Layout, &str)> {
    let rest = id.strip_prefix(ID_PREFIX)?;
    let (header, rest) = rest.split_once(':')?;
    let (size, inner) = rest.split_once(':')?;
    let layout = Layout {
        header: header.parse().ok()?,
        sealed_size: size.parse().ok()?,
    };
    Some((layout, inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_across_chunk_boundaries() {
        for header in [150, 183, 4000] {
            for plain in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 17] {
                let l = Layout {
                    header,
                    sealed_size: sealed_size(header, plain),
                };
                assert_eq!(
                    l.plain_size(),
                    Some(plain),
                    "header {header}, plain {plain}"
                );
            }
        }
        assert_eq!(sealed_size(100, 0), 100 + 16 + 16);
        assert_eq!(sealed_size(100, CHUNK), 100 + 16 + CHUNK + 16);
        assert_eq!(sealed_size(100, CHUNK + 1), 100 + 16 + CHUNK + 1 + 32);
    }

    #[test]
    fn a_range_maps_to_whole_chunks_cut_at_the_end() {
        let l = Layout {
            header: 200,
            sealed_size: sealed_size(200, 3 * CHUNK + 10),
        };
        let p = 216;
        let r = |s, e| l.sealed_range(ByteRange { start: s, end: e });
        assert_eq!(
            r(0, 1),
            (
                ByteRange {
                    start: p,
                    end: p + SEALED_CHUNK
                },
                0
            )
        );
        assert_eq!(
            r(CHUNK - 1, CHUNK + 1),
            (
                ByteRange {
                    start: p,
                    end: p + 2 * SEALED_CHUNK
                },
                0
            )
        );
        assert_eq!(
            r(CHUNK, 2 * CHUNK),
            (
                ByteRange {
                    start: p + SEALED_CHUNK,
                    end: p + 2 * SEALED_CHUNK
                },
                CHUNK
            )
        );
        // The last, short chunk ends where the object ends.
        assert_eq!(
            r(3 * CHUNK + 5, 3 * CHUNK + 10),
            (
                ByteRange {
                    start: p + 3 * SEALED_CHUNK,
                    end: l.sealed_size
                },
                3 * CHUNK
            )
        );
    }

    #[test]
    fn ids_round_trip_and_plain_ids_are_not_taken_for_encrypted() {
        let l = Layout {
            header: 183,
            sealed_size: 9999,
        };
        let id = encrypted_id(l, "bundles/ab.183.tar.age");
        assert_eq!(id, "age:183:9999:bundles/ab.183.tar.age");
        assert!(is_encrypted_id(&id));
        assert_eq!(parse_id(&id), Some((l, "bundles/ab.183.tar.age")));
        assert_eq!(parse_id("bundles/ab.tar"), None);
        assert_eq!(parse_id("age:x:1:y"), None);
        assert!(!is_encrypted_id("data/ab/abcd"));
    }
}
