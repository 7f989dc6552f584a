//! A Bloom filter over content hashes: "certainly not stored" without asking SQLite. A first
//! backup of a million small files asked the catalog a million times whether a content was
//! stored (a B-tree search and a lock each, on the coordinator thread); with the filter it
//! asks only when the answer may be yes.

use crate::hash::Hash32;

/// Bits per element: with 4 probes, about 1 % false positives (each costs one catalog lookup).
const BITS_PER_ELEMENT: usize = 10;

pub(super) struct HashFilter {
    words: Vec<u64>,
    /// Bit count minus one (a power of two).
    mask: u64,
}

impl HashFilter {
    /// An empty filter sized for `n` elements.
    pub(super) fn with_capacity(n: usize) -> HashFilter {
        let bits = (n.max(1024) * BITS_PER_ELEMENT).next_power_of_two();
        HashFilter {
            words: vec![0; bits / 64],
            mask: bits as u64 - 1,
        }
    }

    /// The 4 bit positions of `h`: content hashes are SHA-256 values, uniform already, so
    /// four of their 64-bit words serve as four independent hashes.
    fn probes(&self, h: &Hash32) -> [u64; 4] {
        let word = |i: usize| {
            let b: [u8; 8] = h.0[i * 8..i * 8 + 8].try_into().expect("8 bytes");
            u64::from_le_bytes(b) & self.mask
        };
        [word(0), word(1), word(2), word(3)]
    }

    pub(super) fn insert(&mut self, h: &Hash32) {
        for bit in self.probes(h) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// False: `h` was never inserted. True: it may have been.
    pub(super) fn may_contain(&self, h: &Hash32) -> bool {
        self.probes(h)
            .iter()
            .all(|&bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_inserted_is_found_and_most_of_the_rest_is_not() {
        let h = |i: u32| crate::hash::sha256(&i.to_le_bytes());
        let mut f = HashFilter::with_capacity(10_000);
        for i in 0..10_000 {
            f.insert(&h(i));
        }
        assert!(
            (0..10_000).all(|i| f.may_contain(&h(i))),
            "no false negative"
        );
        let false_positives = (10_000..110_000).filter(|&i| f.may_contain(&h(i))).count();
        assert!(false_positives < 3_000, "{false_positives} in 100,000");
    }
}
