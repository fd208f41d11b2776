//! What the world can do to an upload run: kill it at any instant or at any system
//! call, fill the disk, plant files and links under report names, count into a file
//! while a run pretends its week is over, or turn telemetry off: the upload crate's
//! guarantees (crash-consistent, only built reports leave, no link is followed) under
//! attack. Every test here runs real processes against real files and a real loopback
//! server. Unix only: it plants symbolic links and FIFOs, and drives strace and
//! tmpfs where it runs in CI (Linux).

#![cfg(unix)]
// strace and tmpfs are Linux's; elsewhere their helpers go unused.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use telemetry_internal::{Ambient, Day, Mode, ModeSwitch, Program};
use telemetry_test_support::{child, eventually};
use telemetry_upload::testing::Request;
use telemetry_upload::{ConfigSource, Report, ReportStatus, RunConfig};

/// The path the upload child looks up just before its run starts, so that a trace
/// shows where the run's own system calls begin.
const MARKER: &str = "/nonexistent/telemetry-upload-run-begins";

/// What a child of a test here does, by its role (`telemetry_test_support::child`):
/// `upload|root|upload_url|config_file|day` runs one upload as the test `Env` would on
/// `day`; `count|dir|stop|counted` counts `tool/a` into `dir` as `tool@1.0.0` would
/// until the file `stop` exists, then writes how many times into `counted`.
fn play(spec: &str) {
    let parts: Vec<&str> = spec.split('|').collect();
    match parts[0] {
        "upload" => {
            let mut config =
                RunConfig::new(parts[1], parts[2], ConfigSource::File(parts[3].into()));
            config.ambient = Ambient::default();
            config.now = at(parts[4]);
            config.start_time = Some(at(parts[4]));
            config.timeout = Duration::from_secs(10);
            let _ = std::fs::symlink_metadata(MARKER);
            telemetry_upload::run(config).unwrap();
        }
        "count" => {
            static A: telemetry_counter::Counter = telemetry_counter::Counter::new("tool/a");
            let status = telemetry_counter::open_dir(parts[1], TOOL);
            assert!(
                matches!(status, telemetry_counter::OpenStatus::Counting(_)),
                "{status:?}"
            );
            let (stop, counted) = (Path::new(parts[2]), parts[3]);
            let mut n: u64 = 0;
            while !stop.exists() {
                for _ in 0..10_000 {
                    A.inc();
                }
                n += 10_000;
            }
            std::fs::write(counted, n.to_string()).unwrap();
        }
        other => panic!("unknown child {other}"),
    }
}

/// The calling test, re-run in a child process that plays `spec` (see [`play`]).
fn child_command(spec: &str) -> Command {
    let mut command = child::command(spec);
    command
        // The child is told everything it needs; the test's environment says nothing.
        .env_remove("DO_NOT_TRACK")
        .stdout(Stdio::null());
    command
}

/// `command` run under `strace` with `options`, following its children.
fn under_strace(options: &[&str], command: &Command) -> Command {
    let mut strace = Command::new("strace");
    strace
        .arg("-f")
        .args(options)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => strace.env(key, value),
            None => strace.env_remove(key),
        };
    }
    strace
}

// ---------------------------------------------------------------------------------
// Crash consistency

/// Two weeks to upload: `tool@1.0.0` in two files each (its `tool/a` approved), and an
/// unapproved program that stays in the local reports only.
const WEEKS: [&str; 2] = ["2026-11-13", "2026-11-20"];
const RUN_DAY: &str = "2026-11-21";

fn crash_env() -> Env {
    let env = Env::new(&["tool/a"]);
    let other = Program::new("other", "1.0.0");
    for (i, week) in WEEKS.iter().enumerate() {
        let end = day(week);
        let begin = |back: i64| telemetry_internal::format_date(end - time::Duration::days(back));
        let i = i as u64 + 1;
        env.count(&TOOL, &begin(7), week, &[("tool/a", i), ("tool/b", 5)]);
        env.count(&TOOL, &begin(3), week, &[("tool/a", 10 * i)]);
        env.count(&other, &begin(7), week, &[("tool/a", 100)]);
    }
    env
}

