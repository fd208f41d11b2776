//! `cargo xtask demo`: a report travelling from a tool to the collector, on one machine,
//! in about a minute.
//!
//! 1. Builds the collector (`telemetry-server`), the `telemetry` command and the
//!    example tool `greeter` (`tests/examples/greeter.rs`).
//! 2. Sandboxes everything in a temporary directory: the tool's telemetry lives under
//!    `XDG_CONFIG_HOME=<demo>/config` (never the user's own), the collector's file
//!    storage under `<demo>/collector`.
//! 3. Back-dates a week with the facade's clock seam, `Config::clock` (`greeter
//!    --clock DAY`): the user opts in on day D−1 (`greeter telemetry on`, the embedded
//!    command, under the same clock), then the tool counts and crashes on day D, ten
//!    days ago, and runs once more that day: that run's telemetry child counts the
//!    crash its predecessor left in the crash journal. That week has really ended, so
//!    nothing needs to pretend the future: the uploader commits it by the real clock,
//!    the collector accepts it by its own, and it holds no data from on or before the
//!    opt-in date.
//! 4. Starts the collector on a free loopback port with an upload config that
//!    approves the tool's counters and crash stacks.
//! 5. Runs the tool once more on the real clock: its daily upload is due, and its
//!    telemetry child uploads the ended week (`--wait` joins the child).
//! 6. Merges (`telemetry-server merge`) and prints what arrived and where to look: the
//!    dashboard's URL, the stored files, the tool's debug log with the exact body sent.
//!
//! The collector keeps running until Enter is pressed (or stdin ends, as in CI): then
//! it is stopped and the temporary directory removed. On a failure everything is kept
//! for a look, and the path printed.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How long each wait of the demo may take (the collector's start, the crash being
/// counted, the upload): generous for a loaded CI machine.
const STEP_DEADLINE: Duration = Duration::from_secs(120);

/// How many days before today the demo's week begins: its end (one to seven days
/// later) has passed by the real clock, and it is well within the 21 days a report
/// may be old.
const DAYS_BACK: i64 = 10;

/// What the crashing run is given, to show that it never leaves the machine.
const SECRET: &str = "/home/alice/secret-plans.txt";

/// `cargo xtask demo`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("demo takes no arguments, got {arg:?}"));
    }
    let bins = build()?;
    let root = std::env::temp_dir().join(format!("telemetry-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let demo = Demo { bins, root };
    match demo.go() {
        Ok(collector) => {
            println!(
                "The collector keeps running so that you can look. Press Enter to stop it \
                 and remove {}.",
                demo.root.display()
            );
            // EOF (no terminal, CI) stops at once.
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            drop(collector);
            let _ = std::fs::remove_dir_all(&demo.root);
            Ok(())
        }
        Err(err) => Err(format!(
            "{err}\n(everything is kept in {} for a look)",
            demo.root.display()
        )),
    }
}

/// The three programs the demo runs.
struct Binaries {
    server: PathBuf,
    telemetry: PathBuf,
    greeter: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    crate::without_package_vars(&mut command);
    command
}

fn build() -> Result<Binaries, String> {
    for args in [
        &[
            "build",
            "--quiet",
            "-p",
            "telemetry-server",
            "-p",
            "telemetry-cli",
            "--bins",
        ][..],
        &[
            "build",
            "--quiet",
            "-p",
            "telemetry-tests",
            "--example",
            "greeter",
        ][..],
    ] {
        eprintln!("xtask: cargo {}", args.join(" "));
        let status = cargo()
            .args(args)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo {} failed: {status}", args.join(" ")));
        }
    }
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let metadata: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata: unreadable output: {e}"))?;
    let target = metadata["target_directory"]
        .as_str()
        .ok_or("cargo metadata: no target_directory")?;
    let debug = Path::new(target).join("debug");
    let exe = |name: &str| debug.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    Ok(Binaries {
        server: exe("telemetry-server"),
        telemetry: exe("telemetry"),
        greeter: exe("examples/greeter"),
    })
}

struct Demo {
    bins: Binaries,
    root: PathBuf,
}

/// The collector, stopped when dropped.
struct Collector {
    child: Child,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn config_home(&self) -> PathBuf {
        self.root.join("config")
    }

