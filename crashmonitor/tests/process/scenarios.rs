//! The scenarios, the roles and the orchestrator (Unix only: signals and pipes).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::env;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use telemetry_crashmonitor::CrashMonitorError;

const ROLE: &str = "CRASHTEST_ROLE";
const DIR: &str = "CRASHTEST_DIR";
/// Set to run a scenario without the monitor, to compare the crash with and without.
const UNMONITORED: &str = "CRASHTEST_UNMONITORED";
/// In every panic message; must never reach a file under the telemetry dir.
const SECRET: &str = "hunter2-secret-token";

fn program() -> telemetry_counter::Program {
    telemetry_counter::Program::new("crashtest", "1.0.0")
}

pub(crate) fn main() {
    match env::var(ROLE).ok().as_deref() {
        Some("child") => {
            let dir = PathBuf::from(env::var_os(DIR).expect("CRASHTEST_DIR"));
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

// ---- the parent: each scenario's crash ----

fn run_parent(scenario: &str) {
    // What the host does before crash reporting starts.
    match scenario {
        "ignored-segv" => {
            // SAFETY: setting a disposition to SIG_IGN, before any other thread exists.
            unsafe { libc::signal(libc::SIGSEGV, libc::SIG_IGN) };
        }
        "returning-handler" => install_returning_handler(),
        "closed-stdio" => {
            closed_stdio();
            return;
        }
        "journal-planted" => plant_fifo(),
        "truncate-counter-first" => counters_open(),
        "stack-used-segv" | "stack-used-abort" | "stack-used-overflow" => painted_alt_stack(),
        _ => {}
    }
    if env::var_os(UNMONITORED).is_none() {
        install();
    }
    match scenario {
        "clean" => {
            let second = telemetry_crashmonitor::install(&telemetry_dir(), &program());
            assert!(
                env::var_os(UNMONITORED).is_some()
                    || matches!(second, Err(CrashMonitorError::AlreadyInstalled)),
                "{second:?}"
            );
        }
        "journal-planted" => {}
        "panic-main" => panic_in_main(),
        "stop-then-panic" => {
            telemetry_crashmonitor::stop();
            telemetry_crashmonitor::stop(); // twice is harmless
            panic_in_main();
        }
        "panic-thread" => {
            let joined = std::thread::spawn(panic_in_thread).join();
            assert!(joined.is_err());
            // The process survives the panic and exits normally: no crash.
        }
        "caught-panics-then-segv" => {
            for _ in 0..2 {
                assert!(std::panic::catch_unwind(panic_in_main).is_err());
            }
            assert!(std::thread::spawn(panic_in_thread).join().is_err());
            null_write();
        }
        "caught-panic-main" => {
            // Caught on the main thread; the program goes on and exits normally.
            assert!(std::panic::catch_unwind(panic_in_main).is_err());
        }
        "panic-thread-then-panic-main" => {
            assert!(std::thread::spawn(panic_in_thread).join().is_err());
            panic_in_main();
        }
        "panic-cannot-unwind-thread" => {
            let _ = std::thread::spawn(|| cannot_unwind()).join();
        }
        "alt-stack-size" => {
            // SAFETY: sigaltstack only writes the local.
            let size = unsafe {
                let mut current: libc::stack_t = std::mem::zeroed();
                assert_eq!(libc::sigaltstack(std::ptr::null(), &mut current), 0);
                current.ss_size
            };
            if size < OUR_ALT_STACK {
                println!("alternate stack of {size} bytes");
                std::process::exit(4);
            }
        }
        "stack-used-segv" => null_write(),
        "stack-used-abort" => abort_here(),
        "stack-used-overflow" => {
            recurse(0);
        }
        "overflow-thread-big-stack" => {
            // A 16 MiB stack: the overflow comes hundreds of thousands of frames deep.
            let _ = std::thread::Builder::new()
                .stack_size(16 << 20)
                .spawn(|| recurse(0))
                .expect("spawn")
                .join();
        }
        "segv-thread-deep" => {
            let _ = std::thread::spawn(|| deep_then_segv(0)).join();
        }
        "segv" => null_write(),
        "abort" => abort_here(),
        "overflow" => {
            recurse(0);
        }
        "overflow-thread" => {
            let _ = std::thread::spawn(|| recurse(0)).join();
        }
        "double-panic" => double_panic(),
        "panic-cannot-unwind" => cannot_unwind(),
        "alloc-failed" => alloc_failed(),
        "sigill" => illegal_instruction(),
        "raise-sigfpe" => raise_sigfpe(),
        "ignored-segv" | "returning-handler" => null_write(),
        "truncate-counter-first" => count_while_truncated(),
        "journal-truncated-segv" => {
            truncate_journal();
            null_write();
        }
        "journal-truncated-abort" => {
            truncate_journal();
            abort_here();
        }
        "truncate-monitor-first" => {
            counters_open();
            count_while_truncated();
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// The telemetry directory the scenarios record into and count from.
fn telemetry_dir() -> PathBuf {
    PathBuf::from(env::var_os(DIR).expect("CRASHTEST_DIR"))
}

/// Installs crash reporting as `telemetry::start` does; the journal must be usable,
/// unless a scenario planted something in its place.
fn install() {
    let installed = telemetry_crashmonitor::install(&telemetry_dir(), &program());
    if env::var(ROLE).as_deref() == Ok("journal-planted") {
        assert!(
            matches!(installed, Err(CrashMonitorError::Journal(_))),
            "{installed:?}"
        );
    } else {
        installed.expect("install");
    }
}

/// A FIFO where the journal goes: opening it must neither block nor succeed.
fn plant_fifo() {
    let local = telemetry_dir().join("local");
    std::fs::create_dir_all(&local).expect("local/");
    let path = std::ffi::CString::new(
        local
            .join("crash.journal")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("no NUL");
    // SAFETY: mkfifo reads a valid C string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
}

/// A host handler for SIGSEGV that returns without curing the fault: the fault
/// recurs at once. Without the monitor the process spins forever; with it, it must
/// die.
fn install_returning_handler() {
    extern "C" fn returns(_: libc::c_int) {}
    // SAFETY: installing a handler that does nothing, before any other thread exists.
    unsafe { libc::signal(libc::SIGSEGV, returns as *const () as libc::sighandler_t) };
}

/// A daemon that closed fds 0 to 2 before crash reporting started: crash reporting
/// keeps no descriptor (the journal is mapped, and its descriptor closed), so none of
/// its stdio numbers is taken, and its heavy stderr output goes nowhere, as before.
fn closed_stdio() {
    // SAFETY: close and open take integers and a C string literal; the descriptors
    // are this process's stdio, which nothing else uses yet.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close(2);
        // stdin back as /dev/null, so that a descriptor we kept would land on fd 1.
        libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
    }
    install();
    // SAFETY: F_GETFD on a descriptor number only reads its flags.
    let kept = unsafe { libc::fcntl(1, libc::F_GETFD) } >= 0;
    if kept {
        std::process::exit(3); // crash reporting kept a descriptor on the host's stdio
    }
    for i in 0..20_000 {
        eprintln!("host log line {i}: the host's own stderr, closed by the host");
    }
}

/// The size of the painted alternate stack: far more than a handler needs.
const PAINTED_STACK: usize = 256 * 1024;
/// What the painted stack is filled with.
const PAINT: u8 = 0xa5;

/// Makes the main thread's alternate signal stack a shared mapping of the file
/// `altstack` in the test's directory, filled with [`PAINT`]: after the crash, the
/// orchestrator reads how deep the kernel's signal frame and our handler wrote.
fn painted_alt_stack() {
    use std::os::fd::AsRawFd;
    let path = PathBuf::from(env::var_os(DIR).expect("CRASHTEST_DIR")).join("altstack");
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .expect("altstack file");
    file.set_len(PAINTED_STACK as u64).expect("set_len");
    // SAFETY: a fresh shared mapping of a file this process owns, never unmapped (it
    // is the signal stack until the process dies); sigaltstack reads the stack_t.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            PAINTED_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(map, libc::MAP_FAILED);
        std::ptr::write_bytes(map.cast::<u8>(), PAINT, PAINTED_STACK);
        let stack = libc::stack_t {
            ss_sp: map,
            ss_flags: 0,
            ss_size: PAINTED_STACK,
        };
        assert_eq!(libc::sigaltstack(&stack, std::ptr::null_mut()), 0);
    }
}

/// How many bytes of the painted alternate stack were written: from its top down
/// to the lowest byte that lost its paint.
fn painted_stack_used(run: &Run) -> Result<usize, String> {
    let bytes = std::fs::read(run.dir.path().join("altstack")).map_err(|e| e.to_string())?;
    let lowest = bytes
        .iter()
        .position(|&b| b != PAINT)
        .unwrap_or(bytes.len());
    Ok(bytes.len() - lowest)
}

/// The signal frame and our handler fit in our own alternate stack with room to
/// spare, and the measure is printed beside std's (`SIGSTKSZ`, at least the kernel's
/// `AT_MINSIGSTKSZ`), which spawned threads keep.
fn fits_alt_stack(run: &Run) -> Result<(), String> {
    let used = painted_stack_used(run)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: getauxval reads the auxiliary vector; 0 if the entry is missing.
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let min = 0;
    let std_size = libc::SIGSTKSZ.max(min);
    println!("    alternate stack used: {used} bytes (std gives a thread {std_size})");
    ensure(used > 0, || {
        "the handler did not run on the painted stack".to_owned()
    })?;
    ensure(used <= OUR_ALT_STACK / 4, || {
        format!("{used} bytes used: too close to our {OUR_ALT_STACK}")
    })
}

/// The alternate stack `parent` gives the calling thread.
const OUR_ALT_STACK: usize = 64 * 1024;

/// The counter file of the parent's own counters (not the monitor's directory).
fn parent_counter_dir() -> PathBuf {
    PathBuf::from(env::var_os(DIR).expect("CRASHTEST_DIR")).join("parent")
}

/// Opens the parent's counter file and gives it records over several pages.
fn counters_open() {
    let status = telemetry_counter::open_dir(parent_counter_dir(), program());
    assert!(status.path().is_some(), "{status:?}");
    for i in 0..2_000 {
        telemetry_counter::inc(&format!("crashtest/name/{i}"));
    }
}

/// Threads count into every page of the file while another process truncates it to
/// nothing: every access to a cut page faults with SIGBUS, which must neither kill
/// the host nor be reported as a crash (golang/go#74651).
fn count_while_truncated() {
    let file = telemetry_counter::testing::current_file().expect("counting into a file");
    let names: Vec<&'static telemetry_counter::Counter> = (0..2_000)
        .map(|i| {
            let name: &'static str = Box::leak(format!("crashtest/name/{i}").into_boxed_str());
            &*Box::leak(Box::new(telemetry_counter::Counter::new(name)))
        })
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let mut rounds = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && rounds < 100_000 {
                    names.iter().for_each(|c| c.inc());
                    rounds += 1;
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let status = Command::new("truncate")
            .args(["-s", "0"])
            .arg(&file)
            .status()
            .expect("run truncate");
        assert!(status.success());
        std::thread::sleep(std::time::Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // New names after the truncation stay in memory.
    for i in 0..100 {
        telemetry_counter::inc(&format!("crashtest/after/{i}"));
    }
}

/// Another process cuts the mapped crash journal to nothing: each of the handler's
/// stores into it would fault with `SIGBUS` (the crate's `record.rs` layout).
fn truncate_journal() {
    let journal = telemetry_dir().join("local").join("crash.journal");
    let status = Command::new("truncate")
        .args(["-s", "0"])
        .arg(&journal)
        .status()
        .expect("run truncate");
    assert!(status.success());
    assert_eq!(std::fs::metadata(&journal).expect("journal").len(), 0);
}

#[inline(never)]
fn panic_in_main() {
    let token = std::hint::black_box(SECRET);
    panic!("could not log in with {token}");
}

#[inline(never)]
fn panic_in_thread() {
    let token = std::hint::black_box(SECRET);
    panic!("thread failed with {token}");
}

#[inline(never)]
fn null_write() {
    // A near-null pointer: a field of a struct at address zero. (A pointer of exactly
    // zero would be caught by std's debug precondition checks, which abort instead.)
    let ptr = std::ptr::without_provenance_mut::<u8>(std::hint::black_box(16));
    // SAFETY: none: this write faults with SIGSEGV on purpose, which is the test.
    unsafe { ptr.write_volatile(1) };
}

/// Some hundred frames deep, then a fault: the handler walks a deep stack on a
/// spawned thread's alternate stack.
#[inline(never)]
fn deep_then_segv(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 8]);
    if frame[0] == 200 {
        null_write();
        return 0;
    }
    deep_then_segv(depth + 1).wrapping_add(std::hint::black_box(frame[1]))
}

#[inline(never)]
fn abort_here() {
    std::process::abort();
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    if frame[0] == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(std::hint::black_box(frame[1]))
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("second panic while unwinding");
    }
}

#[inline(never)]
fn double_panic() {
    let _guard = PanicsOnDrop;
    let token = std::hint::black_box(SECRET);
    panic!("first panic with {token}");
}

/// A panic that cannot unwind aborts right after the hook, as every panic does in a
/// `panic = "abort"` build.
#[inline(never)]
extern "C" fn cannot_unwind() {
    let token = std::hint::black_box(SECRET);
    panic!("no unwinding through C with {token}");
}

/// What an allocation failure does: std's handler prints and aborts.
#[inline(never)]
fn alloc_failed() {
    std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 1 << 20]>());
}

#[inline(never)]
fn illegal_instruction() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: none: `ud2` raises SIGILL on purpose, which is the test.
    unsafe {
        std::arch::asm!("ud2")
    };
}

/// A signal sent, not caused by an instruction: once reported it must be sent again,
/// or the process would survive it. (Not SIGSEGV or SIGBUS: std's handler for those
/// only resets the default action and returns, so a raised one is lost, monitor or
/// not.)
#[inline(never)]
fn raise_sigfpe() {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGFPE) };
    // Not a tail call, so that this function's frame is on the stack.
    std::hint::black_box(());
}