fn upload_spec(env: &Env) -> String {
    format!(
        "upload|{}|{}|{}|{RUN_DAY}",
        env.root().display(),
        env.server.upload_url(),
        env.config_file.display()
    )
}

/// After a run was killed (having POSTed `killed` to its server and left the weeks
/// `acked` acknowledged) and an ordinary run followed (POSTing `rerun` to another
/// server, so that a late-arriving request of the dead run cannot be mistaken for the
/// new run's): every week was POSTed once, or twice only if its first POST was in
/// flight when the run died (then both bodies are the same report); every count
/// arrived exactly once; nothing else is left in the directory; every JSON file parses.
fn check_after_crash(
    env: &Env,
    killed: &[Request],
    rerun: &[Request],
    acked: &BTreeSet<String>,
    what: &str,
) {
    let mut by_week: BTreeMap<String, [Vec<Vec<u8>>; 2]> = BTreeMap::new();
    for (i, posts) in [killed, rerun].into_iter().enumerate() {
        for post in posts {
            let week = post.path.strip_prefix("/upload/").unwrap().to_owned();
            by_week.entry(week).or_default()[i].push(post.body.clone());
        }
    }
    assert_eq!(
        by_week.keys().cloned().collect::<Vec<_>>(),
        WEEKS,
        "{what}: every week is posted"
    );
    for (week, [first, second]) in &by_week {
        assert!(
            first.len() <= 1,
            "{what}: {week} sent twice by the killed run"
        );
        assert!(
            second.len() <= 1,
            "{what}: {week} sent twice by the next run"
        );
        if let ([a], [b]) = (first.as_slice(), second.as_slice()) {
            assert!(
                !acked.contains(week),
                "{what}: {week} was acknowledged, then sent again"
            );
            assert_eq!(a, b, "{what}: {week}: a resent report is the same report");
        }
        let body = first.first().or(second.first()).unwrap();
        let report = Report::parse(body).unwrap();
        assert_eq!(report.programs.len(), 1, "{what}: {week}");
        let i = WEEKS.iter().position(|w| w == week).unwrap() as u64 + 1;
        assert_eq!(
            report.programs[0].counters,
            BTreeMap::from([("tool/a".to_owned(), 11 * i)]),
            "{what}: {week}"
        );
    }

    // The saved config is a convenience for `telemetry view`; a run that could not
    // save it (a full disk) is fine, and the next run that needs the config saves it.
    let mut want: Vec<String> = Vec::new();
    for week in WEEKS {
        want.push(format!("local/local.{week}.json"));
        want.push(format!("upload/{week}.json"));
    }
    want.push("mode".into());
    want.sort();
    let left: Vec<String> = env
        .all_files()
        .into_iter()
        .filter(|f| f != "local/weekends" && f != "upload/config.json")
        .collect();
    assert_eq!(left, want, "{what}: nothing else is left");
    let config = env.dir().uploaded_config();
    if config.exists() {
        let bytes = std::fs::read(&config).unwrap();
        telemetry_upload::UploadConfig::parse(&bytes)
            .unwrap_or_else(|e| panic!("{what}: the saved config: {e}"));
    }
    for file in &left {
        if file.ends_with(".json") {
            let bytes = std::fs::read(env.root().join(file)).unwrap();
            Report::parse(&bytes).unwrap_or_else(|e| panic!("{what}: {file}: {e}"));
        }
    }
    for week in WEEKS {
        let local = Report::parse(
            &std::fs::read(env.dir().local_report(Day::parse(week).unwrap())).unwrap(),
        )
        .unwrap();
        let i = WEEKS.iter().position(|w| *w == week).unwrap() as u64 + 1;
        let total: u64 = local.programs.iter().map(|p| p.counters["tool/a"]).sum();
        assert_eq!(total, 11 * i + 100, "{what}: the local report of {week}");
    }
}

