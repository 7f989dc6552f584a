//! What every command returns: a report that prints itself (`Display` for the text output,
//! `Serialize` for `--json`) and decides its exit code ([`Exit`], the codes of SPEC.md).

use serde::Serialize;
use std::fmt::Display;
use std::io::Write;

/// The exit codes of SPEC.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Done, but some files failed or problems were found.
    Partial = 1,
    /// Nothing (more) could be done: bad settings or arguments, a fatal error.
    Fatal = 2,
    /// Waiting for retrievals (or an inventory): run the same command again later.
    Pending = 75,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Ok < Partial < Pending < Fatal.
    fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Partial => 1,
            Exit::Pending => 2,
            Exit::Fatal => 3,
        }
    }

    /// The more severe of the two: the exit code of a run over several profiles.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// Where a report's text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Standard output: the text is the command's result (`status`, `ls`).
    Stdout,
    /// The log (stderr, hidden by `--quiet`): the text is a summary of work done.
    Log,
}

/// A command's outcome for one profile. `Display` is its text (empty: nothing to print),
/// `Serialize` its part of the `--json` document.
pub trait Report: Serialize + Display {
    /// The exit code this outcome calls for.
    fn exit_code(&self) -> Exit;

    /// Where the text goes.
    fn channel(&self) -> Channel {
        Channel::Log
    }

    /// Writes the text to standard output as bytes; `ls` overrides it to print names that are
    /// not UTF-8 exactly.
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let text = self.to_string();
        if text.is_empty() {
            return Ok(());
        }
        writeln!(out, "{text}")
    }
}

/// A [`Report`] of any command behind one pointer (what the CLI collects per profile).
pub trait AnyReport {
    /// [`Report::exit_code`].
    fn exit(&self) -> Exit;
    /// Prints the text output on its channel.
    fn print(&self);
    /// The report as JSON.
    fn json(&self) -> serde_json::Value;
}

impl<R: Report> AnyReport for R {
    fn exit(&self) -> Exit {
        self.exit_code()
    }

    fn print(&self) {
        match self.channel() {
            Channel::Stdout => {
                let _ = self.write_text(&mut std::io::stdout().lock());
            }
            Channel::Log => {
                let text = self.to_string();
                if !text.is_empty() {
                    crate::log::info(&text);
                }
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("reports serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_those_of_the_spec() {
        let codes: Vec<u8> = [Exit::Ok, Exit::Partial, Exit::Fatal, Exit::Pending]
            .map(Exit::code)
            .to_vec();
        assert_eq!(codes, [0, 1, 2, 75]);
    }

    #[test]
    fn the_most_severe_exit_wins() {
        use Exit::*;
        // Least severe first.
        let order = [Ok, Partial, Pending, Fatal];
        for (i, a) in order.iter().enumerate() {
            for (j, b) in order.iter().enumerate() {
                let want = order[i.max(j)];
                assert_eq!(a.worst(*b), want, "{a:?} and {b:?}");
            }
        }
        let all = [Partial, Ok, Pending, Ok];
        assert_eq!(all.into_iter().fold(Ok, Exit::worst), Pending);
    }
}
