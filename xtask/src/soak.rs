//! `cargo xtask soak [--runs N] [--qemu] [--hogs K]`: the crash monitor's `abort` and
//! `segv` process scenarios, N times over, each run bounded in time, so that a crash
//! that turns into a hang of the host (rare: a lock taken in a handler, a wait for
//! something that never comes) fails here instead of once in a while in CI.
//!
//! Each run is the crash monitor's own process-test binary with `--exact abort segv`:
//! both scenarios at once, each a real program that installs the monitor and crashes,
//! then a counting child, and every check of the scenario. With `--qemu` the binary is
//! the aarch64 one, run under qemu-user (built as `cargo xtask cross aarch64` builds
//! it). `--hogs K` adds K threads that spin for the whole soak, for load on a machine
//! that has none; in CI the other lanes are the load.
//!
//! A run that outlives its bound is killed with everything it started, after the
//! state of each of their threads (`/proc/PID/task/*`: state and wait channel) is
//! printed, so that a hang says where it was. Natively that fails the soak. Under qemu
//! it fails only if it happens twice: about one run in 150 stalls there, in a fork of
//! the multi-threaded harness that never reaches `execve`, a deadlock of qemu-user's
//! emulated `vfork` (`QEMU_STALL` in `cross.rs`, where the aarch64 step is defined);
//! so the stalled run's time and states are logged and the run is repeated, and a
//! second stall, or a stall of the repeat, fails. A hang of ours shows natively, where
//! nothing is retried.
//! Core dumps are off for the runs (qemu writes a crashing guest's core itself, slowly).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The scenarios each run plays.
const SCENARIOS: &[&str] = &["abort", "segv"];

/// How long one run may take natively: both scenarios end within a second or two
/// even on a loaded machine.
const NATIVE_BOUND: Duration = Duration::from_secs(30);

/// How long one run may take under qemu: 3–8 s on a loaded 2-core machine.
const QEMU_BOUND: Duration = Duration::from_secs(90);

struct Options {
    runs: usize,
    qemu: bool,
    hogs: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let usage = "usage: cargo xtask soak [--runs N] [--qemu] [--hogs K]";
    let mut options = Options {
        runs: 100,
        qemu: false,
        hogs: 0,
    };
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let mut number = || -> Result<usize, String> {
            words
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| usage.to_owned())
        };
        match word.as_str() {
            "--runs" => options.runs = number()?,
            "--hogs" => options.hogs = number()?,
            "--qemu" => options.qemu = true,
            _ => return Err(usage.to_owned()),
        }
    }
    Ok(options)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    // Under qemu, the shared cross directory stays ours while its binary runs.
    let (binary, env, _held) = if options.qemu {
        let (binary, held) =
            crate::cross::aarch64_test_binary("telemetry-crashmonitor", "process")?;
        (binary, crate::cross::aarch64_run_env(), Some(held))
    } else {
        let binary = native_test_binary("telemetry-crashmonitor", "process")?;
        (binary, Vec::new(), None)
    };
    let bound = if options.qemu {
        QEMU_BOUND
    } else {
        NATIVE_BOUND
    };
    let label = if options.qemu {
        "aarch64 under qemu"
    } else {
        "native"
    };
    eprintln!(
        "xtask soak: {} × {} ({label}), each run bounded by {bound:?}, {} hog(s)",
        options.runs,
        SCENARIOS.join(" + "),
        options.hogs
    );
    let scratch = std::env::temp_dir().join(format!("xtask-soak-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let spinning = Arc::new(AtomicBool::new(true));
    let hogs: Vec<_> = (0..options.hogs)
        .map(|_| {
            let spinning = spinning.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while spinning.load(Ordering::Relaxed) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            })
        })
        .collect();
    let soak = Soak {
        binary: &binary,
        env: &env,
        bound,
        scratch: &scratch,
    };
    let result = soak.all(options.runs, options.qemu);
    spinning.store(false, Ordering::Relaxed);
    for hog in hogs {
        let _ = hog.join();
    }
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