fn acked_weeks(env: &Env) -> BTreeSet<String> {
    WEEKS
        .iter()
        .filter(|w| env.dir().uploaded_report(Day::parse(w).unwrap()).exists())
        .map(|w| (*w).to_owned())
        .collect()
}

/// The uploads `server` received once it is done with every connection made so far:
/// a request a dead client sent completely may still be being read.
fn settled_uploads(server: &LoopbackServer) -> Vec<Request> {
    let probe = server.probe().unwrap();
    eventually(Duration::from_secs(20), "the server to settle", || {
        server.is_settled(probe)
    });
    server.uploads()
}

/// Runs again as an ordinary run would, after a kill, and checks the outcome.
fn rerun_and_check(env: &Env, what: &str) {
    let acked = acked_weeks(env);
    let second = LoopbackServer::start();
    let mut config = env.config(RUN_DAY);
    config.upload_url = second.upload_url();
    let summary = telemetry_upload::run(config).unwrap();
    assert!(
        summary.reports.iter().all(|r| !matches!(
            r.status,
            ReportStatus::Failed { .. } | ReportStatus::Skipped { .. }
        )),
        "{what}: {summary}"
    );
    let what = format!("{what} (then: {})", summary.to_string().trim_end());
    check_after_crash(
        env,
        &settled_uploads(&env.server),
        &second.uploads(),
        &acked,
        &what,
    );
}

/// One system call of one traced line: `1234 openat(...) = 3`, or the start of a call
/// another thread interrupted (`<unfinished ...>`); resumptions are not new calls.
fn traced_call(line: &str) -> Option<(&str, &str)> {
    let (tid, rest) = line.split_once(' ')?;
    let rest = rest.trim_start();
    if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
        return None;
    }
    let name = rest.split('(').next()?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some((tid, name))
}

/// The system calls through which a run changes or reads files (and talks to the
/// server: a kill there is a POST in flight).
const CALLS: &[&str] = &[
    "openat",
    "read",
    "write",
    "close",
    "fsync",
    "fdatasync",
    "linkat",
    "link",
    "renameat",
    "renameat2",
    "rename",
    "unlinkat",
    "unlink",
    "mkdir",
    "mkdirat",
    "flock",
    "getdents64",
    "statx",
    "newfstatat",
    "fstat",
    "lstat",
    "stat",
    "fchmod",
    "ftruncate",
    "pwrite64",
    "connect",
    "sendto",
    "recvfrom",
    "writev",
];

/// How many of the first occurrences of each call are killed: more of the calls that
/// change something (each write, rename, link, unlink and POST is a step of the
/// transaction), fewer of those that only look.
fn first_few(call: &str) -> usize {
    match call {
        "openat" | "read" | "close" | "statx" | "newfstatat" | "fstat" | "lstat" | "stat"
        | "getdents64" => 3,
        _ => 6,
    }
}

fn strace_usable() -> bool {
    let works = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    telemetry_test_support::Tool::STRACE.available(works)
}

