//! The prune plan and the forget transaction on in-memory catalogs.

use super::*;
use crate::catalog::{
    ArchiveKind, Catalog, EntryKind, NewArchive, NewContent, SnapshotId, VersionRecord,
};
use crate::hash::tree_hash;

pub(super) fn file(path: &str, content: &[u8]) -> VersionRecord {
    VersionRecord {
        tree: "path".into(),
        path: path.as_bytes().to_vec(),
        kind: EntryKind::File,
        size: content.len() as u64,
        mtime_ns: 1,
        mode: 0o100644,
        hash: Some(tree_hash(content)),
        target: None,
    }
}

pub(super) fn store(
    cat: &mut Catalog,
    id: &str,
    kind: ArchiveKind,
    files: &[(&str, &[u8])],
    s: SnapshotId,
    at: i64,
) {
    let mut offset = 0;
    let contents: Vec<NewContent> = files
        .iter()
        .map(|(_, c)| {
            let nc = NewContent {
                hash: tree_hash(c),
                size: c.len() as u64,
                offset,
            };
            offset += c.len() as u64;
            nc
        })
        .collect();
    let versions: Vec<VersionRecord> = files.iter().map(|(p, c)| file(p, c)).collect();
    let archive = NewArchive {
        remote_id: id.into(),
        kind,
        size: offset.max(1),
        tree_hash: tree_hash(id.as_bytes()),
        backend: "x".into(),
        stored_at: at,
    };
    cat.commit_archive(&archive, &contents, &versions, s)
        .unwrap();
}

pub(super) fn gone(cat: &mut Catalog, path: &str, s: SnapshotId) {
    let cur = cat.current_versions().unwrap();
    let id = cur[&("path".to_string(), path.as_bytes().to_vec())].id;
    cat.mark_gone(&[id], s).unwrap();
}

pub(super) const DAY: i64 = 86_400;
pub(super) const T0: i64 = 1_780_000_000;

/// s1: a (alone), b and c (one bundle); s2: a changed, c deleted; s3: b deleted.
pub(super) fn three_syncs() -> Catalog {
    let mut cat = Catalog::open_in_memory().unwrap();
    let (s1, _) = cat.begin_snapshot(T0).unwrap();
    store(
        &mut cat,
        "a1",
        ArchiveKind::File,
        &[("a", b"a one")],
        s1,
        T0,
    );
    store(
        &mut cat,
        "bun",
        ArchiveKind::Bundle,
        &[("b", b"bee"), ("c", b"sea")],
        s1,
        T0,
    );
    cat.finish_snapshot(s1, T0).unwrap();
    let (s2, _) = cat.begin_snapshot(T0 + DAY).unwrap();
    store(
        &mut cat,
        "a2",
        ArchiveKind::File,
        &[("a", b"a two")],
        s2,
        T0 + DAY,
    );
    gone(&mut cat, "c", s2);
    cat.finish_snapshot(s2, T0 + DAY).unwrap();
    let (s3, _) = cat.begin_snapshot(T0 + 2 * DAY).unwrap();
    gone(&mut cat, "b", s3);
    cat.finish_snapshot(s3, T0 + 2 * DAY).unwrap();
    cat
}

pub(super) fn opts(backend: &str, last: u32, now: i64) -> PruneOptions {
    PruneOptions {
        profile: "p".into(),
        backend: backend.into(),
        storage_class: None,
        retention: Retention {
            last,
            ..Default::default()
        },
        keep_catalog_copies: 3,
        min_storage_days: 0,
        now,
        dry_run: true,
        description_profile: None,
    }
}

pub(super) fn ids(list: &[PlannedArchive]) -> Vec<&str> {
    list.iter().map(|a| a.remote_id.as_str()).collect()
}

#[test]
fn no_policy_forgets_nothing_and_deletes_nothing() {
    let cat = three_syncs();
    let plan = plan(&opts("local", 0, T0 + 3 * DAY), &cat, None).unwrap();
    assert!(!plan.policy);
    assert!(plan.forget.is_empty());
    assert_eq!(plan.versions_forgotten, 0);
    assert!(plan.delete.is_empty() && plan.held.is_empty(), "{plan:?}");
}

#[test]
fn keep_last_forgets_older_snapshots_and_frees_their_archives() {
    let cat = three_syncs();
    let plan = plan(&opts("local", 1, T0 + 3 * DAY), &cat, None).unwrap();
    assert_eq!(plan.forget, vec![1, 2]);
    assert_eq!(plan.snapshots_kept, 1);
    // a1, b and c are shown by no kept snapshot; a2 is.
    assert_eq!(plan.versions_forgotten, 3);
    assert_eq!(ids(&plan.delete), vec!["a1", "bun"]);
    assert_eq!(plan.totals.archives_deleted, 2);
    assert_eq!(plan.totals.bytes_deleted, 5 + 6);
    assert!(plan.held.is_empty());
}

