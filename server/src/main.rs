//! `telemetry-server`: the collector's command line. See the library for what it does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use telemetry_server::{
    Claims, ServeConfig, Storage, add_symbols, check_config_file, check_stacks_config, list_stacks,
    list_symbols, merge, rows_json, rows_markdown, serve,
};

#[derive(Parser)]
#[command(
    version,
    about = "Receives, validates, stores, merges and charts telemetry reports",
    long_about = "Receives, validates, stores, merges and charts telemetry reports.\n\n\
        `telemetry-server serve --config upload-config.json` serves on 127.0.0.1:8080: \
        tools fetch /config.json and POST reports to /upload/<YYYY-MM-DD>, and the \
        dashboard is at / (http://127.0.0.1:8080/). Reports are stored under --storage, \
        by default file storage in $XDG_DATA_HOME/telemetry-server \
        (~/.local/share/telemetry-server); the path is logged at start."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Least severe log level written: error, warn, info, debug or trace.
    #[arg(long, global = true, default_value = "info")]
    log_level: tracing::Level,
    /// Threads for file-system calls (file storage writes each report through one):
    /// default twice the CPUs, at least 4. More threads than a local disk can use
    /// only switch among themselves; a network file system may want more.
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    blocking_threads: Option<u16>,
}

/// Twice the CPUs, at least 4: enough to keep a local disk busy. tokio's default
/// (512) let every upload in flight wake its own thread, and at 64 connections the
/// server spent more time switching threads than writing files.
fn default_blocking_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    (2 * cpus).max(4)
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Serve /config.json, /upload/<date>, the dashboard at /, /crashes and /healthz.
    #[command(
        long_about = "Serve /config.json (the upload config), POST /upload/<YYYY-MM-DD> \
            (reports), the dashboard at /, the Crashes page at /crashes (JSON: \
            /api/stacks) and /healthz.\n\nReports are stored under \
            --storage (uploaded/<week>/), merged daily into merged/ and charts/."
    )]
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 or [::]:8080. The dashboard is
        /// at http://ADDR/.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The upload config file (JSON).
        #[arg(long)]
        config: PathBuf,
        /// Where reports are stored: file:///path or s3://bucket/prefix (with AWS_*
        /// variables). Default: file storage in $XDG_DATA_HOME/telemetry-server, else
        /// ~/.local/share/telemetry-server (the platform's data directory elsewhere).
        #[arg(long)]
        storage: Option<String>,
        /// Hours between merges of unmerged days (0: never merge in the server).
        #[arg(long, default_value_t = 24)]
        merge_every_hours: u64,
        /// Seconds a client may take to send its headers, and its body.
        #[arg(long, default_value_t = 10)]
        read_timeout_secs: u64,
        /// Claims of stacks by issues for the Crashes page: a JSON list of
        /// {"Issue": URL, "Predicate": "\"crash/panic\" && \"mytool::parse+0x\""},
        /// reloaded like --config.
        #[arg(long)]
        stacks_config: Option<PathBuf>,
    },
    /// Store or list the symbols that name raw crash frames (<build-id>+0x<addr>).
    #[command(subcommand)]
    Symbols(SymbolsCommand),
    /// Print every distinct crash stack (frames named), as the Crashes page shows it.
    Stacks {
        /// Where reports are stored. Default: as for serve.
        #[arg(long)]
        storage: Option<String>,
        /// The first week to include (YYYY-MM-DD); default twelve weeks ago.
        #[arg(long, value_parser = parse_date)]
        since: Option<telemetry_internal::Day>,
        /// json (as GET /api/stacks answers) or markdown (to paste into an issue).
        #[arg(long, value_enum, default_value_t = StacksFormat::Markdown)]
        format: StacksFormat,
        /// The stacks config whose claims to show (as serve --stacks-config).
        #[arg(long)]
        stacks_config: Option<PathBuf>,
    },
    /// Merge a day's reports (or every unmerged day's) into merged/, charts/ and
    /// parquet/.
    Merge {
        /// Where reports are stored: file:///path or s3://bucket/prefix (with AWS_*
        /// variables). Default: as for serve.
        #[arg(long)]
        storage: Option<String>,
        /// The day (a report's Week) to merge; default every day not merged yet.
        #[arg(long, value_parser = parse_date)]
        date: Option<telemetry_internal::Day>,
    },
}

