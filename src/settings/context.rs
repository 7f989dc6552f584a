//! Reading one entry's value (a one-line text, a path or a size) with the messages that name
//! the file, line and key, and never a secret; and looking a key up for a profile.

use super::env::{Env, home_dir};
use super::ini::{Entry, Section};
use super::keys::SECRET_KEYS;
use super::settings_err;
use super::values::{is_windows_absolute, normalize, parse_size};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A looked-up value: where it came from.
pub(super) struct Val<'a> {
    pub(super) entry: &'a Entry,
    pub(super) section: &'a Section,
}

impl Val<'_> {
    pub(super) fn line(&self) -> usize {
        self.entry.line
    }
}

/// What every value is read against: the file, its directory and the environment.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    /// The settings file's directory, made absolute.
    pub(super) base: PathBuf,
    pub(super) env: Env<'a>,
}

impl Ctx<'_> {
    pub(super) fn err(&self, line: usize, msg: impl Into<String>) -> Error {
        settings_err(self.file, line, msg)
    }

    /// The value of a one-line key: refuses continuation lines and (unless `allow_empty`)
    /// empty values.
    pub(super) fn single<'v>(&self, v: &Val<'v>, allow_empty: bool) -> Result<&'v str> {
        let key = &v.entry.key;
        if let Some((line, _)) = v.entry.more.first() {
            return Err(self.err(
                *line,
                format!(
                    "this indented line continues `{key}` (line {}), but only `exclude` takes \
                     several lines: remove the indentation",
                    v.entry.line
                ),
            ));
        }
        if !allow_empty && v.entry.value.is_empty() {
            return Err(self.err(
                v.line(),
                format!("`{key}` has no value: give one or remove the line"),
            ));
        }
        Ok(&v.entry.value)
    }

    /// A value shown in a message: secrets are never shown.
    pub(super) fn shown(&self, v: &Val<'_>) -> String {
        if SECRET_KEYS.contains(&v.entry.key.as_str()) {
            "(value hidden)".to_string()
        } else {
            format!("`{}`", v.entry.value)
        }
    }

    /// Resolves a path value (see [`Tree::root`]).
    pub(super) fn path(&self, v: &Val<'_>) -> Result<PathBuf> {
        let key = &v.entry.key;
        let value = self.single(v, false)?;
        let quoted = value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')));
        if quoted {
            return Err(self.err(
                v.line(),
                format!("`{key}` is quoted: remove the quotes (paths with spaces need none)"),
            ));
        }
        if is_windows_absolute(value) {
            return Ok(PathBuf::from(value));
        }
        if value.starts_with('~') {
            let rest = if value == "~" {
                Some("")
            } else {
                value
                    .strip_prefix("~/")
                    .or_else(|| value.strip_prefix("~\\"))
            };
            let Some(rest) = rest else {
                return Err(self.err(
                    v.line(),
                    format!(
                        "`{key}` = {}: only `~/` (your home) is expanded, not `~user`: write the \
                         full path",
                        self.shown(v)
                    ),
                ));
            };
            let Some(home) = home_dir(self.env) else {
                return Err(self.err(
                    v.line(),
                    format!(
                        "`{key}` starts with `~`, but the home directory is unknown (HOME is not \
                         set): write the full path"
                    ),
                ));
            };
            let rest = rest.trim_start_matches(['/', '\\']);
            return Ok(normalize(&home.join(rest)));
        }
        let p = Path::new(value);
        if p.is_absolute() {
            Ok(normalize(p))
        } else {
            Ok(normalize(&self.base.join(p)))
        }
    }

    pub(super) fn size(&self, v: &Val<'_>) -> Result<u64> {
        let value = self.single(v, false)?;
        parse_size(value).map_err(|why| {
            self.err(
                v.line(),
                format!(
                    "`{}` = {}: {why}: write bytes, optionally with K, M or G (binary), e.g. \
                     16777216 or 16MiB",
                    v.entry.key,
                    self.shown(v)
                ),
            )
        })
    }

    pub(super) fn where_from(&self, v: &Val<'_>, profile: &Section) -> String {
        if v.section.is_global() {
            format!(" (from [global], for profile [{}])", profile.name)
        } else {
            String::new()
        }
    }
}

/// What a profile's values are looked up in: its section, then `[global]`.
pub(super) struct Scope<'a> {
    pub(super) ctx: &'a Ctx<'a>,
    pub(super) global: Option<&'a Section>,
    pub(super) sec: &'a Section,
}

impl<'a> Scope<'a> {
    /// The profile's name, as written.
    pub(super) fn name(&self) -> &'a str {
        &self.sec.name
    }

    /// The value of `key`: the profile's own, else `[global]`'s.
    pub(super) fn get(&self, key: &str) -> Option<Val<'a>> {
        self.own(key).or_else(|| {
            let g = self.global?;
            g.get(key).map(|entry| Val { entry, section: g })
        })
    }

    /// The profile's own value of `key` (for keys `[global]` cannot hold).
    pub(super) fn own(&self, key: &str) -> Option<Val<'a>> {
        self.sec.get(key).map(|entry| Val {
            entry,
            section: self.sec,
        })
    }

    /// The one-line text of `key`, if set.
    pub(super) fn opt_str(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .map(|v| self.ctx.single(&v, false).map(str::to_string))
            .transpose()
    }

    /// An error at `line` of the settings file.
    pub(super) fn err(&self, line: usize, msg: impl Into<String>) -> Error {
        self.ctx.err(line, msg)
    }

    /// ` (from [global], for profile [name])` when `v` comes from `[global]`, else nothing.
    pub(super) fn where_from(&self, v: &Val<'_>) -> String {
        self.ctx.where_from(v, self.sec)
    }
}