// ---- the orchestrator ----

/// What one scenario left behind.
struct Run {
    status: ExitStatus,
    stderr: String,
    /// The counting child's outcome, as it printed it.
    outcome: String,
    counts: BTreeMap<String, u64>,
    dir: tempfile::TempDir,
}

fn run(scenario: &str, monitored: bool) -> Run {
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
fn count_journal(dir: &Path) -> String {
    count_journal_with(&env::current_exe().expect("current_exe"), dir)
}

/// [`count_journal`] with the executable `exe` (a stripped copy, say).
fn count_journal_with(exe: &Path, dir: &Path) -> String {
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

/// How long one scenario may take before it counts as hung. Natively every scenario
/// ends within a second or two. Under qemu-user (`cargo xtask cross aarch64` sets
/// `TELEMETRY_TESTS_UNDER_QEMU`) a scenario that symbolizes a backtrace is slow, and on
/// a loaded 2-core machine very slow: a double panic, where std always prints a full
/// backtrace by reading the test binary's DWARF, took 27 s with no crash monitor
/// installed at all (load average 12), against about a second when the machine is idle.
/// So the emulated bound is wide, and a run past the native bound is logged with its
/// time; a real hang of ours still fails, only later.
fn hang_limit() -> std::time::Duration {
    let emulated = env::var_os("TELEMETRY_TESTS_UNDER_QEMU").is_some();
    std::time::Duration::from_secs(if emulated { 300 } else { 60 })
}

/// What a native run of any scenario stays well under; slower runs are logged.
const SLOW_RUN: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `cmd` to its end, killing it after [`hang_limit`]: a scenario that hangs or
/// spins fails instead of hanging the suite. Before the kill, the state of each of the
/// process's threads is printed (from `/proc`), so that a hang says where it was.
fn output_within(mut cmd: Command, scenario: &str) -> std::process::Output {
    let limit = hang_limit();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = std::time::Instant::now();
    let child = cmd.spawn().expect("run parent");
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        let scenario = scenario.to_owned();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if started.elapsed() > limit {
                    eprintln!(
                        "scenario {scenario} still running after {limit:?}; its threads: {}",
                        thread_states(pid)
                    );
                    // SAFETY: kill takes integers; `pid` is our child, not yet waited
                    // for (`done` is unset), so the id is not reused.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    return;
                }
                std::thread::park_timeout(std::time::Duration::from_millis(10));
            }
        })
    };
    let output = child.wait_with_output().expect("wait parent");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.thread().unpark();
    let _ = watchdog.join();
    let took = started.elapsed();
    if took > SLOW_RUN {
        eprintln!("scenario {scenario} took {took:.1?} (bound {limit:?})");
    }
    output
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

