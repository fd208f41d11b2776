//! `cargo xtask cross`: the library on macOS, Windows and aarch64 Linux, checked and
//! tested on an x86_64 Linux machine without any vendor SDK.
//!
//! - **Checks** (`cargo check`, no linking): the facade with its `crash`, `upload` and
//!   `stack` features and the crash monitor with its tests, for `x86_64-apple-darwin`,
//!   `aarch64-apple-darwin` and `aarch64-unknown-linux-gnu`. rustup's toolchain ships no
//!   standard library for those targets, so this uses Debian's `rustc-web` (a Rust
//!   whose standard-library source is installed, `rust-web-src`) with `-Zbuild-std`.
//!   The `tls` feature is left out: `ring`'s C code wants Apple's headers. The
//!   `native-tls` feature (Security.framework, Schannel) is checked for both macOS
//!   targets and `x86_64-pc-windows-gnu`; not for aarch64 Linux, where `openssl-sys`
//!   would want that target's OpenSSL headers.
//! - **Windows tests**: `x86_64-pc-windows-gnu`, linked by mingw-w64 and run by Wine.
//!   Rust's std needs `ProcessPrng` from `bcryptprimitives.dll`, which Wine 8 lacks: a
//!   stub DLL (`xtask/cross/bcryptprimitives.c`) built here with mingw goes into a Wine
//!   prefix of our own under the target directory, next to nothing else. A step in
//!   which Wine failed to start a process runs once more, with the first run's time
//!   logged: see [`WINE_SPAWN_FAILED`].
//!
//! `.ci/install-cross` installs the Debian packages this needs. Everything is built in
//! `$CROSS_TARGET_DIR` (default `~/.cache/telemetry-cross`, kept across checkouts),
//! never in the host's target directory. That directory is shared by every checkout on
//! the machine: each step holds its part of it ([`hold`]) while it runs.
//! Each step's time is printed, and the total, so CI's budget can be watched.
//!
//! - **aarch64 Linux tests**: the crash monitor's and the facade's tests (a real crash
//!   counted by a real child), the unit tests of internal and counter and upload's
//!   scenarios, linked by `aarch64-linux-gnu-gcc` and run by `qemu-aarch64` (user-mode
//!   emulation, registered with binfmt_misc for the children). A step whose crash
//!   scenario hit its hang bound there runs once more, with the first run's time
//!   logged: see [`QEMU_STALL`] for why, and why a hang of ours still fails.
//!
//! Usage: `cargo xtask cross [check | aarch64 [ARGS...] | windows [-p CRATE] [ARGS...]]`;
//! without an argument, all three.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Targets that are only compiled: no runner for them here.
const CHECK_TARGETS: &[&str] = &[
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "aarch64-unknown-linux-gnu",
];

const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// Targets where the facade's `native-tls` feature is compiled: the platform's own TLS
/// (Security.framework, Schannel), whose bindings need no SDK to check. Linux is left
/// out: `openssl-sys` wants the target's OpenSSL headers, which a cross setup lacks;
/// the host's tests build and run it against a real server.
const NATIVE_TLS_TARGETS: &[&str] = &[
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    WINDOWS_TARGET,
];

