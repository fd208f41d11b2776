//! The Windows scenarios: the same three roles as on Unix (see `main.rs`), with
//! exceptions instead of signals. Run under Wine by `cargo xtask cross`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use telemetry_crashmonitor::CrashMonitorError;

const ROLE: &str = "CRASHTEST_ROLE";
const DIR: &str = "CRASHTEST_DIR";
/// Set to run a scenario without the monitor, to compare the crash with and without.
const UNMONITORED: &str = "CRASHTEST_UNMONITORED";
/// For a counting child: a file whose creation it waits for before it counts, so
/// that several start counting at the same instant.
const GO: &str = "CRASHTEST_GO";
/// In every panic message; must never reach a file under the telemetry dir.
const SECRET: &str = "hunter2-secret-token";

fn program() -> telemetry_counter::Program {
    telemetry_counter::Program::new("crashtest", "1.0.0")
}

pub(crate) fn main() {
    match env::var(ROLE).ok().as_deref() {
        Some("child") => {
            let dir = PathBuf::from(env::var_os(DIR).expect("CRASHTEST_DIR"));
            if let Some(go) = env::var_os(GO) {
                wait_for(Path::new(&go));
            }
            let today = telemetry_internal::Day::of(std::time::SystemTime::now());
            let outcome = telemetry_crashmonitor::process(
                &dir,
                &program(),
                telemetry_internal::Mode::Local,
                today,
            );
            println!("{outcome:?}");
        }
        Some(scenario) => run_parent(scenario),
        None => run_all(),
    }
}

/// Waits until `path` exists (a minute at most: then the child counts anyway).
fn wait_for(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

// ---- the parent: each scenario's crash ----

fn run_parent(scenario: &str) {
    let dir = PathBuf::from(env::var_os(DIR).expect("CRASHTEST_DIR"));
    if env::var_os(UNMONITORED).is_none() {
        telemetry_crashmonitor::install(&dir, &program()).expect("install");
    }
    match scenario {
        "clean" => {
            let second = telemetry_crashmonitor::install(&dir, &program());
            assert!(
                env::var_os(UNMONITORED).is_some()
                    || matches!(second, Err(CrashMonitorError::AlreadyInstalled)),
                "{second:?}"
            );
        }
        "panic-main" => panic_in_main(),
        "panic-thread" => {
            let joined = std::thread::spawn(panic_in_thread).join();
            assert!(joined.is_err());
            // The process survives the panic and exits normally: no crash.
        }
        "caught-panics-then-access-violation" => {
            for _ in 0..2 {
                assert!(std::panic::catch_unwind(panic_in_main).is_err());
            }
            assert!(std::thread::spawn(panic_in_thread).join().is_err());
            bad_write();
        }
        "stop-then-panic" => {
            telemetry_crashmonitor::stop();
            panic_in_main();
        }
        "access-violation" => bad_write(),
        "illegal-instruction" => illegal_instruction(),
        "overflow" => {
            recurse(0);
        }
        "c-abort" => c_abort(),
        other => panic!("unknown scenario {other}"),
    }
}

#[inline(never)]
fn panic_in_main() {
    let token = std::hint::black_box(SECRET);
    panic!("failed with {token}");
}

#[inline(never)]
fn panic_in_thread() {
    let token = std::hint::black_box(SECRET);
    panic!("thread failed with {token}");
}

#[inline(never)]
fn bad_write() {
    // Not null: std's debug checks would turn a null write into a panic first.
    let p = std::ptr::with_exposed_provenance_mut::<u32>(std::hint::black_box(16));
    // SAFETY: none: this is the crash under test.
    unsafe { p.write_volatile(1) };
}

#[inline(never)]
fn illegal_instruction() {
    // SAFETY: none: `ud2` raises the illegal-instruction exception under test.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!("ud2")
    };
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!("udf #0")
    };
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut pad = [0u8; 1024];
    pad[0] = depth as u8;
    std::hint::black_box(&mut pad);
    // A way out that is never taken, as on Unix, so the compiler sees a function that
    // can return.
    if pad[1] == u8::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(u64::from(pad[0]))
}

unsafe extern "C" {
    /// The C runtime's `abort`, which raises `SIGABRT` before ending the process.
    fn abort() -> !;
}

#[inline(never)]
fn c_abort() {
    // SAFETY: none needed: abort takes nothing and ends the process.
    unsafe { abort() }
}

// ---- the orchestrator ----

