//! A process started with `telemetry::start` that outlives its week: it moves to the
//! next week's counter file, so the upload run that reports its first week and
//! deletes that file loses none of its counts (ARCHITECTURE.md, invariant 8). And one
//! that counts with `telemetry_counter::open_dir` alone, which never rotates: it holds
//! its file's lease, so the week waits until it lets go.
//!
//! Each test re-runs itself as the counting process (`test-support`'s `child`), which moves its
//! counter clock (`telemetry_counter::testing::set_now`) across the week's end when
//! told to, and reports on stdout what it did; the upload run is given the matching
//! real time through its own clock seam (`RunConfig::now`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use telemetry::Program;
use telemetry_internal::{Ambient, Day, Dir};
use telemetry_test_support::{child, wait_until};
use telemetry_upload::{ConfigSource, Report, RunConfig};

/// Set in the counting child: its telemetry directory.
const CHILD_DIR: &str = "TELEMETRY_WEEK_BOUNDARY_CHILD";

static HITS: telemetry::counter::Counter = telemetry::counter::Counter::new("tool/hits");

fn program() -> Program {
    Program::new("tool", "1.0.0")
}

/// The counting process, the role of a child started by [`Counting::start`]: opens
/// its directory by `open` (`start`, the facade, whose file opens with the first
/// count, or `open_dir`, counting only), says `ready PATH` (the file it counts into;
/// none yet after `start`), then reads commands on stdin, one a line, and answers
/// each on stdout after `> `: `count N` → `counted`; `file 0` → `file PATH`, the file
/// counted into now; `advance SECS` (the counter clock, in seconds since the
/// epoch) → `rotated PATH` once counting moved to another file, or `stuck PATH` if it
/// did not within ten seconds; `clock SECS` → `clock set` (the counter clock, and
/// nothing waited for); `moved SECS` → `moved PATH` as soon as counting left the file
/// it was ready with, `stayed PATH` if it did not within SECS seconds; `threads SECS` → `rotation thread yes, blocking
/// signals` (or `taking signals`) as soon as the rotation thread runs, `no` if it does
/// not within SECS seconds (Linux: from `/proc/self/task/*`, whose name a new thread
/// sets itself, a moment after it exists).
#[allow(clippy::print_stdout)] // The child's answers, which the test reads.
fn count(open: &str) {
    let dir = std::env::var_os(CHILD_DIR).expect("the child's directory");
    if open == "start" {
        let started = telemetry::start(telemetry::Config::new(program()).dir(PathBuf::from(dir)));
        assert!(!started.started_child(), "nothing asks for a child");
    } else {
        let status = telemetry::counter::open_dir(PathBuf::from(dir), program());
        assert!(status.path().is_some(), "{status:?}");
    }
    let current = || {
        telemetry_counter::testing::current_file()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let first = current();
    println!("> ready {first}");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let (command, arg) = line.split_once(' ').unwrap();
        let arg: u64 = arg.parse().unwrap();
        match command {
            "count" => {
                for _ in 0..arg {
                    HITS.inc();
                }
                println!("> counted");
            }
            "file" => println!("> file {}", current()),
            "advance" => {
                let before = current();
                telemetry_counter::testing::set_now(Some(UNIX_EPOCH + Duration::from_secs(arg)));
                wait_until(Duration::from_secs(10), || current() != before);
                let now = current();
                let verdict = if now == before { "stuck" } else { "rotated" };
                println!("> {verdict} {now}");
            }
            "clock" => {
                telemetry_counter::testing::set_now(Some(UNIX_EPOCH + Duration::from_secs(arg)));
                println!("> clock set");
            }
            "moved" => {
                wait_until(Duration::from_secs(arg), || current() != first);
                let now = current();
                let verdict = if now == first { "stayed" } else { "moved" };
                println!("> {verdict} {now}");
            }
            "threads" => {
                wait_until(Duration::from_secs(arg), rotation_thread_runs);
                let running = match rotation_thread_runs() {
                    true if rotation_thread_blocks_signals() => "yes, blocking signals",
                    true => "yes, taking signals",
                    false => "no",
                };
                println!("> rotation thread {running}");
            }
            other => panic!("unknown command {other}"),
        }
    }
}

/// The `/proc/self/task/*` directory of the thread that bears the rotation thread's
/// name (truncated to the kernel's 15 bytes), if one runs.
fn rotation_thread() -> Option<PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|task| task.unwrap().path())
        .find(|task| {
            let name = std::fs::read_to_string(task.join("comm")).unwrap();
            "telemetry-rotate".starts_with(name.trim_end())
        })
}

