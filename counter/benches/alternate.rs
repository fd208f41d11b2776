//! Whole-process timing by alternation: run this bench binary again in each of several
//! roles, round-robin, so every role sees the same machine state, and report medians.
//! Shared by the process-start benchmarks of `telemetry-counter` and `telemetry`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the role a re-executed bench binary plays.
pub(crate) const ROLE: &str = "TELEMETRY_BENCH_ROLE";

/// Whether the harness is only listing benchmarks (`cargo bench -- --list`).
pub(crate) fn listing() -> bool {
    std::env::args().any(|a| a == "--list")
}

/// Runs this executable `runs` times in each role (after `warmup` untimed rounds) with
/// `env` set, alternating roles, and returns each role's median wall time. Each round
/// starts one role later than the one before, so that every role follows every other
/// equally often: a run leaves work behind (a thread's exit, pages to write back, a
/// child) that the run after it pays for, and a fixed order would charge it to one
/// role only.
pub(crate) fn medians(
    roles: &[&str],
    runs: usize,
    warmup: usize,
    env: &[(&str, &std::ffi::OsStr)],
) -> Vec<Duration> {
    let exe = std::env::current_exe().expect("current exe");
    let run = |role: &str| {
        let mut cmd = Command::new(&exe);
        cmd.env(ROLE, role).stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let start = Instant::now();
        let status = cmd.status().expect("run the bench binary");
        assert!(status.success(), "role {role} failed: {status}");
        start.elapsed()
    };
    for _ in 0..warmup {
        for role in roles {
            run(role);
        }
    }
    let mut times = vec![Vec::with_capacity(runs); roles.len()];
    for round in 0..runs {
        for i in (0..roles.len()).map(|i| (i + round) % roles.len()) {
            times[i].push(run(roles[i]));
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect()
}

/// The one counter file the runs counted into under the telemetry directory `dir`.
pub(crate) fn counted(dir: &std::path::Path) -> telemetry_counter::CounterFile {
    let file = std::fs::read_dir(dir.join("local"))
        .expect("local dir")
        .map(|e| e.expect("dir entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "count"))
        .expect("a counter file");
    telemetry_counter::read_file(file).expect("a valid counter file")
}
