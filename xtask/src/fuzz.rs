//! `cargo xtask fuzz [--seconds N] [TARGET...]`: every fuzz target of `fuzz/` (or the
//! named ones) for N seconds each (default 10) on its committed corpus, one after the
//! other; any crash, leak, timeout or out-of-memory fails the task, and every target
//! runs even when one fails. It is CI's fuzzing step, a check that the committed
//! corpus still passes and that a short run finds nothing new, not the long runs
//! (`fuzz/README.md`).
//!
//! - **cargo-fuzz**: `$CARGO_FUZZ` (the path `.ci/install-fuzz` prints after installing
//!   its pinned version into the cache), else `cargo-fuzz` on the `PATH`.
//! - **Toolchain**: the workspace's stable one, with `RUSTC_BOOTSTRAP=1` set for
//!   cargo-fuzz alone: it passes nightly-only flags (`-Zsanitizer=address`,
//!   `-Cpasses=sancov-module`), and the machines that run this have one toolchain and
//!   no way to download another. The address sanitizer's runtime ships with rustup's
//!   standard library for x86_64 Linux.
//! - **Build**: `-O` (optimized) with debug assertions, so an arithmetic overflow is
//!   a crash, as it would be in a tool built in debug mode. It goes to
//!   `$FUZZ_TARGET_DIR` (default `~/.cache/telemetry-fuzz`), outside the checkout, so
//!   that a fresh clone (CI's) on the same machine reuses it.
//! - **Runs**: each target reads `fuzz/seeds/TARGET` and writes what it finds to a
//!   scratch directory (the seeds are not touched), with libFuzzer's limits of 10 s per
//!   input, 2 GiB of memory and 64 KiB per input. A failing input is left in
//!   `fuzz/artifacts/TARGET/`, and the end of that target's log is printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 10;

/// libFuzzer's limits for every run: time per input, memory, input length.
const LIBFUZZER_LIMITS: &[&str] = &["-timeout=10", "-rss_limit_mb=2048", "-max_len=65536"];

/// `cargo fuzz build` and `run` flags: optimized, with debug assertions.
const BUILD_FLAGS: &[&str] = &["-O", "--debug-assertions"];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let (seconds, wanted) = parse_args(args)?;
    let env = FuzzEnv::find()?;
    let started = Instant::now();
    let all = env.list()?;
    let targets: Vec<String> = if wanted.is_empty() {
        all
    } else {
        for name in &wanted {
            if !all.contains(name) {
                return Err(format!(
                    "no fuzz target {name:?}; there are: {}",
                    all.join(" ")
                ));
            }
        }
        wanted
    };

    let build_started = Instant::now();
    let mut build = env.cargo_fuzz("build");
    build.args(BUILD_FLAGS);
    eprintln!(
        "xtask fuzz: cargo fuzz build {} (every target) in {}",
        BUILD_FLAGS.join(" "),
        env.target_dir.display()
    );
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo-fuzz: {e}"))?;
    if !status.success() {
        return Err(format!("cargo fuzz build failed: {status}"));
    }
    let build_took = build_started.elapsed();

    let scratch = std::env::temp_dir().join(format!("xtask-fuzz-{}", std::process::id()));
    let mut failed = Vec::new();
    let mut lines = Vec::new();
    for target in &targets {
        let began = Instant::now();
        let outcome = env.run_target(target, seconds, &scratch);
        let took = began.elapsed();
        match outcome {
            Ok(log) => {
                let stats = Stats::from_log(&log);
                lines.push(format!("  ok      {target:<16} {}", stats.show(took)));
            }
            Err((err, log)) => {
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
                eprintln!("xtask fuzz: {target}: {err}; input in fuzz/artifacts/{target}/");
                lines.push(format!("  FAILED  {target:<16} {err}"));
                failed.push(target.clone());
            }
        }
        eprintln!("{}", lines.last().map_or("", String::as_str));
    }
    let _ = std::fs::remove_dir_all(&scratch);

    eprintln!(
        "\nxtask fuzz: summary ({seconds} s per target; build {:.1} s, total {:.1} s)",
        build_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for line in &lines {
        eprintln!("{line}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} fuzz targets failed: {}",
            failed.len(),
            targets.len(),
            failed.join(" ")
        ))
    }
}

