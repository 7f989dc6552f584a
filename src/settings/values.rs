//! The rules of values, apart from any file: sizes, path shapes, bucket names, storage classes
//! and each backend's part sizes.

use super::{BackendSettings, GIB, MIB, STORAGE_CLASSES};
use crate::backend::{glacier, s3};
use std::path::{Component, Path, PathBuf};

/// `C:\…`, `c:/…`, `C:` and UNC `\\server\…` paths: kept verbatim on every platform.
pub(super) fn is_windows_absolute(value: &str) -> bool {
    let b = value.as_bytes();
    let drive = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1] == b':'
        && (b.len() == 2 || b[2] == b'\\' || b[2] == b'/');
    drive || value.starts_with("\\\\")
}

/// Drops `.` components (never `..`: symlinks make that unsafe to fold).
pub(super) fn normalize(p: &Path) -> PathBuf {
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
pub(super) fn parse_size(value: &str) -> Result<u64, &'static str> {
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

/// A size as the settings file spells it (`64MiB`, `1GiB`, `1000 bytes`), for messages that
/// suggest a value to write there. Not a display format: that is [`crate::units::bytes`].
pub(super) fn as_setting(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{}GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{}MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A bucket name as S3 takes it: no scheme, no slashes, no white space.
pub(super) fn is_bare_bucket_name(bucket: &str) -> bool {
    !(bucket.contains(['/', '\\']) || bucket.chars().any(char::is_whitespace))
}

/// The storage class `value` names (any case), when it is one of [`STORAGE_CLASSES`].
pub(super) fn canonical_storage_class(value: &str) -> Option<String> {
    let value = value.to_ascii_uppercase();
    STORAGE_CLASSES.contains(&value.as_str()).then_some(value)
}

/// The backend's rule that `part_size` breaks, if any.
pub(super) fn part_size_rule(backend: &BackendSettings, part_size: u64) -> Option<&'static str> {
    match backend {
        BackendSettings::Glacier { .. } => {
            glacier::validate_part_size(part_size).is_err().then_some(
                "Glacier parts are 1MiB times a power of two (1MiB, 2MiB, 4MiB, …, 4GiB), e.g. \
                 64MiB",
            )
        }
        BackendSettings::S3 { .. } => (!(s3::MIN_PART_SIZE..=s3::MAX_PART_SIZE)
            .contains(&part_size))
        .then_some("S3 parts are 5MiB to 5GiB, e.g. 64MiB"),
        BackendSettings::Local { .. } => {
            (part_size == 0).then_some("it must be at least 1 byte, e.g. 64MiB")
        }
    }
}
