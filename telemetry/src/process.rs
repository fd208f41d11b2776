//! The parent side of `start`: decide, count, and maybe start one detached child.
//!
//! Every input from the process's surroundings (the environment, the clock) is read
//! once, in [`StartInputs::from_process`], and passed down, so tests can drive every
//! decision; the executable's path is looked up only when a child is started.
//!
//! Nothing here may panic: std's panic hook would print on the host's stderr even if
//! `start` caught the panic. No `unwrap`, no indexing, no arithmetic that can
//! overflow; every failure is a line in the decision log and a quieter telemetry.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use telemetry_counter::{OpenStatus, Opened};
use telemetry_internal::{Ambient, Dir, Mode, Program};

use crate::child::{self, CHILD_ARG, CHILD_ENV, Plan};
use crate::crash::CrashReporting;
use crate::log::Log;
use crate::{Config, StartResult};

/// What the process's surroundings say, read once at the boundary.
#[derive(Debug)]
pub(crate) struct StartInputs {
    /// DO_NOT_TRACK and the user's config directory.
    pub(crate) ambient: Ambient,
    /// `TELEMETRY_DEBUG` asks for the decision log on stderr.
    pub(crate) debug: bool,
    /// `TELEMETRY_CHILD`, as found.
    pub(crate) child_var: Option<OsString>,
    /// The executable to re-execute as the child, for tests; `None`: this process's
    /// own, looked up only when a child is started (it costs a system call).
    pub(crate) exe: Option<PathBuf>,
    /// Now.
    pub(crate) now: SystemTime,
    /// Whether the facade is part of the program's executable, not of a library or
    /// plugin some other program loaded.
    pub(crate) in_executable: bool,
}

impl StartInputs {
    /// The only place `start` reads the environment and the clock.
    pub(crate) fn from_process() -> StartInputs {
        StartInputs {
            ambient: Ambient::from_process(),
            debug: std::env::var_os("TELEMETRY_DEBUG").is_some_and(|v| v == "1"),
            child_var: std::env::var_os(CHILD_ENV),
            exe: None,
            now: SystemTime::now(),
            in_executable: crate::startup::in_main_executable(),
        }
    }
}

/// The decision log `start` writes to: the config's logger, else stderr under
/// `TELEMETRY_DEBUG=1`, else nowhere.
pub(crate) fn decision_log(config: &Config, env: &StartInputs) -> Log {
    let name = config.get_program().name();
    match config.shared_logger() {
        Some(writer) => Log::shared(writer, name),
        None if env.debug => Log::to(Box::new(io::stderr()), name),
        None => Log::none(),
    }
}

