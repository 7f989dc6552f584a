//! The plan of a restore: what each archive must give, what cold storage must thaw first, what
//! is already in place, and what cannot be restored. Planning reads the catalog and the target
//! directory (to verify files already there by hash), asks the backend only pure questions
//! (`needs_warm_up`, `retrieval_range`) and writes nothing.

use super::dest::{hash_existing, safe_dest};
use super::{RestoreOptions, snapshot_at};
use crate::backend::{Backend, ByteRange, ObjectKind, Tier};
use crate::catalog::{ArchiveKind, ArchiveRow, Catalog, EntryKind, LocatedVersion};
use crate::error::Result;
use crate::hash::Hash32;
use crate::report::{Exit, Report};
use crate::select::Selection;
use crate::sync::FileError;
use crate::units::bytes;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// One place an entry is restored to, with the mode and mtime it gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dest {
    /// `<tree>/<path>` as `ls` prints it.
    pub file: String,
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    pub mode: u32,
    pub mtime_ns: i64,
}

/// One content to extract from an archive, written to one or more destinations (identical
/// files are downloaded once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub offset: u64,
    pub size: u64,
    #[serde(serialize_with = "display")]
    pub hash: Hash32,
    pub dests: Vec<Dest>,
}

/// A retrieval an earlier run requested, as the catalog remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requested {
    pub ticket: String,
    pub tier: String,
    pub requested_at: i64,
}

/// What cold storage must thaw before an archive's span can be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thaw {
    /// The range the backend retrieves for the span (Glacier aligns it to megabytes).
    pub range: ByteRange,
    /// That range is the whole archive: the retrieval asks for no range.
    pub whole: bool,
    /// The retrieval already requested, when an earlier run asked for it.
    pub requested: Option<Requested>,
}

/// What one archive must give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivePlan {
    /// The archive's id in the catalog.
    pub id: i64,
    /// The backend's id of the object.
    pub remote_id: String,
    pub kind: ObjectKind,
    pub size: u64,
    /// When it was stored: with the catalog's storage-class history, the class it is in.
    pub stored_at: i64,
    /// From the first member's start to the last member's end: the bytes downloaded.
    pub span: ByteRange,
    /// Sorted by offset.
    pub members: Vec<Member>,
    /// `None`: readable now.
    pub thaw: Option<Thaw>,
    /// An archive of the 2013 script read whole and split by member name (its members are
    /// known only by placeholder until then; see `restore/legacy.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<super::LegacyRead>,
}

/// A symlink to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub file: String,
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    #[serde(serialize_with = "lossy_bytes")]
    pub target: Vec<u8>,
    pub mtime_ns: i64,
}

/// The plan's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanTotals {
    /// Files and symlinks selected.
    pub selected: u64,
    /// Files already in place (verified by hash).
    pub already_present: u64,
    /// Files to write from downloads, and their bytes.
    pub files_to_restore: u64,
    pub bytes_to_restore: u64,
    /// Archives to read, and the bytes downloaded from them (their spans).
    pub archives: u64,
    pub bytes_to_download: u64,
    /// Objects (or ranges of them) that must be thawed first, and the bytes retrieved.
    pub objects_to_thaw: u64,
    pub bytes_to_thaw: u64,
    /// Bytes that ranged retrieval spares (whole archives minus the ranges retrieved).
    pub bytes_saved_by_ranges: u64,
    /// Thaws an earlier run already requested.
    pub already_requested: u64,
    /// Backend requests: one download per archive with bytes to read, one warm-up per thaw.
    pub download_requests: u64,
    pub requests: u64,
}

