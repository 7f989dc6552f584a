//! Building a [`Profile`] from its section and `[global]`, one concern at a time: its name, the
//! backend choice, the AWS connection (`aws`), the catalog location, the sizes, the exclusions,
//! the trees (`trees`) and the backend's own keys (`backend`).

use super::aws::aws_options;
use super::backend::{backend_settings, check_part_size, choose_backend, storage_class};
use super::context::{Ctx, Scope};
use super::env::default_database_dir;
use super::ini::Section;
use super::trees::trees;
use super::{
    DEFAULT_ARCHIVE_BYTE_SIZE_THRESHOLD, DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE, MAX_CONCURRENCY,
    Profile,
};
use crate::error::Result;
use std::path::PathBuf;

/// The profile of section `sec`. The checks run in a fixed order, so a file with several
/// mistakes always reports the same one first.
pub(super) fn build_profile(
    ctx: &Ctx<'_>,
    global: Option<&Section>,
    sec: &Section,
) -> Result<Profile> {
    let scope = Scope { ctx, global, sec };
    check_profile_name(&scope)?;
    let choice = choose_backend(&scope)?;
    let aws = aws_options(&scope)?;
    let database_dir = database_dir(&scope)?;
    let concurrency = concurrency(&scope)?;
    let archive_byte_size_threshold = archive_byte_size_threshold(&scope)?;
    let part_size = match scope.get("part_size") {
        Some(v) => ctx.size(&v)?,
        None => DEFAULT_PART_SIZE,
    };
    let storage_class = storage_class(&scope)?;
    let exclude = exclude(&scope)?;
    let trees = trees(&scope)?;
    let backend = backend_settings(&scope, choice, storage_class)?;
    let age = super::age::age_settings(&scope)?;
    check_part_size(&scope, &backend, part_size)?;
    let lifecycle = super::lifecycle::lifecycle(&scope)?;
    Ok(Profile {
        name: sec.name.clone(),
        line: sec.line,
        backend,
        aws,
        database_dir,
        concurrency,
        trees,
        archive_byte_size_threshold,
        exclude,
        part_size,
        lifecycle,
        age,
    })
}

/// The profile's name becomes its catalog's file name: it must be able to.
fn check_profile_name(scope: &Scope<'_>) -> Result<()> {
    let name = scope.name();
    let bad = name == "."
        || name == ".."
        || name.starts_with('.')
        || name.chars().any(|c| {
            c.is_control() || matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        });
    if bad {
        return Err(scope.err(
            scope.sec.line,
            format!(
                "profile name [{name}] cannot name its catalog file: use letters, digits, \
                 spaces, `_`, `-` and `.` (not first)"
            ),
        ));
    }
    Ok(())
}

/// `database_dir`, else the data directory the environment gives.
fn database_dir(scope: &Scope<'_>) -> Result<PathBuf> {
    if let Some(v) = scope.get("database_dir") {
        return scope.ctx.path(&v);
    }
    default_database_dir(scope.ctx.env).ok_or_else(|| {
        scope.err(
            scope.sec.line,
            format!(
                "profile [{}]: no data directory is known for catalogs (HOME and XDG_DATA_HOME \
                 are not set): set `database_dir` in [global]",
                scope.name()
            ),
        )
    })
}

/// `concurrency`: a whole number from 1 to [`MAX_CONCURRENCY`].
fn concurrency(scope: &Scope<'_>) -> Result<usize> {
    let Some(v) = scope.get("concurrency") else {
        return Ok(DEFAULT_CONCURRENCY);
    };
    let n: usize = scope.ctx.single(&v, false)?.parse().map_err(|_| {
        scope.err(
            v.line(),
            format!(
                "`concurrency` = {}: not a whole number: write 1 to {MAX_CONCURRENCY}",
                scope.ctx.shown(&v)
            ),
        )
    })?;
    if !(1..=MAX_CONCURRENCY).contains(&n) {
        return Err(scope.err(
            v.line(),
            format!("`concurrency` = {n}: write 1 to {MAX_CONCURRENCY}"),
        ));
    }
    Ok(n)
}

/// `archive_byte_size_threshold`: a size of at least one byte.
fn archive_byte_size_threshold(scope: &Scope<'_>) -> Result<u64> {
    let Some(v) = scope.get("archive_byte_size_threshold") else {
        return Ok(DEFAULT_ARCHIVE_BYTE_SIZE_THRESHOLD);
    };
    match scope.ctx.size(&v)? {
        0 => Err(scope.err(
            v.line(),
            "`archive_byte_size_threshold` = 0: it must be at least 1 byte (default 16MiB)",
        )),
        n => Ok(n),
    }
}

/// `exclude`: one gitignore pattern a line (blank lines skipped), each checked to compile.
pub(super) fn exclude(scope: &Scope<'_>) -> Result<Vec<String>> {
    let Some(v) = scope.get("exclude") else {
        return Ok(Vec::new());
    };
    let lines = std::iter::once((v.entry.line, v.entry.value.as_str()))
        .chain(v.entry.more.iter().map(|(l, t)| (*l, t.as_str())));
    let mut patterns = Vec::new();
    for (line, pat) in lines {
        let pat = pat.trim();
        if pat.is_empty() {
            continue;
        }
        let mut builder = ignore::gitignore::GitignoreBuilder::new("/");
        if let Err(e) = builder.add_line(None, pat) {
            return Err(scope.err(line, format!("`exclude` has a bad gitignore pattern: {e}")));
        }
        patterns.push(pat.to_string());
    }
    Ok(patterns)
}
