//! Unit tests of the settings file, one file per topic. The helpers parse with HOME=/home/u as
//! the only variable, as if the file were `/etc/gs/settings.ini`.

use super::*;
use std::ffi::OsString;

mod backend;
mod env;
mod files;
mod ini;
mod keys;
mod lifecycle;
mod profile;
mod values;

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

/// Runs `f` on the scope of the last section of `text` (read as the helpers above read it): to
/// test one concern's check on its own.
fn with_scope<T>(text: &str, f: impl FnOnce(&crate::settings::context::Scope<'_>) -> T) -> T {
    let sections = parse_ini(text, Path::new(FILE)).expect("INI text");
    let env = home_env();
    let ctx = Ctx {
        file: Path::new(FILE),
        base: PathBuf::from("/etc/gs"),
        env: &env,
    };
    let scope = crate::settings::context::Scope {
        ctx: &ctx,
        global: sections.iter().find(|s| s.is_global()),
        sec: sections.last().expect("a section"),
    };
    f(&scope)
}