/// One `cargo test`: the `-p` crates, then its flags (test-binary arguments after `--`).
type TestRun<'a> = (&'a [&'a str], &'a [&'a str]);

/// The end-to-end scenarios, one at a time as `cargo xtask integration` runs them (their
/// examples are built first): the example programs with the facade's detached child, a
/// real panic counted and uploaded to a loopback server.
const END_TO_END: TestRun<'static> = (&["telemetry-tests"], &["--tests", "--", "--test-threads=1"]);

/// What runs under Wine, in order: every test of these crates. Nothing is skipped; a
/// test that cannot mean anything on Windows is `#[cfg(unix)]`.
const WINDOWS_TESTS: &[TestRun<'static>] = &[
    (&["telemetry-internal"], &["--lib", "--tests"]),
    (&["telemetry-counter"], &["--lib", "--tests"]),
    (&["telemetry-upload"], &["--lib", "--tests"]),
    (&["telemetry-crashmonitor"], &["--lib", "--tests"]),
    (&["telemetry"], &["--lib", "--tests"]),
    END_TO_END,
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let env = CrossEnv::find()?;
    let started = Instant::now();
    let mut times = Vec::new();
    let result = match args.first().map(String::as_str) {
        None => check(&env, &mut times)
            .and_then(|()| aarch64(&env, &[], &mut times))
            .and_then(|()| windows(&env, &[], &mut times)),
        Some("check") => check(&env, &mut times),
        Some("aarch64") => aarch64(&env, &args[1..], &mut times),
        Some("windows") => windows(&env, &args[1..], &mut times),
        Some(other) => Err(format!(
            "unknown `cross` step {other:?}: use `check`, `aarch64` or `windows`"
        )),
    };
    for (step, took) in &times {
        eprintln!("xtask cross: {:>6.1}s  {step}", took.as_secs_f64());
    }
    eprintln!(
        "xtask cross: {:>6.1}s  total",
        started.elapsed().as_secs_f64()
    );
    result
}

/// Where the cross toolchain is and where it builds.
struct CrossEnv {
    workspace: PathBuf,
    cargo: PathBuf,
    rustc: PathBuf,
    rustdoc: PathBuf,
    target_dir: PathBuf,
}

impl CrossEnv {
    fn find() -> Result<CrossEnv, String> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("xtask has no parent directory")?
            .to_owned();
        let tool = |var: &str, default: &str| -> PathBuf {
            std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        let env = CrossEnv {
            target_dir: std::env::var_os("CROSS_TARGET_DIR")
                .map(PathBuf::from)
                .or_else(default_target_dir)
                .unwrap_or_else(|| workspace.join("target").join("cross")),
            cargo: tool("CROSS_CARGO", "/usr/bin/cargo"),
            rustc: tool("CROSS_RUSTC", "/usr/bin/rustc"),
            rustdoc: tool("CROSS_RUSTDOC", "/usr/bin/rustdoc"),
            workspace,
        };
        for (what, path) in [("cargo", &env.cargo), ("rustc", &env.rustc)] {
            if !path.exists() {
                return Err(format!(
                    "no {what} at {} (run .ci/install-cross, or set CROSS_{})",
                    path.display(),
                    what.to_uppercase()
                ));
            }
        }
        Ok(env)
    }

    /// A cargo of the cross toolchain, in the workspace, building into our target dir.
    fn cargo(&self, subcommand: &str, build_std: &str, target: &str) -> Command {
        let mut cmd = Command::new(&self.cargo);
        crate::without_package_vars(&mut cmd);
        cmd.arg(subcommand)
            .current_dir(&self.workspace)
            // The outer cargo (rustup's) points these at itself and its rustc.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO")
            .env("RUSTC", &self.rustc)
            .env("RUSTDOC", &self.rustdoc)
            // -Zbuild-std is unstable; the Debian toolchain is a stable one.
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .arg(format!("-Zbuild-std={build_std}"))
            .args(["--target", target]);
        cmd
    }

    fn wine_prefix(&self) -> PathBuf {
        self.target_dir.join("wine-prefix")
    }
}

/// Holds `dir` (a build directory of the shared cross cache) for this run: waits while
/// a run from another checkout holds it. The directory outlives checkouts and is
/// shared by every checkout on the machine; without this, one checkout's run cleans
/// (`forget_other_checkout`) or rebuilds our crates under another's, whose tests then
/// link the other checkout's crates or find their test binaries gone mid-run. The
/// lock is released when the returned file is dropped (or the process ends).
/// Different directories (`qemu/` for aarch64, the top one for the checks and
/// Windows) are held apart, so CI's lanes run them at once.
pub(crate) fn hold(dir: &Path) -> Result<std::fs::File, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("xtask-cross.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
        eprintln!(
            "xtask cross: waiting for another checkout's run in {}",
            dir.display()
        );
        file.lock()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(file)
}

/// `$XDG_CACHE_HOME/telemetry-cross` (or `~/.cache/…`): outside the checkout, so that
/// the four standard libraries built with `-Zbuild-std` and the Wine prefix outlive a
/// fresh clone (CI's), which then rebuilds only the workspace's own crates.
fn default_target_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("telemetry-cross"))
}

