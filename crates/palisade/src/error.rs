//! Palisade's errors and exit codes, shared by the facade, the backends and the CLI.

use std::io;

/// Palisade's own exit codes, used by the CLI (the command's own status is passed through).
pub mod exit_code {
    /// Palisade itself failed: bad input, a protection that cannot be enforced, a setup step.
    pub const PALISADE_ERROR: i32 = 125;
    /// The command was found but cannot be executed.
    pub const NOT_EXECUTABLE: i32 = 126;
    /// The command was not found.
    pub const NOT_FOUND: i32 = 127;
}

/// Everything that can go wrong before the command runs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("command not found: {0}")]
    NotFound(String),
    #[error("cannot execute {0}")]
    NotExecutable(String),
    /// A protection the policy asks for cannot be enforced on this host: Palisade refuses to run
    /// rather than run weaker.
    #[error("refusing to run: {what} cannot be enforced on this host: {why}; to fix: {fix}")]
    Unenforceable { what: String, why: String, fix: String },
    /// A step of setting up the sandbox failed in the child (named by `step`).
    #[error("sandbox setup failed: could not {step}{detail}: {source}")]
    Setup { step: &'static str, detail: String, source: io::Error },
    #[error("{0}")]
    InvalidInput(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl Error {
    /// The CLI's exit code for this error: 127 not found, 126 not executable, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotFound(_) => exit_code::NOT_FOUND,
            Error::NotExecutable(_) => exit_code::NOT_EXECUTABLE,
            _ => exit_code::PALISADE_ERROR,
        }
    }
}
