//! `init`: a commented sample settings file to start from.

use crate::error::Result;
use crate::report::{Exit, Report};
use serde::Serialize;
use std::fmt::{self, Display};
use std::path::Path;

/// `init`: the sample settings file written.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub written: String,
    /// `init --age`: the identity file written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
}

impl Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote a sample settings file to {}: edit it, then run `glaciersync sync`",
            self.written
        )?;
        if let (Some(id), Some(r)) = (&self.identity, &self.recipient) {
            write!(
                f,
                "\nwrote an age identity to {id}; the settings encrypt to its recipient {r}.\n\n{}",
                super::age::LOSS_WARNING
            )?;
        }
        Ok(())
    }
}

impl Report for InitReport {
    fn exit_code(&self) -> Exit {
        Exit::Ok
    }
}

/// `init`: writes a commented sample settings file at `path` (never overwrites).
/// With `age`, also an identity file and its recipient in the settings (`init --age`).
pub fn init(path: &Path, age: bool) -> Result<InitReport> {
    let (identity, recipient) = if age {
        let (id, r) = super::age::init_with_age(path)?;
        (Some(id.display().to_string()), Some(r))
    } else {
        crate::settings::write_sample(path)?;
        (None, None)
    };
    Ok(InitReport {
        written: path.display().to_string(),
        identity,
        recipient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::AnyReport;

    #[test]
    fn init_says_what_to_do_next() {
        let r = InitReport {
            written: "/home/me/settings.ini".into(),
            identity: None,
            recipient: None,
        };
        assert_eq!(
            r.to_string(),
            "wrote a sample settings file to /home/me/settings.ini: edit it, then run `glaciersync sync`"
        );
        assert_eq!(
            r.json(),
            serde_json::json!({"written": "/home/me/settings.ini"})
        );
        assert_eq!(r.exit(), Exit::Ok);
    }
}