#[test]
fn a_bundle_with_a_live_member_is_kept_whole() {
    let cat = three_syncs();
    // s2 and s3 kept: b (in the bundle) is still in s2; c (same bundle) is not.
    let plan = plan(&opts("local", 2, T0 + 3 * DAY), &cat, None).unwrap();
    assert_eq!(plan.forget, vec![1]);
    assert_eq!(ids(&plan.delete), vec!["a1"]);
}

#[test]
fn young_cold_archives_are_held_until_their_minimum_duration() {
    let mut cat = three_syncs();
    cat.note_storage_class("DEEP_ARCHIVE", T0 - 10).unwrap();
    let now = T0 + 3 * DAY;
    let p = plan(&opts("s3", 1, now), &cat, None).unwrap();
    assert!(p.delete.is_empty(), "{p:?}");
    assert_eq!(ids(&p.held), vec!["a1", "bun"]);
    assert_eq!(p.held[0].held_until, T0 + 180 * DAY);
    assert_eq!(p.held[0].place, "s3:DEEP_ARCHIVE");
    assert_eq!(
        p.totals.held_until.as_deref(),
        Some(date(T0 + 180 * DAY).as_str())
    );
    // Past the hold they go; a later class applies only to what was stored after it.
    cat.note_storage_class("STANDARD", T0 + DAY / 2).unwrap();
    let p = plan(&opts("s3", 1, T0 + 180 * DAY), &cat, None).unwrap();
    assert_eq!(ids(&p.delete), vec!["a1", "bun"]);
    // A vault holds 90 days; min_storage_days lengthens, never shortens.
    let mut o = opts("glacier", 1, T0 + 91 * DAY);
    assert_eq!(
        ids(&plan(&o, &cat, None).unwrap().delete),
        vec!["a1", "bun"]
    );
    o.min_storage_days = 100;
    assert_eq!(ids(&plan(&o, &cat, None).unwrap().held), vec!["a1", "bun"]);
    o.min_storage_days = 10;
    assert_eq!(plan(&o, &cat, None).unwrap().held.len(), 0);
    // With no record of the class, S3 data is held as DEEP_ARCHIVE.
    let cat = three_syncs();
    let p = plan(&opts("s3", 1, T0 + 100 * DAY), &cat, None).unwrap();
    assert_eq!(p.held.len(), 2);
}

#[test]
fn the_newest_catalog_copies_are_kept() {
    let mut cat = three_syncs();
    for i in 0..5 {
        store(
            &mut cat,
            &format!("catalog/{i}"),
            ArchiveKind::Catalog,
            &[],
            0,
            T0 + i,
        );
    }
    let mut o = opts("s3", 0, T0 + DAY);
    let p = plan(&o, &cat, None).unwrap();
    // Catalog copies are STANDARD on S3: no hold.
    assert_eq!(ids(&p.delete), vec!["catalog/1", "catalog/0"]);
    assert_eq!(p.totals.catalog_copies_deleted, 2);
    o.keep_catalog_copies = 0; // read as 1: the newest is never deleted
    assert_eq!(plan(&o, &cat, None).unwrap().delete.len(), 4);
    // In a vault they are held 90 days.
    let p = plan(&opts("glacier", 0, T0 + DAY), &cat, None).unwrap();
    assert_eq!(ids(&p.held), vec!["catalog/1", "catalog/0"]);
}

#[test]
fn forgetting_keeps_what_kept_snapshots_show() {
    let mut cat = three_syncs();
    let before = cat.versions_at(3).unwrap();
    let p = plan(&opts("local", 1, T0 + 3 * DAY), &cat, None).unwrap();
    let doomed: Vec<_> = p
        .delete
        .iter()
        .map(|a| crate::catalog::Doomed::Archive(a.id.unwrap()))
        .collect();
    cat.forget_and_mark(&p.forget, &doomed, T0 + 3 * DAY)
        .unwrap();
    assert_eq!(cat.check().unwrap(), Vec::<String>::new());
    let ids: Vec<_> = cat.snapshots().unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![3]);
    let after = cat.versions_at(3).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after[0].rec, before[0].rec);
    let remaining: Vec<_> = cat
        .archives()
        .unwrap()
        .into_iter()
        .map(|a| a.remote_id)
        .collect();
    assert_eq!(remaining, vec!["a2"]);
    let pending: Vec<_> = cat
        .pending_deletions()
        .unwrap()
        .into_iter()
        .map(|p| p.remote_id)
        .collect();
    assert_eq!(pending, vec!["a1", "bun"]);
    assert_eq!(
        cat.meta("catalog_backup_pending").unwrap().as_deref(),
        Some("1")
    );
    // Nothing more to do after the deletions are recorded.
    cat.mark_deleted("a1", T0).unwrap();
    cat.mark_deleted("bun", T0).unwrap();
    assert!(cat.pending_deletions().unwrap().is_empty());
    let again = plan(&opts("local", 1, T0 + 3 * DAY), &cat, None).unwrap();
    assert!(
        again.forget.is_empty() && again.delete.is_empty(),
        "{again:?}"
    );
}