/// `--seconds N` and target names, in any order.
fn parse_args(args: &[String]) -> Result<(u64, Vec<String>), String> {
    const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [TARGET...]";
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .ok_or(USAGE)?;
        } else if arg.starts_with('-') {
            return Err(USAGE.to_owned());
        } else {
            targets.push(arg.clone());
        }
    }
    Ok((seconds, targets))
}

/// Where cargo-fuzz is, where the fuzz workspace is and where it builds.
struct FuzzEnv {
    fuzz_dir: PathBuf,
    cargo_fuzz: PathBuf,
    target_dir: PathBuf,
}

impl FuzzEnv {
    fn find() -> Result<FuzzEnv, String> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("xtask has no parent directory")?;
        let env = FuzzEnv {
            fuzz_dir: workspace.join("fuzz"),
            cargo_fuzz: std::env::var_os("CARGO_FUZZ")
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from("cargo-fuzz"), PathBuf::from),
            target_dir: std::env::var_os("FUZZ_TARGET_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(default_target_dir)
                .unwrap_or_else(|| workspace.join("fuzz").join("target")),
        };
        let version = Command::new(&env.cargo_fuzz)
            .args(["fuzz", "--version"])
            .output();
        match version {
            Ok(out) if out.status.success() => Ok(env),
            _ => Err(format!(
                "cannot run {} (run .ci/install-fuzz and set CARGO_FUZZ to the path it \
                 prints, or `cargo install cargo-fuzz`)",
                env.cargo_fuzz.display()
            )),
        }
    }

    /// `cargo fuzz SUBCOMMAND` in `fuzz/`, with the stable toolchain unlocked and the
    /// cached build directory.
    fn cargo_fuzz(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(&self.cargo_fuzz);
        cmd.args(["fuzz", subcommand])
            .current_dir(&self.fuzz_dir)
            .env("CARGO_TARGET_DIR", &self.target_dir);
        if std::env::var_os("RUSTC_BOOTSTRAP").is_none() {
            cmd.env("RUSTC_BOOTSTRAP", "1");
        }
        cmd
    }

    /// The targets `cargo fuzz list` names (the `[[bin]]`s of `fuzz/Cargo.toml`).
    fn list(&self) -> Result<Vec<String>, String> {
        let out = self
            .cargo_fuzz("list")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run cargo-fuzz: {e}"))?;
        if !out.status.success() {
            return Err(format!("cargo fuzz list failed: {}", out.status));
        }
        let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if targets.is_empty() {
            return Err("cargo fuzz list named no target".to_owned());
        }
        Ok(targets)
    }

    /// Runs one target for `seconds` on its seeds; its log (libFuzzer's output), or
    /// what failed and the log.
    fn run_target(
        &self,
        target: &str,
        seconds: u64,
        scratch: &Path,
    ) -> Result<String, (String, String)> {
        let found = scratch.join(target);
        let seeds = self.fuzz_dir.join("seeds").join(target);
        let log_path = scratch.join(format!("{target}.log"));
        let prepared = std::fs::create_dir_all(&found)
            .and_then(|()| std::fs::create_dir_all(&seeds))
            .and_then(|()| std::fs::File::create(&log_path));
        let log_file = prepared.map_err(|e| (format!("scratch directory: {e}"), String::new()))?;
        let stdout = log_file
            .try_clone()
            .map_err(|e| (format!("log file: {e}"), String::new()))?;
        let mut cmd = self.cargo_fuzz("run");
        cmd.args(BUILD_FLAGS)
            .arg(target)
            .args([&found, &seeds])
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(LIBFUZZER_LIMITS)
            .arg("-print_final_stats=1")
            .stdout(stdout)
            .stderr(log_file);
        let status = cmd.status();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        match status {
            Ok(s) if s.success() => Ok(log),
            Ok(s) => Err((format!("crashed ({s})"), log)),
            Err(e) => Err((format!("cannot run cargo-fuzz: {e}"), log)),
        }
    }
}

