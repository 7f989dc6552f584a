//! The trees of a profile: `path`, `path2`, `path3`, … in numeric order, at least one, no two
//! naming the same directory.

use super::Tree;
use super::context::{Scope, Val};
use super::ini::Entry;
use super::keys::tree_number;
use crate::error::Result;

pub(super) fn trees(scope: &Scope<'_>) -> Result<Vec<Tree>> {
    let sec = scope.sec;
    let mut numbered: Vec<(u32, &Entry)> = sec
        .entries
        .iter()
        .filter_map(|e| tree_number(&e.key).map(|n| (n, e)))
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    if numbered.is_empty() {
        return Err(scope.err(
            sec.line,
            format!(
                "profile [{}] has no tree to back up: add `path = <directory>`",
                scope.name()
            ),
        ));
    }
    let mut trees: Vec<Tree> = Vec::new();
    for (_, entry) in numbered {
        let root = scope.ctx.path(&Val {
            entry,
            section: sec,
        })?;
        if let Some(prev) = trees.iter().find(|t| t.root == root) {
            return Err(scope.err(
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
    Ok(trees)
}
