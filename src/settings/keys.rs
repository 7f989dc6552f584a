//! The keys: which may stand in `[global]` and which only in a profile, which are secret, the
//! tree keys (`path`, `path2`, …), and the message for an unknown key (with a did-you-mean).

use super::ini::Section;
use super::settings_err;
use crate::error::Result;
use std::path::Path;

/// Keys allowed in `[global]` (and in profiles, where they win).
pub(super) const GLOBAL_KEYS: &[&str] = &[
    "aws_access_key",
    "aws_secret_key",
    "aws_profile",
    "aws_region_name",
    "endpoint_url",
    "database_dir",
    "concurrency",
    "connect_timeout",
    "read_timeout",
    "stall_timeout",
    "request_timeout",
    "backend",
    "storage_class",
    "archive_byte_size_threshold",
    "part_size",
    "exclude",
    "bucket",
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "keep_within",
    "keep_catalog_copies",
    "min_storage_days",
    "max_restore_cost",
    "age_recipients",
    "age_recipients_file",
    "age_identity_file",
];

/// Keys allowed only in profile sections (besides `path2`, `path3`, …).
pub(super) const PROFILE_KEYS: &[&str] = &["vault_name", "prefix", "local_dir", "path"];

/// Keys whose values are never echoed.
pub(super) const SECRET_KEYS: &[&str] = &["aws_access_key", "aws_secret_key"];

/// The number of a tree key: `path` → 1, `path2` → 2, … (no leading zeros, no `path1`).
pub(super) fn tree_number(key: &str) -> Option<u32> {
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
pub(super) fn check_keys(section: &Section, file: &Path) -> Result<()> {
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
        _ => msg
            .push_str(": remove it (`glaciersync -c FILE init` writes a sample listing every key)"),
    }
    msg
}
