//! `telemetry upload`: one upload run, now; and the last fetched upload config, which
//! `view` uses to mark the counters that may be uploaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{CmdResult, Context, Failure};

/// Arguments of `telemetry upload`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("config").required(true).args(["config_url", "config_file"])))]
pub(super) struct UploadArgs {
    /// Where reports are sent: each is POSTed to <URL>/<YYYY-MM-DD>.
    #[arg(long, value_name = "URL")]
    upload_url: String,
    /// Where to fetch the upload config (which counters may be sent).
    #[arg(long, value_name = "URL")]
    config_url: Option<String>,
    /// Read the upload config from a file instead.
    #[arg(long, value_name = "PATH")]
    config_file: Option<PathBuf>,
    /// Pretend the run happens on this day (YYYY-MM-DD, UTC), for tests and diagnostics.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    start_time: Option<telemetry_internal::Date>,
}

fn parse_day(text: &str) -> Result<telemetry_internal::Date, String> {
    telemetry_internal::parse_date(text).ok_or_else(|| format!("{text:?} is not a date YYYY-MM-DD"))
}

pub(super) fn run(_ctx: &mut Context<'_>, _args: &UploadArgs) -> CmdResult {
    Err(Failure("upload is not available yet".into()))
}

/// The upload config saved by the last upload run, as `view` needs it.
pub(super) struct Approvals {
    version: String,
    check: Box<dyn Fn(&BTreeMap<String, String>, &str) -> bool>,
}

impl Approvals {
    /// Whether a counter from a file with this metadata may be uploaded.
    pub(super) fn approves(&self, meta: &BTreeMap<String, String>, counter: &str) -> bool {
        (self.check)(meta, counter)
    }

    /// The config's version, as reports record it.
    pub(super) fn version(&self) -> &str {
        &self.version
    }
}

/// The last fetched config for the telemetry directory `root`, if any.
pub(super) fn approvals(_root: &Path) -> Option<Approvals> {
    None
}

#[allow(dead_code)]
fn _unused(_: ExitCode) {}