/// Whether `needle` occurs in any file under `dir`.
fn found_in_files(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = found_in_files(&path, needle) {
                return Some(found);
            }
        } else if let Ok(data) = std::fs::read(&path) {
            if data.windows(needle.len()).any(|w| w == needle) {
                return Some(path);
            }
        }
    }
    None
}

type Check = fn(&Run) -> Result<(), String>;
/// A check that runs a counting child itself.
type DirectCheck = fn() -> Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// The one crash counter of a run: its prefix line and frame lines.
fn crash_counter(run: &Run) -> Result<Vec<String>, String> {
    let crashes: Vec<&String> = run
        .counts
        .keys()
        .filter(|n| n.starts_with("crash/"))
        .collect();
    ensure(crashes.len() == 1, || {
        format!("want one crash counter, got {:?}", run.counts)
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

/// The run counted `prefix` with `function` as its first frame.
fn counted(run: &Run, prefix: &str, function: &str) -> Result<(), String> {
    counted_within(run, prefix, function, &[])
}

/// The run counted the SIGSEGV of [`null_write`]. The fault may be inside core's
/// `write_volatile`, where a debug build does not inline it (Debian's Rust 1.96 for
/// aarch64 does not); that frame is the right first one then.
fn counted_null_write(run: &Run) -> Result<(), String> {
    counted_within(
        run,
        "crash/signal:SIGSEGV",
        "process::scenarios::null_write",
        &["core::ptr::write_volatile"],
    )
}

/// A stack overflow: std's message, the abort that follows it, and the fault counted
/// in `recurse`.
fn died_of_overflow(run: &Run) -> Result<(), String> {
    killed_by(run, libc::SIGABRT)?;
    ensure(run.stderr.contains("has overflowed its stack"), || {
        format!("std's message is missing: {}", run.stderr)
    })?;
    counted_overflow(run)
}

/// The fault of a stack overflow, counted wherever in `recurse` the stack ran out.
fn counted_overflow(run: &Run) -> Result<(), String> {
    counted_within(
        run,
        "crash/signal:SIGSEGV",
        "process::scenarios::recurse",
        &["core::hint::black_box"],
    )
}

/// The run counted `prefix` with `function` as its first frame, or after frames of
/// the `callees` named (a stack overflow faults wherever the stack runs out: in
/// `recurse` or in a function it calls).
fn counted_within(run: &Run, prefix: &str, function: &str, callees: &[&str]) -> Result<(), String> {
    let lines = crash_counter(run)?;
    ensure(lines[0] == prefix, || format!("want {prefix}: {lines:#?}"))?;
    let is_callee = |line: &&String| callees.iter().any(|c| line.starts_with(&format!("{c}+0x")));
    let first = lines[1..]
        .iter()
        .find(|l| !is_callee(l))
        .map_or("", String::as_str);
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

fn no_secret(run: &Run) -> Result<(), String> {
    let found = found_in_files(run.dir.path(), SECRET.as_bytes());
    ensure(found.is_none(), || {
        format!("the panic message reached {found:?}")
    })
}

/// The run was killed by `signal`.
fn killed_by(run: &Run, signal: i32) -> Result<(), String> {
    ensure(run.status.signal() == Some(signal), || {
        format!("status {:?}", run.status)
    })
}

/// The crash looks the same with and without the monitor: same status, same stderr.
fn unchanged(run: &Run, scenario: &str) -> Result<(), String> {
    let plain = run_unmonitored(scenario);
    ensure(plain.status.code() == run.status.code(), || {
        format!(
            "status {:?} without the monitor, {:?} with",
            plain.status, run.status
        )
    })?;
    ensure(plain.status.signal() == run.status.signal(), || {
        format!(
            "status {:?} without the monitor, {:?} with",
            plain.status, run.status
        )
    })?;
    // A nested panic prints a backtrace even with RUST_BACKTRACE=0, and ours has our
    // hook on it: compare everything but backtrace frames.
    let (plain, monitored) = (without_frames(&plain.stderr), without_frames(&run.stderr));
    ensure(plain == monitored, || {
        format!("stderr without the monitor:\n{plain}\nwith:\n{monitored}")
    })
}

fn run_unmonitored(scenario: &str) -> Run {
    run(scenario, false)
}

const SCENARIOS: &[(&str, Check)] = &[
    ("journal-planted", |run| {
        // Crash reporting is off for the run; the host goes on as if it were not there.
        ensure(run.status.success(), || {
            format!("status {:?}: {}", run.status, run.stderr)
        })?;
        ensure(run.counts.is_empty(), || {
            format!("counted {:?}", run.counts)
        })
    }),
    ("clean", |run| {
        ensure(run.status.success(), || format!("status {:?}", run.status))?;
        ensure(run.outcome == "Empty", || {
            format!("outcome {}", run.outcome)
        })?;
        ensure(run.counts.is_empty(), || {
            format!("counted {:?}", run.counts)
        })
    }),
    ("stop-then-panic", |run| {
        ensure(run.status.code() == Some(101), || {
            format!("status {:?}", run.status)
        })?;
        ensure(run.outcome == "Empty", || {
            format!("outcome {}", run.outcome)
        })?;
        ensure(run.counts.is_empty(), || {
            format!("counted {:?}", run.counts)
        })?;
        unchanged(run, "stop-then-panic")
    }),
    ("panic-main", |run| {
        ensure(run.status.code() == Some(101), || {
            format!("status {:?}", run.status)
        })?;
        ensure(run.stderr.contains(SECRET), || {
            format!("panic output lost: {}", run.stderr)
        })?;
        counted(run, "crash/panic", "process::scenarios::panic_in_main")?;
        no_secret(run)?;
        unchanged(run, "panic-main")
    }),
    ("panic-thread", |run| {
        // A worker's panic that the program survives is no crash.
        ensure(run.status.success(), || format!("status {:?}", run.status))?;
        ensure(run.stderr.contains(SECRET), || {
            format!("panic output lost: {}", run.stderr)
        })?;
        ensure(run.outcome == "Empty", || {
            format!("outcome {}", run.outcome)
        })?;
        ensure(run.counts.is_empty(), || {
            format!("counted {:?}", run.counts)
        })?;
        unchanged(run, "panic-thread")
    }),
    ("caught-panics-then-segv", |run| {
        // Three panics survived (two caught, one in a joined thread) use up nothing:
        // the fault that ends the process is the one counted.
        killed_by(run, libc::SIGSEGV)?;
        counted_null_write(run)?;
        no_secret(run)
    }),
    ("caught-panic-main", |run| {
        ensure(run.status.success(), || format!("status {:?}", run.status))?;
        // Only glibc tells an exit handler the status; elsewhere a caught panic of
        // the main thread followed by an exit is counted (see the crate docs).
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            ensure(run.outcome == "Empty", || {
                format!("outcome {}", run.outcome)
            })?;
            ensure(run.counts.is_empty(), || {
                format!("counted {:?}", run.counts)
            })?;
        }
        Ok(())
    }),
    ("panic-thread-then-panic-main", |run| {
        // The worker's panic was survived; main's ends the process.
        ensure(run.status.code() == Some(101), || {
            format!("status {:?}", run.status)
        })?;
        counted(run, "crash/panic", "process::scenarios::panic_in_main")?;
        no_secret(run)
    }),
    ("panic-cannot-unwind-thread", |run| {
        killed_by(run, libc::SIGABRT)?;
        counted(run, "crash/panic", "process::scenarios::cannot_unwind")?;
        no_secret(run)
    }),
    ("alt-stack-size", |run| {
        // The thread that installs the monitor gets an alternate stack of our size
        // instead of std's smaller one.
        ensure(run.status.success(), || {
            format!("status {:?}: {}", run.status, run.outcome)
        })
    }),
    ("stack-used-segv", |run| {
        killed_by(run, libc::SIGSEGV)?;
        counted_null_write(run)?;
        fits_alt_stack(run)
    }),
    ("stack-used-abort", |run| {
        killed_by(run, libc::SIGABRT)?;
        counted(run, "crash/abort", "process::scenarios::abort_here")?;
        fits_alt_stack(run)
    }),
    ("stack-used-overflow", |run| {
        killed_by(run, libc::SIGABRT)?;
        counted_overflow(run)?;
        fits_alt_stack(run)
    }),
    ("overflow-thread-big-stack", |run| died_of_overflow(run)),
    ("segv-thread-deep", |run| {
        killed_by(run, libc::SIGSEGV)?;
        counted_within(
            run,
            "crash/signal:SIGSEGV",
            "process::scenarios::null_write",
            &["core::ptr::write_volatile"],
        )?;
        let lines = crash_counter(run)?;
        ensure(
            lines
                .iter()
                .filter(|l| l.contains("deep_then_segv"))
                .count()
                >= 10,
            || format!("the deep frames are missing: {lines:#?}"),
        )
    }),
    ("segv", |run| {
        killed_by(run, libc::SIGSEGV)?;
        counted_null_write(run)
    }),
    ("abort", |run| {
        killed_by(run, libc::SIGABRT)?;
        counted(run, "crash/abort", "process::scenarios::abort_here")?;
        unchanged(run, "abort")
    }),
    ("overflow", |run| {
        died_of_overflow(run)?;
        unchanged(run, "overflow")
    }),
    ("overflow-thread", |run| died_of_overflow(run)),
    ("panic-cannot-unwind", |run| {
        killed_by(run, libc::SIGABRT)?;
        counted(run, "crash/panic", "process::scenarios::cannot_unwind")?;
        no_secret(run)?;
        unchanged(run, "panic-cannot-unwind")
    }),
    ("alloc-failed", |run| {
        killed_by(run, libc::SIGABRT)?;
        ensure(
            run.stderr
                .contains("memory allocation of 1048576 bytes failed"),
            || format!("std's message is missing: {}", run.stderr),
        )?;
        counted(run, "crash/abort", "process::scenarios::alloc_failed")?;
        unchanged(run, "alloc-failed")
    }),
    ("sigill", |run| {
        if cfg!(not(target_arch = "x86_64")) {
            return Ok(());
        }
        killed_by(run, libc::SIGILL)?;
        counted(
            run,
            "crash/signal:SIGILL",
            "process::scenarios::illegal_instruction",
        )?;
        unchanged(run, "sigill")
    }),
    ("raise-sigfpe", |run| {
        killed_by(run, libc::SIGFPE)?;
        let lines = crash_counter(run)?;
        ensure(lines[0] == "crash/signal:SIGFPE", || format!("{lines:#?}"))?;
        // The interrupted instruction is in libc's raise: unnamed frames come first.
        let caller = lines
            .iter()
            .position(|l| l.starts_with("process::scenarios::raise_sigfpe+0x"));
        let unnamed_before = caller.is_some_and(|i| lines[1..i].iter().all(|l| l == "?+0x0"));
        ensure(unnamed_before, || format!("{lines:#?}"))?;
        unchanged(run, "raise-sigfpe")
    }),
    ("ignored-segv", |run| {
        // A fault cannot be ignored: the kernel kills with the default action, and so
        // must we, rather than return into the fault forever.
        killed_by(run, libc::SIGSEGV)?;
        counted_null_write(run)?;
        unchanged(run, "ignored-segv")
    }),
    ("returning-handler", |run| {
        // Spins forever without the monitor; with it, the loop is cut.
        killed_by(run, libc::SIGSEGV)?;
        counted_null_write(run)
    }),
    ("closed-stdio", |run| {
        ensure(run.status.success(), || {
            format!("status {:?}: {}", run.status, run.stderr)
        })?;
        ensure(run.outcome == "Empty", || {
            format!("outcome {}", run.outcome)
        })?;
        ensure(run.counts.is_empty(), || {
            format!("counted {:?}", run.counts)
        })
    }),
    ("truncate-counter-first", truncated_lives),
    ("truncate-monitor-first", truncated_lives),
    ("double-panic", |run| {
        killed_by(run, libc::SIGABRT)?;
        ensure(run.stderr.contains(SECRET), || {
            format!("panic output lost: {}", run.stderr)
        })?;
        counted(run, "crash/panic", "process::scenarios::double_panic")?;
        no_secret(run)?;
        unchanged(run, "double-panic")
    }),
];

/// The counter file was truncated under counting threads: the host lived, exited 0,
/// and no crash was reported, whichever SIGBUS handler came first.
fn truncated_lives(run: &Run) -> Result<(), String> {
    ensure(run.status.success(), || {
        format!("status {:?}: {}", run.status, run.stderr)
    })?;
    ensure(run.outcome == "Empty", || {
        format!("outcome {}", run.outcome)
    })?;
    ensure(run.counts.is_empty(), || {
        format!("counted {:?}", run.counts)
    })
}

/// The crash journal's length, and where slot `index`'s state word and record are
/// (the layout in the crate's `record.rs`).
const JOURNAL_LEN: usize = 192 + 16 * 1024 + 8192;
fn state_offset(index: usize) -> usize {
    64 + index * 8
}
fn slot_offset(index: usize) -> usize {
    192 + index * 1024
}

/// A journal as a newer or older writer of the same layout would leave it, with each
/// slot `(index, state word, filler byte)` set.
fn journal_with(slots: &[(usize, u64, u8)]) -> Vec<u8> {
    let mut bytes = vec![0u8; JOURNAL_LEN];
    bytes[..8].copy_from_slice(b"rtcrash1");
    let layout: u64 = 16 | 128 << 16 | 2 << 32;
    bytes[8..16].copy_from_slice(&layout.to_ne_bytes());
    for &(index, state, filler) in slots {
        let at = slot_offset(index);
        bytes[at..at + 1024].fill(filler);
        let at = state_offset(index);
        bytes[at..at + 8].copy_from_slice(&state.to_ne_bytes());
    }
    bytes
}

/// A pid that no process has now: a child that has exited and been waited for.
fn dead_pid() -> u64 {
    let mut child = Command::new("true").spawn().expect("run true");
    child.wait().expect("wait true");
    u64::from(child.id())
}

/// Garbage in sealed slots and a slot abandoned by a dead writer count
/// `crash/malformed` each, and nothing of them stays; a slot a live process is
/// writing is left for later.
fn garbage() -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("local")).expect("local/");
    let secret = SECRET.as_bytes()[0];
    let live = u64::from(std::process::id());
    let journal = journal_with(&[
        (0, 2 | live << 32, secret),
        (5, 1 | dead_pid() << 32, 0x41),
        (9, 1 | live << 32, 0x42),
    ]);
    let mut with_secret = journal.clone();
    with_secret[slot_offset(0) + 16..slot_offset(0) + 16 + SECRET.len()]
        .copy_from_slice(SECRET.as_bytes());
    let path = dir.path().join("local").join("crash.journal");
    std::fs::write(&path, &with_secret).expect("write journal");
    let outcome = count_journal(dir.path());
    ensure(
        outcome == r#"Counted { names: ["crash/malformed", "crash/malformed"], left: 1 }"#,
        || format!("outcome {outcome}"),
    )?;
    let counts = read_counts(dir.path());
    let want = BTreeMap::from([("crash/malformed".to_owned(), 2)]);
    ensure(counts == want, || format!("counted {counts:?}"))?;
    let found = found_in_files(dir.path(), SECRET.as_bytes());
    ensure(found.is_none(), || format!("garbage stayed in {found:?}"))?;
    // Counted once: a second run finds only the live writer's slot.
    let again = count_journal(dir.path());
    ensure(again == "Counted { names: [], left: 1 }", || {
        format!("second run: {again}")
    })
}

/// Runs `scenario` as the program, recording into `dir`, without counting.
fn crash_into(exe: &Path, scenario: &str, dir: &Path) -> ExitStatus {
    let mut cmd = Command::new(exe);
    cmd.env(ROLE, scenario)
        .env_remove("DO_NOT_TRACK")
        .env(DIR, dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    output_within(cmd, scenario).status
}

/// Two processes crash at the same moment: two slots, two counts.
fn two_at_once() -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = env::current_exe().expect("current_exe");
    let statuses: Vec<ExitStatus> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| crash_into(&exe, "segv", dir.path())))
            .collect();
        runs.into_iter().map(|r| r.join().expect("run")).collect()
    });
    for status in &statuses {
        ensure(status.signal() == Some(libc::SIGSEGV), || {
            format!("status {status:?}")
        })?;
    }
    let outcome = count_journal(dir.path());
    let counts = read_counts(dir.path());
    let crashes: Vec<(&String, &u64)> = counts
        .iter()
        .filter(|(n, _)| n.starts_with("crash/"))
        .collect();
    ensure(crashes.len() == 1 && *crashes[0].1 == 2, || {
        format!("want one stack counted twice, got {counts:?} ({outcome})")
    })
}

