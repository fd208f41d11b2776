//! The two sides of `start`: the parent, which counts and may spawn one detached child,
//! and the child, which watches for the parent's crash and runs the upload.

use std::ffi::OsStr;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use telemetry_counter::OpenStatus;
use telemetry_internal::{Dir, Mode};

use crate::{Config, StartResult, token};

/// `argv[1]` of the child, so a `ps` listing says what it is.
pub(crate) const CHILD_ARG: &str = "** telemetry **";
/// Unset in a program, `1` in the child, `2` in anything the child starts: `start`
/// then does nothing. (The child starts no process today, and changing its own
/// environment would need `unsafe` in edition 2024, so it honours `2` but never sets it.)
pub(crate) const CHILD_ENV: &str = "TELEMETRY_CHILD";

/// What the parent asks of the child. The child learns everything from its
/// environment, not from its own `Config`: it re-executes `main` with other arguments
/// (`** telemetry **`), so a config built from the command line (a `--dir` flag, say)
/// would differ from the parent's.
mod child_env {
    /// The telemetry directory.
    pub(crate) const DIR: &str = "TELEMETRY_CHILD_DIR";
    /// `1`: stdin is the crash pipe.
    pub(crate) const CRASH: &str = "TELEMETRY_CHILD_CRASH";
    /// `1`: run the upload.
    pub(crate) const UPLOAD: &str = "TELEMETRY_CHILD_UPLOAD";
    /// Where reports go.
    pub(crate) const UPLOAD_URL: &str = "TELEMETRY_CHILD_UPLOAD_URL";
    /// Where the upload config comes from.
    pub(crate) const CONFIG_URL: &str = "TELEMETRY_CHILD_CONFIG_URL";
    /// The pretended upload time, in seconds since the Unix epoch.
    pub(crate) const START_TIME: &str = "TELEMETRY_CHILD_START_TIME";
}

/// The child's work, as the parent described it.
#[derive(Debug, Default)]
struct ChildPlan {
    dir: Option<PathBuf>,
    crash_pipe: bool,
    upload: Option<(String, String)>,
    start_time: Option<SystemTime>,
}

impl ChildPlan {
    fn for_parent(config: &Config, dir: &Dir, upload: bool) -> ChildPlan {
        ChildPlan {
            dir: Some(dir.root().to_owned()),
            crash_pipe: config.reports_crashes()
                && cfg!(all(any(unix, windows), feature = "crash")),
            upload: match (upload, config.upload_url_str(), config.config_url_str()) {
                (true, Some(up), Some(cfg)) => Some((up.to_owned(), cfg.to_owned())),
                _ => None,
            },
            start_time: config.upload_time(),
        }
    }

    fn apply(&self, cmd: &mut Command) {
        for var in [
            child_env::DIR,
            child_env::CRASH,
            child_env::UPLOAD,
            child_env::UPLOAD_URL,
            child_env::CONFIG_URL,
            child_env::START_TIME,
        ] {
            cmd.env_remove(var);
        }
        cmd.env(CHILD_ENV, "1");
        if let Some(dir) = &self.dir {
            cmd.env(child_env::DIR, dir);
        }
        if self.crash_pipe {
            cmd.env(child_env::CRASH, "1");
        }
        if let Some((upload_url, config_url)) = &self.upload {
            cmd.env(child_env::UPLOAD, "1")
                .env(child_env::UPLOAD_URL, upload_url)
                .env(child_env::CONFIG_URL, config_url);
        }
        if let Some(secs) = self
            .start_time
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        {
            cmd.env(child_env::START_TIME, secs.as_secs().to_string());
        }
    }

    fn from_env() -> ChildPlan {
        let var = |name| std::env::var(name).ok();
        let upload = match (
            var(child_env::UPLOAD),
            var(child_env::UPLOAD_URL),
            var(child_env::CONFIG_URL),
        ) {
            (Some(on), Some(up), Some(cfg)) if on == "1" => Some((up, cfg)),
            _ => None,
        };
        ChildPlan {
            dir: std::env::var_os(child_env::DIR).map(PathBuf::from),
            crash_pipe: var(child_env::CRASH).is_some_and(|v| v == "1"),
            upload,
            start_time: var(child_env::START_TIME)
                .and_then(|s| s.parse().ok())
                .map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
        }
    }
}

/// Which role this process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Program,
    Child,
    Descendant,
}

pub(crate) fn role() -> Role {
    match std::env::var_os(CHILD_ENV)
        .as_deref()
        .and_then(OsStr::to_str)
    {
        Some("1") => Role::Child,
        Some("2") => Role::Descendant,
        _ => Role::Program,
    }
}