/// `$XDG_CACHE_HOME/telemetry-fuzz` (or `~/.cache/…`): outside the checkout, so that
/// a fresh clone on the same machine does not rebuild every target with the
/// sanitizer's instrumentation.
fn default_target_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("telemetry-fuzz"))
}

/// What libFuzzer says about a finished run.
#[derive(Debug, Default, PartialEq)]
struct Stats {
    /// `stat::number_of_executed_units`.
    executions: Option<u64>,
    /// `stat::average_exec_per_sec`.
    per_second: Option<u64>,
    /// `cov:` (edges) and `ft:` (features) of the last status line.
    coverage: Option<(u64, u64)>,
}

impl Stats {
    fn from_log(log: &str) -> Stats {
        let stat = |name: &str| {
            log.lines()
                .filter_map(|l| l.strip_prefix(name))
                .filter_map(|rest| rest.strip_prefix(':'))
                .find_map(|v| v.trim().parse().ok())
        };
        let coverage = log
            .lines()
            .rev()
            .filter(|l| l.starts_with('#'))
            .find_map(|l| Some((word_after(l, "cov:")?, word_after(l, "ft:")?)));
        Stats {
            executions: stat("stat::number_of_executed_units"),
            per_second: stat("stat::average_exec_per_sec"),
            coverage,
        }
    }

    fn show(&self, took: Duration) -> String {
        let or_dash = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let (cov, ft) = self
            .coverage
            .map_or((None, None), |(c, f)| (Some(c), Some(f)));
        format!(
            "{:>5.1} s  {:>9} runs  {:>7} /s  cov {:>5}  ft {:>5}",
            took.as_secs_f64(),
            or_dash(self.executions),
            or_dash(self.per_second),
            or_dash(cov),
            or_dash(ft),
        )
    }
}

/// The number after `key` in a libFuzzer status line (`#123 DONE cov: 45 ft: 67 …`).
fn word_after(line: &str, key: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_come_from_the_last_status_line_and_the_final_stats() {
        let log = "\
INFO: Seed: 1234
#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb
#1024\tNEW    cov: 200 ft: 300 corp: 5/9b lim: 4 exec/s: 0 rss: 31Mb L: 2/2 MS: 1 ChangeBit-
#65536\tpulse  cov: 210 ft: 320 corp: 6/9b lim: 4 exec/s: 21845 rss: 31Mb
#80000\tDONE   cov: 218 ft: 639 corp: 156/79Kb lim: 19264 exec/s: 26666 rss: 539Mb
Done 80000 runs in 3 second(s)
stat::number_of_executed_units: 80000
stat::average_exec_per_sec:     26666
stat::new_units_added:          255
";
        let stats = Stats::from_log(log);
        assert_eq!(
            stats,
            Stats {
                executions: Some(80000),
                per_second: Some(26666),
                coverage: Some((218, 639)),
            }
        );
        assert_eq!(
            stats.show(Duration::from_millis(3400)),
            "  3.4 s      80000 runs    26666 /s  cov   218  ft   639"
        );
    }

    #[test]
    fn a_log_without_stats_shows_dashes() {
        let stats = Stats::from_log("==1== ERROR: libFuzzer: deadly signal\n");
        assert_eq!(stats, Stats::default());
        assert!(stats.show(Duration::ZERO).contains("- runs"));
    }

    #[test]
    fn arguments_are_seconds_and_targets() {
        let args = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(args(&[]), Ok((DEFAULT_SECONDS, vec![])));
        assert_eq!(
            args(&["parse", "--seconds", "30", "report"]),
            Ok((30, vec!["parse".to_owned(), "report".to_owned()]))
        );
        assert!(args(&["--seconds"]).is_err());
        assert!(args(&["--seconds", "0"]).is_err());
        assert!(args(&["--jobs", "2"]).is_err());
    }
}
