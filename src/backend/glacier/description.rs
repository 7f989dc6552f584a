//! Archive descriptions: what glaciersync writes into them (ASCII JSON under 1024 characters,
//! no file names) and reads back (kind, tree hash, profile, time).

use crate::backend::{ObjectKind, PutMeta};
use crate::hash::Hash32;

/// Longest escaped profile name put into a description (keeps it under 1024 characters).
const MAX_DESCRIPTION_PROFILE: usize = 512;

/// What glaciersync writes into an archive description, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub kind: ObjectKind,
    pub tree_hash: Hash32,
    pub profile: String,
    /// Seconds since the Unix epoch.
    pub time: Option<i64>,
    /// Age-encrypted archives: the header length (`"age":N`).
    pub age_header: Option<u64>,
}

/// Appends `c` to `out` as JSON string content made of printable ASCII only.
fn push_json_ascii(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        ' '..='~' => out.push(c),
        _ => {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
}

/// The archive description of an object: ASCII JSON under 1024 characters, no file names, e.g.
/// `{"glaciersync":1,"kind":"file","hash":"…","profile":"photos","time":"2026-11-26T10:00:00Z"}`.
/// An age-encrypted archive adds `"age":<header length>`, and its hash is the ciphertext's.
/// Non-ASCII profile names are `\u` escaped; very long ones are cut.
pub fn description(meta: &PutMeta) -> String {
    let mut profile = String::new();
    for c in meta.profile.chars() {
        let mut piece = String::new();
        push_json_ascii(&mut piece, c);
        if profile.len() + piece.len() > MAX_DESCRIPTION_PROFILE {
            break;
        }
        profile.push_str(&piece);
    }
    let time = chrono::DateTime::from_timestamp(meta.created, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let age = meta
        .age_header
        .map(|n| format!(r#","age":{n}"#))
        .unwrap_or_default();
    format!(
        r#"{{"glaciersync":1,"kind":"{}","hash":"{}","profile":"{}","time":"{}"{age}}}"#,
        meta.kind.as_str(),
        meta.tree_hash,
        profile,
        time
    )
}

fn description_json(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str::<serde_json::Value>(text.trim()).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Whether glaciersync wrote this description (of any version).
pub fn is_our_description(text: &str) -> bool {
    description_json(text).is_some_and(|m| m.contains_key("glaciersync"))
}

/// Parses a description written by [`description`]; `None` for anything else.
pub fn parse_description(text: &str) -> Option<Description> {
    let map = description_json(text)?;
    if map.get("glaciersync")?.as_u64()? < 1 {
        return None;
    }
    let kind = ObjectKind::parse(map.get("kind")?.as_str()?)?;
    let tree_hash = Hash32::from_hex(map.get("hash")?.as_str()?)?;
    let profile = map
        .get("profile")
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_string();
    let time = map
        .get("time")
        .and_then(|t| t.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp());
    let age_header = map.get("age").and_then(|n| n.as_u64());
    Some(Description {
        kind,
        tree_hash,
        profile,
        time,
        age_header,
    })
}
