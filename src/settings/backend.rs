//! The backend of a profile: which one it uses (`backend =`, else implied by its keys), and the
//! keys each backend requires: `vault_name` (Glacier), `bucket`, `prefix` and `storage_class`
//! (S3), `local_dir` (local); then the backend's rule for `part_size`.

use super::context::Scope;
use super::values::{as_setting, canonical_storage_class, is_bare_bucket_name, part_size_rule};
use super::{BackendSettings, DEFAULT_STORAGE_CLASS, STORAGE_CLASSES};
use crate::backend::glacier::validate_vault_name;
use crate::error::{Error, Result};

/// The backends `backend =` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BackendKind {
    Glacier,
    S3,
    Local,
}

impl BackendKind {
    /// The kind `value` names, in any case: `glacier`, `s3` or `local`.
    pub(super) fn parse(value: &str) -> Option<BackendKind> {
        match value.to_ascii_lowercase().as_str() {
            "glacier" => Some(BackendKind::Glacier),
            "s3" => Some(BackendKind::S3),
            "local" => Some(BackendKind::Local),
            _ => None,
        }
    }

    /// The kind as `backend =` spells it.
    pub(super) fn name(self) -> &'static str {
        match self {
            BackendKind::Glacier => "glacier",
            BackendKind::S3 => "s3",
            BackendKind::Local => "local",
        }
    }
}

/// How a profile came to its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    /// Named by `backend =` (in the profile or in `[global]`).
    Named(BackendKind),
    /// No `backend =`: Glacier when the profile has a `vault_name`, else local.
    Implied(BackendKind),
}

impl Choice {
    pub(super) fn kind(self) -> BackendKind {
        match self {
            Choice::Named(kind) | Choice::Implied(kind) => kind,
        }
    }
}

/// Which backend the profile uses; an unknown `backend =` value is an error.
pub(super) fn choose_backend(scope: &Scope<'_>) -> Result<Choice> {
    let Some(v) = scope.get("backend") else {
        let implied = if scope.own("vault_name").is_some() {
            BackendKind::Glacier
        } else {
            BackendKind::Local
        };
        return Ok(Choice::Implied(implied));
    };
    match BackendKind::parse(scope.ctx.single(&v, false)?) {
        Some(kind) => Ok(Choice::Named(kind)),
        None => Err(scope.err(
            v.line(),
            format!(
                "`backend` = {}{}: use glacier, s3 or local",
                scope.ctx.shown(&v),
                scope.where_from(&v)
            ),
        )),
    }
}

/// `storage_class`, in capitals, else the default (read whatever the backend, as ever).
pub(super) fn storage_class(scope: &Scope<'_>) -> Result<String> {
    let Some(v) = scope.get("storage_class") else {
        return Ok(DEFAULT_STORAGE_CLASS.to_string());
    };
    canonical_storage_class(scope.ctx.single(&v, false)?).ok_or_else(|| {
        scope.err(
            v.line(),
            format!(
                "`storage_class` = {}: use one of {}",
                scope.ctx.shown(&v),
                STORAGE_CLASSES.join(", ")
            ),
        )
    })
}

/// The chosen backend with its required keys checked.
pub(super) fn backend_settings(
    scope: &Scope<'_>,
    choice: Choice,
    storage_class: String,
) -> Result<BackendSettings> {
    match choice.kind() {
        BackendKind::Glacier => glacier(scope, choice),
        BackendKind::S3 => s3(scope, choice, storage_class),
        BackendKind::Local => local(scope, choice),
    }
}

/// The profile uses `kind` but lacks `key`.
fn missing(scope: &Scope<'_>, kind: BackendKind, key: &str, example: &str) -> Error {
    scope.err(
        scope.sec.line,
        format!(
            "profile [{}] uses backend {} but has no `{key}`: add `{key} = {example}`",
            scope.name(),
            kind.name()
        ),
    )
}

fn glacier(scope: &Scope<'_>, choice: Choice) -> Result<BackendSettings> {
    let Some(v) = scope.own("vault_name") else {
        return Err(missing(scope, choice.kind(), "vault_name", "<vault>"));
    };
    let vault = scope.ctx.single(&v, false)?;
    // The rule is the backend's; the message is ours (file, line, key).
    validate_vault_name(vault).map_err(|_| {
        scope.err(
            v.line(),
            format!(
                "`vault_name` = {}: a vault name is 1 to 255 of a-z, A-Z, 0-9, `_`, `.` and `-`",
                scope.ctx.shown(&v)
            ),
        )
    })?;
    Ok(BackendSettings::Glacier {
        vault: vault.to_string(),
    })
}

fn s3(scope: &Scope<'_>, choice: Choice, storage_class: String) -> Result<BackendSettings> {
    let Some(v) = scope.get("bucket") else {
        return Err(missing(scope, choice.kind(), "bucket", "<bucket>"));
    };
    let bucket = scope.ctx.single(&v, false)?;
    if !is_bare_bucket_name(bucket) {
        return Err(scope.err(
            v.line(),
            format!(
                "`bucket` = {}: write the bare bucket name (no s3://, no slashes; put a key \
                 prefix in `prefix`)",
                scope.ctx.shown(&v)
            ),
        ));
    }
    Ok(BackendSettings::S3 {
        bucket: bucket.to_string(),
        prefix: s3_prefix(scope)?,
        storage_class,
    })
}

/// `prefix` (may be empty), else the profile's name; ends with `/` unless empty.
fn s3_prefix(scope: &Scope<'_>) -> Result<String> {
    let prefix = match scope.own("prefix") {
        Some(v) => scope.ctx.single(&v, true)?.to_string(),
        None => scope.name().to_string(),
    };
    if prefix.is_empty() || prefix.ends_with('/') {
        Ok(prefix)
    } else {
        Ok(format!("{prefix}/"))
    }
}

fn local(scope: &Scope<'_>, choice: Choice) -> Result<BackendSettings> {
    let Some(v) = scope.own("local_dir") else {
        if let Choice::Implied(_) = choice {
            return Err(scope.err(
                scope.sec.line,
                format!(
                    "profile [{}] has no backend: add `local_dir = <directory>` (local backend), \
                     `vault_name = <vault>` (Glacier) or `backend = s3` with `bucket = <bucket>`",
                    scope.name()
                ),
            ));
        }
        return Err(missing(scope, choice.kind(), "local_dir", "<directory>"));
    };
    Ok(BackendSettings::Local {
        dir: scope.ctx.path(&v)?,
    })
}

/// Checks `part_size`, when set, against the backend's rule.
pub(super) fn check_part_size(
    scope: &Scope<'_>,
    backend: &BackendSettings,
    part_size: u64,
) -> Result<()> {
    let Some(v) = scope.get("part_size") else {
        return Ok(());
    };
    let Some(rule) = part_size_rule(backend, part_size) else {
        return Ok(());
    };
    Err(scope.err(
        v.line(),
        format!(
            "`part_size` = {} ({}){}: {rule}",
            scope.ctx.shown(&v),
            as_setting(part_size),
            scope.where_from(&v)
        ),
    ))
}
