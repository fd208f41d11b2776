//! The one error type of this crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why an upload run could not do its work. Every file is left in place, so the next
/// run can try again.
///
/// A report that could not be sent is not an error: it is a
/// [`ReportStatus`](crate::ReportStatus) in the [`RunSummary`](crate::RunSummary).
#[derive(Debug)]
#[non_exhaustive]
pub enum UploadError {
    /// A URL would send data over plain `http` to a host other than this machine.
    InsecureUrl {
        /// The URL as given.
        url: String,
    },
    /// A URL could not be understood.
    BadUrl {
        /// The URL as given.
        url: String,
    },
    /// The upload config could not be downloaded.
    ConfigFetch {
        /// Where it was fetched from.
        url: String,
        /// What went wrong: a status code, a time-out, a network error.
        reason: String,
    },
    /// The upload config file could not be read.
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The upload config is not valid JSON of the expected shape.
    ConfigParse {
        /// Where the config came from (a URL or a path), or empty if parsed from bytes.
        origin: String,
        /// The parser's message, with line and column.
        reason: String,
    },
    /// A report file is not valid JSON of the report's shape.
    ReportParse {
        /// The parser's message, with line and column.
        reason: String,
    },
    /// A directory the run needs could not be read or created.
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A bug: something inside the run panicked. The panic was caught and logged.
    Panicked {
        /// The panic message.
        message: String,
    },
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadError::InsecureUrl { url } => write!(
                f,
                "refusing to use {url:?}: telemetry is only sent over https \
                 (plain http is allowed only to 127.0.0.1, ::1 or localhost)"
            ),
            UploadError::BadUrl { url } => {
                write!(f, "{url:?} is not a usable URL: expected https://host/path")
            }
            UploadError::ConfigFetch { url, reason } => write!(
                f,
                "could not download the upload config from {url}: {reason}; \
                 nothing was changed, the next run will try again"
            ),
            UploadError::ConfigRead { path, source } => write!(
                f,
                "could not read the upload config {}: {source}",
                path.display()
            ),
            UploadError::ReportParse { reason } => write!(f, "not a report: {reason}"),
            UploadError::ConfigParse { origin, reason } => {
                if origin.is_empty() {
                    write!(f, "the upload config is not valid: {reason}")
                } else {
                    write!(
                        f,
                        "the upload config from {origin} is not valid: {reason}; \
                         nothing was changed"
                    )
                }
            }
            UploadError::Io { path, source } => {
                write!(f, "cannot use {}: {source}", path.display())
            }
            UploadError::Panicked { message } => write!(
                f,
                "internal error in telemetry-upload (please report it): {message}"
            ),
        }
    }
}

impl std::error::Error for UploadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UploadError::ConfigRead { source, .. } | UploadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
