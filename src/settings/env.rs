//! The environment: the variables that locate the home, config and data directories.

use std::ffi::OsString;
use std::path::PathBuf;

/// Looks up an environment variable (tests pass their own).
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

pub(super) fn real_env(name: &str) -> Option<OsString> {
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

pub(super) fn home_dir(env: Env<'_>) -> Option<PathBuf> {
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

pub(super) fn default_path_with(env: Env<'_>) -> PathBuf {
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
pub(super) fn default_database_dir(env: Env<'_>) -> Option<PathBuf> {
    xdg_dir(env, "XDG_DATA_HOME")
        .or_else(|| windows_app_data(env))
        .or_else(|| home_dir(env).map(|h| h.join(".local").join("share")))
        .map(|d| d.join("glaciersync"))
}
