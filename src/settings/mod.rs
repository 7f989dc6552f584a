//! The settings file: an INI file read into validated, ready-to-use [`Profile`]s.
//!
//! The format is the one the original 2013 script read with Python's `configparser`:
//!
//! - an optional `[global]` section, then one section per profile (section names are kept as
//!   written; `[global]` is matched exactly);
//! - `key = value` or `key: value` (the first `=` or `:` splits); keys are case-insensitive,
//!   values are trimmed and taken verbatim (no quotes, no `%` interpolation, no inline comments);
//! - whole-line comments start with `#` or `;`; blank lines are ignored;
//! - a line indented deeper than the key line above it continues that key's value (only
//!   `exclude` takes several lines: one pattern a line);
//! - a UTF-8 byte order mark and CRLF line ends are accepted.
//!
//! Every error is an [`Error::Settings`] naming the file and line (`file:line: message`), the key
//! or section, and what to do. Errors never echo the values of `aws_access_key` or
//! `aws_secret_key`, nor lines that could not be parsed; `Debug` redacts them too.
//!
//! The module reads in layers, one file each: `ini` splits the text into sections and entries,
//! `keys` checks which keys may stand where, `profile` builds each [`Profile`] from its
//! section and `[global]`, one concern at a time (the backend in `backend`, the AWS connection
//! in `aws`, the trees in `trees`), reading values through `context`, with the rules of
//! `values` and the lookups of `env`; `sample` holds the text `glaciersync init` writes.

mod age;
mod aws;
mod backend;
mod context;
mod env;
mod ini;
mod keys;
mod lifecycle;
mod profile;
mod sample;
#[cfg(test)]
mod tests;
mod trees;
mod values;

pub use age::AgeSettings;
pub use lifecycle::{DEFAULT_KEEP_CATALOG_COPIES, Lifecycle};
pub use sample::{SAMPLE, sample_for};

use crate::backend::aws::AwsOptions;
use crate::error::{Error, Result};
use crate::hash::MIB;
use backend::BackendKind;
use context::Ctx;
use env::{Env, default_path_with, real_env};
use ini::parse_ini;
use keys::check_keys;
use profile::build_profile;
use std::path::{Path, PathBuf};

/// One gibibyte.
const GIB: u64 = 1024 * MIB;

/// Default of `concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Highest accepted `concurrency`.
pub const MAX_CONCURRENCY: usize = 64;
/// Default of `archive_byte_size_threshold`.
pub const DEFAULT_ARCHIVE_BYTE_SIZE_THRESHOLD: u64 = 16 * MIB;
/// Default of `part_size`.
pub const DEFAULT_PART_SIZE: u64 = 64 * MIB;
/// Default of `storage_class`.
pub const DEFAULT_STORAGE_CLASS: &str = "DEEP_ARCHIVE";
/// The accepted values of `storage_class`: the S3 backend's list.
pub const STORAGE_CLASSES: &[&str] = &crate::backend::s3::STORAGE_CLASSES;

/// A parsed and validated settings file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file as it was named (used in messages).
    pub file: PathBuf,
    /// The profiles, in file order. Never empty.
    pub profiles: Vec<Profile>,
}

/// One profile: a set of trees backed up to one place, with its own catalog.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The section name, as written.
    pub name: String,
    /// Line of the profile's `[section]` header.
    pub line: usize,
    pub backend: BackendSettings,
    /// Connection settings (used by the S3 and Glacier backends).
    pub aws: AwsOptions,
    /// Where `<name>.sqlite3` lives.
    pub database_dir: PathBuf,
    /// Uploads and downloads in flight, `1..=64`.
    pub concurrency: usize,
    /// The trees to back up, `path` first, then `path2`, `path3`, … in numeric order.
    pub trees: Vec<Tree>,
    /// Files up to this size are packed into bundles; a bundle closes once it passes it.
    pub archive_byte_size_threshold: u64,
    /// gitignore-style patterns, one per entry (already checked to compile).
    pub exclude: Vec<String>,
    /// Multipart part size in bytes, valid for the backend.
    pub part_size: u64,
    /// Retention, catalog copies, holds and the restore cost cap.
    pub lifecycle: Lifecycle,
    /// Encryption (`age_recipients`, `age_recipients_file`, `age_identity_file`).
    pub age: AgeSettings,
}

