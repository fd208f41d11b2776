//! A host that is strict about its children, as shells, init systems and job runners
//! are: after `telemetry::start` it starts a child of its own, then reaps children
//! until it has none left. With the telemetry child among its children, it would wait
//! for a child that waits for it: forever.
//!
//! ```text
//! waiter DIR [SERVER_URL [YYYY-MM-DD]] [--then-list-children AFTER_FILE]
//! ```
//!
//! It first prints whether `start` raised a `SIGCHLD` in it (`sigchld 0` or `1`): on
//! Linux it does not, the intermediate process that detaches the child has no exit
//! signal.
//! Crash reporting is on; with `SERVER_URL` an upload may be due. With
//! `--then-list-children`, it then waits (at most 20 s) until `AFTER_FILE` exists and
//! prints the number of its remaining children, zombies included (Linux `/proc`), as a
//! long-running host would accumulate them.

#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

use std::path::Path;
use std::time::Duration;

/// Reaping children and `SIGCHLD` are Unix notions (Windows has neither zombies nor
/// reaping): elsewhere this host does nothing.
#[cfg(not(unix))]
fn main() {}

/// `SIGCHLD` blocked in every thread (those `start` makes inherit the mask), so that
/// one raised by `start` stays pending, to be seen by `sigpending` the moment `start`
/// returns: no waiting for a handler to run. (A blocked `SIGCHLD` changes nothing for
/// `wait`, and the telemetry child clears its mask before it runs.)
#[cfg(unix)]
fn block_sigchld() {
    // SAFETY: the set is a local that sigemptyset initializes before use;
    // pthread_sigmask reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
            0
        );
    }
}

/// Whether a `SIGCHLD` is pending (it was raised while blocked): 0 or 1.
#[cfg(unix)]
fn sigchld_pending() -> usize {
    // SAFETY: sigpending fills the local set, which sigismember then reads.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(libc::sigpending(&mut set), 0);
        usize::from(libc::sigismember(&set, libc::SIGCHLD) == 1)
    }
}

#[cfg(unix)]
#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = telemetry::Config::new(telemetry::program!())
        .dir(&args[0])
        .report_crashes(true);
    let positional: Vec<&String> = args[1..]
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .collect();
    if let Some(url) = positional.first() {
        config = config
            .upload(true)
            .upload_url(format!("{url}/upload"))
            .config_url(format!("{url}/config.json"));
    }
    if let Some(day) = positional
        .get(1)
        .and_then(|d| telemetry_internal::Day::parse(d))
    {
        config = config.upload_start_time(day.start());
    }
    block_sigchld();
    let _started = telemetry::start(config);
    // `start` has reaped the process it forked: a SIGCHLD it raised is pending now.
    println!("sigchld {}", sigchld_pending());

    let own = std::process::Command::new("true").spawn();
    let mut reaped = 0;
    if own.is_ok() {
        // Reap until there are no children left: at most one of ours, plus any the
        // telemetry started under us (there must be none).
        while reaped < 10 {
            let mut status = 0;
            // SAFETY: wait writes only into `status`, which outlives the call.
            let pid = unsafe { libc::wait(&mut status) };
            if pid < 0 {
                break;
            }
            reaped += 1;
        }
    }
    println!("reaped {reaped}");

    if let Some(pos) = args.iter().position(|a| a == "--then-list-children") {
        let after = Path::new(&args[pos + 1]);
        telemetry_test_support::wait_until(Duration::from_secs(20), || after.exists());
        println!("children {}", children());
    }
}

/// This process's children, zombies included, from every thread's `children` list.
fn children() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return usize::MAX;
    };
    tasks
        .flatten()
        .map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .map(|s| s.split_whitespace().count())
                .unwrap_or(0)
        })
        .sum()
}