/// Traces one uninterrupted run and returns the calls its thread makes once the run
/// has begun, each with its occurrence number in that thread (strace counts `when=`
/// per thread), the first few of each.
fn traced_targets() -> Vec<(String, usize)> {
    let env = crash_env();
    let trace = env.tmp.path().join("trace");
    let trace_option = trace.to_str().unwrap();
    let status = under_strace(
        &["-qq", "-o", trace_option],
        &child_command(&upload_spec(&env)),
    )
    .stdout(Stdio::null())
    .status()
    .unwrap();
    assert!(status.success());
    check_after_crash(
        &env,
        &env.server.uploads(),
        &[],
        &BTreeSet::new(),
        "traced run",
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let marker_line = text
        .lines()
        .find(|l| l.contains(MARKER))
        .expect("marker traced");
    let run_tid = marker_line.split(' ').next().unwrap();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut targets: Vec<(String, usize)> = Vec::new();
    let mut started = false;
    for line in text.lines() {
        let Some((tid, name)) = traced_call(line) else {
            continue;
        };
        if tid != run_tid {
            continue;
        }
        let n = seen.entry(name).or_default();
        *n += 1;
        if line.contains(MARKER) {
            started = true;
            continue;
        }
        if started
            && CALLS.contains(&name)
            && targets.iter().filter(|(c, _)| c == name).count() < first_few(name)
        {
            targets.push((name.to_owned(), *n));
        }
    }
    targets
}

/// Runs the upload child under strace with `inject` (e.g. `write:signal=KILL:when=3`);
/// whether it failed.
fn run_injected(env: &Env, inject: &str) -> bool {
    let injection = format!("inject={inject}");
    let options = ["-qq", "-o", "/dev/null", "-e", injection.as_str()];
    let status = under_strace(&options, &child_command(&upload_spec(env)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    !status.success()
}

#[test]
#[cfg(target_os = "linux")]
fn killed_at_every_file_system_call_loses_no_week() {
    if child::play_role(play) {
        return;
    }
    if !strace_usable() {
        return;
    }
    let targets = traced_targets();
    let kinds: BTreeSet<&str> = targets.iter().map(|(c, _)| c.as_str()).collect();
    for needed in ["openat", "write", "unlink", "flock"] {
        let found = kinds.iter().any(|k| k.starts_with(needed));
        assert!(found, "the run makes {needed} calls: {kinds:?}");
    }

    let mut killed = 0;
    for (call, n) in &targets {
        let env = crash_env();
        killed += usize::from(run_injected(&env, &format!("{call}:signal=KILL:when={n}")));
        rerun_and_check(&env, &format!("killed at {call} #{n}"));
    }
    // Threads other than the run's may shift a count a little; most must have hit.
    assert!(
        killed * 2 > targets.len(),
        "only {killed} of {} runs were killed: {targets:?}",
        targets.len()
    );
}

/// The disk fills up at each write, sync, create, link or rename of the run in turn
/// (the call fails with ENOSPC, the run goes on); a run with space loses no week.
#[test]
#[cfg(target_os = "linux")]
fn a_full_disk_at_any_write_loses_no_week() {
    if child::play_role(play) {
        return;
    }
    if !strace_usable() {
        return;
    }
    let writes = [
        "openat",
        "write",
        "writev",
        "pwrite64",
        "fsync",
        "linkat",
        "link",
        "rename",
        "renameat",
        "renameat2",
        "mkdir",
        "mkdirat",
    ];
    let mut failed = 0;
    let targets: Vec<_> = traced_targets()
        .into_iter()
        .filter(|(call, _)| writes.contains(&call.as_str()))
        .collect();
    for (call, n) in &targets {
        let env = crash_env();
        failed += usize::from(run_injected(&env, &format!("{call}:error=ENOSPC:when={n}")));
        rerun_and_check(&env, &format!("ENOSPC at {call} #{n}"));
    }
    // A failed write is a week not built or not sent, not an error of the run.
    assert!(
        failed < targets.len(),
        "{failed} of {} runs failed",
        targets.len()
    );
}

#[test]
fn killed_at_random_instants_loses_no_week() {
    if child::play_role(play) {
        return;
    }
    // How long an uninterrupted run takes, child start included.
    let env = crash_env();
    let began = Instant::now();
    assert!(
        child_command(&upload_spec(&env))
            .status()
            .unwrap()
            .success()
    );
    let span = began.elapsed().as_micros().max(1000) as u64;
    check_after_crash(
        &env,
        &env.server.uploads(),
        &[],
        &BTreeSet::new(),
        "uninterrupted",
    );

    for round in 0..30 {
        let env = crash_env();
        let delay = telemetry_internal::random_u64() % span;
        let mut child = child_command(&upload_spec(&env))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        rerun_and_check(&env, &format!("round {round}, killed after {delay} µs"));
    }
}

// ---------------------------------------------------------------------------------
// A full disk

/// A tmpfs mounted over a path for the test's life.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` with one file; returns it.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
    path
}

#[test]
#[cfg(target_os = "linux")]
fn a_full_disk_keeps_the_counter_files_and_the_week_is_reported_later() {
    if child::play_role(play) {
        return;
    }
    let env = Env::new(&["tool/a"]);
    let mounted = Tmpfs::mount(&env.root(), "2m");
    if !telemetry_test_support::Tool::TMPFS.available(mounted.is_some()) {
        return;
    }
    env.set_mode(Mode::On {
        since: day("2026-01-01"),
    });
    let files = [
        env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 3)]),
        env.count(&TOOL, "2026-11-16", "2026-11-20", &[("tool/a", 4)]),
    ];
    let filler = fill(&env.root());

    let summary = env.run("2026-11-21");
    assert_eq!(summary.reports.len(), 1, "{summary}");
    let status = &summary.reports[0].status;
    assert!(
        matches!(status, ReportStatus::Failed { reason } if reason.contains("No space left")),
        "{summary}"
    );
    assert!(files.iter().all(|f| f.exists()), "counter files kept");
    assert!(env.server.uploads().is_empty());
    let names = env.local_names();
    assert!(
        names.iter().all(|n| n.ends_with(".v1.count")),
        "no report, no temporary file: {names:?}"
    );

    std::fs::remove_file(filler).unwrap();
    assert_eq!(lines(&env.run("2026-11-22")), ["2026-11-20: uploaded"]);
    let posts = env.server.uploads();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].json()["Programs"][0]["Counters"]["tool/a"],
        7,
        "{}",
        posts[0].text()
    );
    assert!(files.iter().all(|f| !f.exists()));
    assert!(env.all_files().iter().all(|f| !f.contains(".tmp-")));
}

