//! `telemetry upload`: one upload run, now (or a dry run that shows the exact bodies);
//! and the upload config that `view` uses to mark the counters that may be uploaded.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use telemetry_internal::{Day, Dir, EffectiveMode, Mode};
use telemetry_upload::{
    ConfigSource, ReportStatus, RunConfig, RunSummary, UploadConfig, UploadError,
};

use super::{CmdResult, Context, Failure, Target, terminal_safe};

/// Arguments of `telemetry upload`. The URLs default to those of the embedding
/// tool's [`Config`](telemetry::Config), if it set them.
#[derive(Debug, clap::Args)]
pub(super) struct UploadArgs {
    /// Where reports are sent: each is POSTed to URL/YYYY-MM-DD (the report's week).
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
    /// Every report is built and checked as in a real run, in memory only. A week whose
    /// report is not built yet gets its random sample number X when it is really built,
    /// so its body (X, and whether it is sampled at all) can differ from the one shown.
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
        ctx.config.get_config_url(),
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
    let upload_url = match (&args.upload_url, ctx.config.get_upload_url()) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url.to_owned(),
        // A dry run sends nothing: it shows the bodies, and the URL as unknown.
        (None, None) if args.dry_run => NO_UPLOAD_URL.to_owned(),
        (None, None) => return ctx.usage_error("upload", "--upload-url <URL> is required"),
    };
    ctx.check_readable(&dir)?;
    let checked_config = if args.dry_run {
        // A dry run is how a person checks a setup: the config is read and checked
        // even when no week is due (a real run fetches it only for a week to send).
        let (config, _) = source
            .load(CONFIG_TIMEOUT)
            .map_err(|err| Failure::Message(format!("upload config: {err}")))?;
        Some(config)
    } else {
        None
    };
    let mut config = RunConfig::new(dir.root(), upload_url, source.clone());
    // The command's ambient inputs, never the upload crate's own read of the process.
    config.ambient = ctx.ambient.clone();
    config.start_time = args
        .start_time
        .map(Day::start)
        .or_else(|| ctx.config.get_upload_start_time());
    config.dry_run = args.dry_run;
    let summary = run_streaming(ctx, config, args.verbose)
        .map_err(|err| Failure::Message(format!("upload failed: {err}")))?;
    if let Some(switch) = summary.off {
        // The run read, wrote and sent nothing; say which switch decided, and what the
        // tool's own mode file says, rather than "nothing to report".
        let effective = EffectiveMode {
            mode: Mode::Off,
            decided_by: switch,
        };
        writeln!(
            ctx.out,
            "Telemetry is off for {} ({}): nothing is built, changed or sent.",
            dir.root().display(),
            super::env::why(&dir, ctx.ambient, effective)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(checked) = checked_config {
        return print_dry_run(ctx, &dir, &summary, &checked, &source);
    }
    // The summary's own lines (a report's reason may quote a server or a file).
    for line in summary.to_string().lines() {
        writeln!(ctx.out, "{}", terminal_safe(line))?;
    }
    let failed = summary
        .reports
        .iter()
        .any(|report| matches!(report.status, ReportStatus::Failed { .. }));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `--dry-run`: each body exactly as a real run would POST it, then what would happen
/// to each week. The run built and checked them as a real run does, and sent and
/// changed nothing.
fn print_dry_run(
    ctx: &mut Context<'_>,
    dir: &Dir,
    summary: &RunSummary,
    config: &UploadConfig,
    source: &ConfigSource,
) -> CmdResult {
    let origin = match source {
        ConfigSource::Url(url) => url.clone(),
        ConfigSource::File(path) => path.display().to_string(),
    };
    for post in &summary.would_send {
        let url = match post.url.strip_prefix(NO_UPLOAD_URL) {
            Some(rest) => format!("<upload URL>{rest}"),
            None => post.url.clone(),
        };
        writeln!(ctx.out, "POST {url} ({} bytes)", post.body.len())?;
        ctx.out.write_all(&post.body)?;
        if !post.body.ends_with(b"\n") {
            writeln!(ctx.out)?;
        }
    }
    if summary.would_send.is_empty() {
        writeln!(ctx.out, "Nothing would be sent.")?;
    }
    for report in &summary.reports {
        let status = match &report.status {
            ReportStatus::WouldBeSent => "would be sent (body above)".to_owned(),
            other => other.to_string(),
        };
        writeln!(ctx.out, "{}: {}", report.week, terminal_safe(&status))?;
    }
    writeln!(
        ctx.out,
        "Upload config {}: version {}, read and checked.",
        terminal_safe(&origin),
        terminal_safe(config.version())
    )?;
    if summary
        .would_send
        .iter()
        .any(|post| post.url.starts_with(NO_UPLOAD_URL))
    {
        writeln!(
            ctx.out,
            "No upload URL was given (--upload-url): a real run sends to the tool's own."
        )?;
    }
    writeln!(
        ctx.out,
        "Dry run: nothing was sent, and nothing in {} was changed.",
        dir.root().display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs one upload, printing its log to stderr line by line as it happens when
/// `verbose`, and otherwise, on a terminal, a progress line once it takes a while.
fn run_streaming(
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
                        // The run's log quotes file names and servers' answers.
                        let text = String::from_utf8_lossy(&bytes);
                        for line in text.split_inclusive('\n') {
                            let (line, end) = match line.strip_suffix('\n') {
                                Some(line) => (line, "\n"),
                                None => (line, ""),
                            };
                            let _ = write!(err, "{}{end}", terminal_safe(line));
                        }
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

/// The upload URL of a dry run given none: never contacted (a dry run sends
/// nothing), shown as `<upload URL>`. An https URL under the reserved `.invalid`
/// domain, so that the run's URL checks pass.
const NO_UPLOAD_URL: &str = "https://upload-url.invalid";

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

/// The longest `view --config-url` waits for the config, as an upload run does.
const CONFIG_TIMEOUT: Duration = Duration::from_secs(30);

/// An upload config from a file, for `view --config-file`, read as `upload
/// --config-file` reads it (a regular file, bounded).
pub(super) fn read_config(path: &Path) -> Result<UploadConfig, Failure> {
    ConfigSource::File(path.to_owned())
        .load(CONFIG_TIMEOUT)
        .map(|(config, _)| config)
        .map_err(|err| Failure::Message(err.to_string()))
}

/// An upload config from a URL, for `view --config-url`, fetched as an upload run
/// fetches it: https, or http to this machine, with a deadline and a size bound,
/// nothing sent but the GET, nothing saved.
pub(super) fn fetch_config(url: &str) -> Result<UploadConfig, Failure> {
    let reason = match ConfigSource::Url(url.to_owned()).load(CONFIG_TIMEOUT) {
        Ok((config, _)) => return Ok(config),
        Err(UploadError::InsecureUrl { .. } | UploadError::BadUrl { .. }) => {
            "only https URLs (or http to this machine) are used for telemetry".to_owned()
        }
        // Its own wording promises a next run, which a view does not make.
        Err(UploadError::ConfigFetch { reason, .. }) => reason,
        Err(err) => err.to_string(),
    };
    Err(Failure::Message(format!("cannot fetch {url}: {reason}")))
}
