//! The collector: a small HTTP server that a tool's vendor runs to receive the weekly
//! reports of [`telemetry_upload`], check them against the public upload config, store
//! them, merge them daily and chart them.
//!
//! [`serve`] answers
//! - `GET /config.json`: the upload config file, byte for byte (a tool's `config_url`
//!   points here). It is reloaded on SIGHUP and when the file changes; a version that
//!   does not parse, approves nothing or has a rate outside 0..=1, or a file that is
//!   not a regular file of at most 4 MiB, is logged and the old one stays.
//! - `POST /upload/<YYYY-MM-DD>`: a report.
//!   - `200` when stored, or stored before (a report is named by its week and `X`, so
//!     one sent twice is stored once, even when storage has become read-only).
//!   - `400` with a one-line reason, storing nothing, when the report itself is
//!     wrong: not a report (a counter named twice included), over the size limit, its
//!     `Week` is not the URL's date or is too old, its `X` is not in (0, 1], it has
//!     no count above 0, or the config does not approve its program, version,
//!     toolchain, OS, arch, a counter or a stack prefix, or the report is outside the
//!     config's sample ([`UploadConfig::check_report`], the rule the uploader checks
//!     before sending).
//!   - `425 Too Early` with `Retry-After` (seconds) when its week has not ended by
//!     this server's clock (it takes a week from the day before it ends, for client
//!     clocks a little fast): the same report is welcome later.
//!   - `408` for a body that does not arrive in time.
//!   - `503` with `Retry-After` when storage fails, or when the bodies being received
//!     at once would pass [`ServeConfig::max_receiving_bytes`]; nothing is stored.
//!
//!   Uploaders drop a report only on `400`, `413` or `422`, and keep it for another
//!   day on any other answer.
//! - `GET /` and `GET /charts/<week>`: the dashboard, HTML and inline SVG, no script.
//! - `GET /crashes?since=YYYY-MM-DD` and `GET /api/stacks?since=YYYY-MM-DD`: every
//!   distinct stack since that day (default: twelve weeks), its frames named from
//!   stored symbols, with a short stable ID ([`stack_id`]), its counts, programs,
//!   versions, platforms, first and last week, and the issues that claim it
//!   ([`ServeConfig::stacks_config`], [`Claims`]); as a page (same rules as the
//!   dashboard) and as JSON ([`rows_json`]). [`list_stacks`] gives the same list
//!   without a server.
//! - `GET /healthz`: `ok`.
//! - Any other path: `404`, logged at `info` with the path (a tool whose URL lacks
//!   `/upload` shows up there).
//!
//! [`merge()`] turns a day's uploads into `merged/<date>.json`, `stacks/<date>.json`,
//! `charts/<date>.json` and Parquet files for query engines ([`parquet`]); the server
//! runs it once a day, and one merge of a day runs at a time across every server
//! sharing the store. It names raw crash frames
//! (`<build-id>+0x<addr>`, recorded by stripped builds) from the symbols that
//! [`add_symbols`] stored under `symbols/<build-id>/` ([`read_symbol_file`] reads an
//! unstripped executable or split debug file into a [`FunctionTable`]), exactly as an
//! unstripped build names its own, so both forms of one crash are one stack. Storage is an [`object_store`]: local files or S3
//! (see [`Storage::open`] for the layout); the server keeps no other state, so several
//! servers can share a bucket.
//!
//! ```
//! use telemetry_server::{ServeConfig, Storage, merge, serve};
//!
//! let tmp = tempfile::tempdir()?;
//! let config = tmp.path().join("config.json");
//! std::fs::write(&config, r#"{"OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"],
//!     "SampleRate": 1, "Programs": [{"Name": "mytool", "Versions": ["1.0.0"],
//!     "Counters": [{"Name": "mytool/runs", "Rate": 1}]}]}"#)?;
//! let storage = Storage::open(&format!("file://{}", tmp.path().join("data").display()), [])?;
//! let mut settings = ServeConfig::new(&config, storage.clone());
//! let week = telemetry_internal::Day::of(std::time::SystemTime::now());
//! settings.today = Some(week);
//!
//! let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = runtime.spawn(serve(listener, settings, async { let _ = stopped.await; }));
//!
//! let date = week.to_string();
//! let report = format!(r#"{{"Week": "{date}", "X": 0.25, "Programs": [{{"Program": "mytool",
//!     "Version": "1.0.0", "Toolchain": "1.95.0", "OS": "linux", "Arch": "x86_64",
//!     "Counters": {{"mytool/runs": 3}}}}]}}"#);
//! let answer = ureq::post(&format!("http://{addr}/upload/{date}")).send(report.as_bytes())?;
//! assert_eq!(answer.status(), 200);
//!
//! let merged = runtime.block_on(merge(&storage, Some(week)))?;
//! assert_eq!(merged[0].reports, 1);
//! let _ = stop.send(());
//! runtime.block_on(server)??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! - **Nothing unapproved is stored, nothing is half-stored.** A report is stored only
//!   whole and only after every check passed; each object appears atomically.
//! - **Bounded.** Bodies are limited ([`ServeConfig::max_body_bytes`]), and so is the
//!   sum of the bodies being received at once ([`ServeConfig::max_receiving_bytes`]:
//!   with the defaults, a thousand clients that stall mid-body keep the server under
//!   256 MB); a body is let go as soon as its request ends. Headers and bodies must
//!   arrive within [`ServeConfig::read_timeout`]; a storage request gives up within
//!   seconds and the client is told `503` to try again later. The config file is
//!   read on tokio's blocking pool, never on the workers that answer requests.
//! - **Quiet and typed.** The library logs through [`tracing`] (the binary writes
//!   JSON lines to stderr) and never prints; errors are [`ServerError`].
//! - **Graceful.** When `shutdown` resolves, [`serve`] stops accepting, lets requests in
//!   flight finish (up to [`ServeConfig::shutdown_grace`]) and returns.