/// A tree to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The settings key naming it (`path`, `path2`, …): its name in `ls` and restores.
    pub key: String,
    /// The directory, resolved (relative paths against the settings file's directory, `~/`
    /// against the home directory); Windows-style absolute paths are kept verbatim.
    pub root: PathBuf,
    /// Line of its key.
    pub line: usize,
}

/// Where a profile's data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSettings {
    /// A directory (`local_dir`).
    Local { dir: PathBuf },
    /// An S3 bucket; `prefix` is empty or ends with `/`; `storage_class` is one of
    /// [`STORAGE_CLASSES`].
    S3 {
        bucket: String,
        prefix: String,
        storage_class: String,
    },
    /// A Glacier vault (the vault API).
    Glacier { vault: String },
}

impl BackendSettings {
    /// The backend's name as `backend =` spells it: `local`, `s3` or `glacier`.
    pub fn kind(&self) -> &'static str {
        let kind = match self {
            BackendSettings::Local { .. } => BackendKind::Local,
            BackendSettings::S3 { .. } => BackendKind::S3,
            BackendSettings::Glacier { .. } => BackendKind::Glacier,
        };
        kind.name()
    }
}

impl Profile {
    /// The profile's catalog: `database_dir/<name>.sqlite3`.
    pub fn catalog_path(&self) -> PathBuf {
        self.database_dir.join(format!("{}.sqlite3", self.name))
    }
}

/// Reads and parses the settings file at `path`.
pub fn load(path: &Path) -> Result<Settings> {
    load_with(path, &real_env)
}

fn load_with(path: &Path, env: Env<'_>) -> Result<Settings> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(settings_err(
                path,
                0,
                "settings file not found: run `glaciersync init` to write a commented sample \
                 there, or name another file with -c",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(settings_err(
                path,
                0,
                "settings file is not valid UTF-8: save it as UTF-8",
            ));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    parse_with(&text, path, env)
}

/// Parses settings text; `file` names it in messages and anchors relative paths.
pub fn parse(text: &str, file: &Path) -> Result<Settings> {
    parse_with(text, file, &real_env)
}

/// The default settings file: `$GLACIERSYNC_CONFIG`, else
/// `$XDG_CONFIG_HOME/glaciersync/settings.ini`, else `~/.config/glaciersync/settings.ini`
/// (`%APPDATA%\glaciersync\settings.ini` on Windows).
pub fn default_path() -> PathBuf {
    default_path_with(&real_env)
}

/// Writes [`SAMPLE`] to `path`, creating parent directories; never overwrites anything.
/// On Unix the file is created readable by its owner only (it may come to hold credentials).
pub fn write_sample(path: &Path) -> Result<()> {
    write_sample_text(path, SAMPLE)
}

/// [`write_sample`] with another text (the sample for another tree).
pub fn write_sample_text(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        crate::private::create_dir(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Usage(format!(
                "{} already exists: not overwriting it (edit it, or name another file: \
                 `glaciersync -c FILE init`)",
                path.display()
            )));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// [`parse`] with the environment given: reads the INI layer, checks every section's keys, then
/// builds each profile.
fn parse_with(text: &str, file: &Path, env: Env<'_>) -> Result<Settings> {
    let sections = parse_ini(text, file)?;
    let base = std::path::absolute(file)
        .ok()
        .and_then(|f| f.parent().map(Path::to_path_buf))
        .or_else(|| file.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let ctx = Ctx { file, base, env };
    for s in &sections {
        check_keys(s, file)?;
    }
    let global = sections.iter().find(|s| s.is_global());
    let mut profiles = Vec::new();
    for s in sections.iter().filter(|s| !s.is_global()) {
        profiles.push(build_profile(&ctx, global, s)?);
    }
    if profiles.is_empty() {
        return Err(ctx.err(
            0,
            "no profile: add a section such as [documents] with `path` and a backend \
             (`glaciersync -c FILE init` writes a sample)",
        ));
    }
    Ok(Settings {
        file: file.to_path_buf(),
        profiles,
    })
}

/// An [`Error::Settings`] at `file:line`.
fn settings_err(file: &Path, line: usize, message: impl Into<String>) -> Error {
    Error::Settings {
        file: file.to_path_buf(),
        line,
        message: message.into(),
    }
}
