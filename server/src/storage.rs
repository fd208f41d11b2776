//! Where reports, merged days and chart data live: one object store, local files by
//! default or S3-compatible storage, with this layout under its root or prefix:
//!
//! | key                      | written by | content                                        |
//! |--------------------------|------------|------------------------------------------------|
//! | `uploaded/<week>/<X>.json` | `POST /upload` | one accepted report, compact JSON, never overwritten |
//! | `merged/<date>.json`     | merge      | every report of week `<date>`, one JSON line each, sorted by key |
//! | `charts/<date>.json`     | merge      | the per-program chart data of those reports ([`DaySummary`](crate::DaySummary)) |
//! | `stacks/<date>.json`     | merge      | every distinct stack of those reports, frames named ([`DayStacks`](crate::DayStacks)) |
//! | `symbols/<build-id>/functions` | `symbols add` | the function table of one build ([`FunctionTable`](crate::FunctionTable)) |
//! | `symbols/<build-id>/info.json` | `symbols add` | what `symbols list` shows of it, written after the table ([`SymbolsInfo`](crate::SymbolsInfo)) |
//! | `parquet/date=<date>/part-<generation>-<n>.parquet` | merge | those reports as rows for query engines ([`crate::parquet`]) |
//! | `locks/merge/<date>/<n>` | merge      | the day's merge lock, while a merge runs |
//!
//! Every write is all-or-nothing: the local store writes a staging file and links or
//! renames it into place, S3 makes an object visible only when its PUT (or multipart
//! upload) completes. So a reader never sees half a report, whatever fails when.
//!
//! A local writer killed mid-write leaves its staging file, `<key>#<n>` (object_store's
//! name; listings skip it). [`Storage::remove_staging_debris`] removes those that no
//! writer has touched for [`STAGING_DEBRIS_AGE`]; the server runs it at start and
//! before each daily merge. (On S3 an unfinished upload is never visible; a bucket
//! lifecycle rule expires its parts.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use telemetry_internal::Day;

use crate::ServerError;

/// An opened store. Cheap to clone; the collector keeps no other state, so several
/// collectors may share one bucket.
#[derive(Clone, Debug)]
pub struct Storage {
    pub(crate) store: Arc<dyn ObjectStore>,
    url: String,
    /// The directory of a `file://` store.
    local_root: Option<PathBuf>,
}

/// How long a staging file must have gone unwritten before it is taken for the debris
/// of a dead writer. A report is written in milliseconds and a merge writes its file
/// every few megabytes, so an hour leaves every live writer alone.
pub(crate) const STAGING_DEBRIS_AGE: Duration = Duration::from_secs(60 * 60);

