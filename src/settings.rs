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

use crate::backend::aws::AwsOptions;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// One mebibyte.
const MIB: u64 = 1 << 20;
/// One gibibyte.
const GIB: u64 = 1 << 30;

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
/// The accepted values of `storage_class`.
pub const STORAGE_CLASSES: &[&str] = &[
    "DEEP_ARCHIVE",
    "GLACIER",
    "GLACIER_IR",
    "STANDARD_IA",
    "STANDARD",
];

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
        match self {
            BackendSettings::Local { .. } => "local",
            BackendSettings::S3 { .. } => "s3",
            BackendSettings::Glacier { .. } => "glacier",
        }
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
    use std::io::Write;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
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
                 `glaciersync init FILE`)",
                path.display()
            )));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if let Err(e) = f.write_all(SAMPLE.as_bytes()).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// The commented sample settings file that `glaciersync init` writes. It parses as is.
pub const SAMPLE: &str = r##"# glaciersync settings
#
# Written by `glaciersync init`. Lines starting with # or ; are comments.
# `key = value` and `key: value` both work; keys are case-insensitive; values are
# taken as written (no quotes needed around paths with spaces).
# An indented line continues the value above it (that is how `exclude` lists patterns).
# Relative paths are relative to this file's directory; ~/ is your home directory.
# Sizes are bytes, or take a binary suffix: 64MiB = 64M = 64MB = 67108864.
#
# Try `glaciersync sync --dry-run`, then `glaciersync sync`.

[global]
# Settings here apply to every profile; a profile may set any of them too, and wins.

# AWS credentials. Default: the standard AWS chain (environment variables,
# ~/.aws/credentials, SSO, instance roles), which is better than keys in this file.
# aws_access_key = AKIAXXXXXXXXXXXXXXXX
# aws_secret_key = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx

# Profile in the AWS shared files (~/.aws/config, ~/.aws/credentials). Default: default
# aws_profile = default

# AWS region. Default: the AWS chain's, else us-east-1
# aws_region_name = us-east-1

# Another endpoint: an S3- or Glacier-compatible server. Default: AWS
# endpoint_url = http://127.0.0.1:9000

# Where the catalogs (<profile>.sqlite3) live.
# Default: $XDG_DATA_HOME/glaciersync, else ~/.local/share/glaciersync
# database_dir = ~/.local/share/glaciersync

# Uploads and downloads in flight, 1 to 64. Default: 4
# concurrency = 4

# Also accepted here, as defaults for every profile: backend, bucket, storage_class,
# archive_byte_size_threshold, part_size, exclude (described below).


# One section per profile: a set of trees backed up to one place. The section name
# names the profile (`glaciersync -p documents ...`) and its catalog (documents.sqlite3).
[documents]
# Where the backup goes: glacier (a Glacier vault), s3 (an S3 bucket) or local (a
# directory). Default: glacier when vault_name is set, else local.
backend = local

# The local backend's directory: another disk, a NAS mount, ... Required for local.
local_dir = ~/glaciersync-store

# The trees to back up: path, path2, path3, ... (at least one). The key names the tree
# in `ls` and restores (path/report.pdf), so keep a tree's key when you edit this list.
path = ~/Documents
# path2 = ~/Pictures

# Files up to this size are packed together into tar bundles; a bundle is closed once
# it passes this size. Default: 16777216 (16MiB)
# archive_byte_size_threshold = 16MiB

# Multipart part size for large files. Default: 64MiB
# Glacier: 1MiB times a power of two (1MiB, 2MiB, 4MiB, ...) up to 4GiB. S3: 5MiB to 5GiB.
# part_size = 64MiB

# gitignore-style patterns of files to leave out, one per indented line. Default: none
exclude =
    *.tmp
    .cache/
    Thumbs.db


# An S3 profile (remove the leading "# " to use it). Data goes to `storage_class`;
# the catalog's backup is kept in STANDARD so that `recover` needs no thaw.
# [photos]
# backend = s3
# # The bucket must exist. Required for s3.
# bucket = my-backup-bucket
# # Key prefix. Default: the profile name and a slash (photos/)
# prefix = photos/
# # DEEP_ARCHIVE, GLACIER, GLACIER_IR, STANDARD_IA or STANDARD. Default: DEEP_ARCHIVE
# storage_class = DEEP_ARCHIVE
# path = ~/Pictures
# path2 = ~/Videos
# exclude =
#     *.tmp

# A Glacier vault profile (the vault API): the vault is created when missing. Vault
# names are 1 to 255 of a-z, A-Z, 0-9, _ . and -. AWS stopped letting new customers
# create vaults on 2025-12-15; existing vaults keep working.
# [archive]
# vault_name = my-archive
# aws_region_name = eu-west-1
# path = ~/Archive
# part_size = 128MiB
"##;

// ---------------------------------------------------------------------------------------------
// Environment

/// Looks up an environment variable (tests pass their own).
type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

fn real_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// A variable's value when set and not empty.
fn var(env: Env<'_>, name: &str) -> Option<OsString> {
    env(name).filter(|v| !v.is_empty())
}

