//! The one table of scenarios: for each, the platforms it runs on, how the program
//! must end, the crash counter the next run must count, and what else is checked.
//! The orchestrator runs the rows of this platform; [`check`] holds a run to its row.

use crate::crashes::SECRET;
use crate::orchestrator::{Run, counted_within, crash_counter, ensure, no_secret, unchanged};
use crate::platform;
#[cfg(unix)]
use crate::unix::fits_alt_stack;

/// Where a scenario runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    Both,
    Unix,
    Windows,
    /// Nowhere on this target (the crash it needs cannot be made here).
    Nowhere,
}

impl On {
    /// Whether a row for `self` runs on this platform.
    fn here(self) -> bool {
        match self {
            On::Both => true,
            On::Unix => cfg!(unix),
            On::Windows => cfg!(windows),
            On::Nowhere => false,
        }
    }
}

/// A fault that ends a program; each platform says how its status shows it
/// (`platform::ended_by`): a signal on Unix, an exception code on Windows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    Segv,
    Abort,
    Ill,
    Fpe,
}

/// How the program must end.
#[derive(Clone, Copy)]
pub(crate) enum Ends {
    /// Exit status 0.
    Success,
    /// This exit code (101: a panic that ends `main`).
    Code(i32),
    /// Killed by this fault.
    Fault(Fault),
    /// Not checked here (the scenario's own check, or the comparison with the run
    /// without the monitor, says enough).
    Unchecked,
}

/// What the next run counts.
#[derive(Clone, Copy)]
pub(crate) enum Counts {
    /// Nothing: the journal was empty and no counter was written.
    Nothing,
    /// No counter, whatever the counting child found (the journal was not usable).
    NoCounter,
    /// One crash counter, counted once: its first line, the function of `crashes.rs`
    /// of its first frame, after any frames of the `callees` named.
    Crash {
        prefix: &'static str,
        function: &'static str,
        callees: &'static [&'static str],
    },
    /// Not checked here.
    Unchecked,
}

/// A check of a run beyond what the row's data says.
pub(crate) type Check = fn(&Run) -> Result<(), String>;

/// One row of the table.
pub(crate) struct Scenario {
    /// The test's name, and the program's role.
    pub(crate) name: &'static str,
    on: On,
    ends: Ends,
    counts: Counts,
    /// A text std prints that the monitor must not swallow.
    stderr_has: Option<&'static str>,
    /// Whether the crash looks the same without the monitor.
    unchanged: bool,
    also: Option<Check>,
}

impl Scenario {
    const fn new(name: &'static str, on: On, ends: Ends, counts: Counts) -> Self {
        Scenario {
            name,
            on,
            ends,
            counts,
            stderr_has: None,
            unchanged: false,
            also: None,
        }
    }

    /// The crash looks the same with and without the monitor.
    const fn unchanged(mut self) -> Self {
        self.unchanged = true;
        self
    }

    /// std's `text` is still printed.
    const fn stderr_has(mut self, text: &'static str) -> Self {
        self.stderr_has = Some(text);
        self
    }

    /// And `check` holds.
    const fn also(mut self, check: Check) -> Self {
        self.also = Some(check);
        self
    }
}

/// A crash counter of `prefix` whose first frame is `function`.
const fn crash(prefix: &'static str, function: &'static str) -> Counts {
    Counts::Crash {
        prefix,
        function,
        callees: &[],
    }
}

/// A crash counter of `prefix` whose first frame is `function`, after any of `callees`.
const fn crash_within(
    prefix: &'static str,
    function: &'static str,
    callees: &'static [&'static str],
) -> Counts {
    Counts::Crash {
        prefix,
        function,
        callees,
    }
}

/// The fault of `null_write`. It may be inside core's `write_volatile`, where a debug
/// build does not inline it (Debian's Rust 1.96 for aarch64 does not); that frame is
/// the right first one then.
pub(crate) const NULL_WRITE: Counts = crash_within(
    "crash/signal:SIGSEGV",
    "null_write",
    &["core::ptr::write_volatile"],
);

/// The fault of a stack overflow, counted wherever in `recurse` the stack ran out.
const OVERFLOW: Counts = crash_within(
    "crash/signal:SIGSEGV",
    "recurse",
    &["core::hint::black_box"],
);

/// std's message for a stack overflow, before the abort that follows it.
const OVERFLOWED: &str = "has overflowed its stack";

use Ends::{Code, Fault as Killed, Success};
use Fault::{Abort, Fpe, Ill, Segv};
use On::{Both, Unix, Windows};