/// Everything a restore will do, decided before anything is done, with what it would cost.
#[derive(Debug, Clone, Serialize)]
pub struct RestorePlan {
    /// Profile name.
    pub name: String,
    pub backend: String,
    pub snapshot: i64,
    /// Planned for `--dry-run`: printed, never executed.
    pub dry_run: bool,
    #[serde(serialize_with = "lossy_path")]
    pub to: PathBuf,
    pub tier: Tier,
    pub overwrite: bool,
    /// Archives downloaded at once.
    #[serde(skip)]
    pub concurrency: usize,
    #[serde(flatten)]
    pub totals: PlanTotals,
    /// Ordered by catalog id.
    pub archives: Vec<ArchivePlan>,
    /// Files already in place: only their mode and mtime are set.
    pub in_place: Vec<Dest>,
    pub links: Vec<Link>,
    /// Deepest first, so each directory's mtime is set after its contents.
    pub dirs: Vec<Dest>,
    /// Entries that will not be restored, and why.
    pub errors: Vec<FileError>,
    /// What thawing and downloading would cost (set by [`RestorePlan::price`]).
    pub quote: Option<Box<crate::cost::RestoreQuote>>,
}

impl RestorePlan {
    /// Prices the plan: the thaws not yet requested and every byte to download, with the
    /// plan's tier, each archive at the prices of the place it was stored in. On S3 that is
    /// the class `history` (the catalog's [`storage_classes`](Catalog::storage_classes)) gives
    /// for its `stored_at`, else `current` (the class data goes to now).
    pub fn price(&mut self, history: &[(i64, String)], current: Option<&str>) {
        let mut uses: Vec<crate::cost::PlaceUse> = Vec::new();
        for a in &self.archives {
            let thaw = a.thaw.as_ref().filter(|th| th.requested.is_none());
            if a.span.is_empty() && thaw.is_none() {
                continue;
            }
            let class = match a.kind {
                ObjectKind::Catalog | ObjectKind::CatalogDelta => Some("STANDARD"),
                ObjectKind::File | ObjectKind::Bundle => {
                    crate::catalog::storage_class_at(history, a.stored_at).or(current)
                }
            };
            let place = crate::cost::place(&self.backend, class);
            let i = match uses.iter().position(|u| u.place == place) {
                Some(i) => i,
                None => {
                    uses.push(crate::cost::PlaceUse {
                        place,
                        ..Default::default()
                    });
                    uses.len() - 1
                }
            };
            let u = &mut uses[i];
            if let Some(th) = thaw {
                u.bytes_to_thaw += th.range.len();
                u.thaw_requests += 1;
            }
            u.bytes_to_download += a.span.len();
            u.reads += u64::from(!a.span.is_empty());
        }
        uses.sort_by(|a, b| a.place.cmp(&b.place));
        self.quote = Some(Box::new(crate::cost::restore_quote(
            &self.backend,
            self.tier.as_str(),
            uses,
        )));
    }
}

impl Report for RestorePlan {
    /// 1 when some selected entries cannot be restored.
    fn exit_code(&self) -> Exit {
        if self.errors.is_empty() {
            Exit::Ok
        } else {
            Exit::Partial
        }
    }
}

/// Plans the restore of `opts`: reads the catalog and what is in the target directory.
pub fn plan(
    opts: &RestoreOptions,
    backend: &dyn Backend,
    catalog: &Catalog,
) -> Result<RestorePlan> {
    let args = &opts.args;
    let at = args.at.as_deref().map(crate::timespec::parse).transpose()?;
    let snapshot = snapshot_at(catalog, at, &opts.profile)?;
    let selection = Selection::new(&args.patterns)?;
    let mut entries = Entries::new(&args.to, args.overwrite);
    catalog.for_each_version_at(snapshot.id, |v| {
        if selection.matches(&v.rec.tree, &v.rec.path) {
            entries.add(v);
        }
        Ok(())
    })?;
    let archives = std::mem::take(&mut entries.per_archive)
        .into_values()
        .map(|(archive, members)| archive_plan(archive, members, backend, catalog))
        .collect::<Result<Vec<_>>>()?;
    entries
        .dirs
        .sort_by_key(|d| std::cmp::Reverse(d.path.as_os_str().len()));
    let mut plan = RestorePlan {
        name: opts.profile.clone(),
        backend: backend.name().to_string(),
        snapshot: snapshot.id,
        dry_run: args.dry_run,
        to: args.to.clone(),
        tier: args.tier,
        overwrite: args.overwrite,
        concurrency: opts.concurrency,
        totals: PlanTotals::default(),
        archives,
        in_place: entries.in_place,
        links: entries.links,
        dirs: entries.dirs,
        errors: entries.errors,
        quote: None,
    };
    plan.totals = PlanTotals::of(&plan, entries.selected);
    Ok(plan)
}

