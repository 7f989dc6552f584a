//! A legacy database as one snapshot of our catalog: tree keys, paths, tar member names,
//! archives and members. Pure: what is on disk comes in through a [`Probe`].

use super::db::{LegacyDb, LegacyFile, Location};
use crate::catalog::{EntryKind, LegacyArchiveIn, LegacyImportIn, LegacyMemberIn, VersionRecord};
use crate::hash::Hash32;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Mode of an imported file: the script kept none.
pub const IMPORTED_MODE: u32 = 0o100644;

/// What the vault inventory says about an archive: size and SHA-256 tree hash.
pub type Listing = HashMap<String, (u64, Option<Hash32>)>;

/// Looks at the file a legacy row names (tree root, `/`-separated path, size, legacy mtime):
/// its exact mtime (ns) and mode when its size and mtime are the row's.
pub type Probe<'a> = &'a dyn Fn(&Path, &str, u64, f64) -> Option<(i64, u32)>;

/// How one legacy tree (`basepath`) was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeMatch {
    pub basepath: String,
    pub key: String,
    /// The key is the profile's (same absolute path); else derived.
    pub matched: bool,
}

/// A legacy database ready for [`crate::catalog::Catalog::import_legacy`].
#[derive(Debug, Clone, Default)]
pub struct Import {
    pub catalog: LegacyImportIn,
    pub trees: Vec<TreeMatch>,
    /// Files whose size and mtime on disk are the row's (counted only with a probe).
    pub unchanged: u64,
    /// Archives the database names that no file row points at any more (the last of
    /// `catalog.archives`): recorded, so they are known (never "described by no database"),
    /// and kept, as every archive of the script is.
    pub superseded: usize,
}

