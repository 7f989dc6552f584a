//! Building a [`Profile`] from its section and `[global]`: the backend and its required keys,
//! the AWS connection, the catalog location, the numbers, the exclusions and the trees.

use super::context::{Ctx, Val};
use super::env::default_database_dir;
use super::ini::{Entry, Section};
use super::keys::tree_number;
use super::values::{canonical_storage_class, human, is_bare_bucket_name, part_size_rule};
use super::{
    BackendSettings, DEFAULT_ARCHIVE_BYTE_SIZE_THRESHOLD, DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE,
    DEFAULT_STORAGE_CLASS, MAX_CONCURRENCY, Profile, STORAGE_CLASSES, Tree,
};
use crate::backend::aws::AwsOptions;
use crate::backend::glacier::validate_vault_name;
use crate::error::Result;

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

pub(super) fn build_profile(
    ctx: &Ctx<'_>,
    global: Option<&Section>,
    sec: &Section,
) -> Result<Profile> {
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
            let Some(class) = canonical_storage_class(ctx.single(&v, false)?) else {
                return Err(ctx.err(
                    v.line(),
                    format!(
                        "`storage_class` = {}: use one of {}",
                        ctx.shown(&v),
                        STORAGE_CLASSES.join(", ")
                    ),
                ));
            };
            class
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
            // The rule is the backend's; the message is ours (file, line, key).
            validate_vault_name(vault).map_err(|_| {
                ctx.err(
                    v.line(),
                    format!(
                        "`vault_name` = {}: a vault name is 1 to 255 of a-z, A-Z, 0-9, `_`, `.` \
                         and `-`",
                        ctx.shown(&v)
                    ),
                )
            })?;
            BackendSettings::Glacier {
                vault: vault.to_string(),
            }
        }
        "s3" => {
            let Some(v) = get("bucket") else {
                return Err(missing("bucket", "<bucket>"));
            };
            let bucket = ctx.single(&v, false)?;
            if !is_bare_bucket_name(bucket) {
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
    if let (Some(rule), Some(v)) = (part_size_rule(&backend, part_size), &part_size_val) {
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
