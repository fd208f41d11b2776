//! Support for the end-to-end tests in `tests/tests/`: a loopback upload server
//! ([`LoopbackServer`], re-exported from `telemetry_upload::testing`), the example
//! programs they drive, and the scenario helpers they share. Run them with
//! `cargo xtask integration`.
//!
//! ```
//! let server = telemetry_tests::LoopbackServer::start();
//! server.set_config(r#"{"Programs": []}"#);
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! assert!(server.uploads().is_empty());
//! ```
//!
//! Every process a scenario starts gets `DO_NOT_TRACK` set or removed explicitly, so
//! the suite passes, and asserts, whatever the environment it runs in exports.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub use telemetry_test_support::eventually;
pub use telemetry_upload::testing::{LoopbackServer, Request};

use telemetry_test_support::wait_until;

use telemetry_internal::{ARCH, Date, Dir, Mode, OS, Program, today, toolchain};

/// The path of the example program `name`, built by `cargo test -p telemetry-tests`
/// (Cargo builds a package's examples along with its tests).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The example `name` run on the telemetry directory `dir` with `args`, free to
/// count whatever the environment of the tests says (`DO_NOT_TRACK` and
/// `TELEMETRY_DEBUG` removed).
pub fn example_in(name: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(example(name));
    cmd.arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG");
    cmd
}

/// [`example_in`] for `mytool`, the example most scenarios drive.
pub fn mytool(dir: &Path, args: &[&str]) -> Command {
    example_in("mytool", dir, args)
}

/// `sh -c script`, free to count as [`example_in`] is.
pub fn shell(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script])
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG");
    cmd
}

/// `path` in single quotes, for a [`shell`] script.
pub fn quote(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// Runs the [`shell`] pipeline `script`, in which `mytool greet` uploads to `server`
/// (slow to answer) and pipes into `cat`: the pipeline prints `hello` and ends within
/// `bound`, without waiting for the upload child, which does upload.
pub fn assert_pipeline_ends_before_the_upload(
    script: &str,
    server: &LoopbackServer,
    bound: Duration,
) {
    let start = Instant::now();
    let out = output_within(shell(script), bound + EVENT_TIMEOUT);
    let took = start.elapsed();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert!(took < bound, "the pipeline waited for the child: {took:?}");
    eventually(EVENT_TIMEOUT, "the slow upload", || {
        server.uploads().len() == 1
    });
}

/// The program identity of the example `name`: `program!()` in an example names the
/// example (Cargo compiles it as a binary of that name), with this package's version.
pub fn program_of(example: &str) -> Program {
    Program::owned(example, env!("CARGO_PKG_VERSION"))
}

/// The program identity of `mytool`, the example most scenarios drive.
pub fn program() -> Program {
    program_of("mytool")
}

/// An upload config approving the examples' subcommand counters and crash stacks.
pub fn approving_config() -> String {
    let approve = |example: &str, counters: &str| {
        serde_json::json!({
            "Name": example,
            "Versions": [program_of(example).version()],
            "Counters": [{"Name": counters, "Rate": 1.0}],
            "Stacks": [{"Name": "crash/panic", "Rate": 1.0, "Depth": 16}],
        })
    };
    serde_json::json!({
        "OS": [OS],
        "Arch": [ARCH],
        "Toolchain": [toolchain()],
        "SampleRate": 1.0,
        "Programs": [
            approve("mytool", "mytool/subcommand:{greet,panic,sleep}"),
            approve("clap_tool", "clap_tool/subcommand:{greet,panic}"),
        ],
    })
    .to_string()
}

/// A loopback upload server serving [`approving_config`].
pub fn serving_approving_config() -> LoopbackServer {
    let server = LoopbackServer::start();
    server.set_config(&approving_config());
    server
}

/// `today + n` days.
pub fn days(n: i64) -> Date {
    today() + time::Duration::days(n)
}

/// Opts the user in, as of `days_ago` days ago.
pub fn opt_in(dir: &Path, days_ago: i64) {
    Dir::new(dir)
        .set_mode(Mode::On {
            since: days(-days_ago),
        })
        .unwrap();
}

/// Writes an expired week's counter file of `mytool`, so that an upload has something
/// to send.
pub fn expired_week(dir: &Path, counts: &[(&str, u64)]) {
    expired_week_of(dir, "mytool", counts);
}

/// [`expired_week`] for the example `example`.
pub fn expired_week_of(dir: &Path, example: &str, counts: &[(&str, u64)]) {
    telemetry_counter::testing::write_file(
        &dir.join("local"),
        &program_of(example),
        days(-8),
        days(-1),
        counts,
    )
    .unwrap();
}

/// Every file and directory under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() && !path.is_symlink() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// How long a scenario waits for what another process does (a count, an upload, a
/// log line) before it fails.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether no process holds the lease of a counter file in the telemetry directory
/// `dir` (`telemetry_counter::lease`): every process that counted there, a telemetry
/// child that counted a crash included, has let go, so an upload run may report the
/// files' week. Always true where there is no lease (Windows).
pub fn counter_files_let_go(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(Dir::new(dir).local()) else {
        return true;
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".v1.count"))
        .all(|path| {
            std::fs::File::open(path).is_ok_and(|file| {
                !matches!(telemetry_counter::lease::try_exclusive(&file), Ok(false))
            })
        })
}