#[derive(Subcommand)]
enum SymbolsCommand {
    /// Read unstripped executables or split debug files (ELF, Mach-O incl. a dSYM's
    /// DWARF file, PE with COFF symbols) and store their function tables under
    /// symbols/<build-id>/.
    Add {
        /// Where reports are stored. Default: as for serve.
        #[arg(long)]
        storage: Option<String>,
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the builds whose symbols are stored.
    List {
        /// Where reports are stored. Default: as for serve.
        #[arg(long)]
        storage: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StacksFormat {
    Json,
    Markdown,
}

fn parse_date(text: &str) -> Result<telemetry_internal::Day, String> {
    telemetry_internal::Day::parse(text).ok_or_else(|| format!("{text:?} is not a YYYY-MM-DD date"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(cli.log_level)
        .with_target(false);
    match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(
            cli.blocking_threads
                .map_or_else(default_blocking_threads, usize::from),
        )
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("cannot start the runtime: {err}")),
    };
    let result = runtime.block_on(run(cli.command));
    // A blocking read stuck on a file system must not keep the process from exiting.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// The process environment, as the storage reads it (variables that are not UTF-8
/// are not ours).
fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
}

/// `--storage`, or the default with a log line saying where it is.
fn storage_url(given: Option<String>) -> Result<String, String> {
    match given {
        Some(url) => Ok(url),
        None => {
            let url = Storage::default_url(environment()).map_err(|e| e.to_string())?;
            tracing::info!(storage = %url, "no --storage given: reports are stored in the default place");
            Ok(url)
        }
    }
}

#[allow(clippy::print_stderr)] // The binary's one line per error.
fn fail(message: &str) -> ExitCode {
    eprintln!("telemetry-server: {message}");
    ExitCode::FAILURE
}

#[allow(clippy::print_stdout)] // `merge` reports what it did.
async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve {
            listen,
            config,
            storage,
            merge_every_hours,
            read_timeout_secs,
            stacks_config,
        } => {
            // Everything that can fail is tried before storage is created, so a start
            // that fails leaves nothing behind.
            let url = storage_url(storage)?;
            check_config_file(&config).map_err(|e| e.to_string())?;
            if let Some(stacks_config) = &stacks_config {
                check_stacks_config(stacks_config).map_err(|e| e.to_string())?;
            }
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
                format!("cannot listen on {listen}: {e}; choose another address with --listen")
            })?;
            let storage = Storage::open(&url, environment()).map_err(|e| e.to_string())?;
            let mut settings = ServeConfig::new(config, storage);
            settings.merge_every = (merge_every_hours > 0)
                .then(|| Duration::from_secs(merge_every_hours.saturating_mul(3600)));
            settings.read_timeout = Duration::from_secs(read_timeout_secs.max(1));
            settings.stacks_config = stacks_config;
            serve(listener, settings, shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
        Command::Merge { storage, date } => {
            let url = storage_url(storage)?;
            let storage = Storage::open(&url, environment()).map_err(|e| e.to_string())?;
            let days = merge(&storage, date).await.map_err(|e| e.to_string())?;
            for day in &days {
                println!("{day}");
            }
            Ok(())
        }
        Command::Symbols(SymbolsCommand::Add { storage, files }) => {
            let url = storage_url(storage)?;
            let storage = Storage::open(&url, environment()).map_err(|e| e.to_string())?;
            let today = telemetry_internal::Day::of(std::time::SystemTime::now());
            let added = add_symbols(&storage, &files, today)
                .await
                .map_err(|e| e.to_string())?;
            for info in &added {
                println!("{info}");
            }
            Ok(())
        }
        Command::Symbols(SymbolsCommand::List { storage }) => {
            let url = storage_url(storage)?;
            let storage = Storage::open(&url, environment()).map_err(|e| e.to_string())?;
            for info in list_symbols(&storage).await.map_err(|e| e.to_string())? {
                println!("{info}");
            }
            Ok(())
        }
        Command::Stacks {
            storage,
            since,
            format,
            stacks_config,
        } => {
            let claims = match &stacks_config {
                Some(path) => check_stacks_config(path).map_err(|e| e.to_string())?,
                None => Claims::default(),
            };
            let url = storage_url(storage)?;
            let storage = Storage::open(&url, environment()).map_err(|e| e.to_string())?;
            let since = since.unwrap_or_else(|| {
                telemetry_internal::Day::of(std::time::SystemTime::now())
                    .plus(-telemetry_server::DEFAULT_SINCE_DAYS)
            });
            let rows = list_stacks(&storage, Some(since), &claims)
                .await
                .map_err(|e| e.to_string())?;
            match format {
                StacksFormat::Json => println!("{}", rows_json(Some(since), &rows)),
                StacksFormat::Markdown => print!("{}", rows_markdown(&rows)),
            }
            Ok(())
        }
    }
}

/// SIGTERM (what service managers send) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