#[test]
fn an_archive_still_needed_is_refused_and_nothing_changes() {
    let mut cat = three_syncs();
    let a2 = cat
        .archives()
        .unwrap()
        .into_iter()
        .find(|a| a.remote_id == "a2")
        .unwrap();
    let err = cat
        .forget_and_mark(&[1], &[crate::catalog::Doomed::Archive(a2.id)], T0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("prune refused, nothing changed"), "{err}");
    assert_eq!(cat.snapshots().unwrap().len(), 3);
    assert!(cat.pending_deletions().unwrap().is_empty());
}

#[test]
fn unknown_objects_go_only_when_provably_ours() {
    use crate::backend::{ObjectInfo, ObjectKind};
    let cat = three_syncs();
    let obj = |id: &str, kind: Option<ObjectKind>, profile: Option<&str>| ObjectInfo {
        id: id.into(),
        size: 7,
        kind,
        tree_hash: kind.map(|_| tree_hash(id.as_bytes())),
        created: Some(T0),
        profile: profile.map(str::to_string),
        description: None,
        listed_tree_hash: None,
        age_header: None,
    };
    let listing = vec![
        obj("a2", Some(ObjectKind::File), None),   // known
        obj("left", Some(ObjectKind::File), None), // ours by name
        obj("notes.txt", None, None),              // not named as we name
    ];
    let mut o = opts("local", 0, T0 + DAY);
    let p = plan(&o, &cat, Some(&listing)).unwrap();
    assert_eq!(ids(&p.delete), vec!["left"]);
    assert_eq!(p.delete[0].why, Why::Unknown);
    // In a vault: only archives whose description names this profile; legacy ones never.
    o.backend = "glacier".into();
    o.now = T0 + 100 * DAY;
    o.description_profile = Some("p".into());
    let vault = vec![
        obj("mine", Some(ObjectKind::Bundle), Some("p")),
        obj("theirs", Some(ObjectKind::Bundle), Some("other")),
        obj("legacy", None, None),
    ];
    assert_eq!(
        ids(&plan(&o, &cat, Some(&vault)).unwrap().delete),
        vec!["mine"]
    );
    o.description_profile = None;
    assert!(plan(&o, &cat, Some(&vault)).unwrap().delete.is_empty());
}

#[test]
fn the_plan_prints_what_it_holds() {
    let mut cat = three_syncs();
    cat.note_storage_class("DEEP_ARCHIVE", 0).unwrap();
    let p = plan(&opts("s3", 1, T0 + 3 * DAY), &cat, None).unwrap();
    let text = p.to_string();
    assert!(
        text.starts_with(
            "p (dry run): would forget 2 snapshots (3 versions); delete 0 archives (0 B)"
        ),
        "{text}"
    );
    assert!(text.contains("2 archives (11 B) held until"), "{text}");
    let json = serde_json::to_value(&p).unwrap();
    for key in [
        "snapshots_forgotten",
        "archives_deleted",
        "bytes_deleted",
        "archives_held",
        "bytes_held",
        "held_until",
        "monthly_cost_saved",
    ] {
        assert!(json.get(key).is_some(), "{key} missing: {json}");
    }
    assert_eq!(json["held"][0]["held_until"], T0 + 180 * DAY);
}

