//! The orchestrator: runs each scenario's program and then a counting child, reads
//! what they left, and reports as libtest does. The same on every platform.

use std::collections::BTreeMap;
use std::env;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::crashes::SECRET;
use crate::scenarios::{self, Scenario};
use crate::{DIR, ROLE, UNMONITORED, platform};

/// What one scenario left behind.
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stderr: String,
    /// The counting child's outcome, as it printed it.
    pub(crate) outcome: String,
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) dir: tempfile::TempDir,
}

/// Runs `scenario`'s program, then (if `monitored`) the counting child on what it
/// recorded.
pub(crate) fn run(scenario: &str, monitored: bool) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env::current_exe().expect("current_exe"));
    // A backtrace would differ with and without the monitor (our hook is on it).
    cmd.env(ROLE, scenario)
        .env_remove("DO_NOT_TRACK")
        .env(DIR, dir.path())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    if !monitored {
        cmd.env(UNMONITORED, "1");
    }
    let output = output_within(cmd, scenario);
    // The next run of the program counts what this one recorded.
    let outcome = if monitored {
        count_journal(dir.path())
    } else {
        String::new()
    };
    let counts = read_counts(dir.path());
    Run {
        status: output.status,
        stderr: without_thread_ids(&String::from_utf8_lossy(&output.stderr)),
        outcome,
        counts,
        dir,
    }
}

/// Runs the counting child (`process`) on `dir`'s journal; its printed outcome.
pub(crate) fn count_journal(dir: &Path) -> String {
    count_journal_with(&env::current_exe().expect("current_exe"), dir)
}