    fn tool_dir(&self) -> PathBuf {
        self.config_home().join("telemetry").join("greeter")
    }

    fn storage(&self) -> PathBuf {
        self.root.join("collector")
    }

    /// The example tool in the sandbox: its own config directory, and no
    /// `DO_NOT_TRACK` (nothing leaves this machine: the collector is on loopback).
    fn greeter(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bins.greeter);
        command
            .args(args)
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("HOME", self.root.join("home"))
            .env_remove("DO_NOT_TRACK")
            .env_remove("TELEMETRY_DEBUG")
            .stdin(Stdio::null());
        command
    }

    /// Runs `greeter ARGS` in the sandbox, showing the command; its stdout is shown
    /// too. Fails unless it exits as `succeed` says.
    fn step(&self, args: &[&str], succeed: bool) -> Result<std::process::Output, String> {
        println!("   $ greeter {}", args.join(" "));
        let out = output(self.greeter(args))?;
        if out.status.success() != succeed {
            return Err(format!(
                "greeter {} exited with {}: {}",
                args.join(" "),
                out.status,
                text(&out.stderr)
            ));
        }
        for line in text(&out.stdout).lines() {
            println!("     {line}");
        }
        Ok(out)
    }

    fn go(&self) -> Result<Collector, String> {
        let today = Day::today();
        let counted = today.plus(-DAYS_BACK);
        let opted_in = counted.plus(-1);
        println!(
            "A report's way from a tool to its collector, in a sandbox: {}\n\
             (the tool's telemetry lives under XDG_CONFIG_HOME={}, never your own)",
            self.root.display(),
            self.config_home().display()
        );
        println!(
            "\n1. {DAYS_BACK} days ago, by the tool's clock (Config::clock, here `--clock`), the user opts in:"
        );
        let out = output(self.greeter(&["--clock", &opted_in.to_string(), "telemetry", "on"]))?;
        println!("   $ greeter --clock {opted_in} telemetry on");
        if !out.status.success() {
            return Err(format!(
                "greeter telemetry on failed: {}",
                text(&out.stderr)
            ));
        }
        if let Some(first) = text(&out.stdout).lines().next() {
            println!("     {first}");
        }

        println!("\n2. The next day the tool runs twice, crashes, and runs once more:");
        let clock = counted.to_string();
        self.step(&["--clock", &clock, "greet"], true)?;
        self.step(&["--clock", &clock, "greet", "Ada"], true)?;
        let out = self.step(&["--clock", &clock, "crash", SECRET], false)?;
        if let Some(line) = text(&out.stderr)
            .lines()
            .find(|l| l.contains("cannot read"))
        {
            println!("     {line}");
        }
        println!(
            "   The crash is recorded in the tool's crash journal as it dies; no process waited for it."
        );
        self.step(&["--clock", &clock, "greet", "Grace"], true)?;
        let meta = self.wait_for_crash_count(counted)?;
        println!(
            "   That run found the crash waiting: its telemetry child counted it as a stack of\n   function names, without the message."
        );

        println!(
            "\n3. The collector starts, with an upload config that approves some of the tool's counters:"
        );
        let config = self.root.join("upload-config.json");
        std::fs::write(&config, upload_config(&meta))
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let storage_url = format!("file://{}", self.storage().display());
        println!(
            "   $ telemetry-server serve --listen 127.0.0.1:0 --config {} --storage {storage_url}",
            config.display(),
        );
        let (collector, addr) = self.start_collector(&config)?;
        println!("     listening on {addr}");

        println!(
            "\n4. Today, by the real clock, the tool runs again: its daily upload is due, and the ended week goes:"
        );
        // The tool's own debug log: the exact body it sends is written there.
        std::fs::create_dir_all(self.tool_dir().join("debug"))
            .map_err(|e| format!("{}: {e}", self.tool_dir().display()))?;
        let server = format!("http://{addr}");
        self.step(&["--server", &server, "--wait", "greet"], true)?;
        let week = self.wait_for_upload(counted)?;
        println!("     (its telemetry child uploaded the report of the week ending {week})");

        println!("\n5. The collector merges the week (it also does so daily on its own):");
        println!("   $ telemetry-server merge --storage {storage_url}");
        let out = output({
            let mut merge = Command::new(&self.bins.server);
            merge.args(["--log-format", "text", "merge", "--storage", &storage_url]);
            merge
        })?;
        if !out.status.success() {
            return Err(format!(
                "telemetry-server merge failed: {}",
                text(&out.stderr)
            ));
        }

        println!();
        print!("{}", self.summary(&week)?);
        println!("\nWhere to look:");
        println!("  the dashboard          http://{addr}/");
        println!(
            "  the stored report      {}",
            self.storage().join("uploaded").join(&week).display()
        );
        println!(
            "  what the tool sent     {} (the exact body)",
            self.tool_dir().join("debug/sidecar.log").display()
        );
        println!(
            "  what the user sees     XDG_CONFIG_HOME={} {} view",
            self.config_home().display(),
            self.bins.telemetry.display()
        );
        println!(
            "\nTo check that your own tool's counters arrive, in its tests: the `telemetry` crate's guide,\n\
             \"Checking that your counters arrive\"."
        );
        Ok(collector)
    }

    /// Waits until the tool's telemetry child has counted the crash into the week of
    /// `counted`; returns that file's metadata (as `telemetry dump` prints it).
    fn wait_for_crash_count(&self, counted: Day) -> Result<Value, String> {
        let local = self.tool_dir().join("local");
        let suffix = format!("-{counted}.v1.count");
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let file = std::fs::read_dir(&local)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(&suffix));
            if let Some(file) = file {
                let out = output({
                    let mut dump = Command::new(&self.bins.telemetry);
                    dump.arg("--dir")
                        .arg(self.tool_dir())
                        .arg("dump")
                        .arg(&file);
                    dump
                })?;
                let dumped: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
                let crashed = dumped["Count"]
                    .as_object()
                    .is_some_and(|c| c.keys().any(|k| k.starts_with("crash/")));
                if crashed {
                    return Ok(dumped["Meta"].clone());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the crash was not counted into {}/*{suffix} within {} s",
                    local.display(),
                    STEP_DEADLINE.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the collector on a free loopback port (`127.0.0.1:0`); returns it and the
    /// address it reports in its log.
    fn start_collector(&self, config: &Path) -> Result<(Collector, String), String> {
        let log_path = self.root.join("collector.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let storage = format!("file://{}", self.storage().display());
        let child = telemetry_test_support::serve_command(&self.bins.server, config, &storage)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bins.server.display()))?;
        let mut collector = Collector { child };
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let addr = log
                .lines()
                .filter(|l| l.contains("serving"))
                .find_map(|l| serde_json::from_str::<Value>(l).ok())
                .and_then(|v| {
                    // Flattened JSON events, or nested under `fields`.
                    let addr = v.get("addr").unwrap_or(&v["fields"]["addr"]);
                    addr.as_str().map(str::to_owned)
                });
            if let Some(addr) = addr {
                return Ok((collector, addr));
            }
            if let Ok(Some(status)) = collector.child.try_wait() {
                return Err(format!("the collector exited ({status}):\n{log}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the collector did not say where it listens within {} s:\n{log}",
                    STEP_DEADLINE.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the collector has stored a report of the week that began on
    /// `counted`; returns the week (its last day, as the report names it).
    fn wait_for_upload(&self, counted: Day) -> Result<String, String> {
        let uploaded = self.storage().join("uploaded");
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let week = std::fs::read_dir(&uploaded)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|w| Day::parse(w).is_some_and(|d| d > counted))
                .find(|w| {
                    std::fs::read_dir(uploaded.join(w))
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|e| e.path().extension().is_some_and(|x| x == "json"))
                });
            if let Some(week) = week {
                return Ok(week);
            }
            if Instant::now() > deadline {
                let sidecar = std::fs::read_to_string(self.tool_dir().join("debug/sidecar.log"))
                    .unwrap_or_default();
                return Err(format!(
                    "no report arrived within {} s; the tool's child logged:\n{sidecar}",
                    STEP_DEADLINE.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the merged week holds, in a few lines a person can read.
    fn summary(&self, week: &str) -> Result<String, String> {
        let merged = self.storage().join("merged").join(format!("{week}.json"));
        let text =
            std::fs::read_to_string(&merged).map_err(|e| format!("{}: {e}", merged.display()))?;
        let reports: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let mut out = format!(
            "What arrived at the collector: {} report(s) for the week ending {week}\n",
            reports.len()
        );
        for report in &reports {
            for program in report["Programs"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "  {} {} ({}/{}, rustc {})\n",
                    str_of(&program["Program"]),
                    str_of(&program["Version"]),
                    str_of(&program["OS"]),
                    str_of(&program["Arch"]),
                    str_of(&program["Toolchain"]),
                ));
                for (name, count) in program["Counters"].as_object().into_iter().flatten() {
                    out.push_str(&format!("    {name:<28} {count}\n"));
                }
                for (name, count) in program["Stacks"].as_object().into_iter().flatten() {
                    let mut lines = name.lines();
                    let first = lines.next().unwrap_or_default();
                    out.push_str(&format!("    {first:<28} {count}  (a stack:)\n"));
                    for frame in lines {
                        out.push_str(&format!("      {frame}\n"));
                    }
                }
            }
        }
        if text.contains("secret-plans") {
            return Err("the panic's argument reached the collector".to_owned());
        }
        // What the config did not approve: in the user's local report only.
        let local = self
            .tool_dir()
            .join("local")
            .join(format!("local.{week}.json"));
        let local: Value = std::fs::read_to_string(&local)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let sent = |name: &str| {
            reports.iter().any(|r| {
                r["Programs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["Counters"].get(name).is_some())
            })
        };
        let kept: Vec<String> = local["Programs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["Counters"].as_object().into_iter().flatten())
            .filter(|(name, _)| !sent(name))
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        if !kept.is_empty() {
            out.push_str(&format!(
                "Stayed on the machine, not approved by the config: {}\n",
                kept.join(", ")
            ));
        }
        out.push_str(&format!(
            "The panic's message (it named {SECRET}) and the names greeted never left it.\n"
        ));
        Ok(out)
    }
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

/// The demo's upload config: the tool as its counter file describes it, its runs,
/// subcommands and crash stacks approved (`greeter/name:*` is not: it stays on the
/// machine), every report uploaded.
fn upload_config(meta: &Value) -> String {
    serde_json::json!({
        "OS": [meta["OS"]],
        "Arch": [meta["Arch"]],
        "Toolchain": [meta["Toolchain"]],
        "SampleRate": 1.0,
        "Programs": [{
            "Name": meta["Program"],
            "Versions": [meta["Version"]],
            "Counters": [
                {"Name": "greeter/runs", "Rate": 1.0},
                {"Name": "greeter/subcommand:{greet,crash}", "Rate": 1.0},
            ],
            "Stacks": [{"Name": "crash/panic", "Rate": 1.0, "Depth": 16}],
        }],
    })
    .to_string()
}

fn output(mut command: Command) -> Result<std::process::Output, String> {
    let shown = format!("{:?}", command.get_program());
    command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A UTC calendar day, as days since 1970-01-01: enough date arithmetic for the demo
/// without a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Day(i64);

impl Day {
    fn today() -> Day {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Day(i64::try_from(secs / 86_400).unwrap_or(0))
    }

    fn plus(self, days: i64) -> Day {
        Day(self.0 + days)
    }

    /// `YYYY-MM-DD`.
    fn parse(text: &str) -> Option<Day> {
        let mut parts = text.splitn(3, '-');
        let y: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next()?.parse().ok()?;
        let d: i64 = parts.next()?.parse().ok()?;
        if text.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let day = Day(era * 146_097 + doe - 719_468);
        (day.to_string() == text).then_some(day)
    }
}

impl std::fmt::Display for Day {
    /// Howard Hinnant's civil_from_days.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_format_and_parse_back() {
        assert_eq!(Day(0).to_string(), "1970-01-01");
        assert_eq!(Day::parse("1970-01-01"), Some(Day(0)));
        assert_eq!(
            Day::parse("2026-03-01").unwrap().plus(-1).to_string(),
            "2026-02-28"
        );
        assert_eq!(
            Day::parse("2024-03-01").unwrap().plus(-1).to_string(),
            "2024-02-29"
        );
        assert_eq!(
            Day::parse("2026-12-06").unwrap().plus(-10).to_string(),
            "2026-11-26"
        );
        assert_eq!(Day::parse("2026-02-30"), None);
        assert_eq!(Day::parse("2026-1-01"), None);
        assert_eq!(Day::parse("x"), None);
    }
}