/// Compiles the facade and the crash monitor (with its tests) for each check target.
fn check(env: &CrossEnv, times: &mut Vec<(String, Duration)>) -> Result<(), String> {
    let _held = hold(&env.target_dir)?;
    for target in CHECK_TARGETS {
        let mut cmd = env.cargo("check", "std,panic_abort", target);
        cmd.args([
            "-p",
            "telemetry",
            "--no-default-features",
            "--features",
            "crash,upload,stack",
        ]);
        timed(times, format!("check telemetry {target}"), cmd)?;
        let mut cmd = env.cargo("check", "std,panic_abort", target);
        cmd.args(["-p", "telemetry-crashmonitor", "--lib", "--tests"]);
        timed(times, format!("check crashmonitor tests {target}"), cmd)?;
    }
    for target in NATIVE_TLS_TARGETS {
        let mut cmd = env.cargo("check", "std,panic_abort", target);
        if *target == WINDOWS_TARGET {
            // Not the Windows tests' directory: this std (check-only, panic=abort)
            // would replace theirs, and each run would rebuild both.
            cmd.env("CARGO_TARGET_DIR", env.target_dir.join("check-windows"));
        }
        cmd.args([
            "-p",
            "telemetry",
            "--no-default-features",
            "--features",
            "crash,upload,native-tls",
        ]);
        timed(times, format!("check telemetry native-tls {target}"), cmd)?;
    }
    Ok(())
}

const AARCH64_TARGET: &str = "aarch64-unknown-linux-gnu";

/// What a test prints when a process it started outlives its bound, before it kills
/// it and fails: the crash monitor's process scenarios (`crashmonitor/tests/process`)
/// and the end-to-end scenarios (`telemetry_tests::wait_within`) both say it.
///
/// Under qemu only, a step whose failure includes that line runs once more, with the
/// first run's time logged, and fails only if the repeat fails too. The stall is
/// qemu-user's: caught by `cargo xtask soak --qemu` (one run in about 150, two CPU
/// hogs beside it), the stuck process was a *fork* of the multi-threaded test harness
/// that had not yet reached `execve` — its command line still the harness's, its
/// threads (the one forked thread and qemu's own) asleep in futex waits — not the
/// crashing program, which had not started. qemu-user emulates the `vfork` that
/// `posix_spawn` uses as a real `fork`; most likely, in the child, a lock that another
/// thread of the parent held at that moment stays held forever. The crash path has
/// nothing that waits (the handler writes its record with plain stores, restores the
/// default action and re-raises: no lock, no child, no pipe). A hang of ours still
/// fails: natively nothing is repeated, and `cargo xtask soak` runs the crash
/// scenarios hundreds of times natively, each run bounded.
const QEMU_STALL: &str = "still running after";

/// What a step prints when Wine failed to start a process: the Rust `io::Error` of
/// `ERROR_INTERNAL_ERROR` (1359), which Wine's `CreateProcess` returns when the new
/// process died before it finished starting — before its loader ran any code of the
/// program, so before any code of ours. Its `Debug` form is what a test's `unwrap`
/// prints; its `Display` form is what `start`'s decision log says when the telemetry
/// child could not be started (the end-to-end tests print that log when a child they
/// expected is missing). Seen in CI under heavy load (a test starting ten processes
/// at once); under Wine only, a step whose output shows it runs once more, as for
/// [`QEMU_STALL`]. On Windows itself nothing is repeated, and a spawn of ours that
/// fails for a reason of ours fails with another error.
const WINE_SPAWN_FAILED: &[&str] = &["Os { code: 1359,", "(os error 1359)"];

/// A failure of an emulator rather than of the code under test, by which a step of
/// `label` may be run once more.
#[derive(Clone, Copy)]
struct EmulatorFault {
    label: &'static str,
    /// What the step's output contains when it happened (any one of them).
    markers: &'static [&'static str],
    /// The constant that explains it, named in the log.
    name: &'static str,
    /// What the log says happened.
    what: &'static str,
}

const EMULATOR_FAULTS: &[EmulatorFault] = &[
    EmulatorFault {
        label: "aarch64",
        markers: &[QEMU_STALL],
        name: "QEMU_STALL",
        what: "a process hit its bound under qemu",
    },
    EmulatorFault {
        label: "windows",
        markers: WINE_SPAWN_FAILED,
        name: "WINE_SPAWN_FAILED",
        what: "Wine failed to start a process",
    },
];