/// The processes, other than this one, that work on the telemetry directory `dir`:
/// those whose working directory is inside it (a telemetry child runs in its
/// `local/`) or whose command line names it (a host given `--dir`, and its fork
/// before the child's `exec`). Read from `/proc`; zombies are not counted.
#[cfg(target_os = "linux")]
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let own = std::process::id();
    let named = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let proc = entry.path();
            let in_dir = std::fs::read_link(proc.join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
            let names_dir = std::fs::read(proc.join("cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(named.len()).any(|w| w == named));
            (pid != own && (in_dir || names_dir)).then_some(pid)
        })
        .collect()
}

/// [`processes_in`] where there is no `/proc`: `lsof` for working directories
/// (and files open) inside `dir`, `ps` for command lines that name it.
#[cfg(all(unix, not(target_os = "linux")))]
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let own = std::process::id();
    let lines = |command: &mut Command| {
        command
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    };
    let open = lines(Command::new("lsof").arg("-t").arg("+D").arg(dir));
    let named = lines(Command::new("ps").args(["-axww", "-o", "pid=,args="]));
    let named = named
        .lines()
        .filter(|l| l.contains(&*dir.to_string_lossy()));
    let mut pids: Vec<u32> = open
        .lines()
        .chain(named.filter_map(|l| l.split_whitespace().next()))
        .filter_map(|pid| pid.trim().parse().ok())
        .filter(|&pid| pid != own)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// A temporary directory for a scenario's telemetry directories that outlives every
/// process working in it. A telemetry child is detached: it may still be counting or
/// uploading when the host, and the test, are done, and it would create the
/// directory again if the test deleted it under it (slow children, under qemu, left
/// such trees in the system's temporary directory). Dropped, this waits until no
/// process works in it ([`processes_in`]), up to [`EVENT_TIMEOUT`], then deletes it;
/// a process still there by then fails the test (unless it fails already).
pub struct ScenarioDir(tempfile::TempDir);

/// A fresh [`ScenarioDir`].
pub fn scenario_dir() -> ScenarioDir {
    ScenarioDir(tempfile::tempdir().expect("a temporary directory"))
}

impl ScenarioDir {
    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for ScenarioDir {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            let settled = wait_until(EVENT_TIMEOUT, || processes_in(self.path()).is_empty());
            if !settled && !std::thread::panicking() {
                panic!(
                    "processes still work in {} after {EVENT_TIMEOUT:?}: {:?}",
                    self.path().display(),
                    processes_in(self.path())
                );
            }
        }
    }
}

/// Today's counts of `mytool` in the telemetry directory `dir`.
pub fn todays_counts(dir: &Path) -> BTreeMap<String, u64> {
    todays_counts_of(dir, "mytool")
}

/// Today's counts of the example `example` in the telemetry directory `dir`.
pub fn todays_counts_of(dir: &Path, example: &str) -> BTreeMap<String, u64> {
    let name = telemetry_counter::file_name(&program_of(example), today());
    telemetry_counter::read_file(dir.join("local").join(name))
        .map(|f| f.count)
        .unwrap_or_default()
}

/// Runs `cmd` to completion, killing it and failing the test if it takes longer than
/// `limit`: a hang must fail, not stall the suite.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_within(child, limit)
}

/// Waits for `child` (with piped output) for at most `limit`, else kills it and fails.
/// Its output is read as it comes, and must end (every holder of the pipes gone)
/// within the limit too.
pub fn wait_within(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = tx.send(bytes);
        });
        rx
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let mut status = None;
    let exited = wait_until(limit, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    let Some(status) = status.filter(|_| exited) else {
        let _ = child.kill();
        let _ = child.wait();
        let err = stderr
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_default();
        panic!(
            "still running after {limit:?}; stderr: {}",
            String::from_utf8_lossy(&err)
        );
    };
    let rest = || deadline.saturating_duration_since(Instant::now());
    let stdout = stdout
        .recv_timeout(rest())
        .expect("stdout still held open after the program exited");
    let stderr = stderr
        .recv_timeout(rest())
        .expect("stderr still held open after the program exited");
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The collector's binary `telemetry-server`, brought up to date by Cargo in this
/// test's own target directory and profile. Another package's binary is not something
/// Cargo builds for this package's tests (no `CARGO_BIN_EXE_` for it), and a binary
/// merely found in `target/` may be stale: `cargo build` makes it current, and costs a
/// freshness check when it already is. Fails the test if the build fails.
pub fn telemetry_server_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current exe");
            // target/<profile>/deps/<test>
            let profile_dir = exe.parent().and_then(|d| d.parent()).expect("profile dir");
            let target_dir = profile_dir.parent().expect("target dir");
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev",
                Some(other) => other,
            };
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "-p",
                "telemetry-server",
                "--bin",
                "telemetry-server",
            ])
            .args(["--profile", profile])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
            // What Cargo sets for this package's test run is not the environment of a
            // build: ring's build script would see it change, and rebuild the collector on
            // every switch between this and an ordinary `cargo build`.
            telemetry_test_support::without_package_vars(&mut cmd);
            // A cold build of the collector takes minutes on a small machine.
            let built = output_within(cmd, Duration::from_secs(900));
            assert!(
                built.status.success(),
                "cargo build -p telemetry-server: {}",
                String::from_utf8_lossy(&built.stderr)
            );
            profile_dir.join(format!("telemetry-server{}", std::env::consts::EXE_SUFFIX))
        })
        .clone()
}