/// The journal is truncated under a live process, which then crashes (a fault, an
/// abort): the handler's stores into the cut pages must not turn the crash into a
/// `SIGBUS` death. The process dies of its own signal, as without the monitor; its
/// report went into private memory and is lost with the journal, and nothing else
/// breaks: the next run counts nothing, replaces the journal, and a crash after that
/// is counted.
fn journal_truncated() -> Result<(), String> {
    let exe = env::current_exe().expect("current_exe");
    for (scenario, signal) in [
        ("journal-truncated-segv", libc::SIGSEGV),
        ("journal-truncated-abort", libc::SIGABRT),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = crash_into(&exe, scenario, dir.path());
        ensure(status.signal() == Some(signal), || {
            format!("{scenario}: died with {status:?}, not of its own signal {signal}")
        })?;
        let outcome = count_journal(dir.path());
        let counts = read_counts(dir.path());
        ensure(counts.is_empty(), || {
            format!("{scenario}: counted {counts:?} ({outcome})")
        })?;
        let status = crash_into(&exe, "segv", dir.path());
        ensure(status.signal() == Some(libc::SIGSEGV), || {
            format!("{scenario}: the next crash died with {status:?}")
        })?;
        let outcome = count_journal(dir.path());
        let counts = read_counts(dir.path());
        let crashes: Vec<&String> = counts
            .keys()
            .filter(|n| n.starts_with("crash/signal:SIGSEGV"))
            .collect();
        ensure(crashes.len() == 1 && counts[crashes[0]] == 1, || {
            format!("{scenario}: the next crash was not counted once: {counts:?} ({outcome})")
        })?;
    }
    Ok(())
}