#![forbid(unsafe_code)]

mod charts;
mod claims;
mod dashboard;
mod error;
mod http;
mod live_config;
mod merge;
mod merge_lock;
pub mod parquet;
mod stacks;
mod stacks_page;
mod storage;
mod symbols;
mod symbols_store;
mod validate;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use telemetry_internal::Day;
use tokio::net::TcpListener;

pub use charts::{Bar, DaySummary, ProgramSummary, STACKS_KEPT};
pub use claims::{Claim, Claims, Predicate, PredicateError, check_stacks_config};
pub use error::ServerError;
pub use merge::{MergedDay, merge};
pub use stacks::{
    ClaimStatus, DayStacks, STACKS_KEPT_PER_DAY, StackRow, StackSeen, list_stacks, rows_json,
    rows_markdown, stack_id,
};
pub use stacks_page::DEFAULT_SINCE_DAYS;
pub use storage::Storage;
pub use symbols::{FunctionTable, ModuleSymbols, SymbolFileProblem, read_symbol_file};
pub use symbols_store::{MAX_SYMBOL_FILE_BYTES, SymbolsInfo, add_symbols, list_symbols};
#[doc(no_inline)]
pub use telemetry_upload::UploadConfig;

use crate::live_config::{LiveConfig, Reloaded};

/// How [`serve`] runs. Build it with [`ServeConfig::new`], then change the fields.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The upload config file, served as `/config.json` and checked against.
    pub config_file: PathBuf,
    /// Where reports, merged days and charts are stored.
    pub storage: Storage,
    /// The largest body accepted. Default 1 MiB (a report of 1000 counters is
    /// about 50 KB).
    pub max_body_bytes: usize,
    /// The most bytes of request bodies held at once, over every upload being
    /// received (a declared `Content-Length` counts in full from the start). An
    /// upload that would go past it is answered `503` with `Retry-After` before its
    /// body is read, so stalled clients cannot grow the server's memory. Keep it at
    /// least [`max_body_bytes`](ServeConfig::max_body_bytes). Default 64 MiB.
    pub max_receiving_bytes: usize,
    /// How long a client may take to send its request headers, and its body. Default
    /// 10 s.
    pub read_timeout: Duration,
    /// How often the config file is checked for a change. Default 2 s.
    pub reload_interval: Duration,
    /// Reload the config on SIGHUP (Unix). Default true.
    pub reload_on_sighup: bool,
    /// Run [`merge()`] of every unmerged day at start and then this often; `None` never.
    /// Default 24 h.
    pub merge_every: Option<Duration>,
    /// How long requests in flight may take to finish after shutdown. Default 30 s.
    pub shutdown_grace: Duration,
    /// Pretend today (UTC) is this day when judging a report's week (tests);
    /// `None` is the real today.
    pub today: Option<Day>,
    /// The stacks config (claims of stacks by issues, see [`Claims`]), reloaded like
    /// the upload config; `None`: every stack is unclaimed.
    pub stacks_config: Option<PathBuf>,
}

impl ServeConfig {
    /// The defaults, serving `config_file` with `storage`.
    pub fn new(config_file: impl AsRef<Path>, storage: Storage) -> ServeConfig {
        ServeConfig {
            config_file: config_file.as_ref().to_owned(),
            storage,
            max_body_bytes: 1 << 20,
            max_receiving_bytes: 64 << 20,
            read_timeout: Duration::from_secs(10),
            reload_interval: Duration::from_secs(2),
            reload_on_sighup: true,
            merge_every: Some(Duration::from_secs(24 * 60 * 60)),
            shutdown_grace: Duration::from_secs(30),
            today: None,
            stacks_config: None,
        }
    }
}

/// Reads and checks the upload config file as [`serve`] does at start (a regular
/// file of at most 4 MiB that parses and approves something, every rate within
/// 0..=1), so that a command line can fail before it creates anything. Blocking.
pub fn check_config_file(path: &Path) -> Result<(), ServerError> {
    LiveConfig::load(path).map(drop)
}