/// What runs on aarch64 Linux.
/// Left out, for time: counter's and upload's multi-process and fault-injection suites
/// (`processes`, `hazards`: five minutes under emulation, and an x86 host's memory
/// order is stronger than aarch64's, so emulated races prove little about it).
const AARCH64_TESTS: &[TestRun<'static>] = &[
    (&["telemetry-internal", "telemetry-counter"], &["--lib"]),
    // The stack walk, the loader's view of the executable, ELF naming, real crashes
    // counted by a real child; the facade's start with its detached child.
    (
        &["telemetry-crashmonitor", "telemetry"],
        &["--lib", "--tests"],
    ),
    (&["telemetry-upload"], &["--lib", "--test", "upload"]),
    END_TO_END,
];

/// Runs tests on aarch64 Linux under qemu's user-mode emulation. The test processes
/// start children from aarch64 executables, which the kernel runs only because
/// binfmt_misc hands them to qemu (`.ci/install-cross` registers that); the children
/// find the aarch64 libraries through `QEMU_LD_PREFIX`, which they inherit.
/// `cargo xtask cross aarch64 ARGS...` runs only the crash monitor's tests, with ARGS.
fn aarch64(
    env: &CrossEnv,
    extra: &[String],
    times: &mut Vec<(String, Duration)>,
) -> Result<(), String> {
    let (target_dir, _held) = aarch64_build_dir(env)?;
    let single: [TestRun; 1] = [(&["telemetry-crashmonitor"], &["--lib", "--tests"])];
    let runs = if extra.is_empty() {
        AARCH64_TESTS
    } else {
        &single[..]
    };
    let cargo = |subcommand: &str| aarch64_cargo(env, &target_dir, subcommand);
    test_runs("aarch64", runs, extra, cargo, times)
}

/// The directory the aarch64 tests build in, held ([`hold`]) for the caller and rid of
/// crates another checkout built there; first, that qemu runs aarch64 executables.
fn aarch64_build_dir(env: &CrossEnv) -> Result<(PathBuf, std::fs::File), String> {
    if !Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists() {
        return Err(
            "qemu-aarch64 is not registered with binfmt_misc: run .ci/install-cross".into(),
        );
    }
    // A target directory of its own: the check of the same target builds another std
    // (check-only, panic=abort), and in one directory each would replace the other.
    let target_dir = env.target_dir.join("qemu");
    let held = hold(&target_dir)?;
    forget_other_checkout(
        env,
        &target_dir,
        AARCH64_TARGET,
        &packages_of(AARCH64_TESTS),
    )?;
    Ok((target_dir, held))
}

/// A cargo of the cross toolchain for aarch64 Linux, building into `target_dir` and
/// running what it builds under qemu.
fn aarch64_cargo(env: &CrossEnv, target_dir: &Path, subcommand: &str) -> Command {
    let mut cmd = env.cargo(subcommand, "std,panic_unwind", AARCH64_TARGET);
    cmd.env("CARGO_TARGET_DIR", target_dir)
        .env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            "aarch64-linux-gnu-gcc",
        )
        .env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER",
            "qemu-aarch64",
        )
        .envs(aarch64_run_env());
    cmd
}

/// What an aarch64 test process needs in its environment to run under qemu (the
/// runner, or binfmt_misc for its children): where the aarch64 libraries are, and
/// `TELEMETRY_TESTS_UNDER_QEMU` for the tests that see a difference (a host's
/// SIGCHLD, the crash scenarios' wider hang bound). And `RUST_BACKTRACE=0`: a panic
/// with backtraces on reads the executable's DWARF to print them, which under
/// emulation on a loaded machine took over 20 s for one panicking example program
/// (an end-to-end scenario's bound for the whole run); no test reads those
/// backtraces, and tests that care set the variable for the processes they start.
pub(crate) fn aarch64_run_env() -> Vec<(&'static str, String)> {
    vec![
        ("QEMU_LD_PREFIX", "/usr/aarch64-linux-gnu".to_owned()),
        ("TELEMETRY_TESTS_UNDER_QEMU", "1".to_owned()),
        ("RUST_BACKTRACE", "0".to_owned()),
    ]
}

