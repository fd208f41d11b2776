//! What only Unix has: signals. The hosts' own dispositions and handlers before the
//! install, the scenarios whose crash needs libc, the painted alternate stack, how a
//! status shows a fault, and the tests that run their own processes (garbage in the
//! journal, two crashes at once, a stripped build, the counting child killed).

use std::collections::BTreeMap;
use std::env;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::crashes::{
    SECRET, abort_here, alloc_failed, cannot_unwind, deep_then_segv, double_panic, null_write,
    panic_in_main, panic_in_thread, raise_sigfpe, recurse,
};
use crate::orchestrator::{
    DirectCheck, Run, count_journal, count_journal_with, crash_into, ensure, found_in_files,
    one_counter, read_counts,
};
use crate::scenarios::{Fault, NULL_WRITE, check_counts};
use crate::{DIR, ROLE, program, program_name, telemetry_dir};

/// Unix's stderr is the program's own: the crash's output is compared with and
/// without the monitor.
pub(crate) const COMPARES_STDERR: bool = true;

/// The signal that ended a process, if one did.
pub(crate) fn signal(status: &ExitStatus) -> Option<i32> {
    status.signal()
}

/// The run was killed by `fault`'s signal.
pub(crate) fn ended_by(run: &Run, fault: Fault) -> Result<(), String> {
    let signal = match fault {
        Fault::Segv => libc::SIGSEGV,
        Fault::Abort => libc::SIGABRT,
        Fault::Ill => libc::SIGILL,
        Fault::Fpe => libc::SIGFPE,
    };
    ensure(run.status.signal() == Some(signal), || {
        format!("status {:?}, want {fault:?}: {}", run.status, run.stderr)
    })
}

// ---- the program ----

/// What the host does before crash reporting starts; whether that played the whole
/// scenario.
pub(crate) fn prepare(scenario: &str) -> bool {
    match scenario {
        "ignored-segv" => {
            // SAFETY: setting a disposition to SIG_IGN, before any other thread exists.
            unsafe { libc::signal(libc::SIGSEGV, libc::SIG_IGN) };
        }
        "returning-handler" => install_returning_handler(),
        "closed-stdio" => {
            closed_stdio();
            return true;
        }
        "journal-planted" => plant_fifo(),
        "truncate-counter-first" => counters_open(),
        "stack-used-segv" | "stack-used-abort" | "stack-used-overflow" => painted_alt_stack(),
        _ => {}
    }
    false
}

/// The crashes of the scenarios only Unix has.
pub(crate) fn crash(scenario: &str) {
    match scenario {
        "journal-planted" => {}
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
        "abort" => abort_here(),
        "overflow-thread" => {
            let _ = std::thread::spawn(|| recurse(0)).join();
        }
        "double-panic" => double_panic(),
        "panic-cannot-unwind" => cannot_unwind(),
        "alloc-failed" => alloc_failed(),
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
    program::install();
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
    let path = telemetry_dir().join("altstack");
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
pub(crate) fn fits_alt_stack(run: &Run) -> Result<(), String> {
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
    telemetry_dir().join("parent")
}

/// Opens the parent's counter file and gives it records over several pages.
fn counters_open() {
    let status = telemetry_counter::open_dir(parent_counter_dir(), program_name());
    assert!(status.path().is_some(), "{status:?}");
    for i in 0..2_000 {
        telemetry_counter::inc(&format!("crashtest/name/{i}"));
    }
}

/// Counting threads in [`count_while_truncated`].
const COUNTING_THREADS: usize = 3;
/// Rounds over every counter after which a counting thread stops anyway.
const MOST_ROUNDS: u64 = 100_000;

/// Threads count into every page of the file while another process truncates it to
/// nothing: every access to a cut page faults with SIGBUS, which must neither kill
/// the host nor be reported as a crash (golang/go#74651). The truncation waits until
/// every thread is counting, and the threads stop once each has counted a whole
/// round into every page after it.
fn count_while_truncated() {
    let file = telemetry_counter::testing::current_file().expect("counting into a file");
    let names: Vec<&'static telemetry_counter::Counter> = (0..2_000)
        .map(|i| {
            let name: &'static str = Box::leak(format!("crashtest/name/{i}").into_boxed_str());
            &*Box::leak(Box::new(telemetry_counter::Counter::new(name)))
        })
        .collect();
    let stop = AtomicBool::new(false);
    let rounds: [AtomicU64; COUNTING_THREADS] = std::array::from_fn(|_| AtomicU64::new(0));
    let all_past = |marks: &[u64; COUNTING_THREADS]| {
        rounds.iter().zip(marks).all(|(done, mark)| {
            let done = done.load(Ordering::SeqCst);
            done > *mark || done >= MOST_ROUNDS
        })
    };
    std::thread::scope(|s| {
        for done in &rounds {
            let (names, stop) = (&names, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) && done.load(Ordering::SeqCst) < MOST_ROUNDS {
                    names.iter().for_each(|c| c.inc());
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let waited = Duration::from_secs(60);
        // Every thread has counted a round: all are counting.
        let counting =
            telemetry_test_support::wait_until(waited, || all_past(&[0; COUNTING_THREADS]));
        let status = Command::new("truncate")
            .args(["-s", "0"])
            .arg(&file)
            .status()
            .expect("run truncate");
        // A round begun after the truncation touched every cut page.
        let cut: [u64; COUNTING_THREADS] =
            std::array::from_fn(|i| rounds[i].load(Ordering::SeqCst) + 1);
        let faulted = telemetry_test_support::wait_until(waited, || all_past(&cut));
        stop.store(true, Ordering::Relaxed);
        assert!(counting && faulted, "the counting threads stalled");
        assert!(status.success());
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

// ---- tests that run their own processes ----

/// The tests that are not one scenario's crash and count.
pub(crate) const DIRECT: &[(&str, DirectCheck)] = &[
    ("garbage", garbage),
    ("two-at-once", two_at_once),
    ("stripped", stripped),
    ("killed-while-counting", killed_while_counting),
    ("journal-truncated", journal_truncated),
];

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
    ensure(one_counter(&counts, "crash/") == Some(2), || {
        format!("want one stack counted twice, got {counts:?} ({outcome})")
    })
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
    check_counts(NULL_WRITE, &run)
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
        ensure(one_counter(&counts, "crash/abort") == Some(1), || {
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
