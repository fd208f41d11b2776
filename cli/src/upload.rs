//! `telemetry upload`: one upload run, now; and the last fetched upload config, which
//! `view` uses to mark the counters that may be uploaded.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use telemetry_internal::Date;
use telemetry_upload::{ConfigSource, ReportStatus, RunConfig, UploadConfig};

use super::{CmdResult, Context, Failure};

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
    start_time: Option<Date>,
    /// Print the run's log to stderr.
    #[arg(long, short)]
    verbose: bool,
}

fn parse_day(text: &str) -> Result<Date, String> {
    telemetry_internal::parse_date(text).ok_or_else(|| format!("{text:?} is not a date YYYY-MM-DD"))
}

/// Midnight UTC at the start of `day`.
fn start_of(day: Date) -> SystemTime {
    const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
    let days = i64::from(day.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY;
    let secs = Duration::from_secs(days.unsigned_abs() * 86_400);
    if days >= 0 {
        SystemTime::UNIX_EPOCH + secs
    } else {
        SystemTime::UNIX_EPOCH - secs
    }
}

/// A log the upload run can own (it must be `Send`), copied to our stderr afterwards.
#[derive(Clone, Default)]
struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn run(ctx: &mut Context<'_>, args: &UploadArgs) -> CmdResult {
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
    let dir = ctx.dir()?;
    let mut config = RunConfig::new(dir.root(), upload_url, source);
    config.start_time = args.start_time.map(start_of);
    let log = SharedLog::default();
    if args.verbose {
        config.log = Some(Box::new(log.clone()));
    }
    let result = telemetry_upload::run(config);
    if let Ok(log) = log.0.lock() {
        ctx.err.write_all(&log)?;
    }
    let summary = result.map_err(|err| Failure(format!("upload failed: {err}")))?;
    if summary.reports.is_empty() {
        writeln!(
            ctx.out,
            "No week has ended since the last run: nothing to report."
        )?;
    }
    let mut failed = false;
    for report in &summary.reports {
        writeln!(ctx.out, "{}", super::terminal_safe(&report.to_string()))?;
        failed |= matches!(report.status, ReportStatus::Failed { .. });
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The upload config saved by the last upload run, as `view` needs it.
pub(super) struct Approvals(UploadConfig);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_midnight_utc() {
        let day = |s| start_of(telemetry_internal::parse_date(s).unwrap());
        assert_eq!(day("1970-01-01"), SystemTime::UNIX_EPOCH);
        // 2026-11-21 is the date in telemetry_upload's own example.
        assert_eq!(
            day("2026-11-21"),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_219_200)
        );
        assert_eq!(
            day("1969-12-31"),
            SystemTime::UNIX_EPOCH - Duration::from_secs(86_400)
        );
    }
}
