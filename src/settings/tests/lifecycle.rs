//! The lifecycle keys: retention, catalog copies, holds, the restore cost cap.

use super::*;
use crate::prune::{CalendarSpan, Retention};

#[test]
fn defaults_keep_everything_and_three_catalog_copies() {
    let p = one("[p]\nlocal_dir = /s\npath = /d\n");
    assert_eq!(p.lifecycle, Lifecycle::default());
    assert!(p.lifecycle.retention.is_empty());
    assert_eq!(p.lifecycle.keep_catalog_copies, 3);
    assert_eq!(p.lifecycle.max_restore_cost, None);
}

#[test]
fn global_sets_defaults_and_a_profile_wins() {
    let s = ok(
        "[global]\nkeep_daily = 7\nkeep_within = 1y6m\nmax_restore_cost = $12.50\n\
                [a]\nlocal_dir = /s\npath = /d\nkeep_daily = 3\nmin_storage_days = 200\n\
                [b]\nlocal_dir = /s\npath = /d\nkeep_catalog_copies = 5\n",
    );
    let a = &s.profiles[0].lifecycle;
    assert_eq!(
        a.retention,
        Retention {
            daily: 3,
            within: Some(CalendarSpan {
                years: 1,
                months: 6,
                ..Default::default()
            }),
            ..Default::default()
        }
    );
    assert_eq!(a.min_storage_days, 200);
    assert_eq!(a.max_restore_cost, Some(12.5));
    let b = &s.profiles[1].lifecycle;
    assert_eq!(b.retention.daily, 7);
    assert_eq!(b.keep_catalog_copies, 5);
}

#[test]
fn bad_values_name_the_key_and_line() {
    let e = err("[p]\nlocal_dir = /s\npath = /d\nkeep_last = -1\n");
    assert_contains(&e, &[":4:", "`keep_last` = `-1`", "whole number"]);
    let e = err("[p]\nlocal_dir = /s\npath = /d\nkeep_within = soon\n");
    assert_contains(&e, &[":4:", "`keep_within` = `soon`", "30d, 6m, 1y"]);
    let e = err("[global]\nkeep_weekly = 1.5\n[p]\nlocal_dir = /s\npath = /d\n");
    assert_contains(
        &e,
        &[":2:", "`keep_weekly`", "(from [global], for profile [p])"],
    );
    let e = err("[p]\nlocal_dir = /s\npath = /d\nmax_restore_cost = -3\n");
    assert_contains(&e, &["`max_restore_cost` = `-3`", "US dollars"]);
    let e = err("[p]\nlocal_dir = /s\npath = /d\nkeep_monthy = 3\n");
    assert_contains(
        &e,
        &["unknown key `keep_monthy`", "did you mean `keep_monthly`?"],
    );
}