struct Soak<'a> {
    binary: &'a Path,
    env: &'a [(&'static str, String)],
    bound: Duration,
    scratch: &'a Path,
}

/// How one run ended.
enum Ended {
    Passed,
    Failed(String),
    Stalled(String),
}

impl Soak<'_> {
    fn all(&self, runs: usize, retry_a_stall: bool) -> Result<(), String> {
        let mut times = Vec::with_capacity(runs);
        let mut stalls = 0;
        for index in 1..=runs {
            let began = Instant::now();
            let ended = self.one(index);
            let took = began.elapsed();
            match ended {
                Ended::Passed => times.push(took),
                Ended::Failed(why) => {
                    return Err(format!("run {index} failed after {took:.1?}:\n{why}"));
                }
                Ended::Stalled(states) if retry_a_stall && stalls == 0 => {
                    stalls += 1;
                    eprintln!(
                        "xtask soak: run {index} stalled, killed after {took:.1?} (qemu only: \
                         repeated once). Its threads:\n{states}"
                    );
                    let again = Instant::now();
                    match self.one(index) {
                        Ended::Passed => times.push(again.elapsed()),
                        Ended::Failed(why) | Ended::Stalled(why) => {
                            return Err(format!("run {index} repeated: failed again:\n{why}"));
                        }
                    }
                }
                Ended::Stalled(states) => {
                    return Err(format!(
                        "run {index} hung: killed after {took:.1?}. Its threads:\n{states}"
                    ));
                }
            }
            if index % 10 == 0 || index == runs {
                eprintln!("xtask soak: {index}/{runs} runs passed");
            }
        }
        eprintln!("xtask soak: {}", time_summary(&mut times, stalls));
        Ok(())
    }

    /// One run of both scenarios, killed with everything it started if it outlives
    /// the bound.
    fn one(&self, index: usize) -> Ended {
        let out = self.scratch.join(format!("run-{index}.out"));
        let Ok(file) = std::fs::File::create(&out) else {
            return Ended::Failed(format!("cannot create {}", out.display()));
        };
        let Ok(err) = file.try_clone() else {
            return Ended::Failed("cannot share the output file".into());
        };
        let mut cmd = Command::new("sh");
        // No core dumps: qemu writes a crashing guest's core itself, which is slow and
        // fills the disk when the machine allows cores.
        cmd.args(["-c", "ulimit -c 0 && exec \"$0\" \"$@\""])
            .arg(self.binary)
            .arg("--exact")
            .args(SCENARIOS)
            .current_dir(self.scratch)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let began = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => return Ended::Failed(format!("cannot run {}: {e}", self.binary.display())),
        };
        let output = || std::fs::read_to_string(&out).unwrap_or_default();
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {
                    let _ = std::fs::remove_file(&out);
                    return Ended::Passed;
                }
                Ok(Some(status)) => return Ended::Failed(format!("{status}\n{}", output())),
                Ok(None) if began.elapsed() > self.bound => {
                    let states = group_states(child.id());
                    kill_group(child.id());
                    let _ = child.wait();
                    return Ended::Stalled(format!("{states}\noutput so far:\n{}", output()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Ended::Failed(format!("wait: {e}")),
            }
        }
    }
}

/// `N runs: min …, median …, p95 …, max …` (and how many stalled once).
fn time_summary(times: &mut [Duration], stalls: usize) -> String {
    times.sort();
    let at = |q: f64| {
        let index = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(index).copied().unwrap_or_default()
    };
    format!(
        "{} runs passed: min {:.2?}, median {:.2?}, p95 {:.2?}, max {:.2?}; {stalls} stalled once and passed when repeated",
        times.len(),
        at(0.0),
        at(0.5),
        at(0.95),
        at(1.0)
    )
}