/// A copy of this test binary without its symbol table (binutils' `strip`, which
/// the linker's toolchain brings; the cross linker's for aarch64, whose binaries the
/// host's `strip` may not read).
fn stripped_copy(dir: &Path) -> Result<PathBuf, String> {
    let copy = dir.join("stripped");
    std::fs::copy(env::current_exe().expect("current_exe"), &copy).map_err(|e| e.to_string())?;
    let cross = "aarch64-linux-gnu-strip";
    let strip = if cfg!(all(target_arch = "aarch64", target_os = "linux"))
        && telemetry_test_support::find_on_path(&[cross]).is_some()
    {
        cross
    } else {
        "strip"
    };
    let status = Command::new(strip).arg(&copy).status();
    ensure(status.as_ref().is_ok_and(|s| s.success()), || {
        format!("strip failed: {status:?}")
    })?;
    Ok(copy)
}

/// A stripped build counts its crash raw (`<build-id>+0x<address>` frames), which the
/// build with symbols — same build ID — names as it names its own crash.
fn stripped() -> Result<(), String> {
    let bin = tempfile::tempdir().expect("tempdir");
    let stripped = stripped_copy(bin.path())?;
    // Counted by the stripped build itself: raw.
    let raw_dir = tempfile::tempdir().expect("tempdir");
    crash_into(&stripped, "segv", raw_dir.path());
    let outcome = count_journal_with(&stripped, raw_dir.path());
    let counts = read_counts(raw_dir.path());
    let names: Vec<&String> = counts.keys().collect();
    ensure(names.len() == 1, || {
        format!("counted {counts:?} ({outcome})")
    })?;
    let lines: Vec<&str> = names[0].lines().collect();
    ensure(lines[0] == "crash/signal:SIGSEGV", || format!("{lines:#?}"))?;
    let raw: Vec<(&str, u64)> = lines[1..]
        .iter()
        .filter_map(|l| telemetry_counter::stack_name::is_raw_frame(l))
        .collect();
    ensure(
        !raw.is_empty()
            && lines[1..]
                .iter()
                .all(|l| *l == "?+0x0" || telemetry_counter::stack_name::is_raw_frame(l).is_some()),
        || format!("not a raw stack: {lines:#?}"),
    )?;
    ensure(raw.iter().all(|(id, _)| *id == raw[0].0), || {
        format!("two build IDs: {lines:#?}")
    })?;
    // Counted by the build with symbols: named, as its own crash would be.
    let named_dir = tempfile::tempdir().expect("tempdir");
    crash_into(&stripped, "segv", named_dir.path());
    let outcome = count_journal(named_dir.path());
    let run = Run {
        status: ExitStatus::from_raw(0),
        stderr: String::new(),
        outcome,
        counts: read_counts(named_dir.path()),
        dir: named_dir,
    };
    counted_null_write(&run)
}

