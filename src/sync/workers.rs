//! The worker threads of a sync: readers hash (and, for small files, keep) file contents, and
//! uploaders store archives in the backend. They take jobs from channels and report every
//! outcome to the coordinator over one event channel; they decide nothing themselves.

use super::plan::ToRead;
use super::{FinishedBundle, ReadFile, read_file};
use crate::backend::{Backend, ObjectKind, PutMeta};
use crate::catalog::NewContent;
use crate::error::Result;
use crate::hash::Hash32;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

/// Files up to this size are read into memory once and bundled from those bytes.
const KEEP_IN_MEMORY: u64 = 8 << 20;

/// An archive to store.
pub(super) enum Upload {
    File {
        source: PathBuf,
        hash: Hash32,
        size: u64,
    },
    Bundle {
        bundle: FinishedBundle,
        members: Vec<NewContent>,
    },
}

impl Upload {
    pub(super) fn size(&self) -> u64 {
        match self {
            Upload::File { size, .. } => *size,
            Upload::Bundle { bundle, .. } => bundle.size,
        }
    }

    fn meta(&self, profile: &str) -> PutMeta {
        let (kind, tree_hash) = match self {
            Upload::File { hash, .. } => (ObjectKind::File, *hash),
            Upload::Bundle { bundle, .. } => (ObjectKind::Bundle, bundle.tree_hash),
        };
        PutMeta {
            kind,
            tree_hash,
            size: self.size(),
            profile: profile.to_string(),
            created: super::now_secs(),
            age_header: None,
        }
    }

    fn source(&self) -> &std::path::Path {
        match self {
            Upload::File { source, .. } => source,
            Upload::Bundle { bundle, .. } => &bundle.path,
        }
    }
}

/// A file to read: the planned file and where it is.
pub(super) struct ReadJob {
    pub(super) job: ToRead,
    pub(super) abs: PathBuf,
}

/// What the workers report.
pub(super) enum Event {
    /// A batch of reads, each job with its outcome.
    Read(Vec<(ReadJob, std::result::Result<ReadFile, String>)>),
    Uploaded(Upload, Result<String>),
}

/// Runs `work` on `n` threads of scope `s`, each taking jobs from the shared `jobs` until it is
/// closed, and sending each outcome to `events` (stopping when nobody listens).
fn spawn_pool<'scope, J, F>(
    s: &'scope std::thread::Scope<'scope, '_>,
    n: usize,
    jobs: Receiver<J>,
    events: &SyncSender<Event>,
    work: F,
) where
    J: Send + 'scope,
    F: Fn(J) -> Event + Send + Sync + 'scope,
{
    let jobs = Arc::new(Mutex::new(jobs));
    let work = Arc::new(work);
    for _ in 0..n.max(1) {
        let jobs = Arc::clone(&jobs);
        let events = events.clone();
        let work = Arc::clone(&work);
        s.spawn(move || {
            loop {
                let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                    Ok(j) => j,
                    Err(_) => return,
                };
                if events.send(work(job)).is_err() {
                    return;
                }
            }
        });
    }
}

/// The job channels the coordinator feeds; dropping them stops the workers.
pub(super) struct Workers {
    pub(super) read: Sender<Vec<ReadJob>>,
    pub(super) upload: Sender<Upload>,
}

/// Starts `readers` reader threads and `uploaders` uploader threads in scope `s`.
pub(super) fn start<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    readers: usize,
    uploaders: usize,
    backend: &'scope dyn Backend,
    profile: &'scope str,
    events: &SyncSender<Event>,
) -> Workers {
    let (read_tx, read_rx) = std::sync::mpsc::channel::<Vec<ReadJob>>();
    let (upload_tx, upload_rx) = std::sync::mpsc::channel::<Upload>();
    spawn_pool(s, readers, read_rx, events, |batch: Vec<ReadJob>| {
        let done = batch
            .into_iter()
            .map(|job| {
                let result = read_file(&job.abs, KEEP_IN_MEMORY);
                (job, result)
            })
            .collect();
        Event::Read(done)
    });
    spawn_pool(s, uploaders, upload_rx, events, move |job: Upload| {
        let result = backend.put(&job.meta(profile), job.source());
        Event::Uploaded(job, result)
    });
    Workers {
        read: read_tx,
        upload: upload_tx,
    }
}