/// The selected entries, sorted by what they need.
struct Entries<'a> {
    to: &'a Path,
    overwrite: bool,
    selected: u64,
    /// Archive id → (archive, content hash → member).
    per_archive: BTreeMap<i64, (ArchiveRow, BTreeMap<Hash32, Member>)>,
    in_place: Vec<Dest>,
    links: Vec<Link>,
    dirs: Vec<Dest>,
    errors: Vec<FileError>,
}

impl<'a> Entries<'a> {
    fn new(to: &'a Path, overwrite: bool) -> Self {
        Entries {
            to,
            overwrite,
            selected: 0,
            per_archive: BTreeMap::new(),
            in_place: Vec::new(),
            links: Vec::new(),
            dirs: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn refuse(&mut self, v: &LocatedVersion, error: String) {
        self.errors.push(FileError {
            path: v.rec.display_path(),
            error,
        });
    }

    fn add(&mut self, v: LocatedVersion) {
        let path = match safe_dest(self.to, &v.rec.tree, &v.rec.path) {
            Ok(p) => p,
            Err(msg) => return self.refuse(&v, msg),
        };
        let dest = Dest {
            file: v.rec.display_path(),
            path,
            mode: v.rec.mode,
            mtime_ns: v.rec.mtime_ns,
        };
        match v.rec.kind {
            EntryKind::Dir => self.dirs.push(dest),
            EntryKind::Symlink => {
                self.selected += 1;
                self.links.push(Link {
                    file: dest.file,
                    path: dest.path,
                    target: v.rec.target.unwrap_or_default(),
                    mtime_ns: dest.mtime_ns,
                });
            }
            EntryKind::File => {
                self.selected += 1;
                self.add_file(dest, v);
            }
        }
    }

    fn add_file(&mut self, dest: Dest, v: LocatedVersion) {
        let hash = v.rec.hash.expect("files have hashes");
        match fs::symlink_metadata(&dest.path) {
            Ok(m)
                if m.is_file()
                    && m.len() == v.rec.size
                    && hash_existing(&dest.path) == Some(hash) =>
            {
                return self.in_place.push(dest);
            }
            Ok(_) if !self.overwrite => {
                let msg = format!(
                    "{} exists: not overwritten (use --overwrite)",
                    dest.path.display()
                );
                return self.refuse(&v, msg);
            }
            _ => {}
        }
        let Some((archive, offset)) = v.location.clone() else {
            let msg =
                "the catalog knows no archive holding this content (run `glaciersync verify`)";
            return self.refuse(&v, msg.into());
        };
        self.per_archive
            .entry(archive.id)
            .or_insert_with(|| (archive, BTreeMap::new()))
            .1
            .entry(hash)
            .or_insert_with(|| Member {
                offset,
                size: v.rec.size,
                hash,
                dests: Vec::new(),
            })
            .dests
            .push(dest);
    }
}

fn object_kind(k: ArchiveKind) -> ObjectKind {
    match k {
        ArchiveKind::File => ObjectKind::File,
        ArchiveKind::Bundle => ObjectKind::Bundle,
        ArchiveKind::Catalog => ObjectKind::Catalog,
        ArchiveKind::CatalogDelta => ObjectKind::CatalogDelta,
    }
}

/// One archive's members in offset order, its span, and what must be thawed to read it.
fn archive_plan(
    archive: ArchiveRow,
    members: BTreeMap<Hash32, Member>,
    backend: &dyn Backend,
    catalog: &Catalog,
) -> Result<ArchivePlan> {
    let mut members: Vec<Member> = members.into_values().collect();
    members.sort_by_key(|m| (m.offset, m.size));
    let legacy = super::legacy::plan_read(&archive, &members, catalog)?;
    let span = match &legacy {
        Some(_) => ByteRange {
            start: 0,
            end: archive.size,
        },
        None => ByteRange {
            start: members.first().map_or(0, |m| m.offset),
            end: members.iter().map(|m| m.offset + m.size).max().unwrap_or(0),
        },
    };
    let kind = object_kind(archive.kind);
    let thaw = if backend.needs_warm_up(kind) && !span.is_empty() {
        Some(thaw(&archive, span, backend, catalog)?)
    } else {
        None
    };
    Ok(ArchivePlan {
        id: archive.id,
        remote_id: archive.remote_id,
        kind,
        size: archive.size,
        stored_at: archive.stored_at,
        span,
        members,
        thaw,
        legacy,
    })
}

/// The retrieval `span` of `archive` needs, and the one already requested for it, if any.
fn thaw(
    archive: &ArchiveRow,
    span: ByteRange,
    backend: &dyn Backend,
    catalog: &Catalog,
) -> Result<Thaw> {
    let range = backend.retrieval_range(&archive.remote_id, archive.size, span);
    let requested = catalog
        .retrieval(archive.id, span.start, span.end)?
        .and_then(|r| {
            Some(Requested {
                ticket: r.ticket?,
                tier: r.tier,
                requested_at: r.requested_at,
            })
        });
    Ok(Thaw {
        range,
        whole: range.start == 0 && range.end >= archive.size,
        requested,
    })
}

impl PlanTotals {
    fn of(plan: &RestorePlan, selected: u64) -> PlanTotals {
        let mut t = PlanTotals {
            selected,
            already_present: plan.in_place.len() as u64,
            archives: plan.archives.len() as u64,
            ..PlanTotals::default()
        };
        for a in &plan.archives {
            for m in &a.members {
                t.files_to_restore += m.dests.len() as u64;
                t.bytes_to_restore += m.size * m.dests.len() as u64;
            }
            t.bytes_to_download += a.span.len();
            t.download_requests += u64::from(!a.span.is_empty());
            if let Some(thaw) = &a.thaw {
                t.objects_to_thaw += 1;
                t.bytes_to_thaw += thaw.range.len();
                t.bytes_saved_by_ranges += a.size.saturating_sub(thaw.range.len());
                t.already_requested += u64::from(thaw.requested.is_some());
            }
        }
        t.requests = t.download_requests + t.objects_to_thaw;
        t
    }
}

impl fmt::Display for RestorePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        write!(
            f,
            "{}{}: {} files selected, {} already in place; would thaw {} objects ({}) with the {} tier, {} spared by ranged retrieval, {} requests",
            self.name,
            if self.dry_run { " (dry run)" } else { "" },
            t.selected,
            t.already_present,
            t.objects_to_thaw,
            bytes(t.bytes_to_thaw),
            self.tier.as_str(),
            bytes(t.bytes_saved_by_ranges),
            t.requests
        )?;
        write!(
            f,
            "; would download {} from {} archives to restore {} files ({}) into {}, {} links and {} directories",
            bytes(t.bytes_to_download),
            t.archives,
            t.files_to_restore,
            bytes(t.bytes_to_restore),
            self.to.display(),
            self.links.len(),
            self.dirs.len()
        )?;
        if t.already_requested > 0 {
            write!(f, "; {} retrievals already requested", t.already_requested)?;
        }
        if !self.errors.is_empty() {
            write!(f, "; {} errors", self.errors.len())?;
        }
        if let Some(q) = &self.quote {
            write!(f, "; would cost {q}")?;
        }
        Ok(())
    }
}

fn lossy_path<S: Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&p.display())
}

fn lossy_bytes<S: Serializer>(b: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&String::from_utf8_lossy(b))
}

fn display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}