/// Whether strace runs here (else the test is skipped, or fails where required).
fn strace_usable() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The counting child killed (`SIGKILL`, by strace) at each of its writes in turn,
/// then run again: the crash is counted once, never lost, never twice. strace counts
/// `when=` per system call, so round N kills at the Nth `pwrite64` (every step of the
/// journal's protocol, and the counter file's header) or the Nth `write`.
fn killed_while_counting() -> Result<(), String> {
    if !strace_usable() {
        return telemetry_test_support::Tool::STRACE.skip("killed-while-counting");
    }
    let exe = env::current_exe().expect("current_exe");
    for when in 1.. {
        let dir = tempfile::tempdir().expect("tempdir");
        crash_into(&exe, "abort", dir.path());
        let killed = Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=pwrite64,write",
                "-e",
            ])
            .arg(format!("inject=pwrite64,write:signal=KILL:when={when}"))
            .arg(&exe)
            .env_remove("DO_NOT_TRACK")
            .env(ROLE, "child")
            .env(DIR, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        let outcome = count_journal(dir.path());
        let counts = read_counts(dir.path());
        let crashes: Vec<(&String, &u64)> = counts
            .iter()
            .filter(|(n, _)| n.starts_with("crash/abort"))
            .collect();
        ensure(crashes.len() == 1 && *crashes[0].1 == 1, || {
            format!("killed at write {when}: counted {counts:?} (then: {outcome})")
        })?;
        ensure(!telemetry_crashmonitor::has_pending(dir.path()), || {
            format!("killed at write {when}: the journal still holds a crash")
        })?;
        if killed.success() {
            // This run got past every write: all were killed once.
            ensure(when > 3, || format!("only {when} writes"))?;
            println!("    killed at each of {} pwrite64 calls", when - 1);
            return Ok(());
        }
        ensure(killed.signal() == Some(libc::SIGKILL), || {
            format!("write {when}: status {killed:?}")
        })?;
        ensure(when < 64, || "more writes than expected".to_owned())?;
    }
    Ok(())
}