/// [`count_journal`] with the executable `exe` (a stripped copy, say).
pub(crate) fn count_journal_with(exe: &Path, dir: &Path) -> String {
    let output = Command::new(exe)
        // The child counts whatever the environment says: these tests decide it.
        .env_remove("DO_NOT_TRACK")
        .env(ROLE, "child")
        .env(DIR, dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run the counting child");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Runs `scenario` as the program, recording into `dir`, without counting.
pub(crate) fn crash_into(exe: &Path, scenario: &str, dir: &Path) -> ExitStatus {
    let mut cmd = Command::new(exe);
    cmd.env(ROLE, scenario)
        .env_remove("DO_NOT_TRACK")
        .env(DIR, dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    output_within(cmd, scenario).status
}

/// How long one scenario may take before it counts as hung. Natively every scenario
/// ends within a second or two. Under qemu-user (`cargo xtask cross aarch64` sets
/// `TELEMETRY_TESTS_UNDER_QEMU`) a scenario that symbolizes a backtrace is slow, and on
/// a loaded 2-core machine very slow: a double panic, where std always prints a full
/// backtrace by reading the test binary's DWARF, took 27 s with no crash monitor
/// installed at all (load average 12), against about a second when the machine is idle.
/// So the emulated bound is wide, and a run past the native bound is logged with its
/// time; a real hang of ours still fails, only later.
fn hang_limit() -> Duration {
    let emulated = env::var_os("TELEMETRY_TESTS_UNDER_QEMU").is_some();
    Duration::from_secs(if emulated { 300 } else { 60 })
}

/// What a native run of any scenario stays well under; slower runs are logged.
const SLOW_RUN: Duration = Duration::from_secs(10);

/// Runs `cmd` to its end, killing it after [`hang_limit`]: a scenario that hangs or
/// spins fails instead of hanging the suite. Before the kill, the state of each of the
/// process's threads is printed (from `/proc`, on Linux), so that a hang says where it
/// was.
fn output_within(mut cmd: Command, scenario: &str) -> std::process::Output {
    let limit = hang_limit();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("run the program");
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let exited = telemetry_test_support::wait_until(limit, || {
        child.try_wait().map_or(true, |status| status.is_some())
    });
    if !exited {
        eprintln!(
            "scenario {scenario} still running after {limit:?}; its threads: {}",
            thread_states(child.id())
        );
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for the program");
    let took = started.elapsed();
    if took > SLOW_RUN {
        eprintln!("scenario {scenario} took {took:.1?} (bound {limit:?})");
    }
    std::process::Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Reads `pipe` to its end on a thread of its own, so that a child writing much to
/// one pipe never blocks while we wait for it.
fn read_all(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// `tid state wchan` for each thread of `pid`, from `/proc` (Linux); empty elsewhere.
fn thread_states(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return String::new();
    };
    let mut states = Vec::new();
    for task in tasks.flatten() {
        let path = task.path();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // `tid (comm) state ...`: the state follows the last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        let wchan = std::fs::read_to_string(path.join("wchan")).unwrap_or_default();
        states.push(format!(
            "{} {state} {wchan}",
            task.file_name().to_string_lossy()
        ));
    }
    states.join(", ")
}

/// `thread 'main' (28060) panicked` → `thread 'main' panicked`: ids differ per run.
fn without_thread_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("' (") {
        let (head, tail) = rest.split_at(at + 1);
        out.push_str(head);
        let digits = tail[2..].bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[2 + digits..].starts_with(')') {
            rest = &tail[3 + digits..];
        } else {
            rest = tail;
            out.push_str(&rest[..1]);
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The text without backtrace frame lines (`  12: function` and `      at file:line`).
fn without_frames(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let line = line.trim_start();
            let numbered = line
                .split_once(": ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok());
            !numbered && !line.starts_with("at ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every counter in every counter file under `dir/local`.
pub(crate) fn read_counts(dir: &Path) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("local")) else {
        return counts;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry.path().to_string_lossy().ends_with(".v1.count") {
            let file = telemetry_counter::read_file(entry.path()).expect("a valid counter file");
            for (name, n) in file.count {
                *counts.entry(name).or_default() += n;
            }
        }
    }
    counts
}

/// The count of the one counter whose name starts with `prefix`; `None` unless
/// exactly one does.
pub(crate) fn one_counter(counts: &BTreeMap<String, u64>, prefix: &str) -> Option<u64> {
    let mut named = counts.iter().filter(|(name, _)| name.starts_with(prefix));
    match (named.next(), named.next()) {
        (Some((_, &n)), None) => Some(n),
        _ => None,
    }
}

/// Whether `needle` occurs in any regular file under `dir` (not in a FIFO a scenario
/// planted, which a read would wait on forever).
pub(crate) fn found_in_files(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if let Some(found) = found_in_files(&path, needle) {
                return Some(found);
            }
        } else if !kind.is_file() {
            continue;
        } else if let Ok(data) = std::fs::read(&path) {
            if data.windows(needle.len()).any(|w| w == needle) {
                return Some(path);
            }
        }
    }
    None
}

/// `Err(what())` unless `ok`.
pub(crate) fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// The one crash counter of a run: its prefix line and frame lines.
pub(crate) fn crash_counter(run: &Run) -> Result<Vec<String>, String> {
    let crashes: Vec<&String> = run
        .counts
        .keys()
        .filter(|n| n.starts_with("crash/"))
        .collect();
    ensure(crashes.len() == 1, || {
        format!(
            "want one crash counter, got {:?} (child: {})",
            run.counts, run.outcome
        )
    })?;
    let name = crashes[0];
    ensure(run.counts[name] == 1, || {
        format!("counted {} times", run.counts[name])
    })?;
    ensure(run.outcome.starts_with("Counted {"), || {
        format!("outcome {}", run.outcome)
    })?;
    Ok(name.split('\n').map(str::to_owned).collect())
}

/// The run counted one crash, `prefix`, whose first frame is `function` of
/// `crashes.rs`, after any frames of the `callees` named (a fault inside a function
/// that the crash function calls, or unnamed frames: `?`). A callee ending in `::`
/// stands for every function of that module.
pub(crate) fn counted_within(
    run: &Run,
    prefix: &str,
    function: &str,
    callees: &[&str],
) -> Result<(), String> {
    let lines = crash_counter(run)?;
    ensure(lines[0] == prefix, || format!("want {prefix}: {lines:#?}"))?;
    let is_callee = |line: &&String| {
        callees.iter().any(|c| {
            line.starts_with(&format!("{c}+0x")) || (c.ends_with("::") && line.starts_with(c))
        })
    };
    let first = lines[1..]
        .iter()
        .find(|l| !is_callee(l))
        .map_or("", String::as_str);
    let function = format!("{}::{function}", crate::crashes::MODULE);
    ensure(first.starts_with(&format!("{function}+0x")), || {
        format!("first frame should be {function}: {lines:#?}")
    })?;
    ensure(lines.len() <= 17, || {
        format!("more than 16 frames: {lines:#?}")
    })?;
    for line in &lines[1..] {
        let plain = !line.contains('/') && !line.contains(".rs") && !line.contains('\\');
        ensure(plain, || {
            format!("a frame holds more than a code name: {line:?}")
        })?;
        let no_hash = !line
            .split("::")
            .any(|p| p.len() == 17 && p.starts_with('h'));
        ensure(no_hash, || format!("a frame keeps its hash: {line:?}"))?;
    }
    Ok(())
}

/// No panic message reached any file of the run's directory.
pub(crate) fn no_secret(run: &Run) -> Result<(), String> {
    let found = found_in_files(run.dir.path(), SECRET.as_bytes());
    ensure(found.is_none(), || {
        format!("the panic message reached {found:?}")
    })
}

/// The crash looks the same with and without the monitor: the same status, and where
/// the platform's stderr is the program's alone, the same stderr.
pub(crate) fn unchanged(run: &Run, scenario: &str) -> Result<(), String> {
    let plain = self::run(scenario, false);
    let same = plain.status.code() == run.status.code()
        && platform::signal(&plain.status) == platform::signal(&run.status);
    ensure(same, || {
        format!(
            "status {:?} without the monitor, {:?} with",
            plain.status, run.status
        )
    })?;
    if !platform::COMPARES_STDERR {
        return Ok(());
    }
    // A nested panic prints a backtrace even with RUST_BACKTRACE=0, and ours has our
    // hook on it: compare everything but backtrace frames.
    let (plain, monitored) = (without_frames(&plain.stderr), without_frames(&run.stderr));
    ensure(plain == monitored, || {
        format!("stderr without the monitor:\n{plain}\nwith:\n{monitored}")
    })
}

/// A test that is not one scenario's crash and count: it runs its own processes.
pub(crate) type DirectCheck = fn() -> Result<(), String>;

/// One test: a scenario of the table, or a check that runs its processes itself.
#[derive(Clone, Copy)]
enum Test {
    Scenario(&'static Scenario),
    Direct(DirectCheck),
}

/// Every test this platform runs, by name.
fn all_tests() -> Vec<(&'static str, Test)> {
    let mut tests: Vec<(&str, Test)> = scenarios::here()
        .map(|scenario| (scenario.name, Test::Scenario(scenario)))
        .collect();
    tests.extend(
        platform::DIRECT
            .iter()
            .map(|&(name, check)| (name, Test::Direct(check))),
    );
    tests
}

/// Runs one test; on success, the crash counters it made, for the log.
fn run_test(test: Test) -> Result<String, String> {
    match test {
        Test::Scenario(scenario) => {
            let run = run(scenario.name, true);
            scenarios::check(scenario, &run)?;
            let crashes = run.counts.keys().filter(|n| n.starts_with("crash/"));
            Ok(crashes.cloned().collect::<Vec<_>>().join("\n"))
        }
        Test::Direct(check) => check().map(|()| String::new()),
    }
}

/// The orchestrator, with enough of libtest's command line for `cargo test` filters
/// and for cargo-nextest (`--list --format terse`, `--exact NAME`). Every test
/// selected runs at once, each on its own thread.
pub(crate) fn run_all() {
    let args: Vec<String> = env::args().skip(1).collect();
    let mut filters: Vec<&str> = Vec::new();
    let mut words = args.iter();
    while let Some(arg) = words.next() {
        match arg.as_str() {
            "--format" | "--test-threads" | "--skip" | "--logfile" | "--color" | "-Z" => {
                words.next();
            }
            flag if flag.starts_with('-') => {}
            filter => filters.push(filter),
        }
    }
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let exact = has("--exact");
    let selected: Vec<(&'static str, Test)> = all_tests()
        .into_iter()
        .filter(|_| !has("--ignored")) // none are ignored
        .filter(|(name, _)| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|f| if exact { name == f } else { name.contains(f) })
        })
        .collect();
    if has("--list") {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return;
    }
    let start = Instant::now();
    let handles: Vec<_> = selected
        .into_iter()
        .map(|(name, test)| (name, std::thread::spawn(move || run_test(test))))
        .collect();
    let mut failed = 0;
    for (name, handle) in handles {
        let result = handle
            .join()
            .unwrap_or_else(|_| Err("the check panicked".to_owned()));
        match result {
            Ok(counted) if counted.is_empty() => println!("test {name} ... ok"),
            Ok(counted) => println!(
                "test {name} ... ok\n    {}",
                counted.replace('\n', "\n    ")
            ),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n{why}\n");
            }
        }
    }
    println!("{failed} failed; finished in {:.2?}", start.elapsed());
    if failed > 0 {
        std::process::exit(101);
    }
}
