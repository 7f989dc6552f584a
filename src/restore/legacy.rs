//! Archives of the 2013 script whose contents the catalog knows only by placeholder (see
//! `catalog/legacy.rs`): planned as whole retrievals, read whole, verified by the SHA-1 the
//! legacy database gives and the tree hash the vault lists, then (tars) read as a tar stream
//! whose members are found by name. What was read is recorded: each member's real hash and
//! offset, so the next restore reads these contents like any other. A hard link in the tar
//! gives the bytes of the member it names; a symlink in the tar is restored as that symlink,
//! and its versions become symlinks in the catalog.

use super::demux::{MemberResult, partial_name, place};
use super::dest::{DirCache, file_time, system_time};
use super::plan::{ArchivePlan, Member};
use crate::backend::Backend;
use crate::catalog::{ArchiveRow, Catalog, LegacyResolved, LegacySymlink};
use crate::error::Result;
use crate::hash::{Hash32, TreeHasher};
use crate::legacy::tar::{MemberKind, TarMember, for_each_member, name_spellings};
use serde::{Serialize, Serializer};
use sha1::Digest;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How a legacy archive is read: whole, checked, then split by member name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegacyRead {
    /// The archive's SHA-1 as the legacy database gives it (empty: unknown).
    pub sha1: String,
    /// The archive's tree hash as the vault lists it, when known.
    #[serde(serialize_with = "opt_display")]
    pub tree_hash: Option<Hash32>,
    /// A tar of small files (else one file's bytes).
    pub tar: bool,
    /// The member name of each of the plan's members, in order.
    #[serde(serialize_with = "names")]
    pub names: Vec<Vec<u8>>,
    /// Every member the legacy database places here (name, size): all get their hash recorded.
    #[serde(skip)]
    pub all: Vec<(Vec<u8>, u64)>,
}

/// What reading a legacy archive taught, for the catalog.
pub(super) struct Learned {
    archive: (i64, String),
    resolved: Vec<LegacyResolved>,
    links: Vec<LegacySymlink>,
    measured: (u64, Hash32),
}

/// `Some` when some of `members` are still known only by placeholder: then the archive is read
/// the legacy way. Members already resolved are found by their recorded offset's name.
pub(super) fn plan_read(
    archive: &ArchiveRow,
    members: &[Member],
    catalog: &Catalog,
) -> Result<Option<LegacyRead>> {
    let Some(info) = catalog.legacy_archive(archive)? else {
        return Ok(None);
    };
    let unresolved = |m: &Member| {
        info.members
            .iter()
            .any(|r| r.offset.is_none() && r.placeholder == m.hash)
    };
    if !members.iter().any(unresolved) {
        return Ok(None);
    }
    let names = members
        .iter()
        .map(|m| {
            info.members
                .iter()
                .find(|r| r.placeholder == m.hash || r.offset == Some(m.offset) && info.tar)
                .map(|r| r.member.clone())
                .unwrap_or_default()
        })
        .collect();
    Ok(Some(LegacyRead {
        sha1: info.sha1,
        tree_hash: info.listed.then_some(archive.tree_hash),
        tar: info.tar,
        names,
        all: info
            .members
            .into_iter()
            .map(|r| (r.member, r.size))
            .collect(),
    }))
}

