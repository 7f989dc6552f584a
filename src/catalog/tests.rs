use super::*;
use crate::hash::tree_hash;

fn file(tree: &str, path: &str, content: &[u8], mtime: i64) -> VersionRecord {
    VersionRecord {
        tree: tree.into(),
        path: path.as_bytes().to_vec(),
        kind: EntryKind::File,
        size: content.len() as u64,
        mtime_ns: mtime,
        mode: 0o100644,
        hash: Some(tree_hash(content)),
        target: None,
    }
}

fn archive(id: &str, size: u64) -> NewArchive {
    NewArchive {
        remote_id: id.into(),
        kind: ArchiveKind::Bundle,
        size,
        tree_hash: tree_hash(id.as_bytes()),
        backend: "local".into(),
        stored_at: 1,
    }
}

#[test]
fn migrations_apply_once_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sqlite3");
    let cat = Catalog::open(&path).unwrap();
    assert_eq!(
        cat.schema_version().unwrap(),
        migrations::MIGRATIONS.len() as i64
    );
    drop(cat);
    let cat = Catalog::open(&path).unwrap();
    assert_eq!(
        cat.schema_version().unwrap(),
        migrations::MIGRATIONS.len() as i64
    );
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sqlite3");
    Catalog::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = Catalog::open(&path).err().unwrap().to_string();
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn point_in_time_versions() {
    let mut cat = Catalog::open_in_memory().unwrap();
    let (s1, resumed) = cat.begin_snapshot(100).unwrap();
    assert!(!resumed);
    let a1 = file("path", "a.txt", b"one", 1);
    let b1 = file("path", "b.txt", b"bee", 1);
    cat.commit_archive(
        &archive("bundles/1", 4096),
        &[
            NewContent {
                hash: a1.hash.unwrap(),
                size: 3,
                offset: 512,
            },
            NewContent {
                hash: b1.hash.unwrap(),
                size: 3,
                offset: 1536,
            },
        ],
        &[a1.clone(), b1.clone()],
        s1,
    )
    .unwrap();
    cat.finish_snapshot(s1, 110).unwrap();

    let (s2, _) = cat.begin_snapshot(200).unwrap();
    let a2 = file("path", "a.txt", b"two", 2);
    cat.commit_archive(
        &archive("bundles/2", 2048),
        &[NewContent {
            hash: a2.hash.unwrap(),
            size: 3,
            offset: 512,
        }],
        std::slice::from_ref(&a2),
        s2,
    )
    .unwrap();
    let b_id = cat.current_versions().unwrap()[&("path".to_string(), b"b.txt".to_vec())].id;
    cat.mark_gone(&[b_id], s2).unwrap();
    // Snapshot 2 is still running: the newest complete one is 1.
    assert_eq!(cat.snapshot_at(None).unwrap().unwrap().id, s1);
    cat.finish_snapshot(s2, 210).unwrap();

    let at1 = cat.versions_at(s1).unwrap();
    assert_eq!(at1.len(), 2);
    assert_eq!(at1[0].rec, a1);
    assert_eq!(at1[0].location.as_ref().unwrap().1, 512);
    let at2 = cat.versions_at(s2).unwrap();
    assert_eq!(at2.len(), 1);
    assert_eq!(at2[0].rec, a2);
    assert_eq!(at2[0].location.as_ref().unwrap().0.remote_id, "bundles/2");

    assert_eq!(cat.snapshot_at(Some(150)).unwrap().unwrap().id, s1);
    assert_eq!(cat.snapshot_at(Some(210)).unwrap().unwrap().id, s2);
    assert_eq!(cat.snapshot_at(Some(50)).unwrap(), None);
    assert!(cat.check().unwrap().is_empty());
}

#[test]
fn running_snapshot_is_resumed() {
    let mut cat = Catalog::open_in_memory().unwrap();
    let (s1, _) = cat.begin_snapshot(1).unwrap();
    let (again, resumed) = cat.begin_snapshot(2).unwrap();
    assert_eq!((again, resumed), (s1, true));
    cat.finish_snapshot(s1, 3).unwrap();
    let (s2, resumed) = cat.begin_snapshot(4).unwrap();
    assert!(s2 > s1 && !resumed);
}

#[test]
fn a_file_version_needs_its_content() {
    let mut cat = Catalog::open_in_memory().unwrap();
    let (s, _) = cat.begin_snapshot(1).unwrap();
    let err = cat.record_versions(&[file("path", "x", b"never stored", 1)], s);
    assert!(err.is_err(), "foreign key on contents must refuse it");
    assert!(
        cat.current_versions().unwrap().is_empty(),
        "nothing partly written"
    );
}

#[test]
fn dedup_versions_share_one_content() {
    let mut cat = Catalog::open_in_memory().unwrap();
    let (s, _) = cat.begin_snapshot(1).unwrap();
    let a = file("path", "a", b"same", 1);
    cat.commit_archive(
        &archive("bundles/x", 1024),
        &[NewContent {
            hash: a.hash.unwrap(),
            size: 4,
            offset: 512,
        }],
        std::slice::from_ref(&a),
        s,
    )
    .unwrap();
    let copy = file("path2", "copy-of-a", b"same", 5);
    cat.record_versions(&[copy], s).unwrap();
    assert_eq!(cat.known_contents().unwrap().len(), 1);
    assert_eq!(cat.current_versions().unwrap().len(), 2);
    let st = cat.stats().unwrap();
    assert_eq!((st.files, st.contents, st.archives), (2, 1, 1));
}

#[test]
fn backup_copy_is_a_working_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let mut cat = Catalog::open(&dir.path().join("p.sqlite3")).unwrap();
    let (s, _) = cat.begin_snapshot(1).unwrap();
    let a = file("path", "a", b"x", 1);
    cat.commit_archive(
        &archive("bundles/y", 1024),
        &[NewContent {
            hash: a.hash.unwrap(),
            size: 1,
            offset: 512,
        }],
        &[a],
        s,
    )
    .unwrap();
    cat.finish_snapshot(s, 2).unwrap();
    let copy = dir.path().join("copy.sqlite3");
    cat.backup_to(&copy).unwrap();
    let restored = Catalog::open(&copy).unwrap();
    assert_eq!(restored.versions_at(s).unwrap().len(), 1);
    assert!(restored.check().unwrap().is_empty());
}

#[test]
fn retrievals_are_remembered() {
    let mut cat = Catalog::open_in_memory().unwrap();
    let id = cat.record_archive(&archive("data/zz", 10)).unwrap();
    assert_eq!(cat.retrieval(id, 0, 10).unwrap(), None);
    let r = Retrieval {
        archive_id: id,
        range_start: 0,
        range_end: 10,
        tier: "bulk".into(),
        ticket: Some("job-1".into()),
        requested_at: 5,
    };
    cat.save_retrieval(&r).unwrap();
    assert_eq!(cat.retrieval(id, 0, 10).unwrap(), Some(r));
    assert_eq!(cat.stats().unwrap().pending_retrievals, 1);
    cat.delete_retrieval(id, 0, 10).unwrap();
    assert_eq!(cat.stats().unwrap().pending_retrievals, 0);
}
