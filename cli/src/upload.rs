//! `telemetry upload`: one upload run, now (or a dry run that shows the exact bodies);
//! and the upload config that `view` uses to mark the counters that may be uploaded.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use telemetry_internal::{Day, Mode};
use telemetry_upload::{
    ConfigSource, ReportStatus, RunConfig, RunSummary, UploadConfig, UploadError,
};

use super::{CmdResult, Context, Failure, Target, terminal_safe};

/// Arguments of `telemetry upload`. The URLs default to those of the embedding
/// tool's [`Config`](telemetry::Config), if it set them.
#[derive(Debug, clap::Args)]
pub(super) struct UploadArgs {
    /// Where reports are sent: each is POSTed to <URL>/<YYYY-MM-DD>.
    #[arg(long, value_name = "URL")]
    upload_url: Option<String>,
    /// Where to fetch the upload config (which counters may be sent).
    #[arg(long, value_name = "URL", conflicts_with = "config_file")]
    config_url: Option<String>,
    /// Read the upload config from a file instead.
    #[arg(long, value_name = "PATH")]
    config_file: Option<PathBuf>,
    /// Pretend the run happens on this day (YYYY-MM-DD, UTC), for tests and diagnostics.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    start_time: Option<Day>,
    /// Print the exact bodies that would be POSTed; send nothing, change nothing.
    ///
    /// The run works on a copy of the directory. A week whose report is not built yet
    /// gets its random sample number X when it is really built, so its body (X, and
    /// whether it is sampled at all) can differ from the one shown.
    #[arg(long)]
    dry_run: bool,
    /// Print each step to stderr as it happens.
    #[arg(long, short)]
    verbose: bool,
}

fn parse_day(text: &str) -> Result<Day, String> {
    Day::parse(text).ok_or_else(|| format!("{text:?} is not a date YYYY-MM-DD"))
}

/// Lines of the run's log, sent to the thread that prints them as they happen (the
/// run's log must be `Send + 'static`; our stderr is neither).
struct ChannelLog(mpsc::Sender<Vec<u8>>);