/// An XDG base directory variable: only absolute values count (as the XDG spec says).
fn xdg_dir(env: Env<'_>, name: &str) -> Option<PathBuf> {
    var(env, name)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn home_dir(env: Env<'_>) -> Option<PathBuf> {
    var(env, "HOME")
        .or_else(|| {
            if cfg!(windows) {
                var(env, "USERPROFILE")
            } else {
                None
            }
        })
        .map(PathBuf::from)
}

fn windows_app_data(env: Env<'_>) -> Option<PathBuf> {
    if cfg!(windows) {
        var(env, "APPDATA").map(PathBuf::from)
    } else {
        None
    }
}

fn default_path_with(env: Env<'_>) -> PathBuf {
    if let Some(p) = var(env, "GLACIERSYNC_CONFIG") {
        return PathBuf::from(p);
    }
    let config_dir = xdg_dir(env, "XDG_CONFIG_HOME")
        .or_else(|| windows_app_data(env))
        .or_else(|| home_dir(env).map(|h| h.join(".config")))
        // No home at all: a path relative to the working directory, shaped as usual.
        .unwrap_or_else(|| PathBuf::from(".config"));
    config_dir.join("glaciersync").join("settings.ini")
}

/// The platform data directory for catalogs, when one is known.
fn default_database_dir(env: Env<'_>) -> Option<PathBuf> {
    xdg_dir(env, "XDG_DATA_HOME")
        .or_else(|| windows_app_data(env))
        .or_else(|| home_dir(env).map(|h| h.join(".local").join("share")))
        .map(|d| d.join("glaciersync"))
}

// ---------------------------------------------------------------------------------------------
// The INI layer

fn settings_err(file: &Path, line: usize, message: impl Into<String>) -> Error {
    Error::Settings {
        file: file.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// One `key = value`, with the continuation lines that followed it.
#[derive(Debug)]
struct Entry {
    /// Lowercased.
    key: String,
    line: usize,
    value: String,
    /// `(line, trimmed text)` of each continuation line.
    more: Vec<(usize, String)>,
}

#[derive(Debug)]
struct Section {
    name: String,
    line: usize,
    entries: Vec<Entry>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn is_global(&self) -> bool {
        self.name == GLOBAL
    }
}

const GLOBAL: &str = "global";

/// Splits the text into sections and entries, configparser style (see the module docs).
fn parse_ini(text: &str, file: &Path) -> Result<Vec<Section>> {
    let err = |line: usize, msg: String| settings_err(file, line, msg);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<Section> = Vec::new();
    // Indentation of the last key line in the current section, while a key can be continued.
    let mut key_indent: Option<usize> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        if let Some(ki) = key_indent
            && indent > ki
            && let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut())
        {
            entry.more.push((line, trimmed.to_string()));
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(
                    line,
                    "a section header must be `[name]` on a line of its own".to_string(),
                ));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(err(
                    line,
                    "empty section name `[]`: name the profile".into(),
                ));
            }
            if let Some(prev) = sections.iter().find(|s| s.name == name) {
                return Err(err(
                    line,
                    format!(
                        "section [{name}] appears twice (first at line {}): merge the two",
                        prev.line
                    ),
                ));
            }
            sections.push(Section {
                name: name.to_string(),
                line,
                entries: Vec::new(),
            });
            key_indent = None;
            continue;
        }
        // The line's text is not echoed from here on: it may hold a secret.
        let Some(pos) = trimmed.find(['=', ':']) else {
            return Err(err(
                line,
                "this line is not a `[section]`, a `key = value`, a comment (# or ;) or an \
                 indented continuation of the value above: fix or remove it"
                    .into(),
            ));
        };
        let key = trimmed[..pos].trim().to_lowercase();
        let value = trimmed[pos + 1..].trim();
        if key.is_empty() {
            return Err(err(
                line,
                "a value without a key: write `key = value`".into(),
            ));
        }
        let Some(section) = sections.last_mut() else {
            return Err(err(
                line,
                format!(
                    "`{key}` comes before any section: put it under [global] or under a \
                     profile's [name]"
                ),
            ));
        };
        if let Some(prev) = section.get(&key) {
            return Err(err(
                line,
                format!(
                    "`{key}` is set twice in [{}] (first at line {}): keep one",
                    section.name, prev.line
                ),
            ));
        }
        section.entries.push(Entry {
            key,
            line,
            value: value.to_string(),
            more: Vec::new(),
        });
        key_indent = Some(indent);
    }
    Ok(sections)
}

// ---------------------------------------------------------------------------------------------
// Keys

/// Keys allowed in `[global]` (and in profiles, where they win).
const GLOBAL_KEYS: &[&str] = &[
    "aws_access_key",
    "aws_secret_key",
    "aws_profile",
    "aws_region_name",
    "endpoint_url",
    "database_dir",
    "concurrency",
    "backend",
    "storage_class",
    "archive_byte_size_threshold",
    "part_size",
    "exclude",
    "bucket",
];

/// Keys allowed only in profile sections (besides `path2`, `path3`, …).
const PROFILE_KEYS: &[&str] = &["vault_name", "prefix", "local_dir", "path"];

/// Keys whose values are never echoed.
const SECRET_KEYS: &[&str] = &["aws_access_key", "aws_secret_key"];

/// The number of a tree key: `path` → 1, `path2` → 2, … (no leading zeros, no `path1`).
fn tree_number(key: &str) -> Option<u32> {
    if key == "path" {
        return Some(1);
    }
    let digits = key.strip_prefix("path")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    digits.parse().ok().filter(|&n| n >= 2)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Checks every key of a section; the message says what to do.
fn check_keys(section: &Section, file: &Path) -> Result<()> {
    for e in &section.entries {
        let key = e.key.as_str();
        let global_ok = GLOBAL_KEYS.contains(&key);
        let profile_only = PROFILE_KEYS.contains(&key) || tree_number(key).is_some();
        let msg = if section.is_global() {
            if global_ok {
                continue;
            }
            if profile_only {
                format!("`{key}` belongs in a profile's section, not in [global]: move it there")
            } else {
                unknown_key_message(key, &section.name)
            }
        } else {
            if global_ok || profile_only {
                continue;
            }
            unknown_key_message(key, &section.name)
        };
        return Err(settings_err(file, e.line, msg));
    }
    Ok(())
}

fn unknown_key_message(key: &str, section: &str) -> String {
    let mut msg = format!("unknown key `{key}` in [{section}]");
    if key.starts_with("path") {
        msg.push_str(
            ": trees are named `path`, `path2`, `path3`, … (no `path1`, no leading zeros)",
        );
        return msg;
    }
    let best = GLOBAL_KEYS
        .iter()
        .chain(PROFILE_KEYS)
        .map(|k| (edit_distance(key, k), *k))
        .min();
    match best {
        Some((d, k)) if d <= 2 => msg.push_str(&format!(": did you mean `{k}`?")),
        _ => {
            msg.push_str(": remove it (`glaciersync init FILE` writes a sample listing every key)")
        }
    }
    msg
}

// ---------------------------------------------------------------------------------------------
// Profiles

/// A looked-up value: where it came from.
struct Val<'a> {
    entry: &'a Entry,
    section: &'a Section,
}

impl Val<'_> {
    fn line(&self) -> usize {
        self.entry.line
    }
}

struct Ctx<'a> {
    file: &'a Path,
    /// The settings file's directory, made absolute.
    base: PathBuf,
    env: Env<'a>,
}

impl Ctx<'_> {
    fn err(&self, line: usize, msg: impl Into<String>) -> Error {
        settings_err(self.file, line, msg)
    }

    /// The value of a one-line key: refuses continuation lines and (unless `allow_empty`)
    /// empty values.
    fn single<'v>(&self, v: &Val<'v>, allow_empty: bool) -> Result<&'v str> {
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
    fn shown(&self, v: &Val<'_>) -> String {
        if SECRET_KEYS.contains(&v.entry.key.as_str()) {
            "(value hidden)".to_string()
        } else {
            format!("`{}`", v.entry.value)
        }
    }

    /// Resolves a path value (see [`Tree::root`]).
    fn path(&self, v: &Val<'_>) -> Result<PathBuf> {
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

    fn size(&self, v: &Val<'_>) -> Result<u64> {
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

    fn where_from(&self, v: &Val<'_>, profile: &Section) -> String {
        if v.section.is_global() {
            format!(" (from [global], for profile [{}])", profile.name)
        } else {
            String::new()
        }
    }
}

/// `C:\…`, `c:/…`, `C:` and UNC `\\server\…` paths: kept verbatim on every platform.
fn is_windows_absolute(value: &str) -> bool {
    let b = value.as_bytes();
    let drive = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1] == b':'
        && (b.len() == 2 || b[2] == b'\\' || b[2] == b'/');
    drive || value.starts_with("\\\\")
}