/// Every scenario, on every platform.
pub(crate) const SCENARIOS: &[Scenario] = &[
    // Crash reporting is off for the run; the host goes on as if it were not there.
    Scenario::new("journal-planted", Unix, Success, Counts::NoCounter),
    Scenario::new("clean", Both, Success, Counts::Nothing),
    Scenario::new("stop-then-panic", Both, Code(101), Counts::Nothing).unchanged(),
    Scenario::new(
        "panic-main",
        Both,
        Code(101),
        crash("crash/panic", "panic_in_main"),
    )
    .stderr_has(SECRET)
    .unchanged(),
    // A worker's panic that the program survives is no crash.
    Scenario::new("panic-thread", Both, Success, Counts::Nothing)
        .stderr_has(SECRET)
        .unchanged(),
    // Three panics survived (two caught, one in a joined thread) use up nothing: the
    // fault that ends the process is the one counted.
    Scenario::new("caught-panics-then-segv", Both, Killed(Segv), NULL_WRITE),
    // Only glibc tells an exit handler the status; elsewhere a caught panic of the
    // main thread followed by an exit is counted (see the crate docs).
    Scenario::new(
        "caught-panic-main",
        Unix,
        Success,
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            Counts::Nothing
        } else {
            Counts::Unchecked
        },
    ),
    // The worker's panic was survived; main's ends the process.
    Scenario::new(
        "panic-thread-then-panic-main",
        Unix,
        Code(101),
        crash("crash/panic", "panic_in_main"),
    ),
    Scenario::new(
        "panic-cannot-unwind-thread",
        Unix,
        Killed(Abort),
        crash("crash/panic", "cannot_unwind"),
    ),
    // The thread that installs the monitor gets an alternate stack of our size
    // instead of std's smaller one.
    Scenario::new("alt-stack-size", Unix, Success, Counts::Unchecked),
    Scenario::new("stack-used-segv", Unix, Killed(Segv), NULL_WRITE).also(fits_alt_stack),
    Scenario::new(
        "stack-used-abort",
        Unix,
        Killed(Abort),
        crash("crash/abort", "abort_here"),
    )
    .also(fits_alt_stack),
    Scenario::new("stack-used-overflow", Unix, Killed(Abort), OVERFLOW).also(fits_alt_stack),
    Scenario::new("overflow-thread-big-stack", Unix, Killed(Abort), OVERFLOW)
        .stderr_has(OVERFLOWED),
    Scenario::new("segv-thread-deep", Unix, Killed(Segv), NULL_WRITE).also(deep_frames),
    Scenario::new("segv", Both, Killed(Segv), NULL_WRITE).unchanged(),
    Scenario::new(
        "abort",
        Unix,
        Killed(Abort),
        crash("crash/abort", "abort_here"),
    )
    .unchanged(),
    // std's abort is a fast fail on Windows, which no handler sees; the C runtime's
    // raises SIGABRT first.
    Scenario::new(
        "c-abort",
        Windows,
        Ends::Unchecked,
        crash("crash/abort", "c_abort"),
    )
    .unchanged(),
    Scenario::new("overflow", Unix, Killed(Abort), OVERFLOW)
        .stderr_has(OVERFLOWED)
        .unchanged(),
    Scenario::new("overflow", Windows, Ends::Unchecked, Counts::Unchecked)
        .unchanged()
        .also(overflow_counted),
    Scenario::new("overflow-thread", Unix, Killed(Abort), OVERFLOW).stderr_has(OVERFLOWED),
    Scenario::new(
        "panic-cannot-unwind",
        Unix,
        Killed(Abort),
        crash("crash/panic", "cannot_unwind"),
    )
    .unchanged(),
    Scenario::new(
        "alloc-failed",
        Unix,
        Killed(Abort),
        crash("crash/abort", "alloc_failed"),
    )
    .stderr_has("memory allocation of 1048576 bytes failed")
    .unchanged(),
    Scenario::new(
        "sigill",
        // `ud2` on x86_64; Windows on aarch64 has `udf`.
        if cfg!(any(windows, target_arch = "x86_64")) {
            Both
        } else {
            On::Nowhere
        },
        Killed(Ill),
        crash("crash/signal:SIGILL", "illegal_instruction"),
    )
    .unchanged(),
    // The interrupted instruction is in libc's raise: unnamed frames come first.
    Scenario::new(
        "raise-sigfpe",
        Unix,
        Killed(Fpe),
        crash_within("crash/signal:SIGFPE", "raise_sigfpe", &["?"]),
    )
    .unchanged(),
    // A fault cannot be ignored: the kernel kills with the default action, and so must
    // we, rather than return into the fault forever.
    Scenario::new("ignored-segv", Unix, Killed(Segv), NULL_WRITE).unchanged(),
    // Spins forever without the monitor; with it, the loop is cut.
    Scenario::new("returning-handler", Unix, Killed(Segv), NULL_WRITE),
    Scenario::new("closed-stdio", Unix, Success, Counts::Nothing),
    // The counter file was truncated under counting threads: the host lived, exited
    // 0, and no crash was reported, whichever SIGBUS handler came first.
    Scenario::new("truncate-counter-first", Unix, Success, Counts::Nothing),
    Scenario::new("truncate-monitor-first", Unix, Success, Counts::Nothing),
    Scenario::new(
        "double-panic",
        Unix,
        Killed(Abort),
        crash("crash/panic", "double_panic"),
    )
    .stderr_has(SECRET)
    .unchanged(),
];

