//! The telemetry child: a re-execution of the program that watches for the parent's
//! crash and runs the upload, then exits.
//!
//! It learns everything from its environment, set by the parent (see [`Plan`]), never
//! from the program's own arguments or `Config`: it runs from the facade's constructor,
//! before `main` (see the `startup` module), so it works whatever `main` does first.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use telemetry_internal::{Ambient, Dir, Mode, Program};

use crate::log::Log;

/// `argv[1]` of the child, so that a `ps` listing says what it is.
pub(crate) const CHILD_ARG: &str = "** telemetry **";

/// `1` in a child (together with a token only its parent could give it, see
/// [`verified`]), `2` in anything a child starts, where `start` does nothing so that
/// telemetry never recurses.
pub(crate) const CHILD_ENV: &str = "TELEMETRY_CHILD";

/// The variables through which the parent describes the child's work.
pub(crate) mod var {
    /// The identity of the token pipe at fd 3 (Unix): `dev:ino`.
    pub(crate) const TOKEN: &str = "TELEMETRY_CHILD_TOKEN";
    /// The telemetry directory, absolute.
    pub(crate) const DIR: &str = "TELEMETRY_CHILD_DIR";
    /// The program's name and version.
    pub(crate) const PROGRAM: &str = "TELEMETRY_CHILD_PROGRAM";
    pub(crate) const VERSION: &str = "TELEMETRY_CHILD_VERSION";
    /// `1`: count the crashes in the crash journal.
    pub(crate) const CRASH: &str = "TELEMETRY_CHILD_CRASH";
    /// Where reports go and where the upload config comes from; both set: upload.
    pub(crate) const UPLOAD_URL: &str = "TELEMETRY_CHILD_UPLOAD_URL";
    pub(crate) const CONFIG_URL: &str = "TELEMETRY_CHILD_CONFIG_URL";
    /// The pretended upload time, in seconds since the Unix epoch.
    pub(crate) const START_TIME: &str = "TELEMETRY_CHILD_START_TIME";
    /// The parent's pretended clock (`Config::clock`), in seconds since the Unix epoch.
    pub(crate) const CLOCK: &str = "TELEMETRY_CHILD_CLOCK";
    /// `1`: log to stderr, which the parent opened on `debug/sidecar.log`.
    pub(crate) const LOG: &str = "TELEMETRY_CHILD_LOG";

    /// Every variable above, which the parent removes before setting its own.
    pub(crate) const ALL: [&str; 10] = [
        TOKEN, DIR, PROGRAM, VERSION, CRASH, UPLOAD_URL, CONFIG_URL, START_TIME, CLOCK, LOG,
    ];
}

/// Whether this process is a telemetry child that its parent really started: not
/// merely `TELEMETRY_CHILD=1` (a stray copy in a user's environment must not turn their
/// tool into a silent no-op), but also the token only the parent could give.
pub(crate) fn verified() -> bool {
    // The cheap test first: this runs in every process, before `main`.
    if std::env::var_os(CHILD_ENV).as_deref() != Some(std::ffi::OsStr::new("1")) {
        return false;
    }
    #[cfg(unix)]
    {
        std::env::var(var::TOKEN)
            .ok()
            .and_then(|t| crate::startup::PipeId::parse(&t))
            .is_some_and(crate::startup::holds_token)
    }
    // Windows: no descriptor to inherit by number; the child is also recognised by its
    // first argument, which no user types by accident.
    #[cfg(not(unix))]
    {
        std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(CHILD_ARG))
    }
}

/// Whether `TELEMETRY_CHILD=2`: a process started by a telemetry child.
pub(crate) fn is_descendant(value: Option<&std::ffi::OsStr>) -> bool {
    value == Some(std::ffi::OsStr::new("2"))
}