impl Write for ChannelLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The receiver only goes away after the run: nothing to do if it did.
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn run(ctx: &mut Context<'_>, args: &UploadArgs) -> CmdResult {
    let dir = match ctx.target()? {
        Target::Tool(dir) => dir,
        Target::Root(_) => {
            return ctx.usage_error(
                "upload",
                "an upload run works on one tool's directory, which uploads to its own vendor: \
                 use --tool NAME or --dir PATH",
            );
        }
    };
    let source = match (
        &args.config_url,
        &args.config_file,
        ctx.config.config_url_str(),
    ) {
        (Some(url), _, _) => ConfigSource::Url(url.clone()),
        (None, Some(file), _) => ConfigSource::File(file.clone()),
        (None, None, Some(url)) => ConfigSource::Url(url.to_owned()),
        (None, None, None) => {
            return ctx.usage_error(
                "upload",
                "--config-url <URL> or --config-file <PATH> is required",
            );
        }
    };
    let upload_url = match (&args.upload_url, ctx.config.upload_url_str()) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url.to_owned(),
        (None, None) => return ctx.usage_error("upload", "--upload-url <URL> is required"),
    };
    ctx.check_readable(&dir)?;
    let effective = dir.effective_mode(ctx.ambient);
    if effective.mode == Mode::Off {
        // Mode off writes nothing, so a run would do nothing; say why rather than
        // "nothing to report". FIXME(upload): use the run's typed outcome for this.
        writeln!(
            ctx.out,
            "Telemetry is off for {} ({}): nothing is built, changed or sent.",
            dir.root().display(),
            super::env::why(&dir, ctx.ambient, effective)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let start_time = args
        .start_time
        .map(Day::start)
        .or_else(|| ctx.config.upload_time());
    if args.dry_run {
        return super::dryrun::run(ctx, &dir, upload_url, source, start_time, args.verbose);
    }
    let mut config = RunConfig::new(dir.root(), upload_url, source);
    config.start_time = start_time;
    let summary = run_streaming(ctx, config, args.verbose)
        .map_err(|err| Failure::Message(format!("upload failed: {err}")))?;
    if summary.reports.is_empty() {
        writeln!(
            ctx.out,
            "No week has ended since the last run: nothing to report."
        )?;
    }
    let mut failed = false;
    for report in &summary.reports {
        writeln!(ctx.out, "{}", terminal_safe(&report.to_string()))?;
        failed |= matches!(report.status, ReportStatus::Failed { .. });
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs one upload, printing its log to stderr line by line as it happens when
/// `verbose`, and otherwise, on a terminal, a progress line once it takes a while.
pub(super) fn run_streaming(
    ctx: &mut Context<'_>,
    mut config: RunConfig,
    verbose: bool,
) -> Result<RunSummary, UploadError> {
    let progress = !verbose && ctx.err_is_terminal;
    if !verbose && !progress {
        return telemetry_upload::run(config);
    }
    let (sender, receiver) = mpsc::channel::<Vec<u8>>();
    config.log = Some(Box::new(ChannelLog(sender)));
    let name = ctx.name.clone();
    let err = &mut *ctx.err;
    std::thread::scope(|scope| {
        // The run owns the only sender; when it returns, the channel closes.
        let worker = scope.spawn(move || telemetry_upload::run(config));
        let started = Instant::now();
        let mut last_step = String::new();
        let mut drawn = false;
        let mut shown = (0, String::new());
        loop {
            match receiver.recv_timeout(Duration::from_millis(250)) {
                Ok(bytes) => {
                    if verbose {
                        let _ = err.write_all(&bytes);
                        let _ = err.flush();
                    } else {
                        last_step = String::from_utf8_lossy(&bytes).trim_end().to_owned();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let secs = started.elapsed().as_secs();
            if progress && secs >= 1 && (secs, &last_step) != (shown.0, &shown.1) {
                let step: String = terminal_safe(&last_step).chars().take(60).collect();
                let _ = write!(err, "\r\x1b[K{name}: uploading… {secs}s {step}");
                shown = (secs, last_step.clone());
                let _ = err.flush();
                drawn = true;
            }
        }
        if drawn {
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        worker.join().unwrap_or_else(|_| {
            Err(UploadError::Panicked {
                message: "the upload thread panicked".to_owned(),
            })
        })
    })
}

/// An upload config for `view`, and which counters it approves.
pub(super) struct Approvals(pub(super) UploadConfig);

impl Approvals {
    /// Whether a counter from a file with this metadata may be uploaded (ignoring
    /// sampling).
    pub(super) fn approves(&self, meta: &BTreeMap<String, String>, counter: &str) -> bool {
        self.0.approves(meta, counter)
    }

    /// The config's version, as reports record it.
    pub(super) fn version(&self) -> &str {
        self.0.version()
    }
}

/// The last fetched config for the telemetry directory `root`, if any.
pub(super) fn approvals(root: &Path) -> Option<Approvals> {
    telemetry_upload::last_config(root).map(Approvals)
}

/// The largest config accepted, as in the upload crate; Go's real one is about 30 KB.
const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// An upload config from a file, for `view --config-file`.
pub(super) fn read_config(path: &Path) -> Result<UploadConfig, Failure> {
    let bytes = telemetry_internal::fs::read_bounded(path, MAX_CONFIG_BYTES)
        .map_err(|err| Failure::io(format!("cannot read {}", path.display()), &err))?;
    UploadConfig::parse(&bytes)
        .map_err(|err| Failure::Message(format!("{}: {err}", path.display())))
}

/// An upload config from a URL, for `view --config-url`: https, or http to this
/// machine, with a deadline, nothing sent but the GET.
///
/// FIXME(upload): use `telemetry_upload::ConfigSource::load` once it is public; until
/// then this mirrors its checks.
pub(super) fn fetch_config(url: &str) -> Result<UploadConfig, Failure> {
    let failed = |reason: String| Failure::Message(format!("cannot fetch {url}: {reason}"));
    let lower = url.to_ascii_lowercase();
    let https = lower.starts_with("https://");
    let loopback_http = lower.strip_prefix("http://").is_some_and(|rest| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.split(':').next().unwrap_or(""),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if !https && !loopback_http {
        return Err(failed(
            "only https URLs (or http to this machine) are used for telemetry".to_owned(),
        ));
    }
    let timeout = Duration::from_secs(30);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .https_only(https)
        .max_redirects(if https { 3 } else { 0 })
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(failed(format!("the server answered {status}")));
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_CONFIG_BYTES)
        .read_to_vec()
        .map_err(|e| failed(e.to_string()))?;
    UploadConfig::parse(&bytes).map_err(|err| failed(err.to_string()))
}