/// The scenarios of this platform.
pub(crate) fn here() -> impl Iterator<Item = &'static Scenario> {
    SCENARIOS.iter().filter(|s| s.on.here())
}

/// Holds `run` to `scenario`'s row: its end, its count, std's output kept, no panic
/// message in any file, the same crash without the monitor, and its own check.
pub(crate) fn check(scenario: &Scenario, run: &Run) -> Result<(), String> {
    match scenario.ends {
        Success => ensure(run.status.success(), || {
            format!("status {:?}: {}", run.status, run.stderr)
        })?,
        Code(code) => ensure(run.status.code() == Some(code), || {
            format!("status {:?}: {}", run.status, run.stderr)
        })?,
        Killed(fault) => platform::ended_by(run, fault)?,
        Ends::Unchecked => {}
    }
    if let Some(text) = scenario.stderr_has {
        ensure(run.stderr.contains(text), || {
            format!("std's output is missing {text:?}: {}", run.stderr)
        })?;
    }
    check_counts(scenario.counts, run)?;
    no_secret(run)?;
    if scenario.unchanged {
        unchanged(run, scenario.name)?;
    }
    scenario.also.map_or(Ok(()), |also| also(run))
}

/// Holds `run`'s counters to `counts`.
pub(crate) fn check_counts(counts: Counts, run: &Run) -> Result<(), String> {
    let no_counter = || {
        ensure(run.counts.is_empty(), || {
            format!("counted {:?}", run.counts)
        })
    };
    match counts {
        Counts::Nothing => {
            ensure(run.outcome == "Empty", || {
                format!("outcome {}", run.outcome)
            })?;
            no_counter()
        }
        Counts::NoCounter => no_counter(),
        Counts::Crash {
            prefix,
            function,
            callees,
        } => counted_within(run, prefix, function, callees),
        Counts::Unchecked => Ok(()),
    }
}

/// The painted alternate stack is Unix's: its rows run nowhere else.
#[cfg(not(unix))]
fn fits_alt_stack(_: &Run) -> Result<(), String> {
    Err("the painted alternate stack is Unix's".to_owned())
}

/// The deep thread's frames are in its counter.
fn deep_frames(run: &Run) -> Result<(), String> {
    let lines = crash_counter(run)?;
    ensure(
        lines
            .iter()
            .filter(|l| l.contains("deep_then_segv"))
            .count()
            >= 10,
        || format!("the deep frames are missing: {lines:#?}"),
    )
}

/// Whether these tests run under Wine (`cargo xtask cross` sets `WINEPREFIX`, which
/// Wine passes on to Windows programs), whose limits some scenarios meet.
fn under_wine() -> bool {
    std::env::var_os("WINEPREFIX").is_some()
}

/// A stack overflow on Windows is counted in `recurse`, after the stack probes.
fn overflow_counted(run: &Run) -> Result<(), String> {
    if under_wine() {
        // FIXME(Wine 8): Wine ends a thread whose stack overflowed without
        // dispatching the exception when less than a page is left below the guard
        // ("virtual_setup_exception stack overflow"), ignoring the reserve std asks
        // for with SetThreadStackGuarantee: neither std's message nor our filter
        // runs. Windows dispatches it, and then this is counted as on Unix.
        return check_counts(Counts::Nothing, run);
    }
    check_counts(
        crash_within(
            "crash/signal:SIGSEGV",
            "recurse",
            &["__chkstk", "__chkstk_ms", "___chkstk_ms", "core::", "std::"],
        ),
        run,
    )
}