/// The parent side. Returns what was started; never fails loudly, never panics.
pub(crate) fn parent(config: &Config, env: &StartInputs, log: &Log) -> StartResult {
    if child::is_descendant(env.child_var.as_deref()) {
        log.line(format_args!(
            "off: this process was started by a telemetry child (TELEMETRY_CHILD=2)"
        ));
        return StartResult::nothing();
    }
    if env.child_var.is_some() {
        // A real child never gets here (the constructor ran it before `main`).
        log.line(format_args!(
            "ignoring TELEMETRY_CHILD: this process was not started by telemetry"
        ));
    }
    let Some(dir) = config.telemetry_dir_in(&env.ambient) else {
        log.line(format_args!(
            "mode off (no home directory, or no working directory for a relative dir): nothing written"
        ));
        return StartResult::nothing();
    };
    let effective = dir.effective_mode(&env.ambient);
    log.line(format_args!(
        "mode {} ({}), directory {}",
        effective.mode,
        crate::log::Why {
            effective,
            dir: &dir,
            ambient: &env.ambient
        },
        dir.root().display()
    ));
    if effective.mode == Mode::Off {
        return StartResult::nothing();
    }

    // Without an upload asked for, only crashes waiting in the journal can start a
    // child, and the journal is read by installing crash reporting: a run that will
    // start no child needs nothing from the counter file until it counts, so the first
    // count opens it, and a run that counts nothing (a tool asked for its `--version`)
    // opens, maps and creates no file.
    let installed = if config.get_clock().is_none() && !config.get_upload() {
        let crashes = if env.in_executable {
            crate::crash::install(config, &dir, log)
        } else {
            CrashReporting::Off
        };
        if crashes != (CrashReporting::On { waiting: true }) {
            return count_from_the_first_count(config, &dir, effective.mode, env, log, crashes);
        }
        Some(crashes)
    } else {
        None
    };

    // A process that outlives its week must move to the next week's file: the week it
    // started in is reported, and its file deleted, a day after that week ends (Go's
    // `OpenAndRotate`). The rotation thread wakes at midnight and at least hourly. A
    // pretended clock (`Config::clock`) stands still: its counts all go into its week,
    // and nothing rotates them into the real one.
    let opened = match config.get_clock() {
        Some(pretended) => Opened {
            status: telemetry_counter::open_with_mode(
                &dir,
                config.get_program().clone(),
                effective.mode,
                telemetry_internal::Day::of(pretended),
            ),
            // A test's pretended day: list the directory whatever the file's age.
            created: true,
        },
        None => telemetry_counter::open_with_mode_and_rotate(
            &dir,
            config.get_program().clone(),
            effective.mode,
            telemetry_internal::Day::of(env.now),
            &env.ambient,
        ),
    };
    let listed_as = crate::registry::listed_as(config);
    if !after_open(opened, listed_as, &dir, &env.ambient, log) {
        // The directory is unusable (unwritable, full, a corrupt file): a child could
        // record nothing either.
        log.line(format_args!(
            "no child started: the counter file cannot be used"
        ));
        return StartResult::nothing();
    }

    if !env.in_executable {
        log_in_a_library(log);
        return StartResult::nothing();
    }
    let upload_due = upload_due(config, &dir, env, log);
    let crashes = installed.unwrap_or_else(|| crate::crash::install(config, &dir, log));
    let crashes_waiting = crashes == CrashReporting::On { waiting: true };
    if !crashes_waiting && !upload_due {
        log_no_child(crashes, log);
        return StartResult::nothing();
    }
    let plan = Plan {
        dir: dir.root().to_owned(),
        program: Some(config.get_program().clone()),
        // Crashes are counted when some wait, and on an upload day anyway: the check
        // costs the child one read.
        crash_journal: crashes != CrashReporting::Off,
        upload: if upload_due {
            config
                .get_upload_url()
                .zip(config.get_config_url())
                .map(|(u, c)| (u.to_owned(), c.to_owned()))
        } else {
            None
        },
        start_time: config.get_upload_start_time(),
        clock: config.get_clock(),
        // The child logs when the program asked for a log, or the user made debug/.
        log: log.is_on() || dir.debug_if_enabled().is_some(),
    };
    start_child(&dir, &plan, env, log)
}

/// The end of a start that starts no child: counting from the first count on (see
/// `telemetry_counter::open_with_mode_at_first_count`). Registered after every line
/// is logged: the log's writer is the tool's, and whatever it counts must not open
/// the file under the log's lock.
fn count_from_the_first_count(
    config: &Config,
    dir: &Dir,
    mode: Mode,
    env: &StartInputs,
    log: &Log,
    crashes: CrashReporting,
) -> StartResult {
    if log.is_on() {
        let today = telemetry_internal::Day::of(env.now);
        log.line(format_args!(
            "counting from the first count, into {}",
            dir.counter_file(config.get_program(), today).display()
        ));
        if env.in_executable {
            log_no_child(crashes, log);
        } else {
            log_in_a_library(log);
        }
    }
    // Only what the first count's logging and listing need, not the whole config.
    let listed_as = crate::registry::listed_as(config).cloned();
    let (later_dir, ambient, later_log) = (dir.clone(), env.ambient.clone(), log.clone());
    telemetry_counter::open_with_mode_at_first_count(
        dir,
        config.get_program().clone(),
        mode,
        &env.ambient,
        move |opened| {
            after_open(opened, listed_as.as_ref(), &later_dir, &ambient, &later_log);
        },
    );
    StartResult::nothing()
}

fn log_no_child(crashes: CrashReporting, log: &Log) {
    log.line(format_args!(
        "no child started: {} and no upload due",
        if crashes == CrashReporting::Off {
            "crash reporting off"
        } else {
            "no crash to count"
        }
    ));
}

