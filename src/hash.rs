//! Content hashing: the SHA-256 tree hash of Amazon Glacier (1 MiB leaves, combined pairwise).
//!
//! The tree hash is glaciersync's content identity. For content up to 1 MiB it equals the plain
//! SHA-256 of the bytes; above that it is the root of a binary tree of SHA-256 hashes of 1 MiB
//! chunks. Glacier reports it back for every archive, and a multipart upload whose parts are
//! power-of-two MiB long has a tree hash computed from the parts' tree hashes, so one streaming
//! pass gives the identity, the parts' checksums and the archive's checksum.

use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

/// Leaf size of the tree hash.
pub const MIB: u64 = 1024 * 1024;

/// A 32-byte SHA-256 (or tree hash) value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Hash32> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Hash32(out))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// Plain SHA-256 of a byte slice.
pub fn sha256(data: &[u8]) -> Hash32 {
    Hash32(Sha256::digest(data).into())
}

fn combine(a: &Hash32, b: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update(a.0);
    h.update(b.0);
    Hash32(h.finalize().into())
}

/// Combines tree hashes of consecutive, MiB-power-of-two aligned pieces into the tree hash of
/// the whole, pairing left to right level by level as Glacier does.
pub fn combine_tree_hashes(hashes: &[Hash32]) -> Hash32 {
    if hashes.is_empty() {
        return sha256(&[]);
    }
    let mut level: Vec<Hash32> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => combine(a, b),
                [a] => *a,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    level[0]
}

/// Streaming tree hash. Memory is O(log n): completed subtrees are merged as they fill up.
#[derive(Clone)]
pub struct TreeHasher {
    leaf: Sha256,
    leaf_len: u64,
    /// Perfect subtrees, (height, hash), heights strictly decreasing from bottom to top.
    stack: Vec<(u32, Hash32)>,
    total: u64,
}

