//! Fault injection, end to end: hostile surroundings that must never cost the host
//! anything (invariant 7 of ARCHITECTURE.md, "What the child must be"). Real processes, real
//! files, real pipes; every wait is bounded, and in every scenario the host's exit
//! status, stdout and stderr are the same with telemetry as without it.
//!
//! Unix only: descriptors, FIFOs, umasks, reaping and signals are what it injects.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use telemetry_internal::{Day, Dir, counter_file_name};
use telemetry_tests::{
    EVENT_TIMEOUT, assert_pipeline_ends_before_the_upload, eventually, example, expired_week,
    files_under, mytool, opt_in, output_within, processes_in, program, quote, scenario_dir,
    serving_approving_config, shell, todays_counts, todays_counts_of,
};

/// Long enough for a loaded CI machine, short enough that a hang fails quickly.
const LIMIT: Duration = Duration::from_secs(15);

/// Panic messages name the thread's id, which differs from run to run.
fn normalized(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut out = String::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("' (") {
        out.push_str(&rest[..start + 1]);
        rest = &rest[start + 1..];
        if let Some(end) = rest.find(')')
            && rest[2..end].bytes().all(|b| b.is_ascii_digit())
        {
            rest = &rest[end + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Runs the host made by `make` with telemetry, then with `DO_NOT_TRACK=1`, and checks
/// that exit status, stdout and stderr are identical. Returns the run with telemetry.
fn same_with_and_without(make: impl Fn() -> Command) -> Output {
    let with = output_within(make(), LIMIT);
    let mut off = make();
    off.env("DO_NOT_TRACK", "1");
    let without = output_within(off, LIMIT);
    assert_eq!(with.status.code(), without.status.code(), "exit status");
    assert_eq!(
        String::from_utf8_lossy(&with.stdout),
        String::from_utf8_lossy(&without.stdout),
        "stdout"
    );
    assert_eq!(
        normalized(&with.stderr),
        normalized(&without.stderr),
        "stderr"
    );
    with
}

/// A daemon that closed fds 0-2 before `start`: crash reporting keeps no descriptor
/// (the journal is mapped and its descriptor closed), so nothing of ours becomes its
/// stderr, and its heavy output is what it is without telemetry.
#[test]
fn closed_stdio_never_carries_a_descriptor_of_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    std::fs::create_dir_all(Dir::new(&dir).debug()).unwrap();
    let out =
        same_with_and_without(|| mytool(&dir, &["--close-stdio", "--crashes", "noisy", "3000"]));
    assert_eq!(out.status.code(), Some(0));
    let counts = todays_counts(&dir);
    assert_eq!(
        counts.get("mytool/subcommand:noisy"),
        Some(&1),
        "{counts:?}"
    );
    assert!(
        !counts.keys().any(|k| k.starts_with("crash/")),
        "{counts:?}"
    );
    assert!(
        !telemetry_crashmonitor::has_pending(&dir),
        "a crash recorded where none happened"
    );
}

/// A relative `Config::dir` is resolved once, by the parent: the child (which runs in
/// `local/`) records the crash where everything else reads it.
#[test]
fn relative_dir_is_made_absolute_before_the_child_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let make = || {
        let mut cmd = Command::new(example("mytool"));
        cmd.args(["--dir", "rel", "--crashes", "panic", "x"])
            .current_dir(tmp.path())
            .env_remove("DO_NOT_TRACK")
            .env_remove("TELEMETRY_DEBUG");
        cmd
    };
    let out = same_with_and_without(make);
    assert_eq!(out.status.code(), Some(101));
    // The next run's child counts the recorded crash.
    let out = Command::new(example("mytool"))
        .args(["--dir", "rel", "--crashes", "--wait", "greet"])
        .current_dir(tmp.path())
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = tmp.path().join("rel");
    eventually(EVENT_TIMEOUT, "the crash counter", || {
        todays_counts(&dir)
            .keys()
            .any(|k| k.starts_with("crash/panic\n"))
    });
    assert!(!dir.join("local/rel").exists());
}

/// `(tool 3>&1) | cat`: the child must not inherit fd 3 (the pipe to `cat`), or the
/// pipeline waits for a slow upload.
#[test]
fn inherited_descriptors_are_closed_in_the_child() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    opt_in(dir, 20);
    expired_week(dir, &[("mytool/subcommand:greet", 1)]);
    let server = serving_approving_config();
    server.set_delay(Duration::from_secs(4));
    let script = format!(
        "({} --dir {} --server '{}' --crashes greet 3>&1) | cat",
        quote(&example("mytool")),
        quote(dir),
        server.url()
    );
    assert_pipeline_ends_before_the_upload(&script, &server, Duration::from_secs(3));
}

/// A host that reaps children until it has none does not wait for the telemetry
/// child (here started to count a crash an earlier program left in the directory's
/// journal).
#[test]
fn a_host_waiting_for_all_its_children_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let crashed = output_within(mytool(tmp.path(), &["--crashes", "panic", "x"]), LIMIT);
    assert_eq!(crashed.status.code(), Some(101));
    assert!(telemetry_crashmonitor::has_pending(tmp.path()));
    let mut cmd = Command::new(example("waiter"));
    cmd.arg(tmp.path())
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG");
    let out = output_within(cmd, LIMIT);
    assert!(out.status.success());
    // On Linux `start` does not even raise a SIGCHLD in the host, except under
    // qemu-user (`cargo xtask cross` says so), which refuses the clone that makes
    // that possible, so that `start` falls back to a plain fork.
    let emulated = std::env::var_os("TELEMETRY_TESTS_UNDER_QEMU").is_some();
    let sigchld = if cfg!(target_os = "linux") && !emulated {
        0
    } else {
        1
    };
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("sigchld {sigchld}\nreaped 1\n")
    );
    // The child did run: the crash is counted, in the crashed program's file.
    eventually(EVENT_TIMEOUT, "the crash counter", || {
        todays_counts(tmp.path())
            .keys()
            .any(|k| k.starts_with("crash/panic\n"))
    });
}

