//! Crash reporting's part of `start`: recording into the tool's crash journal, and
//! whether the child must run to count crashes that wait there.
//!
//! Nothing here starts a process: a run that neither crashes nor finds a crash in the
//! journal costs the journal's open, one read and one mapping (see
//! `telemetry_crashmonitor::install`).

use telemetry_internal::Dir;

use crate::Config;
use crate::log::Log;

/// What `start` did about crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrashReporting {
    /// Not asked for, not supported here, or the journal is unusable.
    Off,
    /// This process's crashes are recorded; `waiting`: the journal holds crashes of
    /// earlier runs for the child to count.
    On { waiting: bool },
}

/// Installs crash recording for `config`'s program into `dir`'s journal, if asked for.
pub(crate) fn install(config: &Config, dir: &Dir, log: &Log) -> CrashReporting {
    if !config.get_report_crashes() {
        return CrashReporting::Off;
    }
    #[cfg(all(any(unix, windows), feature = "crash"))]
    {
        match telemetry_crashmonitor::install(dir.root(), config.get_program()) {
            Ok(waiting) => {
                log.line(format_args!(
                    "crash reporting on: {}",
                    if waiting {
                        "crashes of earlier runs wait in the journal"
                    } else {
                        "no crash waiting"
                    }
                ));
                CrashReporting::On { waiting }
            }
            Err(err) => {
                log.line(format_args!("crash reporting not installed: {err}"));
                CrashReporting::Off
            }
        }
    }
    #[cfg(not(all(any(unix, windows), feature = "crash")))]
    {
        let _ = dir;
        log.line(format_args!(
            "report_crashes(true) ignored: crash reporting needs Unix or Windows and the `crash` feature"
        ));
        CrashReporting::Off
    }
}