// ---------------------------------------------------------------------------------
// Planted files

/// A week built while the server failed: its upload report waits in `local/`.
fn env_with_ready_report() -> (Env, PathBuf) {
    let env = Env::new(&["tool/a"]);
    env.server.set_upload_status(500);
    env.count(
        &TOOL,
        "2026-11-13",
        "2026-11-20",
        &[("tool/a", 1), ("tool/b", 2)],
    );
    env.run("2026-11-21");
    env.server.set_upload_status(200);
    let ready = env.dir().report(Day::parse("2026-11-20").unwrap());
    assert!(ready.exists());
    (env, ready)
}

#[test]
fn planted_files_and_links_are_never_sent() {
    if child::play_role(play) {
        return;
    }
    // A link to a secret where the report was.
    let (env, ready) = env_with_ready_report();
    let secret = env.tmp.path().join("id_ed25519");
    std::fs::write(&secret, "-----BEGIN OPENSSH PRIVATE KEY-----").unwrap();
    std::fs::remove_file(&ready).unwrap();
    std::os::unix::fs::symlink(&secret, &ready).unwrap();
    let uploads_before = env.server.uploads().len();
    let (summary, log) = env.run_logged("2026-11-22");
    assert!(
        matches!(summary.reports[0].status, ReportStatus::Skipped { .. }),
        "{summary}"
    );
    assert!(log.contains("is not a report this code built"), "{log}");
    assert_eq!(env.server.uploads().len(), uploads_before, "nothing sent");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "-----BEGIN OPENSSH PRIVATE KEY-----"
    );

    // A FIFO: no hang, skipped.
    std::fs::remove_file(&ready).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&ready)
            .status()
            .unwrap()
            .success()
    );
    let (summary, _) = env.run_logged("2026-11-22");
    assert!(
        matches!(summary.reports[0].status, ReportStatus::Skipped { .. }),
        "{summary}"
    );

    // A regular file with other counts than the week's local report.
    let (env, ready) = env_with_ready_report();
    let text = std::fs::read_to_string(&ready).unwrap();
    std::fs::write(&ready, text.replace("\"tool/a\":1", "\"tool/a\":999")).unwrap();
    let uploads_before = env.server.uploads().len();
    let (summary, log) = env.run_logged("2026-11-22");
    assert_eq!(
        lines(&summary),
        ["2026-11-20: not sent, not ours: its counts differ from its local report's"]
    );
    assert!(log.contains("not sending it"), "{log}");
    assert_eq!(env.server.uploads().len(), uploads_before);

    // A link planted as the week's lock: replaced, never written through, and the
    // week is still processed.
    let env = Env::new(&["tool/a"]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let victim = env.tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::create_dir_all(env.dir().upload()).unwrap();
    let lock = env.dir().report_lock(Day::parse("2026-11-20").unwrap());
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    assert_eq!(lines(&env.run("2026-11-21")), ["2026-11-20: uploaded"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&lock).is_err(), "and tidied away");

    // `local/` itself a link to someone else's directory: nothing is read or written.
    let env = Env::new(&["tool/a"]);
    let elsewhere = env.tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    telemetry_counter::testing::write_file(
        &elsewhere,
        &TOOL,
        day("2026-11-13"),
        day("2026-11-20"),
        &[("tool/a", 1)],
    )
    .unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.local()).unwrap();
    let err = telemetry_upload::run(env.config("2026-11-21")).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        1,
        "untouched"
    );
    assert!(env.server.requests().is_empty());

    // A report for a week that was never built here.
    let env = Env::new(&["tool/a"]);
    std::fs::create_dir_all(env.local()).unwrap();
    let planted = env.dir().report(Day::parse("2026-11-20").unwrap());
    std::fs::write(
        &planted,
        r#"{"Week":"2026-11-20","LastWeek":"","X":0,"Config":"","Programs":[]}"#,
    )
    .unwrap();
    let summary = env.run("2026-11-21");
    assert_eq!(
        lines(&summary),
        ["2026-11-20: not sent, not ours: no local report: not built here"]
    );
    assert!(env.server.requests().is_empty());
    assert!(planted.exists(), "left alone");
}

