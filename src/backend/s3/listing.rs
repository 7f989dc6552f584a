//! Listing the objects under the prefix, with kind, tree hash and time read from their keys.

use super::S3Backend;
use crate::backend::{ObjectInfo, parse_object_key};
use crate::error::Result;

impl S3Backend {
    pub(super) async fn list_async(&self) -> Result<Vec<ObjectInfo>> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = {
                let _slot = self.limiter.acquire().await;
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&self.prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("listing", &self.prefix, e))?
            };
            for o in out.contents() {
                let Some(id) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                if id.is_empty() || id.ends_with('/') {
                    continue;
                }
                let parsed = parse_object_key(id);
                items.push(ObjectInfo {
                    id: id.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    kind: parsed.map(|p| p.kind),
                    tree_hash: parsed.map(|p| p.tree_hash),
                    // Catalog copies carry their time in the key; other objects have
                    // the time S3 stored them.
                    created: parsed
                        .and_then(|p| p.created)
                        .or_else(|| o.last_modified().map(|t| t.secs())),
                    profile: None,
                    description: None,
                    listed_tree_hash: None,
                    age_header: parsed.and_then(|p| p.age_header),
                });
            }
            token = out.next_continuation_token().map(str::to_string);
            if out.is_truncated() != Some(true) || token.is_none() {
                break;
            }
        }
        items.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(items)
    }
}
