use super::download::parse_content_range;
use super::inventory::parse_inventory;
use super::ranges::{aligned_pieces, exact_pieces, retrieval_candidates};
use super::resume::parts_fit;
use super::retrieval::Ticket;
use super::*;
use crate::backend::{ByteRange, ObjectKind, PutMeta};
use crate::error::Error;
use crate::hash::{MIB, tree_hash};

fn meta(profile: &str) -> PutMeta {
    PutMeta {
        kind: ObjectKind::Catalog,
        tree_hash: tree_hash(b"abc"),
        size: 3,
        profile: profile.into(),
        created: 1_795_687_200, // 2026-11-26T10:00:00Z
        age_header: None,
    }
}

#[test]
fn vault_names() {
    for ok in ["a", "my-vault_1.2", &"x".repeat(255)] {
        validate_vault_name(ok).unwrap();
    }
    for bad in ["", "with space", "slash/", "ümlaut", &"x".repeat(256)] {
        let e = validate_vault_name(bad).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{bad}");
        assert!(e.to_string().contains(&format!("{bad:?}")), "names it: {e}");
    }
}

#[test]
fn part_sizes() {
    for ok in [MIB, 2 * MIB, 64 * MIB, 4096 * MIB] {
        validate_part_size(ok).unwrap();
    }
    for bad in [0, MIB - 1, 3 * MIB, 5 * 1000 * 1000, 8192 * MIB] {
        assert!(validate_part_size(bad).is_err(), "{bad}");
    }
    assert_eq!(part_size_for(MIB, 10_000 * MIB).unwrap(), MIB);
    assert_eq!(part_size_for(MIB, 10_000 * MIB + 1).unwrap(), 2 * MIB);
    assert_eq!(part_size_for(64 * MIB, 1 << 40).unwrap(), 128 * MIB);
    assert_eq!(
        part_size_for(MIB, 10_000 * MAX_PART_SIZE).unwrap(),
        MAX_PART_SIZE
    );
    assert!(part_size_for(MIB, 10_000 * MAX_PART_SIZE + 1).is_err());
}