/// Builds `package`'s integration test `test` for aarch64 Linux, in the directory the
/// aarch64 step uses, and returns its executable (`cargo xtask soak --qemu`), and the
/// directory's lock ([`hold`]): keep it while the executable runs.
pub(crate) fn aarch64_test_binary(
    package: &str,
    test: &str,
) -> Result<(PathBuf, std::fs::File), String> {
    let env = CrossEnv::find()?;
    let (target_dir, held) = aarch64_build_dir(&env)?;
    let mut cmd = aarch64_cargo(&env, &target_dir, "test");
    cmd.args(["-p", package, "--test", test, "--no-run"]);
    Ok((crate::soak::test_executable(cmd, test)?, held))
}

/// Runs the tests of the Windows-capable crates under Wine.
fn windows(
    env: &CrossEnv,
    extra: &[String],
    times: &mut Vec<(String, Duration)>,
) -> Result<(), String> {
    let _held = hold(&env.target_dir)?;
    let setup = Instant::now();
    let wine = wine_setup(env)?;
    times.push(("wine prefix".into(), setup.elapsed()));
    // `cargo xtask cross windows -p CRATE [ARGS...]` runs only that crate's entry.
    let (runs, extra): (Vec<TestRun>, &[String]) = match extra {
        [flag, krate, rest @ ..] if flag == "-p" => {
            let only: Vec<TestRun> = WINDOWS_TESTS
                .iter()
                .filter(|(packages, _)| *packages == [krate.as_str()])
                .copied()
                .collect();
            if only.is_empty() {
                return Err(format!("{krate} is not tested on Windows"));
            }
            (only, rest)
        }
        _ => (WINDOWS_TESTS.to_vec(), extra),
    };
    forget_other_checkout(
        env,
        &env.target_dir,
        WINDOWS_TARGET,
        &packages_of(WINDOWS_TESTS),
    )?;
    let cargo = |subcommand: &str| {
        let mut cmd = env.cargo(subcommand, "std,panic_unwind", WINDOWS_TARGET);
        cmd.envs(wine.vars());
        cmd
    };
    test_runs("windows", &runs, extra, cargo, times)
}

/// Every crate `runs` tests.
fn packages_of<'a>(runs: &[TestRun<'a>]) -> Vec<&'a str> {
    runs.iter().flat_map(|(p, _)| p.iter().copied()).collect()
}

