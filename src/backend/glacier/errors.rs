//! Errors of the Glacier backend: SDK errors mapped to kinds, naming the vault and region, and
//! one clear line (no secrets) for refused credentials.

use super::BACKEND;
use crate::backend::aws;
use crate::error::{BackendErrorKind, Error};
use aws_sdk_glacier::error::{ProvideErrorMetadata, SdkError};
use std::sync::Arc;

/// A `NotFound` backend error turned into one of `kind` with more words; other errors as they
/// are.
pub(super) fn not_found_as(err: Error, kind: BackendErrorKind, more: &str) -> Error {
    match err {
        Error::Backend {
            backend,
            kind: BackendErrorKind::NotFound,
            message,
        } => Error::Backend {
            backend,
            kind,
            message: format!("{message}{more}"),
        },
        other => other,
    }
}

/// Names the vault and region in errors; maps SDK errors to kinds.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) vault: Arc<str>,
    pub(super) region: Arc<str>,
    /// The endpoint requests go to, named when it does not answer.
    pub(super) endpoint: Arc<str>,
}

impl Ctx {
    pub(super) fn err(&self, kind: BackendErrorKind, msg: impl Into<String>) -> Error {
        Error::backend(BACKEND, kind, msg)
    }

    pub(super) fn map<E, R>(&self, what: &str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().unwrap_or_default().to_string();
        let mapped = aws::map_sdk_error_at(BACKEND, what, Some(&self.endpoint), err);
        let Error::Backend { kind, message, .. } = mapped else {
            return mapped;
        };
        let (kind, message) = match code.as_str() {
            // moto's answer for a missing vault.
            "VaultNotFound" => (BackendErrorKind::NotFound, message),
            // Expedited capacity runs out now and then; later it is back.
            "InsufficientCapacityException" => (BackendErrorKind::Transient, message),
            "NoLongerSupportedException" => (
                BackendErrorKind::Permanent,
                format!(
                    "{message} (Glacier vaults take no new customers since 2025-12-15: use an existing vault, or the s3 backend with an archive storage class)"
                ),
            ),
            "PolicyEnforcedException" => (
                BackendErrorKind::Permanent,
                format!("{message} (the vault's data retrieval policy refused it)"),
            ),
            _ => (kind, message),
        };
        if kind == BackendErrorKind::Auth {
            return self.err(kind, self.auth_line(what, &code));
        }
        self.err(kind, message)
    }

    /// One clear line for refused credentials; no secrets, no server text that might echo them.
    fn auth_line(&self, what: &str, code: &str) -> String {
        format!(
            "{what}: access to Glacier vault {} in region {} was refused{}: check the access key and secret key (settings aws_access_key/aws_secret_key, the environment, or the aws_profile), that they have not expired, that the region is right, and that their IAM policy allows the glacier actions on this vault",
            self.vault,
            self.region,
            if code.is_empty() {
                String::new()
            } else {
                format!(" ({code})")
            }
        )
    }
}