/// Drops `.` components (never `..`: symlinks make that unsafe to fold).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        if c != Component::CurDir {
            out.push(c.as_os_str());
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Plain bytes or a number with a binary suffix (`K`, `KB`, `KiB`, `M`, …, `G`, …; optional
/// space; case-insensitive; `B` alone means bytes).
fn parse_size(value: &str) -> Result<u64, &'static str> {
    let value = value.trim();
    let end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    if end == 0 {
        return Err("not a number");
    }
    let suffix = value[end..].trim_start().to_ascii_lowercase();
    let mult: u64 = match suffix.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err("not a number"),
    };
    value[..end]
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or("too large")
}

fn human(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{}GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{}MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn valid_vault_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

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
             (`glaciersync init FILE` writes a sample)",
        ));
    }
    Ok(Settings {
        file: file.to_path_buf(),
        profiles,
    })
}

fn check_profile_name(ctx: &Ctx<'_>, s: &Section) -> Result<()> {
    let name = &s.name;
    let bad = name == "."
        || name == ".."
        || name.starts_with('.')
        || name.chars().any(|c| {
            c.is_control() || matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        });
    if bad {
        return Err(ctx.err(
            s.line,
            format!(
                "profile name [{name}] cannot name its catalog file: use letters, digits, \
                 spaces, `_`, `-` and `.` (not first)"
            ),
        ));
    }
    Ok(())
}