/// Runs each of `runs` with `cargo(subcommand)` of the target, `extra` after its flags,
/// all of them even when one fails. The end-to-end crate's examples are built first:
/// its tests run them, and `--tests` does not build them.
fn test_runs(
    label: &str,
    runs: &[TestRun],
    extra: &[String],
    cargo: impl Fn(&str) -> Command,
    times: &mut Vec<(String, Duration)>,
) -> Result<(), String> {
    let mut failures = Vec::new();
    for (packages, flags) in runs {
        if packages.contains(&"telemetry-tests") {
            let mut cmd = cargo("build");
            cmd.args(["-p", "telemetry-tests", "--examples"]);
            if let Err(err) = timed(
                times,
                format!("{label} build telemetry-tests examples"),
                cmd,
            ) {
                failures.push(err);
                continue;
            }
        }
        let command = || {
            let mut cmd = cargo("test");
            cmd.arg("--no-fail-fast");
            for package in *packages {
                cmd.args(["-p", package]);
            }
            cmd.args(*flags).args(extra);
            cmd
        };
        let step = format!("{label} tests {}", packages.join(" "));
        let fault = EMULATOR_FAULTS
            .iter()
            .find(|fault| fault.label == label)
            .copied();
        let markers = fault.map_or(&[][..], |f| f.markers);
        match timed_watching(times, step.clone(), command(), markers) {
            (Ok(()), _) => {}
            (Err(err), true) => {
                let first = times.last().map_or(Duration::ZERO, |(_, took)| *took);
                let fault = fault.expect("a marker was watched for");
                eprintln!(
                    "xtask cross: {step}: {} (first run {:.1}s; see {} in \
                     xtask/src/cross.rs); running the step once more",
                    fault.what,
                    first.as_secs_f64(),
                    fault.name,
                );
                if let Err(again) = timed(times, format!("{step} (repeated)"), command()) {
                    failures.push(format!("{err}; repeated: {again}"));
                }
            }
            (Err(err), false) => failures.push(err),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Makes the crates in `packages` rebuild for `target` if the last run there was from
/// another checkout. The target directory outlives checkouts, and cargo would reuse a
/// workspace crate compiled in another one: its fingerprint leaves out where the
/// checkout is, and sources older than the build look unchanged. Such a test binary
/// still holds the other checkout's `env!("CARGO_MANIFEST_DIR")` and reads its
/// fixtures from there, or fails when that checkout is gone. Only our crates are
/// cleaned; the standard library and the dependencies stay built.
fn forget_other_checkout(
    env: &CrossEnv,
    target_dir: &Path,
    target: &str,
    packages: &[&str],
) -> Result<(), String> {
    let stamp = target_dir.join(format!("{target}.checkout"));
    let here = env.workspace.to_string_lossy().into_owned();
    // No stamp: nothing built yet, or built by an older xtask; clean to be sure.
    if std::fs::read_to_string(&stamp).is_ok_and(|last| last == here) {
        return Ok(());
    }
    if target_dir.join(target).exists() {
        let mut cmd = env.cargo("clean", "std,panic_unwind", target);
        cmd.env("CARGO_TARGET_DIR", target_dir);
        for package in packages {
            cmd.args(["-p", package]);
        }
        run_quiet(cmd, &format!("cargo clean {target}"))?;
    }
    std::fs::create_dir_all(target_dir)
        .and_then(|()| std::fs::write(&stamp, &here))
        .map_err(|e| format!("{}: {e}", stamp.display()))
}

/// What a Windows test run needs in its environment.
struct Wine {
    runner: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    fn vars(&self) -> Vec<(&'static str, OsString)> {
        vec![
            (
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
                "x86_64-w64-mingw32-gcc".into(),
            ),
            (
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER",
                self.runner.clone().into(),
            ),
            ("WINEPREFIX", self.prefix.clone().into()),
            // Wine's own diagnostics would mix with the tests' output.
            ("WINEDEBUG", "-all".into()),
            // No prompts to install Mono or Gecko into a fresh prefix, and no winedbg
            // for a crash: a crashing test process must just die, as on Windows with
            // error reporting off, not print a backtrace into the tests' output.
            ("WINEDLLOVERRIDES", "mscoree,mshtml=;winedbg.exe=d".into()),
        ]
    }
}

/// Creates our Wine prefix once, initialised and with the `ProcessPrng` stub. Fast when
/// done already.
fn wine_setup(env: &CrossEnv) -> Result<Wine, String> {
    let runner = ["/usr/lib/wine/wine64", "/usr/bin/wine64"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("wine64 not found (run .ci/install-cross)")?;
    let wine = Wine {
        runner,
        prefix: env.wine_prefix(),
    };
    let system32 = wine.prefix.join("drive_c/windows/system32");
    let stub = system32.join("bcryptprimitives.dll");
    let ready = wine.prefix.join(".telemetry-cross-ready");
    let source = env.workspace.join("xtask/cross/bcryptprimitives.c");
    if ready.exists() && stub.exists() && newer_or_same(&stub, &source) {
        return Ok(wine);
    }
    std::fs::create_dir_all(&env.target_dir).map_err(|e| format!("{e}"))?;
    let wine_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&wine.runner);
        cmd.envs(wine.vars()).args(args);
        cmd
    };
    run_quiet(wine_cmd(&["wineboot", "--init"]), "wineboot")?;
    let mut gcc = Command::new("x86_64-w64-mingw32-gcc");
    gcc.args(["-shared", "-O2", "-s", "-o"])
        .arg(&stub)
        .arg(&source)
        .arg("-ladvapi32");
    run_quiet(gcc, "x86_64-w64-mingw32-gcc bcryptprimitives.c")?;
    std::fs::write(&ready, b"").map_err(|e| format!("{}: {e}", ready.display()))?;
    Ok(wine)
}

fn newer_or_same(built: &Path, source: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(built), modified(source)), (Some(b), Some(s)) if b >= s)
}