impl Storage {
    /// Opens `file:///absolute/path` (created if missing) or `s3://bucket[/prefix]`.
    ///
    /// Local files are not `fsync`ed unless the URL ends in `?fsync=true`: without it
    /// a power cut may lose the reports of the last seconds, already answered `200`;
    /// with it every upload waits for the disk.
    ///
    /// For S3, `env` supplies the usual `AWS_*` variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …);
    /// the binary passes the process environment, tests pass their own. Other
    /// variables are ignored.
    pub fn open(
        url: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Storage, ServerError> {
        let bad = |reason: &str| ServerError::StorageUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let mut local_root = None;
        let store: Arc<dyn ObjectStore> = if let Some(rest) = url.strip_prefix("file://") {
            let (path, fsync) = match rest.split_once('?') {
                None => (rest, false),
                Some((path, "fsync=true")) => (path, true),
                Some((path, "fsync=false")) => (path, false),
                Some(_) => return Err(bad("the only option of a file URL is ?fsync=true")),
            };
            if !path.starts_with('/') {
                return Err(bad("expected file:///absolute/path"));
            }
            if path.contains('%') {
                return Err(bad("percent-encoded file URLs are not supported"));
            }
            std::fs::create_dir_all(path).map_err(|err| bad(&err.to_string()))?;
            let local = LocalFileSystem::new_with_prefix(path)
                .map_err(|err| bad(&err.to_string().replace('\n', " ")))?
                .with_fsync(fsync);
            local_root = Some(PathBuf::from(path));
            Arc::new(local)
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("expected s3://bucket/prefix"));
            }
            // reqwest is built with rustls but no bundled crypto provider, so that the
            // workspace has one TLS stack (rustls with ring, as ureq uses). An error
            // only means a provider is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            // Our defaults first, so that the environment (AWS_ALLOW_HTTP, …) can
            // change the client's options after them.
            let mut builder = AmazonS3Builder::new()
                // An upload waits for its write: fail in seconds (503, the client
                // retries tomorrow) rather than hold the connection for minutes.
                .with_retry(RetryConfig {
                    max_retries: 2,
                    retry_timeout: Duration::from_secs(10),
                    ..RetryConfig::default()
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(5))
                        .with_timeout(Duration::from_secs(30)),
                );
            for (key, value) in env {
                if key.starts_with("AWS_") {
                    if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                        builder = builder.with_config(key, value);
                    }
                }
            }
            let s3 = builder
                .with_bucket_name(bucket)
                .build()
                .map_err(|err| bad(&err.to_string().replace('\n', " ")))?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                let prefix = Path::parse(prefix).map_err(|err| bad(&err.to_string()))?;
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else {
            return Err(bad("expected file:///path or s3://bucket/prefix"));
        };
        Ok(Storage {
            store,
            url: url.to_owned(),
            local_root,
        })
    }

    /// The storage used when none is given: file storage in `telemetry-server` under
    /// the user's data directory, taken from `env`: `$XDG_DATA_HOME` (if absolute),
    /// else `$HOME/.local/share` (`$HOME/Library/Application Support` on macOS,
    /// `%LOCALAPPDATA%` on Windows). The binary passes the process environment.
    pub fn default_url(
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<String, ServerError> {
        let env: std::collections::HashMap<String, String> = env.into_iter().collect();
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let data_dir = if cfg!(windows) {
            var("LOCALAPPDATA")
        } else if cfg!(target_os = "macos") {
            var("HOME").map(|home| home.join("Library/Application Support"))
        } else {
            var("XDG_DATA_HOME")
                .filter(|dir| dir.is_absolute())
                .or_else(|| var("HOME").map(|home| home.join(".local/share")))
        };
        let Some(data_dir) = data_dir else {
            return Err(ServerError::StorageUrl {
                url: String::new(),
                reason: "no --storage given and no data directory to default to \
                         (HOME is not set)"
                    .to_owned(),
            });
        };
        Ok(format!(
            "file://{}",
            data_dir.join("telemetry-server").display()
        ))
    }

    /// Removes the staging files of interrupted writes (see the module documentation)
    /// from file storage, and returns how many it removed. Blocking; does nothing for
    /// other stores. A file that cannot be removed is left for the next sweep.
    pub fn remove_staging_debris(&self) -> usize {
        let Some(root) = &self.local_root else {
            return 0;
        };
        let now = SystemTime::now();
        let mut removed = 0;
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // Not followed: a link in the store is not ours to walk into.
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    dirs.push(entry.path());
                    continue;
                }
                let name = entry.file_name();
                let is_staging = name
                    .to_str()
                    .and_then(|name| name.rsplit_once('#'))
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                let idle = meta
                    .modified()
                    .ok()
                    .and_then(|written| now.duration_since(written).ok());
                if meta.is_file()
                    && is_staging
                    && idle.is_some_and(|idle| idle >= STAGING_DEBRIS_AGE)
                    && std::fs::remove_file(entry.path()).is_ok()
                {
                    tracing::info!(file = %entry.path().display(), "removed the staging file of an interrupted write");
                    removed += 1;
                }
            }
        }
        removed
    }

    /// The object store underneath, for tools that read the layout directly.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `uploaded/<week>/<X>.json`. `X` is written as Rust's shortest round-trip form
