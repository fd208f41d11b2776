//! Why a command failed, printed as one line after the command's name.

use std::io;
use std::process::ExitCode;

/// Why a command failed: printed as one line after the command's name.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Something a person can act on.
    Message(String),
    /// Writing the output failed.
    Output(io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Message(text) => f.write_str(text),
            Failure::Output(err) => write!(f, "cannot write output: {err}"),
        }
    }
}

impl Failure {
    pub(crate) fn io(what: impl std::fmt::Display, err: &io::Error) -> Failure {
        Failure::Message(format!("{what}: {err}"))
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure::Output(err)
    }
}

pub(crate) type CmdResult = Result<ExitCode, Failure>;