#[test]
fn what_is_sent_is_rechecked_against_the_config_at_send_time() {
    if child::play_role(play) {
        return;
    }
    // A "report" copied from the local report (same week, X, counts) holds an
    // unapproved counter: only the approved part leaves, and what is on disk as the
    // acknowledged copy is exactly what was sent.
    let (env, ready) = env_with_ready_report();
    let week = Day::parse("2026-11-20").unwrap();
    let local = std::fs::read(env.dir().local_report(week)).unwrap();
    std::fs::write(&ready, &local).unwrap();
    let (summary, _) = env.run_logged("2026-11-22");
    assert_eq!(lines(&summary), ["2026-11-20: uploaded"]);
    let post = env.server.uploads().pop().unwrap();
    assert!(!post.text().contains("tool/b"), "{}", post.text());
    assert_eq!(post.json()["Programs"][0]["Counters"]["tool/a"], 1);
    assert_eq!(
        std::fs::read(env.dir().uploaded_report(week)).unwrap(),
        post.body
    );

    // The config changed since the report was built: the counter is no longer
    // approved, so the report holds nothing to send and stays local.
    let (env, _) = env_with_ready_report();
    std::fs::write(&env.config_file, config_json(&["tool/c"], &[])).unwrap();
    let uploads_before = env.server.uploads().len();
    assert_eq!(
        lines(&env.run("2026-11-22")),
        ["2026-11-20: local only (no counter in it is approved for upload)"]
    );
    assert_eq!(env.server.uploads().len(), uploads_before);
}