fn build_profile(ctx: &Ctx<'_>, global: Option<&Section>, sec: &Section) -> Result<Profile> {
    check_profile_name(ctx, sec)?;
    let name = sec.name.as_str();
    let get = |key: &str| -> Option<Val<'_>> {
        sec.get(key)
            .map(|entry| Val {
                entry,
                section: sec,
            })
            .or_else(|| global.and_then(|g| g.get(key).map(|entry| Val { entry, section: g })))
    };
    let opt_str = |key: &str| -> Result<Option<String>> {
        get(key)
            .map(|v| ctx.single(&v, false).map(str::to_string))
            .transpose()
    };

    // Backend kind.
    let explicit_backend = match get("backend") {
        Some(v) => {
            let value = ctx.single(&v, false)?.to_ascii_lowercase();
            match value.as_str() {
                "glacier" | "s3" | "local" => Some(value),
                _ => {
                    return Err(ctx.err(
                        v.line(),
                        format!(
                            "`backend` = {}{}: use glacier, s3 or local",
                            ctx.shown(&v),
                            ctx.where_from(&v, sec)
                        ),
                    ));
                }
            }
        }
        None => None,
    };
    let kind = explicit_backend.clone().unwrap_or_else(|| {
        if sec.get("vault_name").is_some() {
            "glacier".to_string()
        } else {
            "local".to_string()
        }
    });

    // AWS connection.
    let access_key = get("aws_access_key");
    let secret_key = get("aws_secret_key");
    match (&access_key, &secret_key) {
        (Some(v), None) | (None, Some(v)) => {
            let (set, missing) = if v.entry.key == "aws_access_key" {
                ("aws_access_key", "aws_secret_key")
            } else {
                ("aws_secret_key", "aws_access_key")
            };
            return Err(ctx.err(
                v.line(),
                format!(
                    "`{set}` is set but `{missing}` is not{}: set both, or neither to use the \
                     AWS chain",
                    ctx.where_from(v, sec)
                ),
            ));
        }
        _ => {}
    }
    let endpoint_url = match get("endpoint_url") {
        Some(v) => {
            let url = ctx.single(&v, false)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ctx.err(
                    v.line(),
                    format!(
                        "`endpoint_url` = {}: write a URL starting with http:// or https://",
                        ctx.shown(&v)
                    ),
                ));
            }
            Some(url.to_string())
        }
        None => None,
    };
    let aws = AwsOptions {
        region: opt_str("aws_region_name")?,
        endpoint_url,
        access_key: access_key
            .map(|v| ctx.single(&v, false).map(str::to_string))
            .transpose()?,
        secret_key: secret_key
            .map(|v| ctx.single(&v, false).map(str::to_string))
            .transpose()?,
        profile: opt_str("aws_profile")?,
    };

    // Catalog location.
    let database_dir = match get("database_dir") {
        Some(v) => ctx.path(&v)?,
        None => default_database_dir(ctx.env).ok_or_else(|| {
            ctx.err(
                sec.line,
                format!(
                    "profile [{name}]: no data directory is known for catalogs (HOME and \
                     XDG_DATA_HOME are not set): set `database_dir` in [global]"
                ),
            )
        })?,
    };

    // Numbers.
    let concurrency = match get("concurrency") {
        Some(v) => {
            let value = ctx.single(&v, false)?;
            let n: usize = value.parse().map_err(|_| {
                ctx.err(
                    v.line(),
                    format!(
                        "`concurrency` = {}: not a whole number: write 1 to {MAX_CONCURRENCY}",
                        ctx.shown(&v)
                    ),
                )
            })?;
            if !(1..=MAX_CONCURRENCY).contains(&n) {
                return Err(ctx.err(
                    v.line(),
                    format!("`concurrency` = {n}: write 1 to {MAX_CONCURRENCY}"),
                ));
            }
            n
        }
        None => DEFAULT_CONCURRENCY,
    };
    let archive_byte_size_threshold = match get("archive_byte_size_threshold") {
        Some(v) => {
            let n = ctx.size(&v)?;
            if n == 0 {
                return Err(ctx.err(
                    v.line(),
                    "`archive_byte_size_threshold` = 0: it must be at least 1 byte (default \
                     16MiB)",
                ));
            }
            n
        }
        None => DEFAULT_ARCHIVE_BYTE_SIZE_THRESHOLD,
    };
    let part_size_val = get("part_size");
    let part_size = match &part_size_val {
        Some(v) => ctx.size(v)?,
        None => DEFAULT_PART_SIZE,
    };
    let storage_class = match get("storage_class") {
        Some(v) => {
            let value = ctx.single(&v, false)?.to_ascii_uppercase();
            if !STORAGE_CLASSES.contains(&value.as_str()) {
                return Err(ctx.err(
                    v.line(),
                    format!(
                        "`storage_class` = {}: use one of {}",
                        ctx.shown(&v),
                        STORAGE_CLASSES.join(", ")
                    ),
                ));
            }
            value
        }
        None => DEFAULT_STORAGE_CLASS.to_string(),
    };

    // Exclusions: one pattern a line, each checked to compile.
    let exclude = match get("exclude") {
        Some(v) => {
            let mut patterns = Vec::new();
            let lines = std::iter::once((v.entry.line, v.entry.value.as_str()))
                .chain(v.entry.more.iter().map(|(l, t)| (*l, t.as_str())));
            for (line, pat) in lines {
                let pat = pat.trim();
                if pat.is_empty() {
                    continue;
                }
                let mut builder = ignore::gitignore::GitignoreBuilder::new("/");
                if let Err(e) = builder.add_line(None, pat) {
                    return Err(
                        ctx.err(line, format!("`exclude` has a bad gitignore pattern: {e}"))
                    );
                }
                patterns.push(pat.to_string());
            }
            patterns
        }
        None => Vec::new(),
    };

    // Trees.
    let mut numbered: Vec<(u32, &Entry)> = sec
        .entries
        .iter()
        .filter_map(|e| tree_number(&e.key).map(|n| (n, e)))
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    if numbered.is_empty() {
        return Err(ctx.err(
            sec.line,
            format!("profile [{name}] has no tree to back up: add `path = <directory>`"),
        ));
    }
    let mut trees: Vec<Tree> = Vec::new();
    for (_, entry) in numbered {
        let v = Val {
            entry,
            section: sec,
        };
        let root = ctx.path(&v)?;
        if let Some(prev) = trees.iter().find(|t| t.root == root) {
            return Err(ctx.err(
                entry.line,
                format!(
                    "`{}` names the same directory as `{}` (line {}): remove one",
                    entry.key, prev.key, prev.line
                ),
            ));
        }
        trees.push(Tree {
            key: entry.key.clone(),
            root,
            line: entry.line,
        });
    }

    // The backend and its required keys.
    let missing = |key: &str, example: &str| {
        ctx.err(
            sec.line,
            format!(
                "profile [{name}] uses backend {kind} but has no `{key}`: add `{key} = {example}`"
            ),
        )
    };
    let backend = match kind.as_str() {
        "glacier" => {
            let v = sec.get("vault_name").map(|entry| Val {
                entry,
                section: sec,
            });
            let Some(v) = v else {
                return Err(missing("vault_name", "<vault>"));
            };
            let vault = ctx.single(&v, false)?;
            if !valid_vault_name(vault) {
                return Err(ctx.err(
                    v.line(),
                    format!(
                        "`vault_name` = {}: a vault name is 1 to 255 of a-z, A-Z, 0-9, `_`, `.` \
                         and `-`",
                        ctx.shown(&v)
                    ),
                ));
            }
            BackendSettings::Glacier {
                vault: vault.to_string(),
            }
        }
        "s3" => {
            let Some(v) = get("bucket") else {
                return Err(missing("bucket", "<bucket>"));
            };
            let bucket = ctx.single(&v, false)?;
            if bucket.contains(['/', '\\']) || bucket.chars().any(char::is_whitespace) {
                return Err(ctx.err(
                    v.line(),
                    format!(
                        "`bucket` = {}: write the bare bucket name (no s3://, no slashes; put a \
                         key prefix in `prefix`)",
                        ctx.shown(&v)
                    ),
                ));
            }
            let prefix = match sec.get("prefix") {
                Some(entry) => {
                    let v = Val {
                        entry,
                        section: sec,
                    };
                    ctx.single(&v, true)?.to_string()
                }
                None => name.to_string(),
            };
            let prefix = if prefix.is_empty() || prefix.ends_with('/') {
                prefix
            } else {
                format!("{prefix}/")
            };
            BackendSettings::S3 {
                bucket: bucket.to_string(),
                prefix,
                storage_class,
            }
        }
        _ => {
            let Some(v) = sec.get("local_dir").map(|entry| Val {
                entry,
                section: sec,
            }) else {
                if explicit_backend.is_none() {
                    return Err(ctx.err(
                        sec.line,
                        format!(
                            "profile [{name}] has no backend: add `local_dir = <directory>` (local \
                             backend), `vault_name = <vault>` (Glacier) or `backend = s3` with \
                             `bucket = <bucket>`"
                        ),
                    ));
                }
                return Err(missing("local_dir", "<directory>"));
            };
            BackendSettings::Local { dir: ctx.path(&v)? }
        }
    };

    // Part size rules of the backend.
    let part_rule = match &backend {
        BackendSettings::Glacier { .. } => {
            let ok = part_size.is_multiple_of(MIB)
                && (part_size / MIB).is_power_of_two()
                && (MIB..=4 * GIB).contains(&part_size);
            (!ok).then_some(
                "Glacier parts are 1MiB times a power of two (1MiB, 2MiB, 4MiB, …, 4GiB), e.g. \
                 64MiB",
            )
        }
        BackendSettings::S3 { .. } => (!(5 * MIB..=5 * GIB).contains(&part_size))
            .then_some("S3 parts are 5MiB to 5GiB, e.g. 64MiB"),
        BackendSettings::Local { .. } => {
            (part_size == 0).then_some("it must be at least 1 byte, e.g. 64MiB")
        }
    };
    if let (Some(rule), Some(v)) = (part_rule, &part_size_val) {
        return Err(ctx.err(
            v.line(),
            format!(
                "`part_size` = {} ({}){}: {rule}",
                ctx.shown(v),
                human(part_size),
                ctx.where_from(v, sec)
            ),
        ));
    }

    Ok(Profile {
        name: name.to_string(),
        line: sec.line,
        backend,
        aws,
        database_dir,
        concurrency,
        trees,
        archive_byte_size_threshold,
        exclude,
        part_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "[global]
aws_access_key: TheAccessKey
aws_secret_key: TheSecretKey
aws_region_name: us-east-1
database_dir: /path/to/dbdir
[pictures]
vault_name: pictures
archive_byte_size_threshold: 1000000
path: C:\\Users\\user\\Pictures
path2: C:\\Users\\user\\MyPictures
path3: c:\\pics
";

    const FILE: &str = "/etc/gs/settings.ini";

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn home_env() -> impl Fn(&str) -> Option<OsString> {
        env_of(&[("HOME", "/home/u")])
    }

    fn ok(text: &str) -> Settings {
        match parse_with(text, Path::new(FILE), &home_env()) {
            Ok(s) => s,
            Err(e) => panic!("expected to parse, got: {e}\n{text}"),
        }
    }

    fn err(text: &str) -> String {
        match parse_with(text, Path::new(FILE), &home_env()) {
            Ok(s) => panic!("expected an error, got {s:?}\n{text}"),
            Err(e) => {
                assert!(matches!(e, Error::Settings { .. }), "{e:?}");
                e.to_string()
            }
        }
    }

    fn one(text: &str) -> Profile {
        let mut s = ok(text);
        assert_eq!(s.profiles.len(), 1);
        s.profiles.remove(0)
    }

    fn assert_contains(text: &str, parts: &[&str]) {
        for p in parts {
            assert!(text.contains(p), "{text:?} should contain {p:?}");
        }
    }

    #[test]
    fn seed_file_of_the_original_script_loads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.ini");
        std::fs::write(&file, SEED).unwrap();
        let s = load(&file).unwrap();
        assert_eq!(s.file, file);
        assert_eq!(s.profiles.len(), 1);
        let p = &s.profiles[0];
        assert_eq!(p.name, "pictures");
        assert_eq!(p.line, 6);
        assert_eq!(
            p.backend,
            BackendSettings::Glacier {
                vault: "pictures".into()
            }
        );
        assert_eq!(p.backend.kind(), "glacier");
        assert_eq!(p.archive_byte_size_threshold, 1_000_000);
        let trees: Vec<(&str, PathBuf, usize)> = p
            .trees
            .iter()
            .map(|t| (t.key.as_str(), t.root.clone(), t.line))
            .collect();
        assert_eq!(
            trees,
            vec![
                ("path", PathBuf::from(r"C:\Users\user\Pictures"), 9),
                ("path2", PathBuf::from(r"C:\Users\user\MyPictures"), 10),
                ("path3", PathBuf::from(r"c:\pics"), 11),
            ]
        );
        assert_eq!(p.aws.access_key.as_deref(), Some("TheAccessKey"));
        assert_eq!(p.aws.secret_key.as_deref(), Some("TheSecretKey"));
        assert_eq!(p.aws.region.as_deref(), Some("us-east-1"));
        assert_eq!(p.aws.endpoint_url, None);
        assert_eq!(p.aws.profile, None);
        assert_eq!(p.database_dir, PathBuf::from("/path/to/dbdir"));
        assert_eq!(
            p.catalog_path(),
            PathBuf::from("/path/to/dbdir/pictures.sqlite3")
        );
        assert_eq!(p.concurrency, 4);
        assert_eq!(p.part_size, 64 * MIB);
        assert!(p.exclude.is_empty());
    }

    #[test]
    fn both_delimiters_comments_blank_lines_and_case_insensitive_keys() {
        let p = one("# leading comment\n\
             ; another\n\
             \n\
             [global]\n\
             CONCURRENCY = 8\n\
             \n\
             [docs]\n\
             \t# indented comment\n\
             Local_Dir: /store\n\
             path = /home/u/docs\n\
             path2:/home/u/more\n\
             archive_byte_size_threshold=42\n");
        assert_eq!(p.concurrency, 8);
        assert_eq!(
            p.backend,
            BackendSettings::Local {
                dir: "/store".into()
            }
        );
        assert_eq!(p.trees[0].root, PathBuf::from("/home/u/docs"));
        assert_eq!(p.trees[1].root, PathBuf::from("/home/u/more"));
        assert_eq!(p.archive_byte_size_threshold, 42);
        // The first `=` or `:` splits; the rest belongs to the value.
        let p = one("[p]\nlocal_dir = /s\npath = /a=b:c\n");
        assert_eq!(p.trees[0].root, PathBuf::from("/a=b:c"));
    }

    #[test]
    fn crlf_and_byte_order_mark() {
        let p = one("\u{feff}[p]\r\nlocal_dir = /s\r\npath = /a\r\nexclude =\r\n  *.tmp\r\n");
        assert_eq!(p.trees[0].root, PathBuf::from("/a"));
        assert_eq!(p.exclude, vec!["*.tmp"]);
    }

    #[test]
    fn exclude_continuation_lines() {
        let text = "[global]\nexclude = *.bak\n\n[p]\nlocal_dir = /s\nexclude =\n    *.tmp\n\n    # a comment\n\tnode_modules/\n    !keep.tmp\npath = /a\n";
        let p = one(text);
        assert_eq!(p.exclude, vec!["*.tmp", "node_modules/", "!keep.tmp"]);
        // The first pattern may sit on the key's line.
        let p = one("[p]\nlocal_dir = /s\npath = /a\nexclude = *.o\n  *.a\n");
        assert_eq!(p.exclude, vec!["*.o", "*.a"]);
        // A bad pattern is named with its own line.
        let e = err("[p]\nlocal_dir = /s\npath = /a\nexclude =\n  *.o\n  {a,b\n");
        assert_contains(&e, &[FILE, ":6:", "exclude", "{a,b"]);
    }

    #[test]
    fn continuation_of_a_one_line_key_is_an_error() {
        let e = err("[p]\nlocal_dir = /s\npath = /a\n  path2 = /b\n");
        assert_contains(&e, &[":4:", "`path`", "line 3", "indentation"]);
        // An indented key right after a section header is just a key.
        let p = one("[p]\n  local_dir = /s\n  path = /a\n");
        assert_eq!(p.trees.len(), 1);
    }

    #[test]
    fn profile_values_win_over_global() {
        let text = "[global]\n\
            aws_region_name = us-east-1\n\
            concurrency = 2\n\
            storage_class = glacier\n\
            bucket = shared\n\
            backend = s3\n\
            exclude = *.bak\n\
            part_size = 16MiB\n\
            [a]\n\
            aws_region_name = eu-west-1\n\
            concurrency = 9\n\
            storage_class = standard_ia\n\
            exclude = *.tmp\n\
            path = /a\n\
            [b]\n\
            path = /b\n";
        let s = ok(text);
        let (a, b) = (&s.profiles[0], &s.profiles[1]);
        assert_eq!(a.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(a.concurrency, 9);
        assert_eq!(a.exclude, vec!["*.tmp"]);
        assert_eq!(
            a.backend,
            BackendSettings::S3 {
                bucket: "shared".into(),
                prefix: "a/".into(),
                storage_class: "STANDARD_IA".into()
            }
        );
        assert_eq!(b.aws.region.as_deref(), Some("us-east-1"));
        assert_eq!(b.concurrency, 2);
        assert_eq!(b.exclude, vec!["*.bak"]);
        assert_eq!(b.part_size, 16 * MIB);
        assert_eq!(
            b.backend,
            BackendSettings::S3 {
                bucket: "shared".into(),
                prefix: "b/".into(),
                storage_class: "GLACIER".into()
            }
        );
    }

    #[test]
    fn global_section_is_optional_and_defaults_apply() {
        let p = one("[docs]\nlocal_dir = /s\npath = /d\n");
        assert_eq!(p.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(
            p.archive_byte_size_threshold,
            DEFAULT_ARCHIVE_BYTE_SIZE_THRESHOLD
        );
        assert_eq!(p.part_size, DEFAULT_PART_SIZE);
        assert_eq!(
            p.database_dir,
            PathBuf::from("/home/u/.local/share/glaciersync")
        );
        assert_eq!(
            p.catalog_path(),
            PathBuf::from("/home/u/.local/share/glaciersync/docs.sqlite3")
        );
        assert!(p.aws.access_key.is_none() && p.aws.region.is_none());
    }

    #[test]
    fn default_database_dir_follows_xdg_data_home() {
        let env = env_of(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "/xdg/data")]);
        let s = parse_with("[d]\nlocal_dir=/s\npath=/d\n", Path::new(FILE), &env).unwrap();
        assert_eq!(
            s.profiles[0].database_dir,
            PathBuf::from("/xdg/data/glaciersync")
        );
        // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
        let env = env_of(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "rel")]);
        let s = parse_with("[d]\nlocal_dir=/s\npath=/d\n", Path::new(FILE), &env).unwrap();
        assert_eq!(
            s.profiles[0].database_dir,
            PathBuf::from("/home/u/.local/share/glaciersync")
        );
        // No data directory known at all: say to set database_dir.
        let e = parse_with(
            "[d]\nlocal_dir=/s\npath=/d\n",
            Path::new(FILE),
            &env_of(&[]),
        )
        .unwrap_err()
        .to_string();
        assert_contains(&e, &[":1:", "database_dir"]);
    }

    #[test]
    fn unknown_key_names_file_line_key_and_section() {
        let e =
            err("[global]\nconcurrency = 2\n[p]\nlocal_dir = /s\npath = /a\nfrobnicate = yes\n");
        assert!(e.starts_with(&format!("{FILE}:6: ")), "{e}");
        assert_contains(&e, &["`frobnicate`", "[p]"]);
        let e = err("[global]\nvalut_name = x\n");
        assert_contains(&e, &[":2:", "`valut_name`", "[global]"]);
        let e = err("[p]\nlocal_dir = /s\nvaultname = x\npath = /a\n");
        assert_contains(&e, &[":3:", "vaultname", "did you mean `vault_name`"]);
        let e = err("[p]\nlocal_dir = /s\npath1 = /a\n");
        assert_contains(&e, &[":3:", "`path1`", "`path2`"]);
        let e = err("[p]\nlocal_dir = /s\npath = /a\npath02 = /b\n");
        assert_contains(&e, &[":4:", "`path02`"]);
        // Profile-only keys are refused in [global], saying where they go.
        let e = err("[global]\npath = /a\n[p]\nlocal_dir = /s\npath = /b\n");
        assert_contains(&e, &[":2:", "`path`", "profile"]);
        let e = err("[global]\nvault_name = v\n");
        assert_contains(&e, &[":2:", "`vault_name`", "[global]"]);
    }

    #[test]
    fn duplicate_keys_and_sections() {
        let e = err("[p]\nlocal_dir = /s\npath = /a\nPATH = /b\n");
        assert_contains(&e, &[":4:", "`path`", "twice", "line 3", "[p]"]);
        let e = err("[global]\nconcurrency = 1\nconcurrency = 2\n");
        assert_contains(&e, &[":3:", "`concurrency`", "[global]"]);
        let e = err("[p]\nlocal_dir = /s\npath = /a\n[q]\npath = /q\n[p]\npath = /b\n");
        assert_contains(&e, &[":6:", "[p]", "twice", "line 1"]);
        // The same key in two sections is fine.
        let s = ok("[p]\nlocal_dir = /s\npath = /a\n[q]\nlocal_dir = /s\npath = /a\n");
        assert_eq!(s.profiles.len(), 2);
    }

    #[test]
    fn lines_that_are_neither() {
        let e = err("[p]\nlocal_dir = /s\npath = /a\njust some words\n");
        assert!(e.starts_with(&format!("{FILE}:4: ")), "{e}");
        let e = err("concurrency = 3\n[p]\n");
        assert_contains(&e, &[":1:", "`concurrency`", "section"]);
        let e = err("[p\nlocal_dir = /s\n");
        assert_contains(&e, &[":1:", "section"]);
        let e = err("[]\n");
        assert_contains(&e, &[":1:", "section"]);
        let e = err("[p]\n= value\n");
        assert_contains(&e, &[":2:", "key"]);
    }

    #[test]
    fn trees_are_required_non_empty_ordered_and_distinct() {
        let e = err("[global]\nconcurrency = 2\n\n[pics]\nvault_name = v\n");
        assert_contains(&e, &[":4:", "[pics]", "`path"]);
        let e = err("[p]\nlocal_dir = /s\npath =\n");
        assert_contains(&e, &[":3:", "`path`", "no value"]);
        let e = err("[p]\nlocal_dir = /s\npath = /a\npath2 = /a\n");
        assert_contains(&e, &[":4:", "`path2`", "`path`"]);
        let e = err("[p]\nlocal_dir = /s\npath = \"/my docs\"\n");
        assert_contains(&e, &[":3:", "quote"]);
        // Numeric order whatever the file order; gaps are kept (a tree keeps its key).
        let p = one("[p]\nlocal_dir = /s\npath10 = /j\npath3 = /c\npath = /a\npath2 = /b\n");
        let keys: Vec<&str> = p.trees.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["path", "path2", "path3", "path10"]);
        assert_eq!(p.trees[3].root, PathBuf::from("/j"));
        assert_eq!(p.trees[3].line, 3);
    }

    #[test]
    fn no_profile_is_an_error() {
        let e = err("[global]\nconcurrency = 2\n");
        assert_contains(&e, &["no profile"]);
        let e = err("");
        assert_contains(&e, &["no profile"]);
    }

    #[test]
    fn numbers_and_sizes() {
        let e = err("[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = lots\n");
        assert!(e.starts_with(&format!("{FILE}:4: ")), "{e}");
        assert_contains(
            &e,
            &["`archive_byte_size_threshold`", "`lots`", "not a number"],
        );
        let e = err("[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = 1.5M\n");
        assert_contains(&e, &[":4:", "`1.5M`"]);
        let e = err("[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = 0\n");
        assert_contains(&e, &[":4:", "at least 1"]);
        let e =
            err("[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = 99999999999999G\n");
        assert_contains(&e, &[":4:", "too large"]);
        let e = err("[global]\nconcurrency = four\n[p]\nlocal_dir = /s\npath = /a\n");
        assert_contains(&e, &[":2:", "`concurrency`", "`four`"]);
        let e = err("[global]\nconcurrency = 0\n[p]\nlocal_dir = /s\npath = /a\n");
        assert_contains(&e, &[":2:", "`concurrency`", "1 to 64"]);
        let e = err("[global]\nconcurrency = 65\n[p]\nlocal_dir = /s\npath = /a\n");
        assert_contains(&e, &[":2:", "`concurrency`"]);
        assert_eq!(
            one("[global]\nconcurrency = 64\n[p]\nlocal_dir = /s\npath = /a\n").concurrency,
            64
        );
        // Sizes take binary suffixes; concurrency does not.
        let e = err("[global]\nconcurrency = 4K\n[p]\nlocal_dir = /s\npath = /a\n");
        assert_contains(&e, &[":2:", "`4K`"]);
        for (text, want) in [
            ("123", 123),
            ("1k", 1024),
            ("2 KB", 2048),
            ("3KiB", 3072),
            ("16M", 16 * MIB),
            ("16 mb", 16 * MIB),
            ("16MiB", 16 * MIB),
            ("1G", GIB),
            ("2gb", 2 * GIB),
            ("3 GiB", 3 * GIB),
            ("7B", 7),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text}");
            let p = one(&format!(
                "[p]\nlocal_dir = /s\npath = /a\narchive_byte_size_threshold = {text}\n"
            ));
            assert_eq!(p.archive_byte_size_threshold, want, "{text}");
        }
        for bad in ["", "M", "-1", "1 T", "1MiBs", "0x10", "1_000"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backend_selection_and_required_keys() {
        // vault_name alone means glacier; nothing means local; backend overrides.
        assert_eq!(
            one("[p]\nvault_name = v\npath = /a\n").backend.kind(),
            "glacier"
        );
        assert_eq!(
            one("[p]\nlocal_dir = /s\npath = /a\n").backend.kind(),
            "local"
        );
        let p = one("[p]\nbackend = S3\nvault_name = v\nbucket = b\npath = /a\n");
        assert_eq!(p.backend.kind(), "s3");
        let e = err("[p]\nbackend = tape\npath = /a\n");
        assert_contains(&e, &[":2:", "`backend`", "`tape`", "glacier, s3 or local"]);

        let e = err("[global]\nconcurrency = 1\n[pics]\nbackend = glacier\npath = /a\n");
        assert!(e.starts_with(&format!("{FILE}:3: ")), "{e}");
        assert_contains(&e, &["[pics]", "`vault_name`"]);
        let e = err("[global]\nconcurrency = 1\n[pics]\nbackend = s3\npath = /a\n");
        assert!(e.starts_with(&format!("{FILE}:3: ")), "{e}");
        assert_contains(&e, &["[pics]", "`bucket`"]);
        let e = err("[global]\nconcurrency = 1\n[pics]\nbackend = local\npath = /a\n");
        assert!(e.starts_with(&format!("{FILE}:3: ")), "{e}");
        assert_contains(&e, &["[pics]", "`local_dir`"]);
        // No backend keys at all: the message lists the choices.
        let e = err("[pics]\npath = /a\n");
        assert_contains(&e, &[":1:", "[pics]", "local_dir", "vault_name", "bucket"]);
    }

    #[test]
    fn vault_names_are_validated() {
        for good in ["v", "my-vault_1.x", &"a".repeat(255)] {
            let p = one(&format!("[p]\nvault_name = {good}\npath = /a\n"));
            assert_eq!(
                p.backend,
                BackendSettings::Glacier {
                    vault: good.to_string()
                }
            );
        }
        for bad in ["my vault", "vault/x", "vält", &"a".repeat(256)] {
            let e = err(&format!("[p]\npath = /a\nvault_name = {bad}\n"));
            assert_contains(&e, &[":3:", "`vault_name`", "1 to 255"]);
        }
    }

    #[test]
    fn storage_classes() {
        for class in STORAGE_CLASSES {
            let lower = class.to_lowercase();
            let p = one(&format!(
                "[p]\nbackend = s3\nbucket = b\nstorage_class = {lower}\npath = /a\n"
            ));
            let BackendSettings::S3 { storage_class, .. } = p.backend else {
                panic!()
            };
            assert_eq!(storage_class, *class);
        }
        let p = one("[p]\nbackend = s3\nbucket = b\npath = /a\n");
        let BackendSettings::S3 { storage_class, .. } = p.backend else {
            panic!()
        };
        assert_eq!(storage_class, "DEEP_ARCHIVE");
        let e =
            err("[p]\nbackend = s3\nbucket = b\nstorage_class = REDUCED_REDUNDANCY\npath = /a\n");
        assert_contains(
            &e,
            &[
                ":4:",
                "`storage_class`",
                "REDUCED_REDUNDANCY",
                "DEEP_ARCHIVE",
            ],
        );
    }

    #[test]
    fn s3_prefix_and_bucket() {
        let prefix_of = |text: &str| match one(text).backend {
            BackendSettings::S3 { prefix, .. } => prefix,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            prefix_of("[pics]\nbackend = s3\nbucket = b\npath = /a\n"),
            "pics/"
        );
        assert_eq!(
            prefix_of("[pics]\nbackend = s3\nbucket = b\nprefix = x/y\npath = /a\n"),
            "x/y/"
        );
        assert_eq!(
            prefix_of("[pics]\nbackend = s3\nbucket = b\nprefix = x/\npath = /a\n"),
            "x/"
        );
        assert_eq!(
            prefix_of("[pics]\nbackend = s3\nbucket = b\nprefix =\npath = /a\n"),
            ""
        );
        let e = err("[pics]\nbackend = s3\nbucket = s3://b/x\npath = /a\n");
        assert_contains(&e, &[":3:", "`bucket`", "bare bucket name"]);
    }

    #[test]
    fn part_size_rules() {
        let glacier = |ps: &str| format!("[p]\nvault_name = v\npath = /a\npart_size = {ps}\n");
        let s3 = |ps: &str| format!("[p]\nbackend = s3\nbucket = b\npath = /a\npart_size = {ps}\n");
        for good in ["1MiB", "2M", "128MiB", "4GiB", "1048576"] {
            assert!(one(&glacier(good)).part_size >= MIB, "{good}");
        }
        for bad in ["3MiB", "512K", "8GiB", "1000000", "0"] {
            let e = err(&glacier(bad));
            assert_contains(&e, &[":4:", "`part_size`", "Glacier", bad]);
        }
        for good in ["5MiB", "6M", "5GiB", "100000000"] {
            one(&s3(good));
        }
        for bad in ["4MiB", "6GiB", "1"] {
            let e = err(&s3(bad));
            assert_contains(&e, &[":5:", "`part_size`", "S3", bad]);
        }
        assert_eq!(
            one("[p]\nlocal_dir = /s\npath = /a\npart_size = 3MiB\n").part_size,
            3 * MIB
        );
        let e = err("[p]\nlocal_dir = /s\npath = /a\npart_size = 0\n");
        assert_contains(&e, &[":4:", "`part_size`"]);
        // A global value that does not suit one profile names its line and the profile.
        let e = err(
            "[global]\npart_size = 3MiB\n[loc]\nlocal_dir = /s\npath = /a\n[gl]\nvault_name = v\npath = /b\n",
        );
        assert_contains(&e, &[":2:", "`part_size`", "[global]", "[gl]"]);
    }

    #[test]
    fn relative_paths_resolve_against_the_settings_dir() {
        let text = "[global]\ndatabase_dir = db\n[p]\nlocal_dir = ../store\npath = docs\npath2 = ./x/./y\npath3 = /abs/./z\n";
        let p = one(text);
        assert_eq!(p.database_dir, PathBuf::from("/etc/gs/db"));
        assert_eq!(
            p.backend,
            BackendSettings::Local {
                dir: "/etc/gs/../store".into()
            }
        );
        assert_eq!(p.trees[0].root, PathBuf::from("/etc/gs/docs"));
        assert_eq!(p.trees[1].root, PathBuf::from("/etc/gs/x/y"));
        assert_eq!(p.trees[2].root, PathBuf::from("/abs/z"));
        // Windows-style absolute paths are kept verbatim, not joined.
        let p = one("[p]\nlocal_dir = \\\\nas\\share\\backup\npath = c:/Users/u\npath2 = D:\n");
        assert_eq!(
            p.backend,
            BackendSettings::Local {
                dir: r"\\nas\share\backup".into()
            }
        );
        assert_eq!(p.trees[0].root, PathBuf::from("c:/Users/u"));
        assert_eq!(p.trees[1].root, PathBuf::from("D:"));
        // A relative settings file name resolves against the working directory.
        let s = parse_with(
            "[p]\nlocal_dir = s\npath = a\n",
            Path::new("conf/settings.ini"),
            &home_env(),
        )
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(s.profiles[0].trees[0].root, cwd.join("conf/a"));
        assert_eq!(s.file, PathBuf::from("conf/settings.ini"));
    }

    #[test]
    fn tilde_expands_to_home() {
        let p = one(
            "[global]\ndatabase_dir = ~/.gs\n[p]\nlocal_dir = ~\npath = ~/Documents\npath2 = ~\\Win\n",
        );
        assert_eq!(p.database_dir, PathBuf::from("/home/u/.gs"));
        assert_eq!(
            p.backend,
            BackendSettings::Local {
                dir: "/home/u".into()
            }
        );
        assert_eq!(p.trees[0].root, PathBuf::from("/home/u/Documents"));
        assert_eq!(p.trees[1].root, PathBuf::from("/home/u/Win"));
        let e = err("[p]\nlocal_dir = /s\npath = ~bob/x\n");
        assert_contains(&e, &[":3:", "`path`", "~user"]);
        let no_home = env_of(&[("XDG_DATA_HOME", "/d")]);
        let e = parse_with(
            "[p]\nlocal_dir = /s\npath = ~/x\n",
            Path::new(FILE),
            &no_home,
        )
        .unwrap_err()
        .to_string();
        assert_contains(&e, &[":3:", "`path`", "HOME"]);
    }

    #[test]
    fn aws_options() {
        let p = one(
            "[global]\naws_profile = work\nendpoint_url = http://127.0.0.1:9000\n[p]\nbackend = s3\nbucket = b\npath = /a\n",
        );
        assert_eq!(p.aws.profile.as_deref(), Some("work"));
        assert_eq!(p.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        let e = err("[global]\nendpoint_url = 127.0.0.1:9000\n[p]\nlocal_dir = /s\npath = /a\n");
        assert_contains(&e, &[":2:", "`endpoint_url`", "http://"]);
        let e = err("[global]\naws_access_key = AKIA\n[p]\nlocal_dir = /s\npath = /a\n");
        assert_contains(&e, &[":2:", "`aws_access_key`", "`aws_secret_key`"]);
    }

    #[test]
    fn profile_names_must_suit_a_file_name() {
        for bad in ["a/b", "..", ".hidden", "a\\b", "c:d"] {
            let e = err(&format!("[{bad}]\nlocal_dir = /s\npath = /a\n"));
            assert_contains(&e, &[":1:", "profile name"]);
        }
        let p = one("[My Photos-2.0]\nlocal_dir = /s\npath = /a\n");
        assert_eq!(p.name, "My Photos-2.0");
    }

    #[test]
    fn sample_parses() {
        let s = ok(SAMPLE);
        assert_eq!(s.profiles.len(), 1);
        let p = &s.profiles[0];
        assert_eq!(p.name, "documents");
        assert_eq!(
            p.backend,
            BackendSettings::Local {
                dir: "/home/u/glaciersync-store".into()
            }
        );
        assert_eq!(p.trees[0].root, PathBuf::from("/home/u/Documents"));
        assert_eq!(p.exclude, vec!["*.tmp", ".cache/", "Thumbs.db"]);
        // With the real environment too, when it has a home.
        if std::env::var_os("HOME").is_some_and(|h| !h.is_empty()) {
            parse(SAMPLE, Path::new(FILE)).unwrap();
        }
    }

    #[test]
    fn sample_documents_every_key_and_its_examples_parse_when_uncommented() {
        for key in GLOBAL_KEYS.iter().chain(PROFILE_KEYS).chain(&["path2"]) {
            assert!(SAMPLE.contains(&format!("{key} =")), "SAMPLE lacks {key}");
        }
        // Uncomment each example: from a commented `# [section]` line to the next blank line.
        let mut in_example = false;
        let uncommented: String = SAMPLE
            .lines()
            .map(|l| {
                if l.starts_with("# [") {
                    in_example = true;
                } else if l.trim().is_empty() {
                    in_example = false;
                }
                let l = if in_example {
                    l.strip_prefix("# ").unwrap_or(l)
                } else {
                    l
                };
                format!("{l}\n")
            })
            .collect();
        let s = ok(&uncommented);
        let kinds: Vec<(&str, &str)> = s
            .profiles
            .iter()
            .map(|p| (p.name.as_str(), p.backend.kind()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("documents", "local"),
                ("photos", "s3"),
                ("archive", "glacier")
            ]
        );
        assert_eq!(s.profiles[1].exclude, vec!["*.tmp"]);
        assert_eq!(s.profiles[2].part_size, 128 * MIB);
    }

    #[test]
    fn write_sample_creates_parents_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/settings.ini");
        write_sample(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), SAMPLE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        std::fs::write(&path, "mine").unwrap();
        let e = write_sample(&path).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e:?}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }

    #[test]
    fn load_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.ini");
        let e = load(&path).unwrap_err();
        assert!(matches!(e, Error::Settings { line: 0, .. }), "{e:?}");
        assert_contains(
            &e.to_string(),
            &[&path.display().to_string(), "glaciersync init"],
        );
        std::fs::write(&path, b"[p]\npath = /\xff\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert_contains(&e, &["UTF-8"]);
    }

    #[test]
    fn default_path_lookup() {
        let p = default_path_with(&env_of(&[
            ("GLACIERSYNC_CONFIG", "/x/my.ini"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(p, PathBuf::from("/x/my.ini"));
        let p = default_path_with(&env_of(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")]));
        assert_eq!(p, PathBuf::from("/xdg/glaciersync/settings.ini"));
        let p = default_path_with(&env_of(&[("GLACIERSYNC_CONFIG", ""), ("HOME", "/home/u")]));
        assert_eq!(p, PathBuf::from("/home/u/.config/glaciersync/settings.ini"));
        // The real environment gives some settings.ini.
        assert!(
            default_path().ends_with("settings.ini")
                || std::env::var_os("GLACIERSYNC_CONFIG").is_some()
        );
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        const SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET";
        const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
        let cases = [
            // A secret on a line that is not `key = value`.
            format!("[global]\naws_secret_key {SECRET}\n"),
            format!("[global]\n{SECRET}\n"),
            // A secret continued on an indented line.
            format!(
                "[global]\naws_access_key = {ACCESS}\naws_secret_key = {SECRET}\n  {SECRET}\n[p]\nlocal_dir=/s\npath=/a\n"
            ),
            // Set twice.
            format!("[global]\naws_secret_key = {SECRET}\naws_secret_key = {SECRET}\n"),
            // One of the pair missing.
            format!("[global]\naws_secret_key = {SECRET}\n[p]\nlocal_dir=/s\npath=/a\n"),
            format!("[global]\naws_access_key = {ACCESS}\n[p]\nlocal_dir=/s\npath=/a\n"),
            // Another error in a file holding them.
            format!(
                "[global]\naws_access_key = {ACCESS}\naws_secret_key = {SECRET}\n[p]\npath=/a\nconcurrency = x\nlocal_dir=/s\n"
            ),
        ];
        for text in &cases {
            let e = err(text);
            assert!(!e.contains(SECRET) && !e.contains(ACCESS), "{e}");
            let debug = format!("{:?}", parse_with(text, Path::new(FILE), &home_env()));
            assert!(
                !debug.contains(SECRET) && !debug.contains(ACCESS),
                "{debug}"
            );
        }
        let s = ok(&format!(
            "[global]\naws_access_key = {ACCESS}\naws_secret_key = {SECRET}\n[p]\nlocal_dir=/s\npath=/a\n"
        ));
        assert_eq!(s.profiles[0].aws.secret_key.as_deref(), Some(SECRET));
        let debug = format!("{s:?} {:?} {:#?}", s.profiles[0], s.profiles[0].aws);
        assert!(
            !debug.contains(SECRET) && !debug.contains(ACCESS),
            "{debug}"
        );
    }
}