/// The child's work, as the parent described it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) dir: PathBuf,
    pub(crate) program: Option<Program>,
    /// Count the crashes waiting in the crash journal.
    pub(crate) crash_journal: bool,
    pub(crate) upload: Option<(String, String)>,
    pub(crate) start_time: Option<SystemTime>,
    /// The parent's pretended clock: the crash is counted in its week, and an upload
    /// without its own start time reports the weeks ended by then.
    pub(crate) clock: Option<SystemTime>,
    pub(crate) log: bool,
}

impl Plan {
    /// The variables that describe this plan to the child (see [`var`]).
    pub(crate) fn to_env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = vec![(CHILD_ENV, OsString::from("1"))];
        env.push((var::DIR, self.dir.clone().into_os_string()));
        if let Some(program) = &self.program {
            env.push((var::PROGRAM, program.name().into()));
            env.push((var::VERSION, program.version().into()));
        }
        if self.crash_journal {
            env.push((var::CRASH, "1".into()));
        }
        if let Some((upload_url, config_url)) = &self.upload {
            env.push((var::UPLOAD_URL, upload_url.into()));
            env.push((var::CONFIG_URL, config_url.into()));
        }
        let secs = |t: Option<SystemTime>| t.and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        if let Some(secs) = secs(self.start_time) {
            env.push((var::START_TIME, secs.as_secs().to_string().into()));
        }
        if let Some(secs) = secs(self.clock) {
            env.push((var::CLOCK, secs.as_secs().to_string().into()));
        }
        if self.log {
            env.push((var::LOG, "1".into()));
        }
        env
    }

    /// Reads the plan back in the child. `None` without an absolute directory.
    fn from_env() -> Option<Plan> {
        let var = |name| std::env::var(name).ok();
        let dir = PathBuf::from(std::env::var_os(var::DIR)?);
        if !dir.is_absolute() {
            return None;
        }
        let program = match (var(var::PROGRAM), var(var::VERSION)) {
            (Some(name), Some(version)) => Some(Program::owned(name, version)),
            _ => None,
        };
        Some(Plan {
            dir,
            program,
            crash_journal: var(var::CRASH).is_some_and(|v| v == "1"),
            upload: var(var::UPLOAD_URL).zip(var(var::CONFIG_URL)),
            start_time: var(var::START_TIME).and_then(|s| time_from_secs(&s)),
            clock: var(var::CLOCK).and_then(|s| time_from_secs(&s)),
            log: var(var::LOG).is_some_and(|v| v == "1"),
        })
    }
}

/// A time written as seconds since the Unix epoch.
fn time_from_secs(text: &str) -> Option<SystemTime> {
    let secs = text.parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// The child's `main`: does the work its parent described, then exits. Never returns.
pub(crate) fn main() -> ! {
    // A panic in the child must not print: its stderr may be the user's debug log,
    // and a panic message is never logged.
    std::panic::set_hook(Box::new(|_| {}));
    let plan = Plan::from_env();
    let _ = std::panic::catch_unwind(|| {
        if let Some(plan) = plan {
            let ambient = Ambient::from_process();
            run(&plan, &ambient);
        }
    });
    std::process::exit(0);
}

/// The child's lines: to stderr, which the parent opened on `debug/sidecar.log`, when
/// the plan says to log.
fn child_log(plan: &Plan) -> Log {
    let name = plan
        .program
        .as_ref()
        .map_or("telemetry", |p| p.name())
        .to_owned();
    if plan.log {
        Log::to(Box::new(std::io::stderr()), &format!("{name} child"))
    } else {
        Log::none()
    }
}

fn run(plan: &Plan, ambient: &Ambient) {
    let log = child_log(plan);
    let dir = Dir::new(&plan.dir);
    let effective = dir.effective_mode(ambient);
    if effective.mode == Mode::Off {
        log.line(format_args!(
            "mode off ({}): nothing to do",
            crate::log::Why {
                effective,
                dir: &dir,
                ambient
            }
        ));
        return;
    }
    log.line(format_args!(
        "started: crash counting {}, upload {}",
        if plan.crash_journal { "on" } else { "off" },
        if plan.upload.is_some() {
            "due"
        } else {
            "not due"
        },
    ));
    #[cfg_attr(
        not(any(feature = "crash", feature = "upload")),
        allow(unused_variables)
    )]
    std::thread::scope(|s| {
        #[cfg(feature = "crash")]
        if plan.crash_journal
            && let Some(program) = plan.program.clone()
        {
            let log = &log;
            let dir = &dir;
            let mode = effective.mode;
            // The crashes count into the week the run that found them counts in.
            let day = telemetry_internal::Day::of(plan.clock.unwrap_or_else(SystemTime::now));
            s.spawn(move || {
                let outcome = telemetry_crashmonitor::process(dir.root(), &program, mode, day);
                log.line(format_args!("crash journal: {}", crash_outcome(&outcome)));
            });
        }
        #[cfg(feature = "upload")]
        if let Some((upload_url, config_url)) = &plan.upload {
            let log = &log;
            let dir = &dir;
            // Under a pretended clock the upload reports the weeks ended by then; the
            // uploader still decides deletions by the real clock.
            let start_time = plan.start_time.or(plan.clock);
            s.spawn(move || run_upload(dir, upload_url, config_url, start_time, log));
        }
    });
    log.line(format_args!("done"));
}

