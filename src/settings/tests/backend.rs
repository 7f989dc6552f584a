//! The backend choice on its own: the kind `backend =` names, what is implied without it, and
//! the message for an unknown kind.

use super::*;
use crate::settings::backend::{BackendKind, Choice, choose_backend};

#[test]
fn backend_kind_parses_each_name_in_any_case() {
    for (value, kind) in [
        ("glacier", BackendKind::Glacier),
        ("Glacier", BackendKind::Glacier),
        ("s3", BackendKind::S3),
        ("S3", BackendKind::S3),
        ("local", BackendKind::Local),
        ("LOCAL", BackendKind::Local),
    ] {
        assert_eq!(BackendKind::parse(value), Some(kind), "{value}");
        assert_eq!(BackendKind::parse(kind.name()), Some(kind));
    }
    for bad in ["tape", "", "s 3", "glacier2", "aws"] {
        assert_eq!(BackendKind::parse(bad), None, "{bad}");
    }
}

#[test]
fn unknown_backend_kind_message() {
    assert_eq!(
        err("[p]\nbackend = tape\npath = /a\n"),
        format!("{FILE}:2: `backend` = `tape`: use glacier, s3 or local")
    );
    assert_eq!(
        err("[global]\nbackend = Tape\n[p]\npath = /a\n"),
        format!(
            "{FILE}:2: `backend` = `Tape` (from [global], for profile [p]): use glacier, s3 or \
             local"
        )
    );
}

#[test]
fn choice_is_named_or_implied_by_the_profile_keys() {
    let choice = |text: &str| with_scope(text, |s| choose_backend(s).map_err(|e| e.to_string()));
    assert_eq!(
        choice("[p]\nvault_name = v\n"),
        Ok(Choice::Implied(BackendKind::Glacier))
    );
    assert_eq!(
        choice("[p]\nlocal_dir = /s\n"),
        Ok(Choice::Implied(BackendKind::Local))
    );
    assert_eq!(choice("[p]\n"), Ok(Choice::Implied(BackendKind::Local)));
    assert_eq!(
        choice("[p]\nbackend = S3\nvault_name = v\n"),
        Ok(Choice::Named(BackendKind::S3))
    );
    assert_eq!(
        choice("[global]\nbackend = local\n[p]\nvault_name = v\n"),
        Ok(Choice::Named(BackendKind::Local))
    );
    // A `vault_name` in [global] implies nothing (it is refused there anyway).
    assert_eq!(
        choice("[global]\nvault_name = v\n[p]\n"),
        Ok(Choice::Implied(BackendKind::Local))
    );
    let e = choice("[p]\nbackend =\n").unwrap_err();
    assert_eq!(
        e,
        format!("{FILE}:2: `backend` has no value: give one or remove the line")
    );
}