/// The parent side. Returns what was started; never fails loudly.
pub(crate) fn parent(config: &Config) -> StartResult {
    let Some(dir) = config.telemetry_dir() else {
        return StartResult::nothing(); // no home directory: off
    };
    // Opening reads the mode: under `off` it writes nothing and neither do we.
    match telemetry_counter::open_dir(dir.root(), config.program().clone()) {
        OpenStatus::Counting(_) => {}
        OpenStatus::Off => return StartResult::nothing(),
        OpenStatus::InMemory(err) => {
            // The directory is unusable (unwritable, full, corrupt file): a child could
            // not record anything either. Counts stay in memory.
            log_debug(&dir, &format!("counting in memory: {err}"));
            return StartResult::nothing();
        }
    }

    let now = config.upload_time().unwrap_or_else(SystemTime::now);
    let upload_due = cfg!(feature = "upload") && config.uploads() && token::take(&dir, now);
    if !config.reports_crashes() && !upload_due {
        return StartResult::nothing();
    }
    match spawn_child(&dir, &ChildPlan::for_parent(config, &dir, upload_due)) {
        #[cfg_attr(not(all(any(unix, windows), feature = "crash")), allow(unused_mut))]
        Ok(mut child) => {
            #[cfg(all(any(unix, windows), feature = "crash"))]
            if let Some(pipe) = child.stdin.take() {
                // Failing to watch for crashes only costs the crash counters.
                let _ = telemetry_crashmonitor::parent(pipe);
            }
            StartResult::child(child)
        }
        Err(err) => {
            // Some platforms cannot re-execute the program (no /proc/self/exe, qemu
            // user emulation, AIX-like systems). Go's `go` command died here
            // (golang/go#68976); we log and carry on counting.
            log_debug(&dir, &format!("cannot start the telemetry child: {err}"));
            StartResult::nothing()
        }
    }
}

fn spawn_child(dir: &Dir, plan: &ChildPlan) -> std::io::Result<Child> {
    let exe = std::env::current_exe()?;
    let local = dir.local();
    std::fs::create_dir_all(&local)?;
    let stderr = match dir.debug_if_enabled() {
        Some(debug) => File::options()
            .create(true)
            .append(true)
            .open(debug.join("sidecar.log"))
            .map_or_else(|_| Stdio::null(), Stdio::from),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(exe);
    cmd.arg(CHILD_ARG)
        .current_dir(&local)
        .stdin(if plan.crash_pipe {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(stderr);
    plan.apply(&mut cmd);
    #[cfg(windows)]
    crate::spawn_windows::detach(&mut cmd);
    cmd.spawn()
}

/// The child side: count the parent's crash, if any, and upload, if due; then exit.
pub(crate) fn child(config: &Config) -> ! {
    // A session of its own: the terminal's hangup and job-control signals are for the
    // program, not for its telemetry. (Done here rather than between fork and exec,
    // which would need `unsafe`; the window in between is a few instructions of
    // process start-up.)
    #[cfg(unix)]
    let _ = rustix::process::setsid();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_child(config)));
    if result.is_err()
        && let Some(dir) = config.telemetry_dir()
    {
        log_debug(&dir, "the telemetry child panicked");
    }
    std::process::exit(0);
}

fn run_child(config: &Config) {
    let plan = ChildPlan::from_env();
    let Some(dir) = plan
        .dir
        .clone()
        .map(Dir::new)
        .or_else(|| config.telemetry_dir())
    else {
        return;
    };
    if dir.mode() == Mode::Off {
        return;
    }
    // The child counts only crashes, and the crash monitor opens the counter file
    // itself before counting (Go's child once dropped every crash by not opening it:
    // golang/go#69681), so there is nothing to open here.
    #[cfg_attr(
        not(any(feature = "crash", feature = "upload")),
        allow(unused_variables)
    )]
    std::thread::scope(|s| {
        #[cfg(feature = "crash")]
        if plan.crash_pipe {
            s.spawn(|| {
                let input = std::io::stdin().lock();
                let outcome =
                    telemetry_crashmonitor::child(input, dir.root(), config.program().clone());
                log_debug(&dir, &format!("crash monitor: {outcome:?}"));
            });
        }
        #[cfg(feature = "upload")]
        if let Some((upload_url, config_url)) = &plan.upload {
            s.spawn(|| run_upload(&dir, upload_url, config_url, plan.start_time));
        }
    });
}

#[cfg(feature = "upload")]
fn run_upload(dir: &Dir, upload_url: &str, config_url: &str, start_time: Option<SystemTime>) {
    let mut run = telemetry_upload::RunConfig::new(
        dir.root(),
        upload_url,
        telemetry_upload::ConfigSource::Url(config_url.to_owned()),
    );
    run.start_time = start_time;
    match telemetry_upload::run(run) {
        Ok(summary) => {
            for report in &summary.reports {
                log_debug(dir, &format!("upload: {report}"));
            }
        }
        Err(err) => log_debug(dir, &format!("upload: {err}")),
    }
}

/// One line to `debug/sidecar.log`, only if the user created `debug/`.
pub(crate) fn log_debug(dir: &Dir, line: &str) {
    use std::io::Write;
    if let Some(debug) = dir.debug_if_enabled()
        && let Ok(mut file) = File::options()
            .create(true)
            .append(true)
            .open(debug.join("sidecar.log"))
    {
        let _ = writeln!(file, "telemetry[{}]: {line}", std::process::id());
    }
}