/// (`{:?}`: `0.25`, `1.0`, `1e-300`), so equal `X`s give equal keys and no `X`
/// gives a name longer than 24 bytes.
pub(crate) fn uploaded_key(week: Day, x: f64) -> Path {
    Path::from(format!("uploaded/{week}/{x:?}.json"))
}

/// `uploaded/<week>/`, the reports of one week.
pub(crate) fn uploaded_dir(week: Day) -> Path {
    Path::from(format!("uploaded/{week}"))
}

/// `merged/<date>.json`.
pub(crate) fn merged_key(date: Day) -> Path {
    Path::from(format!("merged/{date}.json"))
}

/// `charts/<date>.json`.
pub(crate) fn charts_key(date: Day) -> Path {
    Path::from(format!("charts/{date}.json"))
}

/// `stacks/<date>.json`.
pub(crate) fn stacks_key(date: Day) -> Path {
    Path::from(format!("stacks/{date}.json"))
}

/// `symbols/<build-id>/functions`.
pub(crate) fn symbols_functions_key(build_id: &str) -> Path {
    Path::from(format!("symbols/{build_id}/functions"))
}

/// `symbols/<build-id>/info.json`.
pub(crate) fn symbols_info_key(build_id: &str) -> Path {
    Path::from(format!("symbols/{build_id}/info.json"))
}

/// The date in a key's last part, `<date>` or `<date>.json`.
pub(crate) fn date_of(path: &Path) -> Option<Day> {
    let name = path.filename()?;
    Day::parse(name.strip_suffix(".json").unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let week = Day::parse("2026-11-20").unwrap();
        assert_eq!(
            uploaded_key(week, 0.25).as_ref(),
            "uploaded/2026-11-20/0.25.json"
        );
        assert_eq!(
            uploaded_key(week, 1.0).as_ref(),
            "uploaded/2026-11-20/1.0.json"
        );
        assert_eq!(
            uploaded_key(week, f64::MIN_POSITIVE).as_ref(),
            "uploaded/2026-11-20/2.2250738585072014e-308.json"
        );
        assert_eq!(merged_key(week).as_ref(), "merged/2026-11-20.json");
        assert_eq!(date_of(&charts_key(week)), Some(week));
        assert_eq!(date_of(&uploaded_dir(week)), Some(week));
    }

    #[test]
    fn fsync_is_an_option_of_file_urls() {
        let dir = tempfile::tempdir().unwrap();
        for option in ["", "?fsync=true", "?fsync=false"] {
            let url = format!("file://{}{option}", dir.path().join("data").display());
            assert_eq!(Storage::open(&url, []).unwrap().url(), url);
        }
    }

    #[test]
    #[cfg(all(unix, not(target_os = "macos")))]
    fn the_default_is_under_the_users_data_directory() {
        fn url(pairs: &[(&str, &str)]) -> Result<String, String> {
            let env = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
            Storage::default_url(env).map_err(|e| e.to_string())
        }
        assert_eq!(
            url(&[("XDG_DATA_HOME", "/data"), ("HOME", "/home/a")]),
            Ok("file:///data/telemetry-server".to_owned())
        );
        // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
        for xdg in ["", "relative"] {
            assert_eq!(
                url(&[("XDG_DATA_HOME", xdg), ("HOME", "/home/a")]),
                Ok("file:///home/a/.local/share/telemetry-server".to_owned())
            );
        }
        assert!(url(&[]).unwrap_err().contains("HOME is not set"));
    }

    #[test]
    fn bad_urls() {
        for url in [
            "",
            "/tmp/x",
            "file://relative",
            "s3://",
            "gs://bucket",
            "file:///a%20b",
        ] {
            let err = Storage::open(url, []).unwrap_err();
            assert!(
                matches!(err, ServerError::StorageUrl { .. }),
                "{url}: {err}"
            );
        }
    }
}