/// The executable is some other program that loaded us: re-executing it would start
/// the host, not us, and its crashes and uploads are not ours to handle.
fn log_in_a_library(log: &Log) {
    log.line(format_args!(
        "no child started: telemetry is in a library loaded by another program, not in its executable; counting only, crash reporting and uploads off"
    ));
}

/// Logs what opening the counter file did and, if this run made the day's file, keeps
/// the directory listed in the root's registry under `listed_as` (a tool with a
/// directory of its own). `false` when counting stays in memory.
fn after_open(
    opened: Opened,
    listed_as: Option<&Program>,
    dir: &Dir,
    ambient: &Ambient,
    log: &Log,
) -> bool {
    // Listing the directory in the root's registry is once-a-day work: a tool is
    // listed by the run that makes the day's file, so the other runs of the day
    // neither read nor write the registry. A listing lost (the registry deleted or
    // rebuilt) comes back by the next day's first run.
    if let (true, Some(program)) = (opened.created, listed_as) {
        crate::registry::keep_findable(program, dir, ambient, log);
    }
    match opened.status {
        OpenStatus::Counting(path) => {
            log.line(format_args!("counting into {}", path.display()));
            true
        }
        OpenStatus::Off => {
            log.line(format_args!("mode off: counting stays in memory"));
            false
        }
        OpenStatus::InMemory(err) => {
            log.line(format_args!("counting stays in memory: {err}"));
            false
        }
    }
}

/// Whether an upload is due: asked for, both URLs set, and the day's token taken.
fn upload_due(config: &Config, dir: &Dir, env: &StartInputs, log: &Log) -> bool {
    if !config.get_upload() {
        return false;
    }
    if !cfg!(feature = "upload") {
        log.line(format_args!(
            "upload(true) ignored: built without the `upload` feature"
        ));
        return false;
    }
    if !config.uploads() {
        let why = "upload(true) ignored: it needs both upload_url and config_url";
        if log.is_on() {
            log.line(format_args!("{why}"));
        } else if dir.debug_if_enabled().is_some() {
            // A misconfigured tool, and a user who made debug/ to find out why
            // nothing is uploaded: tell them there, even without a logger.
            let file = telemetry_internal::fs::open_append(&dir.sidecar_log());
            if let Ok(file) = file {
                Log::to(Box::new(file), config.get_program().name()).line(format_args!("{why}"));
            }
        }
        return false;
    }
    let now = config
        .get_upload_start_time()
        .or(config.get_clock())
        .unwrap_or(env.now);
    #[cfg(feature = "upload")]
    {
        let token = crate::token::take(dir, now);
        log.line(format_args!("{token}"));
        matches!(token, crate::token::Token::Taken)
    }
    #[cfg(not(feature = "upload"))]
    {
        let _ = (dir, now);
        false
    }
}

/// Starts the child for `plan`.
fn start_child(dir: &Dir, plan: &Plan, env: &StartInputs, log: &Log) -> StartResult {
    let exe = match executable(env) {
        Ok(exe) => exe,
        Err(err) => {
            // Some platforms cannot re-execute the program (no /proc/self/exe, qemu
            // user emulation, a deleted executable). Go's `go` command died here
            // (golang/go#68976); we log and carry on counting.
            log.line(format_args!("no child started: {err}"));
            return StartResult::nothing();
        }
    };
    match spawn(&exe, dir, plan, log) {
        Ok(started) => {
            log.line(format_args!(
                "child started (pid {}): crash counting {}, upload {}",
                started.pid,
                if plan.crash_journal { "on" } else { "off" },
                if plan.upload.is_some() {
                    "due"
                } else {
                    "not due"
                },
            ));
            started.result
        }
        Err(err) => {
            log.line(format_args!("no child started: cannot start it: {err}"));
            StartResult::nothing()
        }
    }
}

/// The executable to re-execute, checked before forking: a child that fails to exec
/// would be noticed by nobody.
fn executable(env: &StartInputs) -> io::Result<PathBuf> {
    let exe = match &env.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()
            .map_err(|err| io::Error::new(err.kind(), format!("no executable: {err}")))?,
    };
    let meta = std::fs::metadata(&exe)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", exe.display())))?;
    if !meta.is_file() {
        return Err(io::Error::other(format!("{} is not a file", exe.display())));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(io::Error::other(format!(
                "{} is not executable",
                exe.display()
            )));
        }
    }
    Ok(exe)
}