fn rotation_thread_runs() -> bool {
    rotation_thread().is_some()
}

/// Whether the rotation thread blocks the signals a host handles (`SIGINT`, `SIGTERM`,
/// `SIGUSR1`, `SIGCHLD`), so that none is ever delivered to it.
fn rotation_thread_blocks_signals() -> bool {
    let status = std::fs::read_to_string(rotation_thread().unwrap().join("status")).unwrap();
    let blocked = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .unwrap();
    [2, 15, 10, 17]
        .iter()
        .all(|signal| blocked & (1 << (signal - 1)) != 0)
}

/// The counting child and its pipes.
struct Counting {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Counting {
    /// The counting child of the calling test, opening `dir` by `open` (see
    /// [`count`]), with `tmp` as its home.
    fn start(tmp: &Path, dir: &Path, open: &str) -> Counting {
        let mut child = child::command(open)
            .env(CHILD_DIR, dir)
            // Allowed to count, whatever the environment of the test says.
            .env_remove("DO_NOT_TRACK")
            .env_remove("TELEMETRY_DEBUG")
            .env_remove("TELEMETRY_CHILD")
            .env("XDG_CONFIG_HOME", tmp.join("config"))
            .env("HOME", tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Counting {
            child,
            stdin,
            stdout,
        }
    }

    /// [`start`](Counting::start) in `tmp/tool`, once ready: the child, its
    /// directory, and the counter file it is ready with (empty: none yet).
    fn ready(tmp: &Path, open: &str) -> (Counting, PathBuf, PathBuf) {
        let dir = tmp.join("tool");
        let mut counting = Counting::start(tmp, &dir, open);
        let ready = counting.answer();
        let first = PathBuf::from(ready.strip_prefix("ready").unwrap().trim_start());
        (counting, dir, first)
    }

    /// The counter file the child counts into now, and that file's week.
    fn file(&mut self) -> (PathBuf, Day) {
        let said = self.tell("file 0");
        let file = PathBuf::from(said.strip_prefix("file ").unwrap());
        let week = week_of(&file);
        (file, week)
    }

    /// The child's next answer (what follows `> `); the harness's own lines skipped.
    fn answer(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.stdout.read_line(&mut line).unwrap();
            assert!(read > 0, "the counting child ended early");
            if let Some((_, said)) = line.trim_end().split_once("> ") {
                return said.to_owned();
            }
        }
    }

    fn tell(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        self.answer()
    }

    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the counting child failed: {status}");
    }
}

/// An upload run over `dir` an hour into the second day after `week` ended, by the
/// real clock (the run's own seam): the week is settled. Mode `local`: local reports.
fn upload_run(tmp: &Path, dir: &Path, week: Day) -> telemetry_upload::RunSummary {
    let mut run = RunConfig::new(
        dir,
        "http://127.0.0.1:9/upload",
        ConfigSource::File(tmp.join("unused-config.json")),
    );
    run.ambient = Ambient::with_config_dir(tmp.join("config"));
    run.now = week.plus(1).start() + Duration::from_secs(3600);
    telemetry_upload::run(run).unwrap()
}

/// The week of the counter file at `path` (its `TimeEnd` day).
fn week_of(path: &Path) -> Day {
    day_of(
        telemetry_counter::read_file(path)
            .unwrap()
            .meta("TimeEnd")
            .unwrap(),
    )
}