/// Writes through to `out` while taking the SHA-1 and the tree hash.
struct Hashing<W> {
    out: W,
    sha1: sha1::Sha1,
    tree: TreeHasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write_all(buf)?;
        self.sha1.update(buf);
        self.tree.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Downloads the whole archive to `tmp` and checks it against what is known of it.
fn fetch_checked(
    backend: &dyn Backend,
    a: &ArchivePlan,
    read: &LegacyRead,
    ticket: Option<&str>,
    tmp: &Path,
) -> std::result::Result<(u64, Hash32), String> {
    let file = File::create(tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut w = Hashing {
        out: io::BufWriter::new(file),
        sha1: sha1::Sha1::new(),
        tree: TreeHasher::new(),
    };
    let size = backend
        .get(&a.remote_id, None, ticket, &mut w)
        .map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    let sha1 = hex::encode(w.sha1.finalize());
    let tree = w.tree.finish();
    if !read.sha1.is_empty() && !sha1.eq_ignore_ascii_case(&read.sha1) {
        return Err(format!(
            "legacy archive {} does not match the SHA-1 its database gives (expected {}, got {sha1}): not restored",
            a.remote_id, read.sha1
        ));
    }
    if let Some(expected) = read.tree_hash
        && expected != tree
    {
        return Err(format!(
            "legacy archive {} does not match the tree hash the vault lists (expected {expected}, got {tree}): not restored",
            a.remote_id
        ));
    }
    Ok((size, tree))
}

/// Reads one legacy archive into its members' destinations. One result per member.
pub(super) fn download(
    backend: &dyn Backend,
    to: &Path,
    dirs: &DirCache,
    a: &ArchivePlan,
    ticket: Option<&str>,
    learned: &Mutex<Vec<Learned>>,
) -> Vec<MemberResult> {
    let read = a.legacy.as_ref().expect("a legacy plan");
    let tmp = to.join(format!(".glaciersync-legacy-{}.partial", a.id));
    let outcome = dirs
        .ensure(to, to)
        .map_err(|e| e.to_string())
        .and_then(|()| fetch_checked(backend, a, read, ticket, &tmp));
    let mut results: Vec<MemberResult>;
    match outcome {
        Err(e) => results = vec![Err(e); a.members.len()],
        Ok((size, tree)) => {
            let mut resolved = Vec::new();
            let mut links = Vec::new();
            results = if read.tar {
                split_tar(&tmp, to, dirs, a, read, &mut resolved, &mut links)
            } else {
                whole_file(&tmp, to, dirs, a, size, tree, &mut resolved)
            };
            learned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Learned {
                    archive: (a.id, a.remote_id.clone()),
                    resolved,
                    links,
                    measured: (size, tree),
                });
        }
    }
    let _ = fs::remove_file(&tmp);
    results.resize(a.members.len(), Err("not read".into()));
    results
}

/// Gives a verified file its mode and mtime and puts it in place (and at its other places).
fn settle(tmp: &Path, to: &Path, dirs: &DirCache, m: &Member) -> MemberResult {
    let first = &m.dests[0];
    let file = File::options()
        .write(true)
        .open(tmp)
        .map_err(|e| e.to_string())?;
    file.set_permissions(fs::Permissions::from_mode(first.mode & 0o7777))
        .and_then(|()| file.set_modified(system_time(first.mtime_ns)))
        .map_err(|e| e.to_string())?;
    drop(file);
    if let Some(parent) = first.path.parent() {
        dirs.ensure(to, parent).map_err(|e| e.to_string())?;
    }
    place(to, dirs, tmp, m)
}

/// A file archive: the download is the file (every member is the same bytes).
fn whole_file(
    tmp: &Path,
    to: &Path,
    dirs: &DirCache,
    a: &ArchivePlan,
    size: u64,
    tree: Hash32,
    resolved: &mut Vec<LegacyResolved>,
) -> Vec<MemberResult> {
    resolved.push(LegacyResolved {
        member: Vec::new(),
        offset: 0,
        size,
        hash: tree,
    });
    let mut out = Vec::new();
    for m in &a.members {
        if m.size != size {
            out.push(Err(format!(
                "legacy archive {} has {size} bytes, the database says {}: not restored",
                a.remote_id, m.size
            )));
            continue;
        }
        let dest_tmp = partial_name(&m.dests[0].path);
        let copied = m.dests[0]
            .path
            .parent()
            .map_or(Ok(()), |p| dirs.ensure(to, p))
            .and_then(|()| fs::copy(tmp, &dest_tmp).map(|_| ()))
            .map_err(|e| e.to_string());
        let r = copied.and_then(|()| settle(&dest_tmp, to, dirs, m));
        if r.is_err() {
            let _ = fs::remove_file(&dest_tmp);
        }
        out.push(r);
    }
    out
}

/// Each spelling of each member name the database places in the tar → its index in `all`. A
/// name as the database spells it (UTF-8) wins over a code-page spelling of another.
fn spellings(all: &[(Vec<u8>, u64)]) -> HashMap<Vec<u8>, usize> {
    let mut out = HashMap::with_capacity(all.len());
    for (i, (name, _)) in all.iter().enumerate() {
        out.entry(name.clone()).or_insert(i);
    }
    for (i, (name, _)) in all.iter().enumerate() {
        for s in name_spellings(name).into_iter().skip(1) {
            out.entry(s).or_insert(i);
        }
    }
    out
}

/// A tar: each member found by name is written (when wanted) and hashed; a hard link is the
/// member it names; a symlink is made (when wanted) and noted in `links`.
fn split_tar(
    tmp: &Path,
    to: &Path,
    dirs: &DirCache,
    a: &ArchivePlan,
    read: &LegacyRead,
    resolved: &mut Vec<LegacyResolved>,
    links: &mut Vec<LegacySymlink>,
) -> Vec<MemberResult> {
    let by_spelling = spellings(&read.all);
    let mut wanted_at: HashMap<&[u8], usize> = HashMap::new();
    for (i, name) in read.names.iter().enumerate() {
        wanted_at.entry(name.as_slice()).or_insert(i);
    }
    let mut results: Vec<Option<MemberResult>> = vec![None; a.members.len()];
    let walked = for_each_member(tmp, |tm, data| {
        let Some((name, size)) = by_spelling.get(tm.name).map(|&k| &read.all[k]) else {
            return Ok(());
        };
        let wanted = wanted_at
            .get(name.as_slice())
            .copied()
            .filter(|i| results[*i].is_none());
        match tm.kind {
            MemberKind::Symlink(target) => {
                if let Some(i) = wanted {
                    results[i] = Some(make_symlink(target, to, dirs, &a.members[i]));
                }
                links.push(LegacySymlink {
                    member: name.clone(),
                    offset: tm.offset,
                    target: target.to_vec(),
                });
            }
            MemberKind::DanglingLink(target) => {
                if let Some(i) = wanted {
                    results[i] = Some(Err(format!(
                        "tar member {} of legacy archive {} is a hard link to {}, which the tar does not hold before it: not restored",
                        String::from_utf8_lossy(tm.name),
                        a.remote_id,
                        String::from_utf8_lossy(target)
                    )));
                }
            }
            MemberKind::File => {
                let hash = match wanted {
                    Some(i) => {
                        let (hash, r) = extract(tm, data, to, dirs, &a.members[i], &a.remote_id);
                        results[i] = Some(r);
                        hash
                    }
                    None => hash_only(data)?,
                };
                if let Some(hash) = hash.filter(|_| tm.size == *size) {
                    resolved.push(LegacyResolved {
                        member: name.clone(),
                        offset: tm.offset,
                        size: tm.size,
                        hash,
                    });
                }
            }
        }
        Ok(())
    });
    results
        .into_iter()
        .zip(&read.names)
        .map(|(r, name)| match (r, &walked) {
            (Some(r), _) => r,
            (None, Err(e)) => Err(format!("legacy tar {} is unreadable: {e}", a.remote_id)),
            (None, Ok(())) => Err(format!(
                "tar member {} is not in legacy archive {}, where the legacy database places it: not restored",
                String::from_utf8_lossy(name),
                a.remote_id
            )),
        })
        .collect()
}

/// A symlink member: the symlink at each of the member's places, with the row's mtime (the
/// script's row gives its target's size and mtime). Made beside, then renamed into place.
fn make_symlink(target: &[u8], to: &Path, dirs: &DirCache, m: &Member) -> MemberResult {
    for d in &m.dests {
        let tmp = partial_name(&d.path);
        let made = (|| -> io::Result<()> {
            if let Some(parent) = d.path.parent() {
                dirs.ensure(to, parent)?;
            }
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(OsStr::from_bytes(target), &tmp)?;
            let t = file_time(d.mtime_ns);
            let _ = filetime::set_symlink_file_times(&tmp, t, t);
            fs::rename(&tmp, &d.path)
        })();
        if let Err(e) = made {
            let _ = fs::remove_file(&tmp);
            return Err(format!("{}: {e}", d.path.display()));
        }
    }
    Ok(())
}

fn hash_only(data: &mut dyn Read) -> io::Result<Option<Hash32>> {
    let mut h = TreeHasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = data.read(&mut buf)?;
        if n == 0 {
            return Ok(Some(h.finish()));
        }
        h.update(&buf[..n]);
    }
}

