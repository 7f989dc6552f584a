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
}

impl Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote a sample settings file to {}: edit it, then run `glaciersync sync`",
            self.written
        )
    }
}

impl Report for InitReport {
    fn exit_code(&self) -> Exit {
        Exit::Ok
    }
}

/// `init`: writes a commented sample settings file at `path` (never overwrites).
pub fn init(path: &Path) -> Result<InitReport> {
    crate::settings::write_sample(path)?;
    Ok(InitReport {
        written: path.display().to_string(),
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
