//! Selecting versions by glob patterns over paths as `ls` prints them (`<tree>/<path>`).
//!
//! `*` and `?` stay within one path component, `**` crosses them. A pattern also matches
//! relative to each tree (`photos/**` matches `path/photos/a.jpg`), and a pattern that names a
//! directory selects everything below it.

use crate::error::{Error, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled selection. No patterns selects everything.
pub struct Selection {
    set: Option<GlobSet>,
}

impl Selection {
    pub fn new(patterns: &[String]) -> Result<Selection> {
        if patterns.is_empty() {
            return Ok(Selection { set: None });
        }
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let p = p.trim_end_matches('/');
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::Usage(format!("bad pattern {p:?}: {e}")))?;
            b.add(glob);
        }
        let set = b
            .build()
            .map_err(|e| Error::Usage(format!("bad patterns: {e}")))?;
        Ok(Selection { set: Some(set) })
    }

    /// Whether the entry at `tree`/`path` is selected.
    pub fn matches(&self, tree: &str, path: &[u8]) -> bool {
        let Some(set) = &self.set else {
            return true;
        };
        let rel = String::from_utf8_lossy(path);
        let full = format!("{tree}/{rel}");
        // The path itself and every ancestor directory, with and without the tree key.
        let mut candidate: &str = &rel;
        loop {
            if set.is_match(candidate) {
                return true;
            }
            match candidate.rfind('/') {
                Some(i) => candidate = &candidate[..i],
                None => break,
            }
        }
        let mut candidate: &str = &full;
        loop {
            if set.is_match(candidate) {
                return true;
            }
            match candidate.rfind('/') {
                Some(i) => candidate = &candidate[..i],
                None => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(p: &[&str]) -> Selection {
        Selection::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns() {
        assert!(sel(&[]).matches("path", b"a/b"));
        let s = sel(&["**/*.pdf"]);
        assert!(s.matches("path", b"docs/x.pdf"));
        assert!(s.matches("path2", b"x.pdf"));
        assert!(!s.matches("path", b"x.txt"));
        let s = sel(&["photos/2024/**"]);
        assert!(s.matches("path", b"photos/2024/a.jpg"));
        assert!(!s.matches("path", b"photos/2023/a.jpg"));
        let s = sel(&["path2/docs"]);
        assert!(s.matches("path2", b"docs/deep/file"));
        assert!(!s.matches("path", b"docs/deep/file"));
        let s = sel(&["path/*.txt"]);
        assert!(s.matches("path", b"a.txt"));
        assert!(!s.matches("path", b"sub/a.txt"), "* stays in one component");
    }

    #[test]
    fn bad_pattern_is_a_usage_error() {
        assert!(Selection::new(&["a[".to_string()]).is_err());
    }
}