struct Run {
    status: ExitStatus,
    outcome: String,
    counts: BTreeMap<String, u64>,
    dir: tempfile::TempDir,
}

fn run(scenario: &str, monitored: bool) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env::current_exe().expect("current_exe"));
    cmd.env(ROLE, scenario)
        .env(DIR, dir.path())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    if !monitored {
        cmd.env(UNMONITORED, "1");
    }
    let output = cmd.output().expect("run parent");
    // The next run of the program counts what this one recorded.
    let counted = Command::new(env::current_exe().expect("current_exe"))
        .env(ROLE, "child")
        .env(DIR, dir.path())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run the counting child");
    Run {
        status: output.status,
        outcome: String::from_utf8_lossy(&counted.stdout).trim().to_owned(),
        counts: read_counts(dir.path()),
        dir,
    }
}

fn read_counts(dir: &Path) -> BTreeMap<String, u64> {
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

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// The run counted one crash, `prefix`, whose first frame is `function`, after any
/// frames whose names start with one of `callees`.
fn counted(run: &Run, prefix: &str, function: &str, callees: &[&str]) -> Result<(), String> {
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
    let lines: Vec<&str> = crashes[0].split('\n').collect();
    ensure(lines[0] == prefix, || format!("want {prefix}: {lines:#?}"))?;
    let first = lines[1..]
        .iter()
        .find(|l| !callees.iter().any(|c| l.starts_with(c)))
        .copied()
        .unwrap_or("");
    ensure(first.starts_with(&format!("{function}+0x")), || {
        format!("first frame should be {function}: {lines:#?}")
    })?;
    ensure(lines.len() <= 17, || {
        format!("more than 16 frames: {lines:#?}")
    })?;
    ensure(run.outcome.starts_with("Counted {"), || {
        format!("outcome {}", run.outcome)
    })?;
    no_secret(run)
}

fn no_secret(run: &Run) -> Result<(), String> {
    for entry in std::fs::read_dir(run.dir.path().join("local"))
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
    {
        let data = std::fs::read(entry.path()).unwrap_or_default();
        ensure(
            !data.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            || format!("the panic message reached {}", entry.path().display()),
        )?;
    }
    Ok(())
}

/// The process ends as it would have without the monitor.
fn unchanged(run: &Run, scenario: &str) -> Result<(), String> {
    let alone = self::run(scenario, false);
    ensure(run.status.code() == alone.status.code(), || {
        format!(
            "exit {:?} with the monitor, {:?} without",
            run.status, alone.status
        )
    })
}

/// Whether these tests run under Wine (`cargo xtask cross` sets `WINEPREFIX`, which
/// Wine passes on to Windows programs), whose limits some scenarios meet.
fn under_wine() -> bool {
    env::var_os("WINEPREFIX").is_some()
}

type Check = fn(&Run) -> Result<(), String>;

const MOD: &str = "process::scenarios_windows";

const SCENARIOS: &[(&str, Check)] = &[
    ("clean", |run| {
        ensure(run.status.success(), || format!("{:?}", run.status))?;
        ensure(run.outcome == "Empty", || {
            format!("outcome {}", run.outcome)
        })?;
        ensure(run.counts.is_empty(), || format!("{:?}", run.counts))
    }),
    ("panic-main", |run| {
        counted(run, "crash/panic", &format!("{MOD}::panic_in_main"), &[])?;
        unchanged(run, "panic-main")
    }),
    ("panic-thread", |run| {
        // A worker's panic that the program survives is no crash.
        ensure(run.status.success(), || format!("{:?}", run.status))?;
        ensure(run.outcome == "Empty", || {
            format!("outcome {}", run.outcome)
        })?;
        ensure(run.counts.is_empty(), || format!("{:?}", run.counts))
    }),
    ("caught-panics-then-access-violation", |run| {
        // Three survived panics use up nothing: the fault that ends the process is
        // the one counted.
        ensure(run.status.code() == Some(0xC000_0005_u32 as i32), || {
            format!("{:?}", run.status)
        })?;
        counted(
            run,
            "crash/signal:SIGSEGV",
            &format!("{MOD}::bad_write"),
            &["core::"],
        )
    }),
    ("stop-then-panic", |run| {
        ensure(run.outcome == "Empty", || {
            format!("outcome {}", run.outcome)
        })?;
        ensure(run.counts.is_empty(), || format!("{:?}", run.counts))
    }),
    ("access-violation", |run| {
        ensure(run.status.code() == Some(0xC000_0005_u32 as i32), || {
            format!("{:?}", run.status)
        })?;
        counted(
            run,
            "crash/signal:SIGSEGV",
            &format!("{MOD}::bad_write"),
            // Unoptimised, the write is a call to `core::ptr::write_volatile`.
            &["core::"],
        )?;
        unchanged(run, "access-violation")
    }),
    ("illegal-instruction", |run| {
        counted(
            run,
            "crash/signal:SIGILL",
            &format!("{MOD}::illegal_instruction"),
            &[],
        )?;
        unchanged(run, "illegal-instruction")
    }),
    ("overflow", |run| {
        unchanged(run, "overflow")?;
        if under_wine() {
            // FIXME(Wine 8): Wine ends a thread whose stack overflowed without
            // dispatching the exception when less than a page is left below the guard
            // ("virtual_setup_exception stack overflow"), ignoring the reserve std asks
            // for with SetThreadStackGuarantee: neither std's message nor our filter
            // runs. Windows dispatches it, and then this is counted as on Unix.
            ensure(run.outcome == "Empty", || {
                format!("outcome {}", run.outcome)
            })?;
            return ensure(run.counts.is_empty(), || format!("{:?}", run.counts));
        }
        counted(
            run,
            "crash/signal:SIGSEGV",
            &format!("{MOD}::recurse"),
            &["__chkstk", "___chkstk_ms", "core::", "std::"],
        )
    }),
    ("c-abort", |run| {
        counted(run, "crash/abort", &format!("{MOD}::c_abort"), &[])?;
        unchanged(run, "c-abort")
    }),
];

/// Counting children racing on one crash.
const RACERS: usize = 4;

/// One crash, then [`RACERS`] counting children started together on its journal (as
/// a build system starts a tool many times at once right after a crash): the crash is
/// counted once, by one child; each other finds the journal busy or already empty.
fn racing_children() -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = env::current_exe().expect("current_exe");
    let status = Command::new(&exe)
        .env(ROLE, "access-violation")
        .env(DIR, dir.path())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the program");
    ensure(status.code() == Some(0xC000_0005_u32 as i32), || {
        format!("{status:?}")
    })?;
    let go = dir.path().join("go");
    let children: Vec<_> = (0..RACERS)
        .map(|_| {
            Command::new(&exe)
                .env(ROLE, "child")
                .env(DIR, dir.path())
                .env(GO, &go)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a counting child")
        })
        .collect();
    std::fs::write(&go, b"").expect("write the go file");
    let mut outcomes: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("wait for a counting child");
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        })
        .collect();
    outcomes.sort();
    let counts = read_counts(dir.path());
    let crashes: u64 = counts
        .iter()
        .filter(|(name, _)| name.starts_with("crash/"))
        .map(|(_, n)| n)
        .sum();
    let counted = outcomes
        .iter()
        .filter(|o| o.starts_with("Counted {"))
        .count();
    let others_ok = outcomes
        .iter()
        .all(|o| o.starts_with("Counted {") || o == "Busy" || o == "Empty");
    ensure(crashes == 1 && counted == 1 && others_ok, || {
        format!("want one count by one child: {counts:?}, outcomes {outcomes:?}")
    })
}

/// Tests that are not one scenario's crash and count.
const DIRECT: &[(&str, fn() -> Result<(), String>)] = &[("racing-children", racing_children)];

/// The orchestrator: runs the scenarios (those matching the filters given) side by
/// side and reports as libtest does.
fn run_all() {
    let args: Vec<String> = env::args().skip(1).collect();
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    if args.iter().any(|a| a == "--list") {
        for name in SCENARIOS
            .iter()
            .map(|(n, _)| n)
            .chain(DIRECT.iter().map(|(n, _)| n))
        {
            println!("{name}: test");
        }
        return;
    }
    let start = std::time::Instant::now();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let mut handles: Vec<_> = SCENARIOS
        .iter()
        .filter(|(name, _)| wanted(name))
        .map(|&(name, check)| (name, std::thread::spawn(move || check(&run(name, true)))))
        .collect();
    handles.extend(
        DIRECT
            .iter()
            .filter(|(name, _)| wanted(name))
            .map(|&(name, test)| (name, std::thread::spawn(test))),
    );
    let mut failed = 0;
    for (name, handle) in handles {
        match handle
            .join()
            .unwrap_or_else(|_| Err("the check panicked".into()))
        {
            Ok(()) => println!("test {name} ... ok"),
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