/// One test: a scenario run through a parent, or a check that feeds a child itself.
#[derive(Clone, Copy)]
enum Test {
    Scenario(Check),
    Direct(DirectCheck),
}

fn all_tests() -> Vec<(&'static str, Test)> {
    let mut tests: Vec<(&str, Test)> = SCENARIOS
        .iter()
        .map(|&(name, check)| (name, Test::Scenario(check)))
        .collect();
    tests.push(("garbage", Test::Direct(garbage)));
    tests.push(("two-at-once", Test::Direct(two_at_once)));
    tests.push(("stripped", Test::Direct(stripped)));
    tests.push(("killed-while-counting", Test::Direct(killed_while_counting)));
    tests.push(("journal-truncated", Test::Direct(journal_truncated)));
    tests
}

/// Runs one test; on success, the crash counters it made, for the log.
fn run_test(name: &'static str, test: Test) -> Result<String, String> {
    match test {
        Test::Scenario(check) => {
            let run = run(name, true);
            check(&run)?;
            let crashes = run.counts.keys().filter(|n| n.starts_with("crash/"));
            Ok(crashes.cloned().collect::<Vec<_>>().join("\n"))
        }
        Test::Direct(check) => check().map(|()| String::new()),
    }
}

/// The orchestrator, with enough of libtest's command line for `cargo test` filters
/// and for cargo-nextest (`--list --format terse`, `--exact NAME`).
fn run_all() {
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
    let start = std::time::Instant::now();
    let handles: Vec<_> = selected
        .into_iter()
        .map(|(name, test)| (name, std::thread::spawn(move || run_test(name, test))))
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