#[test]
fn each_body_is_logged_exactly_when_asked() {
    if child::play_role(play) {
        return;
    }
    let env = Env::new(&["tool/a"]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 3)]);
    let log = SharedLog::default();
    let mut config = env.config("2026-11-21");
    config.log = Some(Box::new(log.clone()));
    config.log_bodies = true;
    telemetry_upload::run(config).unwrap();
    let post = env.server.uploads().pop().unwrap();
    let want = format!(
        "2026-11-20: POST {}/2026-11-20 body: {}\n",
        env.server.upload_url(),
        post.text()
    );
    assert!(log.text().contains(&want), "{}\nwanted {want}", log.text());

    // Not asked: no body in the log.
    let env = Env::new(&["tool/a"]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 3)]);
    let (_, text) = env.run_logged("2026-11-21");
    assert!(!text.contains("body:"), "{text}");
    assert!(text.contains("uploaded"), "{text}");
}

// ---------------------------------------------------------------------------------
// A live process

/// A run that pretends to be a week and a day later, while a process counts into the
/// current week's file, looks at that week but commits nothing: the week is not over
/// by the real clock (committed then, every count made afterwards would be in no
/// report, and a later run would delete the file). A real run once the week is over
/// reports every count.
#[test]
fn a_pretended_future_upload_commits_nothing_under_a_counting_process() {
    if child::play_role(play) {
        return;
    }
    let env = Env::new(&["tool/a"]);
    let stop = env.tmp.path().join("stop");
    let counted = env.tmp.path().join("counted");
    let spec = format!(
        "count|{}|{}|{}",
        env.root().display(),
        stop.display(),
        counted.display()
    );
    let mut counting = child_command(&spec).spawn().unwrap();
    // Wait for its file to hold its first count (the name alone appears before the
    // header is written, and a run that reads the file then sees no week), then
    // upload repeatedly while it counts, pretending to be a week and a day later (so
    // its week looks over); the real clock is now.
    eventually(
        Duration::from_secs(30),
        "the child to count into its file",
        || {
            env.local_names()
                .iter()
                .filter(|n| n.ends_with(".v1.count"))
                .any(|n| {
                    telemetry_counter::read_file(env.local().join(n))
                        .is_ok_and(|f| f.count.get("tool/a").is_some_and(|&c| c > 0))
                })
        },
    );
    let now = SystemTime::now();
    let later = now + Duration::from_secs(8 * 86_400);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut config = env.config("2026-11-21");
        config.now = now;
        config.start_time = Some(later);
        statuses.extend(telemetry_upload::run(config).unwrap().reports);
    }
    // The child counted all along; now it stops and says how many times.
    std::fs::write(&stop, "").unwrap();
    assert!(counting.wait().unwrap().success());
    let n: u64 = std::fs::read_to_string(&counted).unwrap().parse().unwrap();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    for outcome in &statuses {
        assert_eq!(
            outcome.status,
            ReportStatus::NotOver {
                pretended: Box::new(ReportStatus::WouldBeSent)
            },
            "{statuses:?}"
        );
    }
    assert!(env.server.uploads().is_empty(), "nothing is sent");

    // Nothing was committed: the counter file alone, with every increment.
    let names = env.local_names();
    assert_eq!(names.len(), 1, "{names:?}");
    let file = telemetry_counter::read_file(env.local().join(&names[0])).unwrap();
    assert_eq!(file.count["tool/a"], n);

    // A real run a day after the week ended reports all of them, and only then
    // deletes the file.
    let week = statuses[0].week;
    let mut config = env.config("2026-11-21");
    config.now = week.plus(1).start();
    config.start_time = None;
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(lines(&summary), [format!("{week}: uploaded")]);
    let local = Report::parse(&std::fs::read(env.dir().local_report(week)).unwrap()).unwrap();
    assert_eq!(local.programs[0].counters["tool/a"], n);
    assert_eq!(
        env.server.uploads()[0].json()["Programs"][0]["Counters"]["tool/a"],
        n
    );
    assert_eq!(env.count_files(), 0);
}

