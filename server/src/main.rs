//! `telemetry-server`: the collector's command line. See the library for what it does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use telemetry_server::{ServeConfig, Storage, merge, serve};

#[derive(Parser)]
#[command(
    version,
    about = "Receives, validates, stores, merges and charts telemetry reports"
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
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Serve /config.json, /upload/<date>, the dashboard and /healthz.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 or [::]:8080.
        #[arg(long)]
        listen: SocketAddr,
        /// The upload config file (JSON).
        #[arg(long)]
        config: PathBuf,
        /// file:///path or s3://bucket/prefix (with AWS_* variables).
        #[arg(long)]
        storage: String,
        /// Hours between merges of unmerged days (0: never merge in the server).
        #[arg(long, default_value_t = 24)]
        merge_every_hours: u64,
        /// Seconds a client may take to send its headers, and its body.
        #[arg(long, default_value_t = 10)]
        read_timeout_secs: u64,
    },
    /// Merge a day's reports (or every unmerged day's) into merged/ and charts/.
    Merge {
        /// file:///path or s3://bucket/prefix (with AWS_* variables).
        #[arg(long)]
        storage: String,
        /// The day (a report's Week) to merge; default every day not merged yet.
        #[arg(long, value_parser = parse_date)]
        date: Option<telemetry_internal::Day>,
    },
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
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("cannot start the runtime: {err}")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
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
        } => {
            let storage = Storage::open(&storage, std::env::vars()).map_err(|e| e.to_string())?;
            let mut settings = ServeConfig::new(config, storage);
            settings.merge_every = (merge_every_hours > 0)
                .then(|| std::time::Duration::from_secs(merge_every_hours * 3600));
            settings.read_timeout = std::time::Duration::from_secs(read_timeout_secs.max(1));
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            serve(listener, settings, shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
        Command::Merge { storage, date } => {
            let storage = Storage::open(&storage, std::env::vars()).map_err(|e| e.to_string())?;
            let days = merge(&storage, date).await.map_err(|e| e.to_string())?;
            for day in &days {
                println!("{day}");
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
