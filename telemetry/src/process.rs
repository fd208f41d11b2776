//! The two sides of `start`: the parent, which counts and may spawn one detached child,
//! and the child, which watches for the parent's crash and runs the upload.

use std::ffi::OsStr;
use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

use telemetry_internal::{Dir, Mode};

use crate::{Config, StartResult, token};

/// `argv[1]` of the child, so a `ps` listing says what it is.
pub(crate) const CHILD_ARG: &str = "** telemetry **";
/// Unset in a program, `1` in the child, `2` in anything the child starts.
pub(crate) const CHILD_ENV: &str = "TELEMETRY_CHILD";
/// Set to `1` when the child should run the upload.
pub(crate) const CHILD_UPLOAD_ENV: &str = "TELEMETRY_CHILD_UPLOAD";

/// Which role this process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Program,
    Child,
    Descendant,
}

pub(crate) fn role() -> Role {
    match std::env::var_os(CHILD_ENV).as_deref().and_then(OsStr::to_str) {
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
    if dir.mode() == Mode::Off {
        return StartResult::nothing();
    }
    telemetry_counter::open_dir(dir.root(), config.program().clone());

    let now = config.upload_time().unwrap_or_else(SystemTime::now);
    let upload_due = config.uploads() && token::take(&dir, now);
    if !config.reports_crashes() && !upload_due {
        return StartResult::nothing();
    }
    match spawn_child(&dir, config.reports_crashes(), upload_due) {
        Ok(mut child) => {
            #[cfg(unix)]
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

fn spawn_child(dir: &Dir, crash_pipe: bool, upload: bool) -> std::io::Result<Child> {
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
        .env(CHILD_ENV, "1")
        .current_dir(&local)
        .stdin(if crash_pipe && cfg!(unix) { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(stderr);
    if upload {
        cmd.env(CHILD_UPLOAD_ENV, "1");
    } else {
        cmd.env_remove(CHILD_UPLOAD_ENV);
    }
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
    let Some(dir) = config.telemetry_dir() else { return };
    if dir.mode() == Mode::Off {
        return;
    }
    telemetry_counter::open_dir(dir.root(), config.program().clone());
    let upload = std::env::var_os(CHILD_UPLOAD_ENV).is_some_and(|v| v == "1");
    std::thread::scope(|s| {
        if config.reports_crashes() {
            let dir = dir.clone();
            s.spawn(move || {
                let input = std::io::stdin().lock();
                let outcome =
                    telemetry_crashmonitor::child(input, dir.root(), config.program().clone());
                log_debug(&dir, &format!("crash monitor: {outcome:?}"));
            });
        }
        if upload {
            s.spawn(|| run_upload(config, &dir));
        }
    });
}

fn run_upload(config: &Config, dir: &Dir) {
    let (Some(upload_url), Some(config_url)) = (config.upload_url_str(), config.config_url_str())
    else {
        return;
    };
    let mut run = telemetry_upload::RunConfig::new(
        dir.root(),
        upload_url,
        telemetry_upload::ConfigSource::Url(config_url.to_owned()),
    );
    run.start_time = config.upload_time();
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
