use super::checksum::{base64, checksum_sha256};
use super::download::total_size;
use super::restore::{
    RestoreState, new_ticket, now_unix, parse_ticket, restore_state, restore_time, ticket_eta,
};
use super::resume::StoredPart;
use super::upload::Upload;
use super::*;
use crate::backend::multipart::{Multipart, Source};
use crate::backend::{Backend, ObjectKind, PutMeta, Tier};
use crate::error::BackendErrorKind;
use crate::hash::{sha256, tree_hash};
use md5::{Digest, Md5};
use std::fs::File;
use std::time::Duration;

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, want) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), want, "{input:?}");
    }
    assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
}

#[test]
fn checksum_is_base64_of_sha256() {
    assert_eq!(
        checksum_sha256(b"abc"),
        "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    );
    assert_eq!(
        checksum_sha256(b""),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

#[test]
fn parts_are_read_at_their_offsets_and_hashed() {
    let data = crate::backend::testsuite::content((3 << 20) + 77, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, &data).unwrap();
    let file = File::open(&path).unwrap();
    let meta = PutMeta {
        kind: ObjectKind::File,
        tree_hash: tree_hash(&data),
        size: data.len() as u64,
        profile: "p".into(),
        created: 0,
        age_header: None,
    };
    let source = Source {
        meta: &meta,
        path: &path,
        file: &file,
        backend: NAME,
    };
    let backend = offline("STANDARD").unwrap();
    // A stored part without checksum is matched by its ETag, the MD5: only then is MD5 taken.
    let stored_without_checksum = |size| StoredPart {
        size,
        etag: "\"e\"".into(),
        checksum: None,
    };
    let upload = Upload {
        backend: &backend,
        key: "k",
        upload_id: "u".into(),
        stored: [
            (1, stored_without_checksum(2 * MIB)),
            (2, stored_without_checksum(1)),
        ]
        .into(),
    };
    for (index, offset, len) in [(0, 0, 2 * MIB), (1, 2 * MIB, MIB + 77), (2, 5, 10)] {
        let part = source.read(offset, len).unwrap();
        let slice = &data[offset as usize..(offset + len) as usize];
        assert!(part == slice);
        let digest = upload.digest(index, &part);
        assert_eq!(digest.sha256, sha256(slice));
        assert_eq!(digest.checksum, checksum_sha256(slice));
        let md5 = (index == 0).then(|| hex::encode(Md5::digest(slice)));
        assert_eq!(digest.md5, md5, "part {index}");
    }
    let err = source.read(data.len() as u64 - 5, 10).err().unwrap();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Corrupt), "{err}");
}

#[test]
fn part_sizes() {
    assert_eq!(normalize_part_size(1), MIN_PART_SIZE);
    assert_eq!(normalize_part_size(5 * MIB + 1), 6 * MIB);
    assert_eq!(normalize_part_size(64 * MIB), 64 * MIB);
    assert_eq!(normalize_part_size(u64::MAX / 2), MAX_PART_SIZE);
    assert_eq!(part_size_for(8 * MIB, 100 * MIB), 8 * MIB);
    // 1 TiB in 8 MiB parts would be 131,072 parts: raised to whole MiB within 10,000.
    let tib = 1024 * 1024 * MIB;
    let p = part_size_for(8 * MIB, tib);
    assert_eq!(p % MIB, 0);
    assert!(tib.div_ceil(p) <= MAX_PARTS && tib.div_ceil(p - MIB) > MAX_PARTS);
    assert!(MAX_OBJECT_SIZE.div_ceil(part_size_for(MIN_PART_SIZE, MAX_OBJECT_SIZE)) <= MAX_PARTS);
}

fn offline(storage_class: &str) -> Result<S3Backend> {
    S3Backend::new(S3Options {
        aws: AwsOptions {
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            access_key: Some("AKIDEXAMPLE".into()),
            secret_key: Some("SecretNeverShown".into()),
            profile: None,
            ..Default::default()
        },
        bucket: "b".into(),
        prefix: "pictures".into(),
        storage_class: storage_class.into(),
        ..S3Options::default()
    })
}

#[test]
fn options_are_checked_and_shown_without_secrets() {
    let b = offline("deep_archive").unwrap();
    assert_eq!(
        b.describe(),
        "s3://b/pictures/ (storage class DEEP_ARCHIVE, region eu-west-1)"
    );
    for (class, cold) in [
        ("DEEP_ARCHIVE", true),
        ("GLACIER", true),
        ("GLACIER_IR", false),
        ("STANDARD_IA", false),
        ("STANDARD", false),
    ] {
        let b = offline(class).unwrap();
        assert_eq!(b.needs_warm_up(ObjectKind::File), cold, "{class}");
        assert_eq!(b.needs_warm_up(ObjectKind::Bundle), cold, "{class}");
        assert!(!b.needs_warm_up(ObjectKind::Catalog), "{class}");
    }
    let err = offline("COLD").err().unwrap();
    assert!(err.to_string().contains("COLD"), "{err}");
    let err = S3Backend::new(S3Options::default()).err().unwrap();
    assert!(err.to_string().contains("bucket"), "{err}");
    let shown = format!("{:?}", offline_options());
    assert!(!shown.contains("SecretNeverShown"), "{shown}");
}

fn offline_options() -> S3Options {
    S3Options {
        aws: AwsOptions {
            secret_key: Some("SecretNeverShown".into()),
            ..AwsOptions::default()
        },
        ..S3Options::default()
    }
}

#[test]
fn prefixes() {
    assert_eq!(normalize_prefix("pictures/"), "pictures/");
    assert_eq!(normalize_prefix("pictures"), "pictures/");
    assert_eq!(normalize_prefix("/a/b"), "a/b/");
    assert_eq!(normalize_prefix(""), "");
}

#[test]
fn restore_header() {
    assert_eq!(restore_state(None), RestoreState::None);
    assert_eq!(
        restore_state(Some("ongoing-request=\"true\"")),
        RestoreState::Ongoing
    );
    assert_eq!(
        restore_state(Some(
            "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\""
        )),
        RestoreState::Done
    );
}

#[test]
fn tickets_and_etas() {
    let t = new_ticket(Tier::Bulk);
    assert_eq!(parse_ticket(&t).map(|p| p.0), Some(Tier::Bulk));
    let eta = ticket_eta(&t, "DEEP_ARCHIVE").unwrap();
    assert!(eta <= Duration::from_secs(48 * 3600) && eta > Duration::from_secs(47 * 3600));
    let old = format!("s3-restore:expedited:{}", now_unix() - 3600);
    assert_eq!(ticket_eta(&old, "GLACIER"), None);
    assert_eq!(parse_ticket("garbage"), None);
    assert_eq!(
        restore_time("GLACIER", Tier::Standard),
        Duration::from_secs(5 * 3600)
    );
    assert_eq!(
        restore_time("DEEP_ARCHIVE", Tier::Standard),
        Duration::from_secs(12 * 3600)
    );
}

#[test]
fn content_range_total() {
    assert_eq!(total_size(Some("bytes 0-9/1234")), Some(1234));
    assert_eq!(total_size(Some("bytes */*")), None);
    assert_eq!(total_size(None), None);
}

#[test]
fn stored_parts_match_on_checksum_or_md5_etag() {
    let with_sum = StoredPart {
        size: 10,
        etag: "\"x\"".into(),
        checksum: Some("abc=".into()),
    };
    assert!(with_sum.matches(10, "abc=", None));
    assert!(!with_sum.matches(10, "abd=", None));
    assert!(!with_sum.matches(11, "abc=", None));
    let etag_only = StoredPart {
        size: 10,
        etag: "\"0CC175B9C0F1B6A831C399E269772661\"".into(),
        checksum: None,
    };
    assert!(etag_only.matches(10, "zzz=", Some("0cc175b9c0f1b6a831c399e269772661")));
    assert!(!etag_only.matches(10, "zzz=", Some("ffff")));
    assert!(!etag_only.matches(10, "zzz=", None));
}
