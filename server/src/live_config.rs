//! The upload config the collector serves and validates against, reloaded on SIGHUP
//! or when its file changes. A new version is used only if it parses and can be
//! served ([`UploadConfig::check_servable`]); otherwise the old one stays and the
//! failure is logged.
//!
//! The file is read as the library reads its own files (`telemetry_internal::fs`): a
//! regular file only, at most [`MAX_CONFIG_BYTES`], opened without blocking, so a
//! FIFO, a device or a huge file put in its place is an error, never a hang or an
//! allocation without end. A symbolic link is resolved first and its target read the
//! same way, because operators link configs into place (Kubernetes' ConfigMap
//! volumes are links). Reads are blocking file I/O: callers in async code run them
//! on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use telemetry_upload::{MAX_CONFIG_BYTES, UploadConfig};

use crate::ServerError;

/// One parsed version of the config file, with its bytes exactly as given.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) bytes: Bytes,
    pub(crate) parsed: UploadConfig,
}

/// The current config, shared by every request.
#[derive(Debug)]
pub(crate) struct LiveConfig {
    path: PathBuf,
    current: RwLock<Arc<Loaded>>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reloaded {
    Unchanged,
    Changed,
}

impl LiveConfig {
    /// Loads the file, failing if it cannot be read, parsed or served.
    pub(crate) fn load(path: &Path) -> Result<LiveConfig, ServerError> {
        let loaded = parse(path, read(path)?)?;
        Ok(LiveConfig {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    /// The current version.
    pub(crate) fn get(&self) -> Arc<Loaded> {
        // A poisoned lock still holds a whole Arc: the writer only swaps it.
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the file again and switches to it if its bytes changed and it parses
    /// and can be served.
    pub(crate) fn reload(&self) -> Result<Reloaded, ServerError> {
        let bytes = read(&self.path)?;
        if bytes == self.get().bytes {
            return Ok(Reloaded::Unchanged);
        }
        let loaded = parse(&self.path, bytes)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(Reloaded::Changed)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The file's bytes: links resolved, then a bounded read of a regular file.
fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    let error = |source| ServerError::ConfigRead {
        path: path.to_owned(),
        source,
    };
    let target = std::fs::canonicalize(path).map_err(error)?;
    telemetry_internal::fs::read_bounded(&target, MAX_CONFIG_BYTES).map_err(error)
}

fn parse(path: &Path, bytes: Vec<u8>) -> Result<Loaded, ServerError> {
    let invalid = |reason: String| ServerError::ConfigParse {
        path: path.to_owned(),
        reason,
    };
    let parsed = UploadConfig::parse(&bytes).map_err(|err| {
        invalid(match err {
            telemetry_upload::UploadError::ConfigParse { reason, .. } => reason,
            other => other.to_string(),
        })
    })?;
    parsed.check_servable().map_err(invalid)?;
    Ok(Loaded {
        bytes: Bytes::from(bytes),
        parsed,
    })
}
