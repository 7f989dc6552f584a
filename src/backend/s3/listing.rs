//! Listing the objects under the prefix, with kind, tree hash and time read from their keys;
//! the owner markers beside them.

use super::S3Backend;
use crate::backend::{OWNERS_DIR, ObjectInfo, is_owner_id, parse_object_key};
use crate::error::{BackendErrorKind, Result};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::Object;

impl S3Backend {
    /// Calls `each` with every object whose key starts with `prefix`, page by page.
    async fn list_under(&self, prefix: &str, mut each: impl FnMut(&Object)) -> Result<()> {
        let mut token: Option<String> = None;
        loop {
            let out = {
                let _slot = self.limiter.acquire().await;
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("listing", prefix, e))?
            };
            out.contents().iter().for_each(&mut each);
            token = out.next_continuation_token().map(str::to_string);
            if out.is_truncated() != Some(true) || token.is_none() {
                return Ok(());
            }
        }
    }

    pub(super) async fn list_async(&self) -> Result<Vec<ObjectInfo>> {
        let mut items = Vec::new();
        let owners = format!("{OWNERS_DIR}/");
        self.list_under(&self.prefix, |o| {
            let Some(id) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                return;
            };
            if id.is_empty() || id.ends_with('/') || id.starts_with(&owners) {
                return;
            }
            let parsed = parse_object_key(id);
            items.push(ObjectInfo {
                id: id.to_string(),
                size: o.size().unwrap_or(0).max(0) as u64,
                kind: parsed.map(|p| p.kind),
                tree_hash: parsed.map(|p| p.tree_hash),
                // Catalog copies carry their time in the key; other objects have the time S3
                // stored them.
                created: parsed
                    .and_then(|p| p.created)
                    .or_else(|| o.last_modified().map(|t| t.secs())),
                profile: None,
                description: None,
                listed_tree_hash: None,
                age_header: parsed.and_then(|p| p.age_header),
            });
        })
        .await?;
        items.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(items)
    }

    /// The owner ids marked under the prefix (`owners/<id>`).
    pub(super) async fn owners_async(&self) -> Result<Vec<String>> {
        let dir = format!("{}{OWNERS_DIR}/", self.prefix);
        let mut ids = Vec::new();
        self.list_under(&dir, |o| {
            if let Some(id) = o.key().and_then(|k| k.strip_prefix(&dir)) {
                ids.push(id.to_string());
            }
        })
        .await?;
        ids.sort();
        Ok(ids)
    }

    /// Writes the empty marker `owners/<id>` (S3 STANDARD: it is read by every prune).
    pub(super) async fn mark_owner_async(&self, id: &str) -> Result<()> {
        if !is_owner_id(id) {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!("refusing owner id {id:?}: not a hex id"),
            ));
        }
        let key = format!("{}{OWNERS_DIR}/{id}", self.prefix);
        let _slot = self.limiter.acquire().await;
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(Vec::new()))
            .send()
            .await
            .map_err(|e| self.sdk_err("uploading", &key, e))?;
        self.stored_as_s3(&key, out.e_tag())
    }
}