// ---------------------------------------------------------------------------------
// Switched off

#[test]
fn do_not_track_and_the_user_wide_switch_say_so_and_write_nothing() {
    if child::play_role(play) {
        return;
    }
    let env = Env::new(&["tool/a"]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let before = env.all_files();

    let mut config = env.config("2026-11-21");
    config.ambient = env.ambient().do_not_track(true);
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(summary.off, Some(ModeSwitch::DoNotTrack));
    assert!(summary.reports.is_empty());
    assert_eq!(
        summary.to_string(),
        "Telemetry is off (DO_NOT_TRACK is set): nothing was uploaded.\n"
    );

    env.ambient().root().unwrap().set_mode(Mode::Off).unwrap();
    let summary = env.run("2026-11-21");
    assert_eq!(summary.off, Some(ModeSwitch::UserWide));
    assert_eq!(
        summary.to_string(),
        "Telemetry is off (it is turned off for every tool): nothing was uploaded.\n"
    );
    assert_eq!(env.all_files(), before, "nothing written, nothing deleted");
    assert!(env.server.requests().is_empty());

    // The same directory with the switches on again is processed.
    env.ambient().root().unwrap().set_mode(Mode::Local).unwrap();
    assert_eq!(lines(&env.run("2026-11-21")), ["2026-11-20: uploaded"]);
}

// ---------------------------------------------------------------------------------
// Go's reports

#[test]
fn go_reports_with_null_programs_parse() {
    if child::play_role(play) {
        return;
    }
    let report = Report::parse(
        br#"{"Week":"2026-11-20","LastWeek":"","X":0.5,"Config":"v0.0.1","Programs":null}"#,
    )
    .unwrap();
    assert!(report.programs.is_empty());
}

// ---------------------------------------------------------------------------------
// Dry run

#[test]
fn a_dry_run_shows_the_exact_bodies_and_changes_nothing() {
    if child::play_role(play) {
        return;
    }
    // One week ready to send (built while the server failed), one still to build.
    let (env, ready) = env_with_ready_report();
    env.count(
        &TOOL,
        "2026-11-20",
        "2026-11-27",
        &[("tool/a", 5), ("tool/secret", 1)],
    );
    let snapshot = |env: &Env| -> Vec<(String, Vec<u8>)> {
        env.all_files()
            .into_iter()
            .map(|f| {
                let bytes = std::fs::read(env.root().join(&f)).unwrap();
                (f, bytes)
            })
            .collect()
    };
    let before = snapshot(&env);
    let posts_before = env.server.uploads().len();

    let mut config = env.config("2026-11-28");
    config.dry_run = true;
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(
        lines(&summary),
        ["2026-11-20: would be sent", "2026-11-27: would be sent"]
    );
    assert_eq!(snapshot(&env), before, "nothing changed");
    assert_eq!(env.server.uploads().len(), posts_before, "nothing sent");
    let bodies = &summary.would_send;
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0].url,
        format!("{}/2026-11-20", env.server.upload_url())
    );
    assert_eq!(bodies[0].body, std::fs::read(&ready).unwrap());
    let fresh = Report::parse(&bodies[1].body).unwrap();
    assert_eq!(
        fresh.programs[0].counters,
        BTreeMap::from([("tool/a".to_owned(), 5)])
    );

    // The real run sends the ready report exactly as the dry run showed it.
    let summary = env.run("2026-11-28");
    assert_eq!(
        lines(&summary),
        ["2026-11-20: uploaded", "2026-11-27: uploaded"]
    );
    let posts = env.server.uploads();
    assert_eq!(posts[posts_before].body, bodies[0].body);
    assert!(summary.would_send.is_empty());
}
