//! Where the upload config comes from (a URL fetched over HTTP, or a file), read with
//! a bound, and the copy the last run saved.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use telemetry_internal::Dir;

use crate::UploadError;
use crate::config::{MAX_CONFIG_BYTES, UploadConfig};
use crate::url::check_url;

/// Where the upload config comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// Downloaded (https, or http to a loopback host) when a report needs it.
    Url(String),
    /// Read from a local file, for tests and for tools that ship their config.
    File(std::path::PathBuf),
}

impl ConfigSource {
    /// Loads and parses the config, as a run does: a URL must be https (or http to this
    /// machine) and is fetched with `timeout` and at most [`MAX_CONFIG_BYTES`]; a file
    /// is read with the same bound. The bytes are returned too, to be saved.
    pub fn load(&self, timeout: Duration) -> Result<(UploadConfig, Vec<u8>), UploadError> {
        let (bytes, origin) = match self {
            ConfigSource::File(path) => {
                let bytes = read_config_file(path).map_err(|source| UploadError::ConfigRead {
                    path: path.clone(),
                    source,
                })?;
                (bytes, path.display().to_string())
            }
            ConfigSource::Url(url) => (fetch(url, timeout)?, url.clone()),
        };
        let config = UploadConfig::parse(&bytes).map_err(|err| match err {
            UploadError::ConfigParse { reason, .. } => UploadError::ConfigParse { origin, reason },
            other => other,
        })?;
        Ok((config, bytes))
    }
}

/// Reads a config file the user named (`--config-file`), reading at most
/// [`MAX_CONFIG_BYTES`] + 1 bytes of it. Unlike files in the telemetry directory it may
/// be a link (the user chose it), but it must be a regular file: a FIFO or a device
/// could block or never end.
fn read_config_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(telemetry_internal::fs::not_regular(path));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>, UploadError> {
    check_url(url)?;
    let failed = |reason: String| UploadError::ConfigFetch {
        url: url.to_owned(),
        reason,
    };
    let mut response = crate::http::agent(url, timeout, true)
        .get(url)
        .call()
        .map_err(|err| failed(err.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(failed(format!("the server answered {status}")));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_CONFIG_BYTES)
        .read_to_vec()
        .map_err(|err| failed(err.to_string()))
}

/// The config saved by the last run that fetched (or read) one: after loading it,
/// [`run`](crate::run) saves it in the telemetry directory `dir`
/// ([`Dir::uploaded_config`]). `None` if there is none, it is not a regular file, or it
/// does not parse.
pub fn last_config(dir: &Path) -> Option<UploadConfig> {
    let path = Dir::new(dir).uploaded_config();
    let bytes = telemetry_internal::fs::read_bounded(&path, MAX_CONFIG_BYTES).ok()?;
    UploadConfig::parse(&bytes).ok()
}