/// Every process of the process group `group` (the run and all it started), each
/// thread as `tid state wchan`, from `/proc`.
fn group_states(group: u32) -> String {
    let mut text = String::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return text;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp …`: the fields after the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) != Some(group) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        text.push_str(&format!(
            "  pid {pid}{}): {cmdline}\n",
            &head[head.find(' ').unwrap_or(0)..]
        ));
        let Ok(tasks) = std::fs::read_dir(entry.path().join("task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            let wchan = std::fs::read_to_string(task.path().join("wchan")).unwrap_or_default();
            let syscall = std::fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
            text.push_str(&format!(
                "    tid {} {state} wchan {wchan} syscall {}\n",
                task.file_name().to_string_lossy(),
                syscall.split_whitespace().next().unwrap_or("?")
            ));
        }
    }
    text
}

/// SIGKILL to the process group `group` (`kill -KILL -- -GROUP`: xtask has no `unsafe`).
fn kill_group(group: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .status();
}

/// The executable of `package`'s integration test `test`, built for the host.
fn native_test_binary(package: &str, test: &str) -> Result<PathBuf, String> {
    let mut cmd = Command::new(crate::cargo_bin());
    crate::without_package_vars(&mut cmd);
    cmd.args(["test", "-p", package, "--test", test, "--no-run"]);
    test_executable(cmd, test)
}

/// Runs `cmd` (a `cargo test --no-run`) with `--message-format=json` and returns the
/// executable of the test target `test` it built.
pub(crate) fn test_executable(mut cmd: Command, test: &str) -> Result<PathBuf, String> {
    let out = cmd
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the test {test} failed: {}", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == test)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo built no executable for the test {test}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_their_defaults() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let o = parse(&args(&[])).unwrap();
        assert_eq!((o.runs, o.qemu, o.hogs), (100, false, 0));
        let o = parse(&args(&["--runs", "7", "--qemu", "--hogs", "2"])).unwrap();
        assert_eq!((o.runs, o.qemu, o.hogs), (7, true, 2));
        assert!(parse(&args(&["--runs"])).is_err());
        assert!(parse(&args(&["--runs", "x"])).is_err());
        assert!(parse(&args(&["--fast"])).is_err());
    }

    #[test]
    fn the_time_summary_gives_the_spread() {
        let mut times: Vec<Duration> = (1..=20).map(Duration::from_secs).collect();
        assert_eq!(
            time_summary(&mut times, 1),
            "20 runs passed: min 1.00s, median 11.00s, p95 19.00s, max 20.00s; \
             1 stalled once and passed when repeated"
        );
    }

    /// A run that outlives its bound is killed with what it started, and its state
    /// is reported; a run that ends in time passes.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_run_past_its_bound_is_killed_with_its_children() {
        let scratch = tempfile::tempdir().unwrap();
        // A stand-in for the test binary: a shell that starts a child and waits.
        let script = scratch.path().join("hangs");
        std::fs::write(&script, "#!/bin/sh\nsleep 600 &\nwait\n").unwrap();
        let passes = scratch.path().join("passes");
        std::fs::write(&passes, "#!/bin/sh\nexit 0\n").unwrap();
        for path in [&script, &passes] {
            Command::new("chmod").arg("+x").arg(path).status().unwrap();
        }
        let soak = |binary: &Path| {
            Soak {
                binary,
                env: &[],
                bound: Duration::from_secs(2),
                scratch: scratch.path(),
            }
            .one(1)
        };
        assert!(matches!(soak(&passes), Ended::Passed));
        let began = Instant::now();
        let Ended::Stalled(states) = soak(&script) else {
            panic!("not reported as stalled");
        };
        assert!(began.elapsed() < Duration::from_secs(30));
        assert!(states.contains("sleep 600"), "{states}");
        // The group is gone: no `sleep 600` of ours is left.
        telemetry_test_support::eventually(Duration::from_secs(10), "the group's end", || {
            !group_states_of_command(scratch.path()).contains("sleep")
        });
    }

    /// The command lines of live processes whose working directory is `dir`.
    #[cfg(target_os = "linux")]
    fn group_states_of_command(dir: &Path) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == dir) {
                let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                if stat.contains(") Z") {
                    continue;
                }
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                text.push_str(&String::from_utf8_lossy(&cmdline).replace('\0', " "));
                text.push('\n');
            }
        }
        text
    }
}
