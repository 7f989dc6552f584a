//! Range arithmetic of retrievals and downloads: megabyte alignment, tree-hash aligned nodes
//! (Glacier sends checksums only for those), and how a download is cut into pieces.

use crate::backend::ByteRange;
use crate::hash::MIB;

fn floor_mib(x: u64) -> u64 {
    x / MIB * MIB
}

fn ceil_mib(x: u64) -> u64 {
    x.div_ceil(MIB) * MIB
}

/// The smallest node of a tree hash (an aligned run of 2^k MiB) that contains the MiB-aligned
/// range `[start, end)`, ignoring where the archive ends.
fn tree_node_cover(start: u64, end: u64) -> (u64, u64) {
    let mut span = MIB;
    while start / span != (end - 1) / span {
        span *= 2;
    }
    let s = start / span * span;
    (s, s + span)
}

/// Whether `[start, end)` is a node of the tree hash of an archive of `size` bytes: Glacier
/// returns checksums only for such ranges.
pub fn is_tree_hash_aligned(start: u64, end: u64, size: u64) -> bool {
    if !start.is_multiple_of(MIB) || start >= size || end <= start {
        return false;
    }
    let mut span = MIB;
    while start.is_multiple_of(span) {
        if end == (start + span).min(size) {
            return true;
        }
        if start + span >= size {
            return false;
        }
        span *= 2;
    }
    false
}

/// A tree node costs at most this many times the megabyte-aligned range to be preferred.
const NODE_WIDENING: u64 = 2;

/// The ranges an archive-retrieval job for `want` asks for, best first, when the archive's size
/// is unknown: a cheap tree-hash aligned node, the megabyte-aligned range, the range up to
/// `want.end` (valid when that is the archive's end), and at last the whole archive (`None`).
/// Glacier answers 400 to a range that ends past the archive; the next candidate is tried then.
pub(super) fn retrieval_candidates(want: ByteRange) -> Vec<Option<(u64, u64)>> {
    let s = floor_mib(want.start);
    let e = ceil_mib(want.end);
    let mut out = Vec::new();
    let (ns, ne) = tree_node_cover(s, e);
    if (ns, ne) != (s, e) && ne - ns <= NODE_WIDENING * (e - s) {
        out.push(Some((ns, ne)));
    }
    out.push(Some((s, e)));
    if want.end != e {
        out.push(Some((s, want.end)));
    }
    out.push(None);
    out
}

/// The range retrieved for `want` of an archive of `size` bytes: the tree-hash aligned node
/// around it when the archive holds that node and it is cheap (as `retrieval_candidates` first
/// tries), else the megabyte-aligned range, cut at the archive's end.
pub fn aligned_retrieval_range(size: u64, want: ByteRange) -> ByteRange {
    if want.is_empty() || want.end > size {
        return want;
    }
    let s = floor_mib(want.start);
    let e = ceil_mib(want.end);
    let (ns, ne) = tree_node_cover(s, e);
    if ne <= size && ne - ns <= NODE_WIDENING * (e - s) {
        return ByteRange { start: ns, end: ne };
    }
    ByteRange {
        start: s,
        end: e.min(size),
    }
}

/// Splits `[a, b)` into pieces of at most `window` bytes.
pub(super) fn exact_pieces(a: u64, b: u64, window: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut s = a;
    while s < b {
        let e = (s / window + 1) * window;
        out.push((s, e.min(b)));
        s = e.min(b);
    }
    out
}

/// Covers `[a, b)` of an archive of `size` bytes with consecutive tree-hash nodes of at most
/// `max_span` bytes (a power-of-two MiB): the fewest such pieces from the megabyte below `a` to
/// the megabyte above `b`, so at most 2 MiB more than asked for are downloaded, all verifiable.
pub(super) fn aligned_pieces(a: u64, b: u64, size: u64, max_span: u64) -> Vec<(u64, u64)> {
    let hi = ceil_mib(b).min(size);
    let mut out = Vec::new();
    let mut s = floor_mib(a);
    while s < hi {
        let mut span = MIB;
        while span * 2 <= max_span && s.is_multiple_of(span * 2) && (s + span * 2).min(size) <= hi {
            span *= 2;
        }
        let e = (s + span).min(size);
        out.push((s, e));
        s = e;
    }
    out
}
