//! The one error type of this crate.

use std::fmt;
use std::path::PathBuf;

/// Why the collector could not start, or a merge could not finish.
///
/// A rejected upload is not an error of this type: it is answered `400` with its
/// reason and logged.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// The storage URL is not one this collector can use.
    StorageUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store failed (unreachable, refused, or an I/O error).
    Storage {
        /// What was being done, e.g. `listing uploaded/`.
        action: String,
        /// The object store's error.
        source: object_store::Error,
    },
    /// The upload config file could not be read.
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The upload config file is not a valid upload config.
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// The parser's one-line reason.
        reason: String,
    },
    /// A symbol file (`symbols add`) could not be read.
    SymbolFileRead {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A symbol file gave no symbols.
    SymbolFile {
        /// The file.
        path: PathBuf,
        /// Why.
        problem: crate::SymbolFileProblem,
    },
    /// The stacks config (`--stacks-config`) cannot be used.
    StacksConfig {
        /// The file.
        path: PathBuf,
        /// The one-line reason, naming the entry that is wrong.
        reason: String,
    },
    /// The listening socket failed.
    Listen {
        /// The error.
        source: std::io::Error,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::StorageUrl { url, reason } => {
                write!(f, "cannot use storage {url:?}: {reason}")
            }
            ServerError::Storage { action, source } => {
                // object_store's messages may span lines; the caller wants one.
                let message = source.to_string().replace('\n', " ");
                write!(f, "storage failed while {action}: {message}")
            }
            ServerError::ConfigRead { path, source } => {
                write!(
                    f,
                    "cannot read the upload config {}: {source}",
                    path.display()
                )
            }
            ServerError::ConfigParse { path, reason } => write!(
                f,
                "the upload config {} is not valid: {}",
                path.display(),
                reason.replace('\n', " ")
            ),
            ServerError::SymbolFileRead { path, source } => {
                write!(
                    f,
                    "cannot read the symbol file {}: {source}",
                    path.display()
                )
            }
            ServerError::SymbolFile { path, problem } => {
                write!(f, "no symbols taken from {}: {problem}", path.display())
            }
            ServerError::StacksConfig { path, reason } => write!(
                f,
                "the stacks config {} is not valid: {}",
                path.display(),
                reason.replace('\n', " ")
            ),
            ServerError::Listen { source } => write!(f, "cannot accept connections: {source}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Storage { source, .. } => Some(source),
            ServerError::ConfigRead { source, .. }
            | ServerError::SymbolFileRead { source, .. }
            | ServerError::Listen { source } => Some(source),
            _ => None,
        }
    }
}