/// Whether `basepath` is a Windows path (`C:\…`, `\\server\share\…`).
pub fn is_windows(basepath: &str) -> bool {
    let b = basepath.as_bytes();
    (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || basepath.starts_with("\\\\")
}

/// The key of a tree that matches none of the profile's: `legacy-<last name>-<8 hex>`, the
/// last name of `basepath` (only `A-Za-z0-9_-`, others become `_`, at most 32) and the first
/// 8 hex digits of the SHA-256 of `basepath` as the database spells it.
pub fn derived_key(basepath: &str) -> String {
    let last = basepath
        .split(['/', '\\'])
        .rfind(|s| !s.is_empty() && !s.ends_with(':'))
        .unwrap_or("root");
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let digest = hex::encode(Sha256::digest(basepath.as_bytes()));
    format!("legacy-{name}-{}", &digest[..8])
}

/// The profile's key whose tree has the same absolute path as `basepath`.
pub fn match_tree(basepath: &str, trees: &[(String, PathBuf)]) -> Option<String> {
    if is_windows(basepath) {
        return None;
    }
    let base = Path::new(basepath);
    let canon = std::fs::canonicalize(base).ok();
    trees
        .iter()
        .find(|(_, root)| {
            root.as_path() == base || (canon.is_some() && std::fs::canonicalize(root).ok() == canon)
        })
        .map(|(k, _)| k.clone())
}

/// The file's path in its tree, `/`-separated.
pub fn relative_path(file: &LegacyFile) -> String {
    let sep = if is_windows(&file.basepath) {
        '\\'
    } else {
        '/'
    };
    file.fname
        .split(sep)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// The tar member name Python's `tarfile` gave the file: its absolute path without the drive
/// (Windows), with `/` separators, without leading `/`.
pub fn member_name(file: &LegacyFile) -> String {
    if is_windows(&file.basepath) {
        let full = format!("{}\\{}", file.basepath.trim_end_matches('\\'), file.fname);
        let without_drive = match full.as_bytes() {
            [_, b':', ..] => full[2..].to_string(),
            _ => {
                // \\server\share\rest: the drive is \\server\share.
                let parts: Vec<&str> = full.trim_start_matches('\\').splitn(3, '\\').collect();
                parts.get(2).copied().unwrap_or_default().to_string()
            }
        };
        without_drive
            .replace('\\', "/")
            .trim_start_matches('/')
            .into()
    } else {
        let base = file.basepath.trim_end_matches('/');
        format!("{base}/{}", file.fname)
            .trim_start_matches('/')
            .into()
    }
}

/// Seconds (a float) to nanoseconds: whole seconds exactly, the fraction as precise as the
/// float holds it.
pub fn mtime_ns(mtime: f64) -> i64 {
    let secs = mtime.floor();
    secs as i64 * 1_000_000_000 + ((mtime - secs) * 1e9).round() as i64
}

/// The size of a tar that holds members of `sizes`, as Python's `tarfile` writes one (a
/// header per member, data padded to 512, two zero blocks, padded to 10240): an estimate when
/// no inventory says.
fn tar_size_estimate(sizes: impl Iterator<Item = u64>) -> u64 {
    let body: u64 = sizes.map(|s| 512 + s.div_ceil(512) * 512).sum::<u64>() + 1024;
    body.div_ceil(10240) * 10240
}

/// The key (and, when it is the profile's, the root) of the tree `basepath`; noted in `named`.
fn name_tree(
    basepath: &str,
    trees: &[(String, PathBuf)],
    named: &mut Vec<TreeMatch>,
) -> (String, Option<PathBuf>) {
    let matched = match_tree(basepath, trees);
    let found = trees.iter().find(|(k, _)| matched.as_ref() == Some(k));
    let key = found.map_or_else(|| derived_key(basepath), |(k, _)| k.clone());
    named.push(TreeMatch {
        basepath: basepath.to_string(),
        key: key.clone(),
        matched: found.is_some(),
    });
    (key, found.map(|(_, r)| r.clone()))
}

/// Builds the import of `db` for a profile with `trees` (key, root).
pub fn build(
    db: &LegacyDb,
    trees: &[(String, PathBuf)],
    time: i64,
    listing: &Listing,
    backend: &str,
    probe: Option<Probe<'_>>,
) -> Import {
    let mut out = Import::default();
    out.catalog.time = time;
    let mut keys: HashMap<&str, (String, Option<PathBuf>)> = HashMap::new();
    let mut archives: HashMap<&str, usize> = HashMap::new();
    let mut members: HashMap<(usize, String), usize> = HashMap::new();
    for f in &db.files {
        let (key, root) = keys
            .entry(f.basepath.as_str())
            .or_insert_with(|| name_tree(&f.basepath, trees, &mut out.trees))
            .clone();
        let id = f.location.archive_id();
        let a = *archives.entry(id).or_insert_with(|| {
            out.catalog
                .archives
                .push(archive_in(db, &f.location, listing, backend, time));
            out.catalog.archives.len() - 1
        });
        let name = match f.location {
            Location::Tar(_) => member_name(f),
            Location::Whole(_) => String::new(),
        };
        let m = *members.entry((a, name.clone())).or_insert_with(|| {
            out.catalog.members.push(LegacyMemberIn {
                archive: a,
                member: name.into_bytes(),
                size: f.size,
            });
            out.catalog.members.len() - 1
        });
        let path = relative_path(f);
        let mut rec = VersionRecord {
            tree: key,
            path: path.clone().into_bytes(),
            kind: EntryKind::File,
            size: f.size,
            mtime_ns: mtime_ns(f.mtime),
            mode: IMPORTED_MODE,
            hash: None,
            target: None,
        };
        if let (Some(probe), Some(root)) = (probe, root.as_deref())
            && let Some((ns, mode)) = probe(root, &path, f.size, f.mtime)
        {
            (rec.mtime_ns, rec.mode) = (ns, mode);
            out.unchanged += 1;
        }
        out.catalog.versions.push((rec, m));
    }
    // The archives no file needs now: an older tar whose every file is in a newer one, the
    // archive of a file's older bytes. No member: nothing is ever read from them.
    for id in &db.archives {
        if archives.contains_key(id.as_str()) {
            continue;
        }
        let loc = match db.tar_times.contains_key(id) {
            true => Location::Tar(id.clone()),
            false => Location::Whole(id.clone()),
        };
        out.catalog
            .archives
            .push(archive_in(db, &loc, listing, backend, time));
        out.superseded += 1;
    }
    estimate_unlisted(&mut out.catalog);
    out
}

fn archive_in(
    db: &LegacyDb,
    loc: &Location,
    listing: &Listing,
    backend: &str,
    time: i64,
) -> LegacyArchiveIn {
    let id = loc.archive_id();
    let listed = listing.get(id);
    let stored_at = match loc {
        Location::Tar(_) => db.tar_times.get(id).map_or(time, |t| *t as i64),
        Location::Whole(_) => time,
    };
    LegacyArchiveIn {
        remote_id: id.to_string(),
        tar: matches!(loc, Location::Tar(_)),
        sha1: db.sha1.get(id).cloned().unwrap_or_default(),
        size: listed.map_or(0, |l| l.0),
        tree_hash: listed.and_then(|l| l.1),
        stored_at,
        backend: backend.to_string(),
    }
}

/// Archives the inventory did not list get estimated sizes: a file archive its file's size,
/// a tar what `tarfile` would have written for its members (an archive no file needs now has
/// no member: 0 for a file archive, an empty tar's 10240 for a tar).
fn estimate_unlisted(import: &mut LegacyImportIn) {
    for (i, a) in import.archives.iter_mut().enumerate() {
        if a.tree_hash.is_some() {
            continue;
        }
        let sizes = import
            .members
            .iter()
            .filter(|m| m.archive == i)
            .map(|m| m.size);
        a.size = if a.tar {
            tar_size_estimate(sizes)
        } else {
            sizes.max().unwrap_or(0)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(basepath: &str, fname: &str, loc: Location) -> LegacyFile {
        LegacyFile {
            basepath: basepath.into(),
            fname: fname.into(),
            mtime: 1_368_000_000.25,
            size: 5,
            location: loc,
        }
    }

    #[test]
    fn member_names_are_what_python_tarfile_wrote() {
        let t = || Location::Tar("T".into());
        assert_eq!(
            member_name(&file("/home/me/Pictures", "2013/a.jpg", t())),
            "home/me/Pictures/2013/a.jpg"
        );
        assert_eq!(member_name(&file("/", "a.jpg", t())), "a.jpg");
        assert_eq!(
            member_name(&file(r"C:\Users\me\Pictures", r"2013\ä.jpg", t())),
            "Users/me/Pictures/2013/ä.jpg"
        );
        assert_eq!(
            member_name(&file(r"\\nas\share\photos", r"x\y.jpg", t())),
            "photos/x/y.jpg"
        );
        assert_eq!(
            relative_path(&file(r"C:\Users\me\Pictures", r"2013\ä.jpg", t())),
            "2013/ä.jpg"
        );
        // A backslash is a character of a Linux name.
        assert_eq!(relative_path(&file("/home/me", r"a\b", t())), r"a\b");
    }

    #[test]
    fn trees_match_by_absolute_path_else_get_a_stable_derived_key() {
        let trees = vec![
            ("path".to_string(), PathBuf::from("/home/me/Documents")),
            ("path2".to_string(), PathBuf::from("/home/me/Pictures")),
        ];
        assert_eq!(
            match_tree("/home/me/Pictures/", &trees).as_deref(),
            Some("path2")
        );
        assert_eq!(match_tree("/home/me/Music", &trees), None);
        assert_eq!(match_tree(r"C:\home\me\Pictures", &trees), None);
        let k = derived_key(r"C:\Users\me\Bilder (alt)");
        assert!(k.starts_with("legacy-Bilder__alt_-"), "{k}");
        assert_eq!(k.len(), "legacy-Bilder__alt_-".len() + 8);
        assert_eq!(k, derived_key(r"C:\Users\me\Bilder (alt)"));
        assert_ne!(k, derived_key(r"D:\Users\me\Bilder (alt)"));
        assert!(derived_key("C:\\").starts_with("legacy-root-"));
        assert!(crate::restore::safe_dest(Path::new("/t"), &k, b"a").is_ok());
    }

    #[test]
    fn shared_archives_give_one_member_and_unlisted_sizes_are_estimated() {
        let db = LegacyDb {
            files: vec![
                file("/h", "a", Location::Whole("W".into())),
                file("/h", "b", Location::Whole("W".into())),
                file("/h", "c", Location::Tar("T".into())),
                file("/h", "d", Location::Tar("T".into())),
            ],
            ..Default::default()
        };
        let trees = vec![("path".to_string(), PathBuf::from("/h"))];
        let listing: Listing = [("W".to_string(), (5, Some(Hash32([1; 32]))))].into();
        let im = build(&db, &trees, 7, &listing, "glacier", None);
        let c = &im.catalog;
        assert_eq!(c.archives.len(), 2);
        assert_eq!(c.members.len(), 3);
        assert_eq!(c.versions[0].1, c.versions[1].1);
        assert_eq!(c.members[2].member, b"h/d");
        assert_eq!(
            (c.archives[0].size, c.archives[0].tree_hash.is_some()),
            (5, true)
        );
        assert_eq!((c.archives[1].size, c.archives[1].tree_hash), (10240, None));
        assert_eq!(c.versions[2].0.mtime_ns, 1_368_000_000_250_000_000);
        assert_eq!(im.trees[0].key, "path");
        assert_eq!(im.superseded, 0);
        let probe = |_: &Path, p: &str, _: u64, _: f64| (p == "c").then_some((42, 0o100600));
        let im = build(&db, &trees, 7, &listing, "glacier", Some(&probe));
        assert_eq!(im.unchanged, 1);
        assert_eq!(
            (
                im.catalog.versions[2].0.mtime_ns,
                im.catalog.versions[2].0.mode
            ),
            (42, 0o100600)
        );
    }

    #[test]
    fn archives_no_file_needs_now_are_recorded_without_members() {
        let db = LegacyDb {
            files: vec![
                file("/h", "a", Location::Tar("T2".into())),
                file("/h", "b", Location::Whole("W2".into())),
            ],
            sha1: [
                ("T1".to_string(), "11".repeat(20)),
                ("W1".to_string(), "22".repeat(20)),
            ]
            .into(),
            tar_times: [("T1".to_string(), 50.0), ("T2".to_string(), 60.0)].into(),
            archives: ["T1", "W1", "T2", "W2"].map(String::from).to_vec(),
            ..Default::default()
        };
        let trees = vec![("path".to_string(), PathBuf::from("/h"))];
        let listing: Listing = [("W1".to_string(), (77, Some(Hash32([2; 32]))))].into();
        let im = build(&db, &trees, 7, &listing, "glacier", None);
        let c = &im.catalog;
        assert_eq!(im.superseded, 2);
        let ids: Vec<&str> = c.archives.iter().map(|a| a.remote_id.as_str()).collect();
        assert_eq!(ids, ["T2", "W2", "T1", "W1"]);
        assert!(c.members.iter().all(|m| m.archive < 2), "{:?}", c.members);
        let (t1, w1) = (&c.archives[2], &c.archives[3]);
        assert!(t1.tar && !w1.tar);
        assert_eq!((t1.stored_at, t1.size, t1.tree_hash), (50, 10240, None));
        assert_eq!(t1.sha1, "11".repeat(20));
        assert_eq!((w1.size, w1.tree_hash), (77, Some(Hash32([2; 32]))));
        assert_eq!(w1.sha1, "22".repeat(20));
    }
}
