//! The upload config the collector serves and validates against, reloaded on SIGHUP
//! or when its file changes. A new version is used only if it parses; otherwise the
//! old one stays and the failure is logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use telemetry_upload::UploadConfig;

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
    /// Loads the file, failing if it cannot be read or parsed.
    pub(crate) fn load(path: &Path) -> Result<LiveConfig, ServerError> {
        let loaded = read(path)?;
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

    /// Reads the file again and switches to it if its bytes changed and it parses.
    pub(crate) fn reload(&self) -> Result<Reloaded, ServerError> {
        let bytes = std::fs::read(&self.path).map_err(|source| ServerError::ConfigRead {
            path: self.path.clone(),
            source,
        })?;
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

fn read(path: &Path) -> Result<Loaded, ServerError> {
    let bytes = std::fs::read(path).map_err(|source| ServerError::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    parse(path, bytes)
}

fn parse(path: &Path, bytes: Vec<u8>) -> Result<Loaded, ServerError> {
    let parsed = UploadConfig::parse(&bytes).map_err(|err| ServerError::ConfigParse {
        path: path.to_owned(),
        reason: match err {
            telemetry_upload::UploadError::ConfigParse { reason, .. } => reason,
            other => other.to_string(),
        },
    })?;
    Ok(Loaded {
        bytes: Bytes::from(bytes),
        parsed,
    })
}