/// What [`spawn`] started.
struct Started {
    pid: u32,
    result: StartResult,
}

/// The child's stderr: `debug/sidecar.log` when the child logs (`debug/` is created
/// if needed); else nothing. Opened without following
/// links and without blocking on a FIFO.
fn sidecar_log(dir: &Dir, plan: &Plan, log: &Log) -> Option<std::fs::File> {
    if !plan.log {
        return None;
    }
    if let Err(err) = telemetry_internal::fs::ensure_private_dir(dir.root())
        .and_then(|()| telemetry_internal::fs::ensure_private_dir(&dir.debug()))
    {
        log.line(format_args!("the child logs nowhere: debug/: {err}"));
        return None;
    }
    match telemetry_internal::fs::open_append(&dir.sidecar_log()) {
        Ok(file) => Some(file),
        Err(err) => {
            log.line(format_args!(
                "the child logs nowhere: {}: {err}",
                dir.sidecar_log().display()
            ));
            None
        }
    }
}

/// The child's environment: this process's, without any `TELEMETRY_CHILD*` variable
/// it may hold, plus the plan's.
fn child_env(plan: &Plan, extra: &[(&'static str, OsString)]) -> Vec<(OsString, OsString)> {
    let ours = |name: &OsString| {
        name.to_str()
            .is_some_and(|n| n == CHILD_ENV || child::var::ALL.contains(&n))
    };
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(name, _)| !ours(name))
        .collect();
    env.extend(
        plan.to_env()
            .into_iter()
            .chain(extra.iter().cloned())
            .map(|(k, v)| (OsString::from(k), v)),
    );
    env
}

#[cfg(unix)]
fn spawn(exe: &Path, dir: &Dir, plan: &Plan, log: &Log) -> io::Result<Started> {
    use crate::startup::{Launch, dev_null, id_of, pipe, spawn_detached};
    use std::os::fd::OwnedFd;
    use telemetry_internal::move_above_stdio;

    let (token_read, token_write) = pipe()?;
    let token_id = id_of(&token_read)?;
    let null = dev_null()?;
    let stdin = null.try_clone()?;
    let stderr = match sidecar_log(dir, plan, log) {
        Some(file) => move_above_stdio(OwnedFd::from(file))?,
        None => null.try_clone()?,
    };
    let bad = || io::Error::other("a NUL byte in the executable path or the environment");
    let env = child_env(plan, &[(child::var::TOKEN, token_id.to_env().into())]);
    let launch = Launch {
        exe: Launch::c_string(exe).ok_or_else(bad)?,
        args: vec![
            Launch::c_string(exe).ok_or_else(bad)?,
            Launch::c_string(CHILD_ARG).ok_or_else(bad)?,
        ],
        env: env
            .iter()
            .map(|(k, v)| Launch::env_entry(k, v))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?,
        // The child runs in `local/`, so it keeps no directory of the program's busy.
        cwd: Launch::c_string(dir.local()).ok_or_else(bad)?,
        stdio: [stdin, null, stderr],
        token: token_write,
    };
    let (pid, token) = spawn_detached(launch, token_read)?;
    Ok(Started {
        pid,
        result: StartResult::child(pid, token),
    })
}

/// Windows and other platforms: std's `Command`. Windows has no zombies to reap and a
/// `DETACHED_PROCESS` child holds no console of the program's.
#[cfg(not(unix))]
fn spawn(exe: &Path, dir: &Dir, plan: &Plan, log: &Log) -> io::Result<Started> {
    use std::process::{Command, Stdio};
    let stderr = sidecar_log(dir, plan, log).map_or_else(Stdio::null, Stdio::from);
    let mut cmd = Command::new(exe);
    cmd.arg(CHILD_ARG)
        .current_dir(dir.local())
        .env_clear()
        .envs(child_env(plan, &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    #[cfg(windows)]
    crate::spawn_windows::detach(&mut cmd);
    let child = cmd.spawn()?;
    let pid = child.id();
    Ok(Started {
        pid,
        result: StartResult::child(child),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn start_inputs(config_dir: &Path) -> StartInputs {
        StartInputs {
            ambient: Ambient::with_config_dir(config_dir),
            debug: false,
            child_var: None,
            exe: Some(PathBuf::from("/nonexistent/telemetry-test-exe")),
            now: SystemTime::now(),
            in_executable: true,
        }
    }

    /// Runs the parent side for `config` (with a logger) and returns its lines.
    fn decisions(config: Config, env: &StartInputs) -> (String, bool) {
        let lines = Lines::default();
        let config = config.logger(lines.clone());
        let log = decision_log(&config, env);
        let started = parent(&config, env, &log);
        (lines.text(), started.started_child())
    }

    fn config(dir: &Path) -> Config {
        Config::new(Program::new("logtest", "1.0.0")).dir(dir)
    }

    #[test]
    fn mode_off_is_logged_and_nothing_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t");
        Dir::new(&dir).set_mode(Mode::Off).unwrap();
        let (text, child) = decisions(config(&dir), &start_inputs(tmp.path()));
        let pid = std::process::id();
        assert_eq!(
            text.lines().next().unwrap(),
            format!(
                "logtest[{pid}] telemetry: mode off (the mode file says off), directory {}",
                dir.display()
            )
        );
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!child);
        assert!(!dir.join("local").exists());
    }

    #[test]
    fn do_not_track_is_logged() {
        let tmp = tempfile::tempdir().unwrap();
        let mut env = start_inputs(tmp.path());
        env.ambient = env.ambient.do_not_track(true);
        let (text, _) = decisions(config(&tmp.path().join("t")), &env);
        assert!(
            text.contains("mode off (DO_NOT_TRACK is set; no mode file; local is the default)"),
            "{text}"
        );
        assert!(!tmp.path().join("t").exists());
    }

    #[test]
    fn user_wide_off_is_honoured() {
        let tmp = tempfile::tempdir().unwrap();
        let env = start_inputs(tmp.path());
        env.ambient.root().unwrap().set_mode(Mode::Off).unwrap();
        let program = Program::new("logtest", "1.0.0");
        let (text, _) = decisions(Config::new(program), &env);
        assert!(text.contains("mode off (the user-wide switch "), "{text}");
        assert!(!tmp.path().join("telemetry/logtest").exists());
    }

    #[test]
    fn local_without_a_child() {
        let tmp = tempfile::tempdir().unwrap();
        let (text, child) = decisions(config(&tmp.path().join("t")), &start_inputs(tmp.path()));
        assert!(
            text.contains("mode local (no mode file; local is the default), directory "),
            "{text}"
        );
        // Nothing to start, so nothing to open before the first count.
        assert!(
            text.contains("counting from the first count, into "),
            "{text}"
        );
        assert!(
            text.contains("no child started: crash reporting off and no upload due"),
            "{text}"
        );
        assert!(!tmp.path().join("t/local").exists());
        assert!(!child);
    }

    #[test]
    fn a_pretended_clock_counts_into_its_week_and_judges_the_token_by_it() {
        let tmp = tempfile::tempdir().unwrap();
        let env = start_inputs(tmp.path());
        let dir = tmp.path().join("t");
        let uploading = || {
            config(&dir)
                .upload(true)
                .upload_url("http://127.0.0.1:9/upload")
                .config_url("http://127.0.0.1:9/config.json")
        };
        let back_then = telemetry_internal::Day::parse("2026-11-10").unwrap();
        let (text, _) = decisions(uploading().clock(back_then.start()), &env);
        assert!(
            text.contains("-2026-11-10.v1.count"),
            "counts go into the pretended day's file: {text}"
        );
        assert!(text.contains("upload due: token taken"), "{text}");
        let token = std::fs::read_to_string(Dir::new(&dir).upload_token()).unwrap();
        let secs = back_then
            .start()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(
            token.trim(),
            secs.to_string(),
            "taken at the pretended time"
        );
        // The real clock, days later: the token is due again, and today's file is used.
        let (text, _) = decisions(uploading(), &env);
        assert!(text.contains("upload due: token taken"), "{text}");
        let today = telemetry_internal::Day::of(env.now);
        assert!(text.contains(&format!("-{today}.v1.count")), "{text}");
    }

    #[test]
    fn upload_due_then_not_due_and_spawn_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let env = start_inputs(tmp.path());
        let uploading = || {
            config(&tmp.path().join("t"))
                .upload(true)
                .upload_url("http://127.0.0.1:9/upload")
                .config_url("http://127.0.0.1:9/config.json")
        };
        let (text, child) = decisions(uploading(), &env);
        assert!(text.contains("upload due: token taken"), "{text}");
        // The executable is missing: the failure is logged, nothing else happens.
        assert!(
            text.contains("no child started: no executable: ")
                || text.contains("no child started: /nonexistent/telemetry-test-exe"),
            "{text}"
        );
        assert!(!child);
        let (text, _) = decisions(uploading(), &env);
        assert!(
            text.contains("upload not due: the token was taken less than a day ago"),
            "{text}"
        );
    }

    #[test]
    fn upload_without_urls_is_logged() {
        let tmp = tempfile::tempdir().unwrap();
        let (text, _) = decisions(
            config(&tmp.path().join("t"))
                .upload(true)
                .upload_url("http://127.0.0.1:9/u"),
            &start_inputs(tmp.path()),
        );
        assert!(
            text.contains("upload(true) ignored: it needs both upload_url and config_url"),
            "{text}"
        );
    }

    #[test]
    fn upload_without_urls_is_logged_to_debug_without_a_logger() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path().join("t"));
        std::fs::create_dir_all(dir.debug()).unwrap();
        let config = config(dir.root()).upload(true);
        let env = start_inputs(tmp.path());
        let log = decision_log(&config, &env);
        assert!(!log.is_on());
        let _ = parent(&config, &env, &log);
        let text = std::fs::read_to_string(dir.sidecar_log()).unwrap();
        assert_eq!(
            text,
            format!(
                "logtest[{}] telemetry: upload(true) ignored: it needs both upload_url and config_url\n",
                std::process::id()
            )
        );
    }

    #[test]
    fn unusable_directory_counts_in_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let (text, child) = decisions(
            config(&file.join("t")).report_crashes(true),
            &start_inputs(tmp.path()),
        );
        // The journal cannot be made there, so no crash can wait and no child can
        // start: the counter file is left to the first count, which will count in
        // memory.
        assert!(text.contains("crash reporting not installed: "), "{text}");
        assert!(
            text.contains("no child started: crash reporting off and no upload due"),
            "{text}"
        );
        assert!(!child);
    }

    #[test]
    fn stray_child_variable_is_ignored_and_descendants_do_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut env = start_inputs(tmp.path());
        env.child_var = Some("1".into());
        let (text, _) = decisions(config(&tmp.path().join("t")), &env);
        assert!(text.contains("ignoring TELEMETRY_CHILD"), "{text}");
        assert!(
            text.contains("counting from the first count, into "),
            "{text}"
        );
        env.child_var = Some("2".into());
        let (text, child) = decisions(config(&tmp.path().join("u")), &env);
        assert!(text.contains("started by a telemetry child"), "{text}");
        assert!(!child);
        assert!(!tmp.path().join("u").exists());
    }

    #[test]
    fn a_library_counts_but_starts_nothing_and_says_why() {
        let tmp = tempfile::tempdir().unwrap();
        let mut env = start_inputs(tmp.path());
        env.in_executable = false;
        let dir = tmp.path().join("t");
        let config = config(&dir)
            .report_crashes(true)
            .upload(true)
            .upload_url("http://127.0.0.1:9/upload")
            .config_url("http://127.0.0.1:9/config.json");
        let (text, child) = decisions(config, &env);
        assert!(text.contains("counting into "), "{text}");
        assert!(
            text.contains("no child started: telemetry is in a library loaded by another program"),
            "{text}"
        );
        assert!(!child);
        assert!(
            !Dir::new(&dir).upload_token().exists(),
            "no upload token taken"
        );
    }

    #[test]
    fn no_logger_no_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let env = start_inputs(tmp.path());
        let config = config(&tmp.path().join("t"));
        assert!(!decision_log(&config, &env).is_on());
    }
}
