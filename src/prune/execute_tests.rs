//! Executing prune plans: what the report counts when deletions fail or finish late.

use super::tests::{DAY, T0, opts, three_syncs};
use super::*;

/// A backend that only deletes: `refuse` fails, `missing` is already gone, anything else is
/// deleted and remembered.
struct Deleting {
    refuse: &'static str,
    missing: &'static str,
    deleted: std::sync::Mutex<Vec<String>>,
}

impl Deleting {
    fn new(refuse: &'static str, missing: &'static str) -> Deleting {
        Deleting {
            refuse,
            missing,
            deleted: Default::default(),
        }
    }
}

impl crate::backend::Backend for Deleting {
    fn name(&self) -> &'static str {
        "local"
    }
    fn describe(&self) -> String {
        "a test backend".into()
    }
    fn needs_warm_up(&self, _: crate::backend::ObjectKind) -> bool {
        false
    }
    fn prepare(&self) -> crate::Result<()> {
        unreachable!("prune stores nothing")
    }
    fn put(&self, _: &crate::backend::PutMeta, _: &std::path::Path) -> crate::Result<String> {
        unreachable!("prune stores nothing")
    }
    fn get(
        &self,
        _: &str,
        _: Option<crate::backend::ByteRange>,
        _: Option<&str>,
        _: &mut dyn std::io::Write,
    ) -> crate::Result<u64> {
        unreachable!("prune reads nothing")
    }
    fn warm_up(
        &self,
        _: &str,
        _: Option<crate::backend::ByteRange>,
        _: crate::backend::Tier,
        _: Option<&str>,
    ) -> crate::Result<crate::backend::WarmState> {
        unreachable!("prune reads nothing")
    }
    fn list(&self, _: Option<&str>) -> crate::Result<crate::backend::ListOutcome> {
        unreachable!("the listing is passed in")
    }
    fn delete(&self, id: &str) -> crate::Result<()> {
        use crate::error::{BackendErrorKind, Error};
        if id == self.refuse {
            return Err(Error::backend(
                "test",
                BackendErrorKind::Permanent,
                "refused",
            ));
        }
        if id == self.missing {
            return Err(Error::backend("test", BackendErrorKind::NotFound, "gone"));
        }
        self.deleted.lock().unwrap().push(id.to_string());
        Ok(())
    }
}

#[test]
fn the_report_counts_what_was_deleted_not_what_was_planned() {
    use crate::report::{Exit, Report};
    let mut cat = three_syncs();
    let now = T0 + 3 * DAY;
    let mut o = opts("local", 1, now);
    o.dry_run = false;
    // a1 (5 B) and the bundle (6 B) are planned; the backend refuses the bundle.
    let p = plan(&o, &cat, None).unwrap();
    assert_eq!((p.totals.archives_deleted, p.totals.bytes_deleted), (2, 11));
    let backend = Deleting::new("bun", "");
    let r = execute(p, &backend, &mut cat, now).unwrap();
    assert_eq!(r.totals.snapshots_forgotten, 2);
    assert_eq!(
        (r.totals.archives_deleted, r.totals.bytes_deleted),
        (1, 5),
        "{r:?}"
    );
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.exit_code(), Exit::Partial);
    assert_eq!(*backend.deleted.lock().unwrap(), vec!["a1"]);
    // The next prune plans nothing new and finishes the bundle: counted there.
    let p = plan(&o, &cat, None).unwrap();
    assert!(p.delete.is_empty() && p.forget.is_empty(), "{p:?}");
    assert_eq!(p.pending, vec!["bun"]);
    let backend = Deleting::new("", "");
    let r = execute(p, &backend, &mut cat, now).unwrap();
    assert_eq!(
        (r.totals.archives_deleted, r.totals.bytes_deleted),
        (1, 6),
        "{r:?}"
    );
    assert_eq!(r.totals.snapshots_forgotten, 0);
    assert!(r.problems.is_empty());
    assert!(cat.pending_deletions().unwrap().is_empty());
}

#[test]
fn deletions_an_interrupted_prune_left_are_counted_by_the_run_that_finishes_them() {
    let mut cat = three_syncs();
    let now = T0 + 3 * DAY;
    // A prune killed after marking: a1 and the bundle are pending, nothing deleted.
    let p = plan(&opts("local", 1, now), &cat, None).unwrap();
    let doomed: Vec<_> = p
        .delete
        .iter()
        .map(|a| crate::catalog::Doomed::Archive(a.id.unwrap()))
        .collect();
    cat.forget_and_mark(&p.forget, &doomed, now).unwrap();
    // The rerun: a1 is deleted now, the bundle the killed run had deleted already.
    let p = plan(&opts("local", 1, now), &cat, None).unwrap();
    assert!(p.delete.is_empty());
    let backend = Deleting::new("", "bun");
    let r = execute(p, &backend, &mut cat, now).unwrap();
    assert_eq!(
        (r.totals.archives_deleted, r.totals.bytes_deleted),
        (2, 11),
        "{r:?}"
    );
    assert_eq!(
        r.totals.catalog_copies_deleted + r.totals.unknown_deleted,
        0
    );
    assert!(cat.pending_deletions().unwrap().is_empty());
}