#[test]
fn descriptions_are_ascii_json_and_round_trip() {
    let d = description(&meta("photos"));
    assert_eq!(
        d,
        format!(
            r#"{{"glaciersync":1,"kind":"catalog","hash":"{}","profile":"photos","time":"2026-11-26T10:00:00Z"}}"#,
            tree_hash(b"abc")
        )
    );
    for profile in [
        "Fotos für Oma 📷",
        "quote\"back\\slash",
        "tab\tnew\nline",
        "",
    ] {
        let d = description(&meta(profile));
        assert!(d.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{d}");
        assert!(d.len() < 1024);
        let p = parse_description(&d).unwrap();
        assert_eq!(p.profile, profile);
        assert_eq!(p.kind, ObjectKind::Catalog);
        assert_eq!(p.tree_hash, tree_hash(b"abc"));
        assert_eq!(p.time, Some(1_795_687_200));
        assert!(is_our_description(&d));
    }
    let long = description(&meta(&"🦀".repeat(5000)));
    assert!(long.len() < 1024 && long.is_ascii(), "{}", long.len());
    assert!(parse_description(&long).is_some());
    assert_eq!(parse_description("my archive1"), None);
    assert_eq!(parse_description(r#"{"kind":"file"}"#), None);
    assert!(!is_our_description("{\"other\":1}"));
}

#[test]
fn tree_hash_alignment() {
    let m = MIB;
    // The 6.5 MB archive of AWS's example: [2, 4) MB is aligned, [1, 3) MB is not.
    let size = 6 * m + m / 2;
    assert!(is_tree_hash_aligned(2 * m, 4 * m, size));
    assert!(!is_tree_hash_aligned(m, 3 * m, size));
    assert!(is_tree_hash_aligned(0, size, size));
    assert!(is_tree_hash_aligned(4 * m, size, size));
    assert!(is_tree_hash_aligned(6 * m, size, size));
    assert!(!is_tree_hash_aligned(4 * m, 8 * m, size));
    assert!(!is_tree_hash_aligned(0, 6 * m, size));
    assert!(is_tree_hash_aligned(5 * m, 6 * m, size));
    assert!(!is_tree_hash_aligned(10, m, size));
}

#[test]
fn retrieval_ranges_are_megabyte_aligned() {
    let m = MIB;
    let size = 2 * m + 4321;
    let r = |s, e| ByteRange { start: s, end: e };
    assert_eq!(aligned_retrieval_range(size, r(10, 5000)), r(0, m));
    assert_eq!(aligned_retrieval_range(size, r(m - 3, m + 3)), r(0, 2 * m));
    assert_eq!(aligned_retrieval_range(size, r(0, size)), r(0, size));
    assert_eq!(
        aligned_retrieval_range(size, r(2 * m + 1, size)),
        r(2 * m, size)
    );
    // [1, 3) MiB widens to the node [0, 4) MiB (twice as long) when the archive has it.
    assert_eq!(
        aligned_retrieval_range(100 * m, r(m + 5, 3 * m - 5)),
        r(0, 4 * m)
    );
    // [3, 5) MiB would need [0, 8) MiB: too much, stays megabyte aligned.
    assert_eq!(
        aligned_retrieval_range(100 * m, r(3 * m, 5 * m)),
        r(3 * m, 5 * m)
    );
    for (size, s, e) in [
        (size, 10, 5000),
        (100 * m, m + 5, 3 * m - 5),
        (9 * m, 7 * m, 9 * m),
    ] {
        let got = aligned_retrieval_range(size, r(s, e));
        assert!(got.start <= s && got.end >= e);
        assert_eq!(got.start % m, 0);
        assert!(got.end.is_multiple_of(m) || got.end == size);
    }
    // Candidates when the size is unknown: node, megabyte range, up to the end, all.
    assert_eq!(
        retrieval_candidates(r(0, size)),
        vec![Some((0, 4 * m)), Some((0, 3 * m)), Some((0, size)), None]
    );
    assert_eq!(
        retrieval_candidates(r(10, 5000)),
        vec![Some((0, m)), Some((0, 5000)), None]
    );
}

#[test]
fn download_pieces() {
    let m = MIB;
    let size = 8 * m + 1234;
    for (a, b, max) in [
        (0, size, m),
        (0, size, 4 * m),
        (m + 5, 6 * m - 5, 64 * m),
        (3 * m + 10, 3 * m + 5000, 64 * m),
        (7 * m + 1, size - 1, 2 * m),
        (size - 1, size, 64 * m),
        (0, 1, m),
    ] {
        let pieces = aligned_pieces(a, b, size, max);
        assert!(
            pieces[0].0 <= a && pieces.last().unwrap().1 >= b,
            "{a}..{b}: {pieces:?}"
        );
        assert!(pieces.windows(2).all(|w| w[0].1 == w[1].0), "{pieces:?}");
        let total: u64 = pieces.iter().map(|p| p.1 - p.0).sum();
        assert!(total < (b - a) + 2 * m, "{a}..{b}: {pieces:?}");
        for &(s, e) in &pieces {
            assert!(is_tree_hash_aligned(s, e, size), "{s}..{e} of {a}..{b}");
            assert!(e - s <= max);
        }
    }
    assert_eq!(
        aligned_pieces(m + 5, 6 * m - 5, size, 64 * m),
        vec![(m, 2 * m), (2 * m, 4 * m), (4 * m, 6 * m)]
    );
    assert_eq!(
        aligned_pieces(0, size, size, 64 * m),
        vec![(0, size)],
        "the root node"
    );
    assert_eq!(
        aligned_pieces(0, size, size, 4 * m),
        vec![(0, 4 * m), (4 * m, 8 * m), (8 * m, size)]
    );
    assert_eq!(
        exact_pieces(5, 2 * m + 1, m),
        vec![(5, m), (m, 2 * m), (2 * m, 2 * m + 1)]
    );
}

#[test]
fn tickets_round_trip_and_cover() {
    let t = Ticket {
        job: "J".into(),
        inventory: false,
        start: MIB,
        end: Some(3 * MIB),
        size: None,
        aligned: false,
    };
    let text = t.encode();
    assert!(text.len() < 200, "{text}");
    assert_eq!(Ticket::decode(&text), Some(t.clone()));
    let r = |s, e| Some(ByteRange { start: s, end: e });
    assert!(t.covers(r(MIB, 3 * MIB)));
    assert!(!t.covers(r(0, 10)));
    assert!(!t.covers(None));
    let whole = Ticket {
        start: 0,
        end: None,
        ..t
    };
    assert!(whole.covers(None) && whole.covers(r(5, 10 * MIB)));
    assert_eq!(Ticket::decode("not json"), None);
}

#[test]
fn listed_parts_must_fit() {
    let m = MIB;
    let h = tree_hash(b"x").to_hex();
    let parts = vec![
        (format!("0-{}", m - 1), h.clone()),
        (format!("{}-{}", 2 * m, 2 * m + 9), h.clone()),
    ];
    let fit = parts_fit(&parts, m, 2 * m + 10).unwrap();
    assert_eq!(fit.len(), 2);
    assert!(parts_fit(&parts, 2 * m, 2 * m + 10).is_none());
    assert!(parts_fit(&[("5-9".into(), h)], m, 3 * m).is_none());
}

#[test]
fn inventory_parsing() {
    let ours = description(&meta("p"));
    let body = serde_json::json!({
        "VaultARN": "arn:aws:glacier:us-east-1:1:vaults/v",
        "InventoryDate": "2026-11-26T10:00:00Z",
        "ArchiveList": [
            {"ArchiveId": "b", "ArchiveDescription": ours, "CreationDate": "2026-11-26T10:00:01Z", "Size": 3, "SHA256TreeHash": tree_hash(b"abc").to_hex()},
            {"ArchiveId": "a", "ArchiveDescription": "my archive1", "CreationDate": "2012-05-15T17:19:46.700Z", "Size": 2140123, "SHA256TreeHash": "6b9d4cf8697bd3af6aa1b590a0b27b337da5b18988dbcc619a3e608a554a1e62"}
        ]
    });
    let items = parse_inventory(body.to_string().as_bytes()).unwrap();
    assert_eq!(items[0].id, "a");
    assert_eq!(
        (items[0].kind, items[0].tree_hash, items[0].created),
        (None, None, None)
    );
    assert_eq!(items[0].description.as_deref(), Some("my archive1"));
    assert_eq!(
        items[0].listed_tree_hash.map(|h| h.to_hex()).as_deref(),
        Some("6b9d4cf8697bd3af6aa1b590a0b27b337da5b18988dbcc619a3e608a554a1e62")
    );
    assert_eq!(items[1].kind, Some(ObjectKind::Catalog));
    assert_eq!(items[1].tree_hash, Some(tree_hash(b"abc")));
    assert_eq!(items[1].created, Some(1_795_687_200));
    assert_eq!(items[1].size, 3);
}

#[test]
fn content_ranges() {
    assert_eq!(
        parse_content_range("bytes 0-1048575/8388608"),
        Some((0, 1048575))
    );
    assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9)));
    assert_eq!(parse_content_range("items 5-9/*"), None);
}