/// A long-running host that started an upload child gathers no zombie: the child is
/// not its child at all.
#[test]
fn a_long_running_host_gathers_no_zombies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    opt_in(&dir, 20);
    expired_week(&dir, &[("mytool/subcommand:greet", 1)]);
    let server = serving_approving_config();
    let after = tmp.path().join("after");
    let mut cmd = Command::new(example("waiter"));
    cmd.arg(&dir)
        .arg(server.url())
        .arg("--then-list-children")
        .arg(&after)
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // The upload shows the child was started. It keeps watching the host's crashes
    // while the host lives, so there is no exit to wait for: what the host must not
    // have is a child at all, running or a zombie (the fork `start` made to detach
    // it was reaped before `start` returned).
    eventually(EVENT_TIMEOUT, "the upload", || server.uploads().len() == 1);
    std::fs::write(&after, "").unwrap();
    let out = telemetry_tests::wait_within(child, LIMIT);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with("reaped 1\nchildren 0\n"), "{stdout}");
}

/// What gets planted where a telemetry file should be.
#[derive(Clone, Copy, Debug)]
enum Plant {
    Fifo,
    Symlink,
    Huge,
}

fn plant(path: &Path, what: Plant, victim: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    match what {
        Plant::Fifo => {
            let ok = Command::new("mkfifo").arg(path).status().unwrap();
            assert!(ok.success());
        }
        Plant::Symlink => std::os::unix::fs::symlink(victim, path).unwrap(),
        // Sparse: 2 GiB that must never be read whole.
        Plant::Huge => std::fs::File::create(path)
            .unwrap()
            .set_len(2 << 30)
            .unwrap(),
    }
}

type PathOf = fn(&Dir) -> PathBuf;

