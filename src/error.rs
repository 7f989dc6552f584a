//! The library's error type.
//!
//! Policy: every error names the thing it is about (a file, a settings key, a backend object)
//! and, where it helps, what to do. Errors never carry secrets. Backend errors say whether a
//! retry can help ([`BackendErrorKind::Transient`]); the retry wrapper only retries those.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// Throttling, 5xx, timeouts, connection resets: a retry may help.
    Transient,
    /// The object (or vault, bucket, job) does not exist.
    NotFound,
    /// The object is in a cold class and must be warmed up (restored) before it can be read.
    NotWarm,
    /// Wrong or expired credentials, or access denied.
    Auth,
    /// A conditional write found an object already there.
    AlreadyExists,
    /// What was read or written does not match its checksum.
    Corrupt,
    /// Anything else that retrying will not fix.
    Permanent,
}

/// An error of the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad settings file: names the file, the line (0 when not tied to a line) and the key.
    #[error("{file}:{line}: {message}")]
    Settings {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// An I/O error on a named local path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A catalog (SQLite) error.
    #[error("catalog {}: {message}", path.display())]
    Catalog { path: PathBuf, message: String },
    /// A backend error.
    #[error("{backend}: {message}")]
    Backend {
        backend: String,
        kind: BackendErrorKind,
        message: String,
    },
    /// Another process holds the profile's lock.
    #[error("{0}")]
    Locked(String),
    /// Bad usage or input that is not a settings-file problem.
    #[error("{0}")]
    Usage(String),
    /// A restored or re-read file does not match its recorded hash.
    #[error("{0}")]
    Integrity(String),
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Backend`].
    pub fn backend(backend: &str, kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Error::Backend {
            backend: backend.to_string(),
            kind,
            message: message.into(),
        }
    }

    /// The backend error kind, when this is a backend error.
    pub fn backend_kind(&self) -> Option<BackendErrorKind> {
        match self {
            Error::Backend { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether a retry can help.
    pub fn is_transient(&self) -> bool {
        self.backend_kind() == Some(BackendErrorKind::Transient)
    }
}

/// A short, lowercase description of an I/O error without the "(os error N)" suffix.
pub fn io_message(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "not found".into(),
        PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}