/// The start of `day`, in seconds since the epoch (what the child's clock commands
/// take).
fn start_secs(day: Day) -> u64 {
    day.start().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The local report of `week` in `dir`.
fn local_report(dir: &Path, week: Day) -> Report {
    Report::parse(&std::fs::read(Dir::new(dir).local_report(week)).unwrap()).unwrap()
}

/// `2026-12-13T00:00:00Z` → that day.
fn day_of(meta: &str) -> Day {
    Day::parse(meta.get(..10).unwrap()).unwrap()
}

#[test]
fn a_process_that_outlives_its_week_loses_no_count() {
    if child::play_role(count) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut counting, dir, _) = Counting::ready(tmp.path(), "start");
    assert_eq!(counting.tell("count 1000"), "counted");
    let (first, week) = counting.file();

    // An hour into the next week by the counter clock, the process counts into the
    // next week's file.
    let next_week = start_secs(week) + 3600;
    let said = counting.tell(&format!("advance {next_week}"));
    let second =
        PathBuf::from(said.strip_prefix("rotated ").unwrap_or_else(|| {
            panic!("the process kept counting into its first week's file: {said}")
        }));
    assert_ne!(first, second);
    let second_file = telemetry_counter::read_file(&second).unwrap();
    assert_eq!(day_of(second_file.meta("TimeBegin").unwrap()), week);

    // A day after the week ended, the week is reported and its file deleted, while
    // the process lives on.
    let summary = upload_run(tmp.path(), &dir, week);
    assert_eq!(
        summary.to_string(),
        format!("{week}: local only (mode is not on)\n")
    );
    // Deleted at once; but Windows refuses to delete a file that a process maps (the
    // process keeps its old mapping), so there it goes once the process has exited.
    assert!(
        !first.exists() || cfg!(windows),
        "the reported week's file is deleted"
    );

    // The process counts on, into the file it moved to.
    assert_eq!(counting.tell("count 500"), "counted");
    counting.finish();
    assert!(upload_run(tmp.path(), &dir, week).reports.is_empty());
    assert!(!first.exists());

    let reported = local_report(&dir, week);
    assert_eq!(reported.programs.len(), 1);
    assert_eq!(reported.programs[0].counters["tool/hits"], 1000);
    let second_file = telemetry_counter::read_file(&second).unwrap();
    assert_eq!(second_file.count["tool/hits"], 500);
}

/// A process that counts with `open_dir` alone never rotates: past its week's end
/// (and the day after) it still counts into that week's file. Its lease keeps the
/// upload run from reporting the week (the report would miss the counts to come) and
/// from deleting the file (they would be lost); once it exits, every count is
/// reported. Unix only: Windows has no lease (see `telemetry_counter::lease`).
#[cfg(unix)]
#[test]
fn a_week_waits_for_a_process_still_counting_into_it() {
    if child::play_role(count) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut counting, dir, file) = Counting::ready(tmp.path(), "open_dir");
    let week = week_of(&file);
    assert_eq!(counting.tell("count 1000"), "counted");

    let summary = upload_run(tmp.path(), &dir, week);
    assert_eq!(
        summary.to_string(),
        format!("{week}: a process still counts into its counter files; kept for later\n")
    );
    assert!(file.exists());
    assert!(!Dir::new(&dir).local_report(week).exists());

    assert_eq!(counting.tell("count 500"), "counted");
    counting.finish();
    let summary = upload_run(tmp.path(), &dir, week);
    assert_eq!(
        summary.to_string(),
        format!("{week}: local only (mode is not on)\n")
    );
    assert!(!file.exists());
    let reported = local_report(&dir, week);
    assert_eq!(reported.programs[0].counters["tool/hits"], 1500);
}

/// The rotation thread starts with the first count, not with `start`: a run that
/// counts nothing (a tool asked for its `--version`) pays for no thread; one that
/// counts gets it, and so moves to the next week as above. The thread blocks every
/// signal: the host's are never delivered to it.
#[cfg(target_os = "linux")]
#[test]
fn the_rotation_thread_starts_with_the_first_count() {
    if child::play_role(count) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut counting, ..) = Counting::ready(tmp.path(), "start");
    assert_eq!(counting.tell("threads 0"), "rotation thread no");
    assert_eq!(counting.tell("count 1"), "counted");
    assert_eq!(
        counting.tell("threads 10"),
        "rotation thread yes, blocking signals"
    );
    counting.finish();
}

/// A started process that counts nothing holds no file: it makes none, so no week
/// waits for it and nothing of it is reported. Its first count, days later by the
/// counter clock, opens the file of that day, where the count lands.
#[test]
fn a_process_that_counts_nothing_holds_no_file_until_it_counts() {
    if child::play_role(count) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut counting, dir, first) = Counting::ready(tmp.path(), "start");
    assert_eq!(first, PathBuf::new(), "no file before the first count");
    assert!(!Dir::new(&dir).local().exists(), "nothing made");

    // Two days and an hour later by the counter clock, the first count.
    let today = Day::of(std::time::SystemTime::now());
    let later = start_secs(today) + 2 * 86_400 + 3600;
    assert_eq!(counting.tell(&format!("clock {later}")), "clock set");
    assert_eq!(counting.tell("count 3"), "counted");
    let (file, _) = counting.file();
    counting.finish();
    let counted = telemetry_counter::read_file(&file).unwrap();
    assert_eq!(day_of(counted.meta("TimeBegin").unwrap()), today.plus(2));
    assert_eq!(counted.count["tool/hits"], 3);
}
