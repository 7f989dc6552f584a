//! Incomplete multipart uploads: finding the one a `put` can resume and the parts it holds,
//! and aborting uploads, one at a time or all that crashed runs left ([`Backend::cleanup`]).
//!
//! [`Backend::cleanup`]: crate::backend::Backend::cleanup

use super::S3Backend;
use crate::backend::parse_object_key;
use crate::error::{BackendErrorKind, Result};
use crate::log;
use aws_sdk_s3::types::ChecksumAlgorithm;
use std::collections::HashMap;

impl S3Backend {
    /// The newest incomplete upload of `key` that this backend could have started, with the
    /// parts it holds. Resuming only saves work: when an upload cannot be resumed for a reason
    /// a retry will not fix (gone meanwhile, a listing the SDK cannot read), a new one is
    /// started, and [`Backend::cleanup`] later aborts the old one.
    pub(super) async fn resumable(
        &self,
        key: &str,
        class: &str,
    ) -> Result<Option<(String, HashMap<i32, StoredPart>)>> {
        let newest = self
            .list_uploads(key)
            .await?
            .into_iter()
            .filter(|u| {
                u.key == key && u.sha256 && u.storage_class.as_deref().is_none_or(|c| c == class)
            })
            .max_by_key(|u| u.initiated);
        let Some(upload) = newest else {
            return Ok(None);
        };
        match self.list_parts(key, &upload.upload_id).await {
            Ok(stored) => {
                log::debug(&format!(
                    "{}: resuming an upload with {} part(s) stored",
                    self.url(key),
                    stored.len()
                ));
                Ok(Some((upload.upload_id, stored)))
            }
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                log::debug(&format!("{e}; starting a new upload"));
                Ok(None)
            }
        }
    }

    /// Incomplete multipart uploads whose key starts with `prefix`.
    async fn list_uploads(&self, prefix: &str) -> Result<Vec<Upload>> {
        let mut uploads = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let out = {
                let _slot = self.limiter.acquire().await;
                self.client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_key_marker(markers.0.take())
                    .set_upload_id_marker(markers.1.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("listing incomplete uploads under", prefix, e))?
            };
            for u in out.uploads() {
                let (Some(key), Some(upload_id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                uploads.push(Upload {
                    key: key.to_string(),
                    upload_id: upload_id.to_string(),
                    sha256: u.checksum_algorithm() == Some(&ChecksumAlgorithm::Sha256),
                    storage_class: u.storage_class().map(|c| c.as_str().to_string()),
                    initiated: u.initiated().map(|t| t.as_nanos()),
                });
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            markers = (
                out.next_key_marker().map(str::to_string),
                out.next_upload_id_marker().map(str::to_string),
            );
            if markers.0.is_none() && markers.1.is_none() {
                break;
            }
        }
        Ok(uploads)
    }

    /// Parts already stored in an upload, by part number.
    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<HashMap<i32, StoredPart>> {
        let mut parts = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = {
                let _slot = self.limiter.acquire().await;
                self.client
                    .list_parts()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .set_part_number_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("listing the parts of", key, e))?
            };
            for p in out.parts() {
                let (Some(number), Some(size), Some(etag)) = (p.part_number(), p.size(), p.e_tag())
                else {
                    continue;
                };
                parts.insert(
                    number,
                    StoredPart {
                        size: size.max(0) as u64,
                        etag: etag.to_string(),
                        checksum: p.checksum_sha256().map(str::to_string),
                    },
                );
            }
            marker = out.next_part_number_marker().map(str::to_string);
            if out.is_truncated() != Some(true) || marker.is_none() {
                break;
            }
        }
        Ok(parts)
    }

    /// Aborts an upload; failures are only logged (cleanup catches what is left).
    pub(super) async fn abort_upload(&self, key: &str, upload_id: &str) {
        if let Err(e) = self.try_abort_upload(key, upload_id).await {
            log::warn(&e.to_string());
        }
    }

    pub(super) async fn try_abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        self.count(|s| s.abort_multipart += 1);
        let answer = {
            let _slot = self.limiter.acquire().await;
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await
        };
        match answer {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.sdk_err("aborting the upload of", key, e);
                match err.backend_kind() {
                    Some(BackendErrorKind::NotFound) => Ok(()),
                    _ => Err(err),
                }
            }
        }
    }

    pub(super) async fn cleanup_async(&self) -> Result<()> {
        let mut aborted = 0;
        for u in self.list_uploads(&self.prefix).await? {
            // Only uploads of keys glaciersync makes: the prefix may be shared.
            let ours = u
                .key
                .strip_prefix(&self.prefix)
                .is_some_and(|id| parse_object_key(id).is_some());
            if ours {
                self.try_abort_upload(&u.key, &u.upload_id).await?;
                aborted += 1;
            }
        }
        if aborted > 0 {
            log::verbose(&format!(
                "s3://{}/{}: aborted {aborted} incomplete upload(s)",
                self.bucket, self.prefix
            ));
        }
        Ok(())
    }
}

/// An incomplete multipart upload as listed.
struct Upload {
    key: String,
    upload_id: String,
    sha256: bool,
    storage_class: Option<String>,
    initiated: Option<i128>,
}

/// A part already stored in an incomplete upload.
pub(super) struct StoredPart {
    pub(super) size: u64,
    pub(super) etag: String,
    /// Its SHA-256 (base64), when the service lists it.
    pub(super) checksum: Option<String>,
}

impl StoredPart {
    /// Whether this part holds the local part's bytes: same size and SHA-256, or, where the
    /// service lists no checksum, an ETag equal to the local part's MD5.
    pub(super) fn matches(&self, len: u64, checksum: &str, md5_hex: Option<&str>) -> bool {
        self.size == len
            && match &self.checksum {
                Some(c) => c == checksum,
                None => {
                    md5_hex.is_some_and(|m| self.etag.trim_matches('"').eq_ignore_ascii_case(m))
                }
            }
    }
}