fn run_quiet(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs a step, passing its stderr through. A warning in one of our crates fails the
/// step as it would fail CI's clippy on the host (`-D warnings` in `RUSTFLAGS` would
/// do the same, but also rebuild the cached standard libraries): cargo reports
/// "`crate` (…) generated N warning(s)" for workspace crates only, dependencies'
/// lints being capped.
fn timed(times: &mut Vec<(String, Duration)>, step: String, cmd: Command) -> Result<(), String> {
    timed_watching(times, step, cmd, &[]).0
}

/// [`timed`], which also says whether a line of the step's output contained one of
/// `watch`.
/// Both streams are read: a test's own messages (a panic, what it printed before
/// failing) reach libtest's failure report on stdout, not stderr.
fn timed_watching(
    times: &mut Vec<(String, Duration)>,
    step: String,
    mut cmd: Command,
    watch: &[&str],
) -> (Result<(), String>, bool) {
    use std::process::Stdio;
    eprintln!("xtask cross: {step}");
    let started = Instant::now();
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => return (Err(format!("{step}: {e}")), false),
    };
    let stdout = watch_lines(child.stdout.take(), watch, |line| println!("{line}"));
    let stderr = watch_lines(child.stderr.take(), watch, |line| eprintln!("{line}"));
    let (_, seen_out) = stdout.join().unwrap_or_default();
    let (warned, seen_err) = stderr.join().unwrap_or_default();
    let status = child.wait();
    times.push((step.clone(), started.elapsed()));
    let result = match status {
        Err(e) => Err(format!("{step}: {e}")),
        Ok(s) if !s.success() => Err(format!("{step} failed: {s}")),
        Ok(_) if warned => Err(format!("{step}: our crates have warnings (above)")),
        Ok(_) => Ok(()),
    };
    (result, seen_out || seen_err)
}

/// Passes `stream`'s lines to `print` on a thread of its own, and says at its end
/// whether one was a warning of our crates and whether one contained one of `watch`.
fn watch_lines<R: std::io::Read + Send + 'static>(
    stream: Option<R>,
    watch: &[&str],
    print: fn(&str),
) -> std::thread::JoinHandle<(bool, bool)> {
    use std::io::BufRead;
    let watch: Vec<String> = watch.iter().map(|w| (*w).to_owned()).collect();
    std::thread::spawn(move || {
        let (mut warned, mut seen) = (false, false);
        for line in stream
            .into_iter()
            .flat_map(|s| std::io::BufReader::new(s).lines().map_while(Result::ok))
        {
            warned |= line.starts_with("warning: `") && line.contains(" generated ");
            seen |= watch.iter().any(|w| line.contains(w.as_str()));
            print(&line);
        }
        (warned, seen)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marker of an emulator's fault is seen whichever stream carries it (libtest
    /// reports a failed test's messages on stdout), in either of its forms.
    #[test]
    fn a_marker_is_seen_on_either_stream() {
        let printed = [
            "panicked: Os { code: 1359, kind: Uncategorized }",
            "no child started: cannot start it: Internal error. (os error 1359)",
        ];
        for line in printed {
            for stream in ["", ">&2"] {
                let mut cmd = Command::new("sh");
                cmd.args(["-c", &format!("echo '{line}' {stream}; exit 3")]);
                let (result, seen) =
                    timed_watching(&mut Vec::new(), "step".into(), cmd, WINE_SPAWN_FAILED);
                assert!(result.is_err(), "{line} {stream}");
                assert!(seen, "{line} {stream}");
            }
        }
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo 'Os { code: 5, kind'; echo '(os error 13)'; exit 3",
        ]);
        let (result, seen) = timed_watching(&mut Vec::new(), "step".into(), cmd, WINE_SPAWN_FAILED);
        assert!(result.is_err() && !seen);
    }

    /// A run holding a build directory keeps another from taking it until it lets go;
    /// another directory is free meanwhile.
    #[test]
    fn a_held_directory_waits_for_its_holder() {
        let cache = tempfile::tempdir().unwrap();
        let qemu = cache.path().join("qemu");
        let held = hold(&qemu).unwrap();
        let other = std::fs::File::open(qemu.join("xtask-cross.lock")).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        let _top = hold(cache.path()).unwrap();
        drop(held);
        // Free once every copy of the holder's descriptor is closed: a process that
        // another test is starting holds one from its fork until its exec.
        assert!(telemetry_test_support::wait_until(
            Duration::from_secs(20),
            || other.try_lock().is_ok()
        ));
    }
}