impl Default for TreeHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeHasher {
    pub fn new() -> Self {
        TreeHasher {
            leaf: Sha256::new(),
            leaf_len: 0,
            stack: Vec::new(),
            total: 0,
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() {
            let room = (MIB - self.leaf_len) as usize;
            let take = room.min(data.len());
            self.leaf.update(&data[..take]);
            self.leaf_len += take as u64;
            data = &data[take..];
            if self.leaf_len == MIB {
                self.push_leaf();
            }
        }
    }

    fn push_leaf(&mut self) {
        let leaf = std::mem::take(&mut self.leaf);
        let mut node = (0u32, Hash32(leaf.finalize().into()));
        self.leaf_len = 0;
        while let Some(&(h, top)) = self.stack.last() {
            if h != node.0 {
                break;
            }
            self.stack.pop();
            node = (h + 1, combine(&top, &node.1));
        }
        self.stack.push(node);
    }

    /// The tree hash of everything given to [`update`](Self::update).
    pub fn finish(mut self) -> Hash32 {
        if self.leaf_len > 0 || self.stack.is_empty() {
            self.push_leaf();
        }
        let mut iter = self.stack.into_iter().rev();
        let mut acc = iter.next().expect("at least one leaf").1;
        for (_, left) in iter {
            acc = combine(&left, &acc);
        }
        acc
    }
}

/// Tree hash of everything `reader` yields, with its length.
pub fn tree_hash_reader(mut reader: impl Read) -> io::Result<(Hash32, u64)> {
    let mut hasher = TreeHasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    let len = hasher.len();
    Ok((hasher.finish(), len))
}

/// Where [`copy_hashing`] failed: reading its source or writing its destination.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// A writer that hashes (when it has a hasher) and counts what it passes on to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Option<TreeHasher>,
    written: u64,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W, hash: bool) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: hash.then(TreeHasher::new),
            written: 0,
        }
    }

    /// The tree hash of what went through (when it had a hasher), and how many bytes that was.
    pub fn finish(self) -> (Option<Hash32>, u64) {
        (self.hasher.map(TreeHasher::finish), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies `src` into `out`, returning how many bytes went through and, with `hash`, their
/// tree hash (hashed on the way: the bytes are read once).
pub fn copy_hashing(
    src: &mut impl Read,
    out: &mut (impl Write + ?Sized),
    hash: bool,
) -> Result<(Option<Hash32>, u64), CopyError> {
    let mut hasher = TreeHasher::new();
    let mut len = 0u64;
    // 128 KiB: small enough that a piece read is still in the CPU cache when it is hashed and
    // then copied on (encrypted, written); 1 MiB pieces went to memory and back between them.
    let mut buf = vec![0u8; 128 << 10];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        if hash {
            hasher.update(&buf[..n]);
        }
        len += n as u64;
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
    Ok((hash.then(|| hasher.finish()), len))
}

/// Tree hash of a byte slice.
pub fn tree_hash(data: &[u8]) -> Hash32 {
    let mut h = TreeHasher::new();
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &[u8]) -> Hash32 {
        if data.is_empty() {
            return sha256(data);
        }
        let leaves: Vec<Hash32> = data.chunks(MIB as usize).map(sha256).collect();
        combine_tree_hashes(&leaves)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    #[test]
    fn small_content_equals_plain_sha256() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            tree_hash(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            tree_hash(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let one_mib = pattern(MIB as usize);
        assert_eq!(tree_hash(&one_mib), sha256(&one_mib));
    }

    #[test]
    fn streaming_matches_level_by_level_for_many_sizes() {
        let m = MIB as usize;
        for len in [m + 1, 2 * m, 3 * m - 5, 5 * m, 6 * m + 17, 7 * m, 9 * m] {
            let data = pattern(len);
            let mut h = TreeHasher::new();
            for chunk in data.chunks(333_333) {
                h.update(chunk);
            }
            assert_eq!(h.finish(), naive(&data), "len {len}");
        }
    }

    #[test]
    fn two_leaves_is_hash_of_concatenated_leaf_hashes() {
        let data = pattern(2 * MIB as usize);
        let a = sha256(&data[..MIB as usize]);
        let b = sha256(&data[MIB as usize..]);
        let mut cat = Vec::new();
        cat.extend_from_slice(&a.0);
        cat.extend_from_slice(&b.0);
        assert_eq!(tree_hash(&data), sha256(&cat));
        assert_ne!(tree_hash(&data), sha256(&data));
    }

    #[test]
    fn parts_combine_to_whole() {
        let m = MIB as usize;
        let data = pattern(11 * m + 12345);
        for part in [m, 2 * m, 4 * m, 8 * m] {
            let parts: Vec<Hash32> = data.chunks(part).map(tree_hash).collect();
            assert_eq!(combine_tree_hashes(&parts), tree_hash(&data), "part {part}");
        }
    }

    #[test]
    fn hex_round_trip() {
        let h = tree_hash(b"x");
        assert_eq!(Hash32::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash32::from_hex("zz"), None);
    }

    /// Published tree-hash vectors of other implementations.
    #[test]
    fn published_vectors() {
        let m = MIB as usize;
        // AWS SDK for C++, HashingUtilsTest (values generated with the Java example of AWS's
        // Glacier developer guide): buffers of the character '0'.
        let zeros = |len: usize| vec![b'0'; len];
        for (len, want) in [
            (
                2 * m,
                "489117033ee4cf06991b60ce56830ac409862a6ec8afdfb3b510e8fad3b80d24",
            ),
            (
                3 * m,
                "940257b3e0d13f92c98dc3fc32182e3acd07a81fe82f2b2dcd1802e1eedc5a3c",
            ),
            (
                4 * m,
                "0c2c286faeadbb8ef7aab5e1198af77b1c00d6ff634a739f0e4d55ea3a40ad2d",
            ),
            (
                5_767_168,
                "154e26c78fd74d0c2c9b3cc4644191619dc4f2cd539ae2a74d5fd07957a3ee6a",
            ),
            (
                8 * m,
                "ff9ea39186cb33cd5ade7aca078e297a1622f8c1abdd4cc47bcbf66dc5877e1f",
            ),
        ] {
            assert_eq!(tree_hash(&zeros(len)).to_hex(), want, "{len} bytes of '0'");
        }
        // AWS SDK for Go (service/glacier ComputeHashes example) and the JavaScript SDK's
        // computeChecksums test: the same 5.5 MiB of '0', linear SHA-256 and tree hash.
        let data = zeros(5_767_168);
        assert_eq!(
            sha256(&data).to_hex(),
            "68aff0c5a91aa0491752bfb96e3fef33eb74953804f6a2f7b708d5bcefa8ff6b"
        );
        let mut streamed = TreeHasher::new();
        for piece in data.chunks(65_537) {
            streamed.update(piece);
        }
        assert_eq!(
            streamed.finish().to_hex(),
            "154e26c78fd74d0c2c9b3cc4644191619dc4f2cd539ae2a74d5fd07957a3ee6a"
        );
        // rdwilliamson/aws (Go), glacier/treehash_test.go.
        assert_eq!(
            tree_hash(b"Hello World").to_hex(),
            "a591a6d40bf420404a011733cfb7b190d62c65bf0bcda32b57b277d9ad9f146e"
        );
        assert_eq!(
            tree_hash(&vec![b'a'; m]).to_hex(),
            "9bc1b2a288b26af7257a36277ae3816a7d4f16e89c1e7e77d0a5c48bad62b360"
        );
        let two_a = vec![b'a'; 2 * m];
        assert_eq!(
            tree_hash(&two_a).to_hex(),
            "560c2c9333c719cb00cfdffee3ba293db17f58743cdd1f7e4055373ae6300afa"
        );
        assert_eq!(
            sha256(&two_a).to_hex(),
            "5256ec18f11624025905d057d6befb03d77b243511ac5f77ed5e0221ce6d84b5"
        );
        // aws-tree-hash crate README: 7,680,000 zero bytes, whole and from 2 MiB parts.
        let nul = vec![0u8; 7_680_000];
        let want = "7a43777ddc7a0326d36b15bc482e6c7736e1c2e9d80a647e8c301646f6a4785c";
        assert_eq!(tree_hash(&nul).to_hex(), want);
        let parts: Vec<Hash32> = nul.chunks(2 * m).map(tree_hash).collect();
        assert_eq!(combine_tree_hashes(&parts).to_hex(), want);
    }
}
