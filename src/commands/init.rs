//! `init [TREE]`: a commented sample settings file to start from, backing up TREE.

use crate::error::{Error, Result};
use crate::report::{Exit, Report};
use serde::Serialize;
use std::fmt::{self, Display};
use std::path::{Path, PathBuf};

/// `init`: the sample settings file written, and the tree it backs up.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub written: String,
    pub tree: String,
    /// `init --age`: the identity file written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
}

impl Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote a sample settings file to {} backing up {} to ~/glaciersync-store: edit it, \
             then run `glaciersync sync`",
            self.written, self.tree
        )?;
        if let (Some(id), Some(r)) = (&self.identity, &self.recipient) {
            write!(
                f,
                "\nwrote an age identity to {id}; the settings encrypt to its recipient {r}.\n\n{}",
                super::age::LOSS_WARNING
            )?;
        }
        Ok(())
    }
}

impl Report for InitReport {
    fn exit_code(&self) -> Exit {
        Exit::Ok
    }
}

/// What `init`'s argument names: the tree to back up (an existing directory), or, in the older
/// form `init FILE`, the settings file to write (a path ending in `.ini` that is no directory).
#[derive(Debug)]
pub enum InitArg {
    Tree(PathBuf),
    SettingsFile(PathBuf),
}

/// Reads `init`'s argument.
pub fn init_arg(arg: &Path) -> Result<InitArg> {
    if arg.is_dir() {
        return Ok(InitArg::Tree(arg.to_path_buf()));
    }
    let ini = arg
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ini"));
    if ini {
        return Ok(InitArg::SettingsFile(arg.to_path_buf()));
    }
    Err(Error::Usage(format!(
        "init {}: not a directory: name the tree to back up (`glaciersync init ~/Pictures`); \
         the settings file is named with -c FILE",
        arg.display()
    )))
}

/// The tree when none is named: `~/Documents` when it exists, else the current directory (or
/// the home directory when that is `/`: a first run from `/` should not back up the machine).
fn default_tree() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    if let Some(docs) = home.as_ref().map(|h| h.join("Documents"))
        && docs.is_dir()
    {
        return Ok(docs);
    }
    let here =
        std::env::current_dir().map_err(|e| Error::Usage(format!("no current directory: {e}")))?;
    match home {
        Some(h) if here == Path::new("/") && h.is_dir() => Ok(h),
        _ => Ok(here),
    }
}

/// The tree as the settings file says it: absolute, and one line of UTF-8. A tree that holds
/// the sample's store or catalog (a home directory) is fine: `sync` never backs those up.
fn tree_text(tree: &Path) -> Result<String> {
    let abs = std::fs::canonicalize(tree).map_err(|e| Error::io(tree, e))?;
    match abs.to_str() {
        Some(s) if !s.contains(['\n', '\r']) && s.trim() == s => Ok(s.to_string()),
        _ => Err(Error::Usage(format!(
            "init {}: this path cannot be written in the settings file as it is: write it \
             there yourself (key `path`)",
            abs.display()
        ))),
    }
}

/// `init`: writes a commented sample settings file at `path` (never overwrites) whose profile
/// backs up `tree` (default: `~/Documents` when it exists, else the current directory). With
/// `age`, also an identity file and its recipient in the settings (`init --age`).
pub fn init(path: &Path, tree: Option<&Path>, age: bool) -> Result<InitReport> {
    let tree = match tree {
        Some(t) => t.to_path_buf(),
        None => default_tree()?,
    };
    let text = tree_text(&tree)?;
    let sample = crate::settings::sample_for(&text);
    let (identity, recipient) = if age {
        let (id, r) = super::age::init_with_age(path, &sample)?;
        (Some(id.display().to_string()), Some(r))
    } else {
        crate::settings::write_sample_text(path, &sample)?;
        (None, None)
    };
    Ok(InitReport {
        written: path.display().to_string(),
        tree: text,
        identity,
        recipient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::AnyReport;

    #[test]
    fn init_says_what_to_do_next() {
        let r = InitReport {
            written: "/home/me/settings.ini".into(),
            tree: "/home/me/Pictures".into(),
            identity: None,
            recipient: None,
        };
        assert_eq!(
            r.to_string(),
            "wrote a sample settings file to /home/me/settings.ini backing up /home/me/Pictures \
             to ~/glaciersync-store: edit it, then run `glaciersync sync`"
        );
        assert_eq!(
            r.json(),
            serde_json::json!({"written": "/home/me/settings.ini", "tree": "/home/me/Pictures"})
        );
        assert_eq!(r.exit(), Exit::Ok);
    }

    #[test]
    fn the_argument_is_a_tree_or_an_ini_file() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(init_arg(d.path()).unwrap(), InitArg::Tree(_)));
        let ini = d.path().join("conf/new.ini");
        assert!(matches!(init_arg(&ini).unwrap(), InitArg::SettingsFile(_)));
        let err = init_arg(&d.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn the_sample_backs_up_the_tree_named() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("Pictures");
        std::fs::create_dir(&tree).unwrap();
        let file = d.path().join("s.ini");
        let r = init(&file, Some(&tree), false).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let want = format!(
            "path = {}\n",
            std::fs::canonicalize(&tree).unwrap().display()
        );
        assert!(text.contains(&want), "{text}");
        assert_eq!(
            r.tree,
            std::fs::canonicalize(&tree).unwrap().display().to_string()
        );
        assert!(crate::settings::parse(&text, &file).is_ok());
    }
}