/// Serves on `listener` until `shutdown` resolves (see the crate documentation).
/// Fails at once if the config file cannot be read, parsed or served
/// ([`check_config_file`]).
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let path = config.config_file.clone();
    let live = blocking(move || LiveConfig::load(&path))
        .await
        .map_err(|err| config_join_error(&config.config_file, err))??;
    let live = Arc::new(live);
    let claims = match config.stacks_config.clone() {
        Some(path) => {
            let loading = path.clone();
            let claims = blocking(move || claims::LiveClaims::load(&loading))
                .await
                .map_err(|err| ServerError::StacksConfig {
                    path,
                    reason: err.to_string(),
                })??;
            Some(Arc::new(claims))
        }
        None => None,
    };
    let claims_watcher = claims.clone().map(|claims| {
        tokio::spawn(claims::watch(
            claims,
            config.reload_interval,
            config.reload_on_sighup,
        ))
    });
    let app = Arc::new(http::App {
        storage: config.storage.clone(),
        config: Arc::clone(&live),
        settings: config.clone(),
        receiving: Arc::new(tokio::sync::Semaphore::new(
            config
                .max_receiving_bytes
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        )),
        claims,
        symbols: symbols_store::TableCache::default(),
    });
    let watcher = tokio::spawn(watch_config(
        live,
        config.reload_interval,
        config.reload_on_sighup,
    ));
    let housekeeper = tokio::spawn(housekeeping(config.storage.clone(), config.merge_every));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr,
            dashboard = %format!("http://{addr}/"),
            storage = config.storage.url(),
            "serving"
        );
    }
    let result = http::accept_loop(listener, http::router(app), &config, shutdown).await;
    watcher.abort();
    if let Some(claims_watcher) = claims_watcher {
        claims_watcher.abort();
    }
    // Every write of a merge is atomic, so stopping one midway leaves the last
    // complete outputs in place.
    housekeeper.abort();
    tracing::info!("stopped");
    result
}

/// Runs blocking file I/O on tokio's blocking pool, off the workers that serve
/// requests: a slow or stuck file system then delays only the caller. `Err` only if
/// `work` panicked.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(work).await
}

/// The config file could not be read because its reader panicked.
fn config_join_error(path: &Path, err: tokio::task::JoinError) -> ServerError {
    ServerError::ConfigRead {
        path: path.to_owned(),
        source: std::io::Error::other(err.to_string()),
    }
}

fn watch_config(
    live: Arc<LiveConfig>,
    every: Duration,
    on_sighup: bool,
) -> impl Future<Output = ()> {
    #[cfg(unix)]
    let mut hangup = if on_sighup {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|err| tracing::warn!(error = %err, "cannot listen for SIGHUP"))
            .ok()
    } else {
        None
    };
    #[cfg(not(unix))]
    let _ = on_sighup;
    // Listening for SIGHUP starts here, before the task is spawned: a SIGHUP
    // sent as soon as the server says it is serving must not meet the default
    // action, which ends the process.
    async move {
        // The same failure is logged once, not every poll.
        let mut last_error: Option<String> = None;
        loop {
            #[cfg(unix)]
            let why = match hangup.as_mut() {
                Some(hangup) => tokio::select! {
                    _ = hangup.recv() => "SIGHUP",
                    () = tokio::time::sleep(every) => "poll",
                },
                None => {
                    tokio::time::sleep(every).await;
                    "poll"
                }
            };
            #[cfg(not(unix))]
            let why = {
                tokio::time::sleep(every).await;
                "poll"
            };
            let reloading = Arc::clone(&live);
            let reloaded = blocking(move || reloading.reload())
                .await
                .unwrap_or_else(|err| Err(config_join_error(live.path(), err)));
            match reloaded {
                Ok(Reloaded::Changed) => {
                    last_error = None;
                    tracing::info!(path = %live.path().display(), trigger = why, "upload config reloaded");
                }
                Ok(Reloaded::Unchanged) => {
                    if why == "SIGHUP" {
                        tracing::info!(path = %live.path().display(), "upload config unchanged");
                    }
                    last_error = None;
                }
                Err(err) => {
                    let message = err.to_string();
                    if why == "SIGHUP" || last_error.as_deref() != Some(message.as_str()) {
                        tracing::error!(error = %message, trigger = why, "upload config not reloaded; keeping the old one");
                    }
                    last_error = Some(message);
                }
            }
        }
    }
}

/// At start and then every `merge_every` (if any): removes the staging files of
/// writers that died, and merges every day not merged yet.
async fn housekeeping(storage: Storage, merge_every: Option<Duration>) {
    loop {
        let sweeping = storage.clone();
        match blocking(move || sweeping.remove_staging_debris()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed staging files of interrupted writes"),
            Err(err) => tracing::warn!(error = %err, "staging files not swept"),
        }
        let Some(every) = merge_every else { return };
        match merge(&storage, None).await {
            Ok(days) => tracing::info!(days = days.len(), "daily merge done"),
            Err(err) => tracing::error!(error = %err, "daily merge failed; trying again next time"),
        }
        tokio::time::sleep(every).await;
    }
}