/// What the crash journal's processing did, in words that never hold a counter name
/// beyond its kind (a stack counter's frames are not logged).
#[cfg(feature = "crash")]
fn crash_outcome(outcome: &telemetry_crashmonitor::JournalOutcome) -> String {
    use telemetry_crashmonitor::JournalOutcome;
    let kind = |name: &String| name.lines().next().unwrap_or_default().to_owned();
    match outcome {
        JournalOutcome::Counted { names, left } => format!(
            "counted {}{}",
            names.iter().map(kind).collect::<Vec<_>>().join(", "),
            if *left > 0 {
                format!("; {left} left for a later run")
            } else {
                String::new()
            }
        ),
        JournalOutcome::Empty => "no crash to count".to_owned(),
        JournalOutcome::Busy => "another process is counting the crashes".to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(feature = "upload")]
fn run_upload(
    dir: &Dir,
    upload_url: &str,
    config_url: &str,
    start_time: Option<SystemTime>,
    log: &Log,
) {
    let mut run = telemetry_upload::RunConfig::new(
        dir.root(),
        upload_url,
        telemetry_upload::ConfigSource::Url(config_url.to_owned()),
    );
    run.start_time = start_time;
    run.log = log.writer("upload");
    // Whoever turned the child's log on (TELEMETRY_DEBUG, a logger in code, or a
    // `debug/` the user made) wants to see exactly what leaves the machine.
    run.log_bodies = run.log.is_some();
    // The run logs each report's fate itself, through `run.log`.
    match telemetry_upload::run(run) {
        Ok(summary) => log.line(format_args!(
            "upload finished: {} report(s)",
            summary.reports.len()
        )),
        Err(err) => log.line(format_args!("upload failed: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_round_trips_through_the_environment_names() {
        let plan = Plan {
            dir: PathBuf::from("/abs/dir"),
            program: Some(Program::new("mytool", "1.2.3")),
            crash_journal: true,
            upload: Some(("https://u".into(), "https://c".into())),
            start_time: Some(UNIX_EPOCH + Duration::from_secs(86_400)),
            clock: Some(UNIX_EPOCH + Duration::from_secs(2 * 86_400)),
            log: true,
        };
        let env = plan.to_env();
        let get = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(get(CHILD_ENV).as_deref(), Some("1"));
        assert_eq!(get(var::DIR).as_deref(), Some("/abs/dir"));
        assert_eq!(get(var::START_TIME).as_deref(), Some("86400"));
        assert_eq!(get(var::CLOCK).as_deref(), Some("172800"));
        assert_eq!(get(var::LOG).as_deref(), Some("1"));
        for (name, _) in &env {
            assert!(*name == CHILD_ENV || var::ALL.contains(name), "{name}");
        }
    }
}