/// Plants a FIFO, a symbolic link and a huge file in turn at each target, and runs the
/// tool with crash reporting and an upload due: no hang, no write through the link,
/// and no change to the host's output.
fn planted_files_cost_the_host_nothing(targets: &[(&str, PathOf)]) {
    let server = serving_approving_config();
    for (name, path_of) in targets {
        for what in [Plant::Fifo, Plant::Symlink, Plant::Huge] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("t");
            let victim = tmp.path().join("victim");
            std::fs::write(&victim, "precious").unwrap();
            std::fs::create_dir_all(Dir::new(&dir).debug()).unwrap();
            let path = path_of(&Dir::new(&dir));
            plant(&path, what, &victim);
            // Names the case a time-out is about (the test harness shows it on failure).
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{name} as {what:?}");
            }
            let begin = Instant::now();
            let out = same_with_and_without(|| {
                mytool(&dir, &["--crashes", "--server", server.url(), "greet"])
            });
            assert_eq!(out.status.code(), Some(0), "{name} as {what:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
            assert!(
                begin.elapsed() < Duration::from_secs(10),
                "{name} as {what:?}: {:?}",
                begin.elapsed()
            );
            // Every child done before looking at the victim.
            eventually(EVENT_TIMEOUT, "the telemetry child to exit", || {
                processes_in(&dir).is_empty()
            });
            assert_eq!(
                std::fs::read(&victim).unwrap(),
                b"precious",
                "{name} as {what:?}: written through the link"
            );
        }
    }
}

/// The files `start` itself reads or writes: the mode, the upload token, the child's log.
#[test]
fn planted_mode_token_and_log_cost_the_host_nothing() {
    planted_files_cost_the_host_nothing(&[
        ("mode", |d| d.mode_file()),
        ("upload.token", |d| d.upload_token()),
        ("sidecar.log", |d| d.sidecar_log()),
    ]);
}

/// The files the counter crate opens for `start`: `weekends` and today's counter file.
#[test]
fn planted_weekends_and_counter_file_cost_the_host_nothing() {
    planted_files_cost_the_host_nothing(&[
        ("weekends", |d| d.weekends()),
        ("counter file", |d| {
            let today = Day::of(std::time::SystemTime::now());
            d.local().join(counter_file_name(&program(), today))
        }),
    ]);
}

/// Under umask 000 everything telemetry creates is still private: directories 0700,
/// files 0600.
#[test]
fn umask_000_still_creates_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    let server = serving_approving_config();
    let script = format!(
        "umask 000; exec {} --dir {} --crashes --server '{}' --wait greet",
        quote(&example("mytool")),
        quote(&dir),
        server.url()
    );
    let mut cmd = shell(&script);
    cmd.env("TELEMETRY_DEBUG", "1");
    let out = output_within(cmd, LIMIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = files_under(&dir);
    assert!(
        found.iter().any(|p| p.ends_with("upload.token")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.ends_with("sidecar.log")),
        "{found:?}"
    );
    let open: Vec<String> = std::iter::once(dir.clone())
        .chain(found)
        .filter_map(|path| {
            let mode = std::fs::symlink_metadata(&path).ok()?.permissions().mode();
            (mode & 0o077 != 0).then(|| format!("{} is {:o}", path.display(), mode & 0o777))
        })
        .collect();
    assert!(open.is_empty(), "readable by others: {open:#?}");
}

