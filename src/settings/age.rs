//! The age keys: `age_recipients` (on one line, separated by whitespace, or on indented
//! continuation lines), `age_recipients_file` (age's recipients-file format: one a line, `#`
//! comments) and `age_identity_file` (only read when something must be decrypted).

use super::context::Scope;
use crate::error::Result;
use std::path::PathBuf;
use std::str::FromStr;

/// A profile's encryption: on when there is at least one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgeSettings {
    /// X25519 recipients (`age1…`), checked.
    pub recipients: Vec<String>,
    /// Where the identities are, for restore, recover and `verify --remote`.
    pub identity_file: Option<PathBuf>,
}

impl AgeSettings {
    /// Whether new objects are encrypted.
    pub fn encrypts(&self) -> bool {
        !self.recipients.is_empty()
    }
}

fn check_recipient(text: &str) -> std::result::Result<String, String> {
    match age::x25519::Recipient::from_str(text) {
        Ok(r) => Ok(r.to_string()),
        Err(_) if text.starts_with("ssh-") => Err(format!(
            "`{text}`: ssh recipients are not supported; use an age X25519 recipient (age1…, from `age-keygen`)"
        )),
        Err(_) => Err(format!(
            "`{text}` is not an age recipient (age1…, as `age-keygen -y` prints)"
        )),
    }
}

/// The profile's age keys.
pub(super) fn age_settings(scope: &Scope<'_>) -> Result<AgeSettings> {
    let mut recipients = Vec::new();
    if let Some(v) = scope.get("age_recipients") {
        let lines = std::iter::once((v.entry.line, v.entry.value.as_str()))
            .chain(v.entry.more.iter().map(|(l, t)| (*l, t.as_str())));
        for (line, text) in lines {
            for word in text.split_whitespace() {
                let r = check_recipient(word)
                    .map_err(|m| scope.err(line, format!("`age_recipients`: {m}")))?;
                recipients.push(r);
            }
        }
    }
    if let Some(v) = scope.get("age_recipients_file") {
        let path = scope.ctx.path(&v)?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            scope.err(
                v.line(),
                format!(
                    "`age_recipients_file` {}: {}",
                    path.display(),
                    crate::error::io_message(&e)
                ),
            )
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let r = check_recipient(line).map_err(|m| {
                scope.err(v.line(), format!("{} line {}: {m}", path.display(), i + 1))
            })?;
            recipients.push(r);
        }
    }
    let identity_file = match scope.get("age_identity_file") {
        Some(v) => Some(scope.ctx.path(&v)?),
        None => None,
    };
    Ok(AgeSettings {
        recipients,
        identity_file,
    })
}