#[test]
fn archives_of_the_2013_script_are_never_deleted() {
    use crate::catalog::{LegacyArchiveIn, LegacyImportIn, LegacyMemberIn};
    let mut cat = Catalog::open_in_memory().unwrap();
    // An imported database: one whole-file archive of the script, and an older tar of the
    // script that no file needs any more.
    cat.import_legacy(&LegacyImportIn {
        time: T0 - DAY,
        archives: vec![
            LegacyArchiveIn {
                remote_id: "legacy-archive".into(),
                tar: false,
                sha1: "0".repeat(40),
                size: 5,
                tree_hash: None,
                stored_at: T0 - 400 * DAY,
                backend: "glacier".into(),
            },
            LegacyArchiveIn {
                remote_id: "legacy-superseded".into(),
                tar: true,
                sha1: "1".repeat(40),
                size: 10240,
                tree_hash: None,
                stored_at: T0 - 500 * DAY,
                backend: "glacier".into(),
            },
        ],
        members: vec![LegacyMemberIn {
            archive: 0,
            member: Vec::new(),
            size: 5,
        }],
        versions: vec![(file("old", b"olden"), 0)],
    })
    .unwrap();
    // Two syncs of ours: the script's file is gone from the tree, then a new one.
    let (s2, _) = cat.begin_snapshot(T0).unwrap();
    gone(&mut cat, "old", s2);
    store(
        &mut cat,
        "ours",
        ArchiveKind::File,
        &[("new", b"new")],
        s2,
        T0,
    );
    cat.finish_snapshot(s2, T0).unwrap();
    let plan = plan(&opts("glacier", 1, T0 + 400 * DAY), &cat, None).unwrap();
    assert_eq!(plan.forget.len(), 1, "{plan:?}");
    for id in ["legacy-archive", "legacy-superseded"] {
        assert!(
            !ids(&plan.delete).contains(&id) && !ids(&plan.held).contains(&id),
            "{id}: {plan:?}"
        );
    }
}

#[test]
fn a_recover_point_is_a_full_copy_with_the_deltas_after_it() {
    let mut cat = three_syncs();
    // full0, d1, d2, full3, d4, full5, d6: keep 2 full copies → full3 and what follows.
    for (i, kind) in [
        ArchiveKind::Catalog,
        ArchiveKind::CatalogDelta,
        ArchiveKind::CatalogDelta,
        ArchiveKind::Catalog,
        ArchiveKind::CatalogDelta,
        ArchiveKind::Catalog,
        ArchiveKind::CatalogDelta,
    ]
    .into_iter()
    .enumerate()
    {
        store(
            &mut cat,
            &format!("catalog/{i}"),
            kind,
            &[],
            0,
            T0 + i as i64,
        );
    }
    let mut o = opts("s3", 0, T0 + DAY);
    o.keep_catalog_copies = 2;
    let p = plan(&o, &cat, None).unwrap();
    assert_eq!(ids(&p.delete), vec!["catalog/2", "catalog/1", "catalog/0"]);
}

/// One sync at each of `times` (seconds), each changing file `a`.
pub(super) fn syncs_at(times: &[i64]) -> Catalog {
    let mut cat = Catalog::open_in_memory().unwrap();
    for (n, &t) in times.iter().enumerate() {
        let (s, _) = cat.begin_snapshot(t).unwrap();
        let content = format!("a{n}");
        store(
            &mut cat,
            &format!("a{n}"),
            ArchiveKind::File,
            &[("a", content.as_bytes())],
            s,
            t,
        );
        cat.finish_snapshot(s, t).unwrap();
    }
    cat
}

#[test]
fn three_syncs_on_one_day_keep_the_newest_and_the_oldest_with_keep_daily() {
    // Restic's rule: keep_daily = 7 has counts left at the oldest snapshot, so it is kept
    // additionally; the one between shares the newest's day and goes.
    let cat = syncs_at(&[T0, T0 + 60, T0 + 120]);
    let mut o = opts("local", 0, T0 + DAY);
    o.retention.daily = 7;
    let p = plan(&o, &cat, None).unwrap();
    assert_eq!(p.forget, vec![2], "{p:?}");
    assert_eq!(ids(&p.delete), vec!["a1"]);
    // Two syncs: both kept.
    let cat = syncs_at(&[T0, T0 + 60]);
    assert!(plan(&o, &cat, None).unwrap().forget.is_empty());
}

#[test]
fn a_sync_dated_in_the_future_never_costs_the_last_one() {
    // Sync 1 ran with a clock ten years ahead; syncs 2 and 3 are right. The last sync is the
    // tree as it stands: kept by keep_last = 1 and inside keep_within.
    let now = T0 + 2 * DAY + 60;
    let cat = syncs_at(&[T0 + 3650 * DAY, T0 + DAY, T0 + 2 * DAY]);
    let p = plan(&opts("local", 1, now), &cat, None).unwrap();
    assert_eq!(p.forget, vec![2], "{p:?}");
    let mut o = opts("local", 0, now);
    o.retention.within = CalendarSpan::parse("2d");
    let p = plan(&o, &cat, None).unwrap();
    assert!(p.forget.is_empty(), "{p:?}");
    o.retention.within = CalendarSpan::parse("12h");
    let p = plan(&o, &cat, None).unwrap();
    assert_eq!(p.forget, vec![2], "{p:?}");
}