/// A stray `TELEMETRY_CHILD=1` (with or without made-up companions) is not a child:
/// the tool runs, counts, and even starts its real child (due to count a crash of an
/// earlier run).
#[test]
fn a_spoofed_child_variable_changes_nothing() {
    for extra in [
        vec![("TELEMETRY_CHILD", "1")],
        vec![
            ("TELEMETRY_CHILD", "1"),
            ("TELEMETRY_CHILD_TOKEN", "1:2"),
            ("TELEMETRY_CHILD_DIR", "/"),
            ("TELEMETRY_CHILD_CRASH", "1"),
        ],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t");
        let crashed = output_within(mytool(&dir, &["--crashes", "panic", "x"]), LIMIT);
        assert_eq!(crashed.status.code(), Some(101));
        let mut cmd = mytool(&dir, &["--crashes", "--wait", "greet"]);
        cmd.envs(extra.iter().copied());
        let out = output_within(cmd, LIMIT);
        assert!(out.status.success(), "{extra:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n", "{extra:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "child: true\n",
            "{extra:?}"
        );
        assert_eq!(todays_counts(&dir).get("mytool/subcommand:greet"), Some(&1));

        // A clap tool, whose parser would reject the child's argument, too.
        let mut cmd = Command::new(example("clap_tool"));
        cmd.arg("--dir")
            .arg(&dir)
            .arg("greet")
            .env_remove("DO_NOT_TRACK")
            .envs(extra.iter().copied());
        let out = output_within(cmd, LIMIT);
        assert!(out.status.success(), "{extra:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
        assert_eq!(
            todays_counts_of(&dir, "clap_tool").get("clap_tool/subcommand:greet"),
            Some(&1)
        );
    }
}

/// The plain scenarios, with and without telemetry: greet, a panic, heavy output.
#[test]
fn host_output_is_identical_with_and_without_telemetry() {
    // A run after the panic starts a child to count it, which nothing here waits for.
    let tmp = scenario_dir();
    let dir = tmp.path().join("t");
    for args in [
        &["greet"][..],
        &["--crashes", "greet"],
        &["--crashes", "panic", "secret"],
        &["--crashes", "noisy", "2000"],
        &["--crashes", "bogus"],
    ] {
        same_with_and_without(|| mytool(&dir, args));
    }
}

/// Whether strace runs here (else the calling test is skipped, or fails where
/// required).
fn strace_usable() -> bool {
    let works = Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    telemetry_test_support::Tool::STRACE.available(works)
}

/// The processes one run of `mytool ARGS` creates, traced by strace: `execve`s and
/// `clone`s that are not threads.
#[cfg(target_os = "linux")]
fn processes_created(dir: &Path, args: &[&str]) -> (usize, Vec<String>) {
    let trace = dir.with_extension("trace");
    let out = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=clone,clone3,fork,vfork,execve",
            "-o",
        ])
        .arg(&trace)
        .arg(example("mytool"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let execs = text.lines().filter(|l| l.contains("execve(")).count();
    let forks = text
        .lines()
        .filter(|l| {
            let call = ["clone(", "clone3(", "fork(", "vfork("]
                .iter()
                .any(|c| l.contains(c));
            call && !l.contains("CLONE_THREAD") && !l.contains("resumed>")
        })
        .map(str::to_owned)
        .collect();
    (execs, forks)
}

/// With crash reporting on, a run that does not crash and has no upload due creates
/// no process, the first run (which creates the journal) included; a run that finds
/// a crash in the journal starts the one child that counts it.
#[cfg(target_os = "linux")]
#[test]
fn crash_reporting_creates_no_process_until_there_is_a_crash() {
    if !strace_usable() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    for _ in 0..2 {
        let (execs, forks) = processes_created(&dir, &["--crashes", "greet"]);
        assert_eq!(execs, 1, "only the program itself is executed");
        assert!(forks.is_empty(), "{forks:#?}");
    }
    let out = mytool(&dir, &["--crashes", "panic", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(101));
    assert!(telemetry_crashmonitor::has_pending(&dir));
    let (execs, forks) = processes_created(&dir, &["--crashes", "--wait", "greet"]);
    assert_eq!(execs, 2, "the program and its child");
    assert!(!forks.is_empty());
    eventually(EVENT_TIMEOUT, "the crash counter", || {
        todays_counts(&dir)
            .keys()
            .any(|k| k.starts_with("crash/panic\n"))
    });
    assert!(!telemetry_crashmonitor::has_pending(&dir));
}
