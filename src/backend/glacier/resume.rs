//! Unfinished multipart uploads: finding one of the same content and part size to resume,
//! with the parts Glacier holds; the set of uploads this process is writing (never resumed
//! twice, never cleaned up); aborting, one upload or those crashed runs left.

use super::description::{is_our_description, parse_description};
use super::{GlacierBackend, short};
use crate::backend::PutMeta;
use crate::error::{BackendErrorKind, Result};
use crate::hash::Hash32;
use crate::log;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Removes an upload id from the active set when dropped.
pub(super) struct ActiveUpload {
    set: Arc<Mutex<HashSet<String>>>,
    pub(super) id: String,
}

impl Drop for ActiveUpload {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// A multipart upload as ListMultipartUploads shows it.
struct UploadInfo {
    id: String,
    description: Option<String>,
    part_size: u64,
}

/// The parts of an upload, by start offset, when they fit the layout of an archive of `size`
/// bytes in parts of `part_size`.
pub(super) fn parts_fit(
    parts: &[(String, String)],
    part_size: u64,
    size: u64,
) -> Option<HashMap<u64, Hash32>> {
    let mut out = HashMap::new();
    for (range, hash) in parts {
        let (a, b) = range.split_once('-')?;
        let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a % part_size != 0 || a >= size || b + 1 != (a + part_size).min(size) {
            return None;
        }
        out.insert(a, Hash32::from_hex(hash.trim())?);
    }
    Some(out)
}

impl GlacierBackend {
    fn list_uploads(&self) -> Result<Vec<UploadInfo>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .call(
                    self.client
                        .list_multipart_uploads()
                        .vault_name(&*self.ctx.vault)
                        .set_marker(marker.clone())
                        .send(),
                )
                .map_err(|e| self.ctx.map("listing multipart uploads", e))?;
            for u in page.uploads_list() {
                if let Some(id) = u.multipart_upload_id() {
                    out.push(UploadInfo {
                        id: id.to_string(),
                        description: u.archive_description().map(str::to_string),
                        part_size: u.part_size_in_bytes().max(0) as u64,
                    });
                }
            }
            match page.marker() {
                Some(m) if !m.is_empty() && Some(m) != marker.as_deref() => {
                    marker = Some(m.to_string())
                }
                _ => return Ok(out),
            }
        }
    }

    /// (range, tree hash) of every uploaded part.
    fn list_parts(&self, upload_id: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .call(
                    self.client
                        .list_parts()
                        .vault_name(&*self.ctx.vault)
                        .upload_id(upload_id)
                        .set_marker(marker.clone())
                        .send(),
                )
                .map_err(|e| self.ctx.map("listing the parts of a multipart upload", e))?;
            for p in page.parts() {
                if let (Some(r), Some(h)) = (p.range_in_bytes(), p.sha256_tree_hash()) {
                    out.push((r.to_string(), h.to_string()));
                }
            }
            match page.marker() {
                Some(m) if !m.is_empty() && Some(m) != marker.as_deref() => {
                    marker = Some(m.to_string())
                }
                _ => return Ok(out),
            }
        }
    }

    pub(super) fn mark_active(&self, id: &str) -> Option<ActiveUpload> {
        let mut set = self
            .active_uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !set.insert(id.to_string()) {
            return None;
        }
        Some(ActiveUpload {
            set: self.active_uploads.clone(),
            id: id.to_string(),
        })
    }

    /// An earlier upload of the same content with the same part size, and its parts.
    pub(super) fn find_resumable(
        &self,
        meta: &PutMeta,
        desc: &str,
        part_size: u64,
    ) -> Result<Option<(ActiveUpload, HashMap<u64, Hash32>)>> {
        let want = parse_description(desc).expect("our descriptions parse");
        for upload in self.list_uploads()? {
            let Some(theirs) = upload.description.as_deref().and_then(parse_description) else {
                continue;
            };
            if upload.part_size != part_size
                || theirs.kind != want.kind
                || theirs.tree_hash != want.tree_hash
                || theirs.profile != want.profile
            {
                continue;
            }
            let Some(guard) = self.mark_active(&upload.id) else {
                continue; // another thread of ours is writing it
            };
            match self.list_parts(&upload.id) {
                Ok(parts) => match parts_fit(&parts, part_size, meta.size) {
                    Some(map) => return Ok(Some((guard, map))),
                    None => log::verbose(&format!(
                        "glacier: not resuming multipart upload {}: its parts do not fit",
                        short(&upload.id)
                    )),
                },
                Err(e) if e.backend_kind() == Some(BackendErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    pub(super) async fn abort_upload(&self, upload_id: &str) -> Result<()> {
        let answer = self
            .limited(
                self.client
                    .abort_multipart_upload()
                    .vault_name(&*self.ctx.vault)
                    .upload_id(upload_id)
                    .send(),
            )
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = self.ctx.map("aborting a multipart upload", e);
                if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The work of [`Backend::cleanup`](crate::backend::Backend::cleanup), documented there.
    pub(super) fn cleanup_uploads(&self) -> Result<()> {
        let active = self
            .active_uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for upload in self.list_uploads()? {
            if active.contains(&upload.id)
                || !upload
                    .description
                    .as_deref()
                    .is_some_and(is_our_description)
            {
                continue;
            }
            let theirs = upload.description.as_deref().and_then(parse_description);
            if let (Some(ours), Some(theirs)) = (&self.cleanup_profile, theirs)
                && theirs.profile != *ours
            {
                continue;
            }
            self.runtime.block_on(self.abort_upload(&upload.id))?;
            log::verbose(&format!(
                "glacier: aborted the unfinished multipart upload {}",
                short(&upload.id)
            ));
        }
        Ok(())
    }
}