/// Writes one member to its partial file while hashing it; then checks its size and puts it
/// in place. Returns its hash (when read through) and the member's result.
fn extract(
    tm: &TarMember<'_>,
    data: &mut dyn Read,
    to: &Path,
    dirs: &DirCache,
    m: &Member,
    remote_id: &str,
) -> (Option<Hash32>, MemberResult) {
    let dest_tmp: PathBuf = partial_name(&m.dests[0].path);
    let written = (|| -> io::Result<Hash32> {
        if let Some(parent) = m.dests[0].path.parent() {
            dirs.ensure(to, parent)?;
        }
        let mut w = Hashing {
            out: io::BufWriter::new(File::create(&dest_tmp)?),
            sha1: sha1::Sha1::new(),
            tree: TreeHasher::new(),
        };
        io::copy(data, &mut w)?;
        w.flush()?;
        Ok(w.tree.finish())
    })();
    let result = match &written {
        Err(e) => Err(e.to_string()),
        Ok(_) if tm.size != m.size => Err(format!(
            "tar member {} of legacy archive {remote_id} has {} bytes, the database says {}: not restored",
            String::from_utf8_lossy(tm.name),
            tm.size,
            m.size
        )),
        Ok(_) => settle(&dest_tmp, to, dirs, m),
    };
    if result.is_err() {
        let _ = fs::remove_file(&dest_tmp);
    }
    (written.ok(), result)
}

/// Records in the catalog what reading legacy archives taught.
pub(super) fn record(learned: Vec<Learned>, catalog: &mut Catalog) -> Result<()> {
    for l in learned {
        catalog.legacy_resolve(
            (l.archive.0, &l.archive.1),
            &l.resolved,
            &l.links,
            Some(l.measured),
        )?;
    }
    Ok(())
}

fn opt_display<S: Serializer>(v: &Option<Hash32>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(h) => s.collect_str(h),
        None => s.serialize_none(),
    }
}

fn names<S: Serializer>(v: &[Vec<u8>], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|n| String::from_utf8_lossy(n).into_owned()))
}
