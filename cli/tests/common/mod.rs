//! Helpers shared by the `telemetry` command's tests: run the real binary, build
//! telemetry directories holding real counter files.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use telemetry::Program;
use telemetry_internal::parse_date;

/// The `telemetry` binary, with `DO_NOT_TRACK` cleared and the user's config directory
/// pointed at an empty place, only in the child, so neither the environment the tests
/// run in (CI exports `DO_NOT_TRACK=1`) nor this machine's real telemetry root changes
/// what they see.
pub fn telemetry() -> Command {
    let nowhere = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-tests-empty-home");
    telemetry_with_home(&nowhere)
}

/// The `telemetry` binary with `home` as the user's home and config directory.
pub fn telemetry_with_home(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    cmd.env_remove("DO_NOT_TRACK")
        .env_remove("BROWSER")
        .env_remove("TELEMETRY_DEBUG")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("APPDATA", home.join("AppData"))
        .stdin(Stdio::null());
    cmd
}

/// The telemetry root the binary uses under [`telemetry_with_home`]`(home)`.
pub fn root_in(home: &Path) -> PathBuf {
    let config = if cfg!(windows) {
        home.join("AppData")
    } else if cfg!(target_os = "macos") {
        home.join("Library").join("Application Support")
    } else {
        home.join(".config")
    };
    config.join("telemetry")
}

/// Runs `telemetry ARGS…` with `home` as the home directory.
pub fn run_home(home: &Path, args: &[&str]) -> Output {
    telemetry_with_home(home)
        .args(args)
        .output()
        .expect("run telemetry")
}

/// Runs `telemetry --dir DIR ARGS…`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    telemetry()
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run telemetry")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// A Go-written fixture: `testdata/go-v1/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/go-v1")
        .join(name)
}

/// Writes a real counter file for `program@version` covering `begin..end` into
/// `<dir>/local/`.
pub fn counter_file(
    dir: &Path,
    (name, version): (&str, &str),
    (begin, end): (&str, &str),
    counts: &[(&str, u64)],
) -> PathBuf {
    telemetry::counter::testing::write_file(
        &dir.join("local"),
        &Program::owned(name, version),
        parse_date(begin).unwrap(),
        parse_date(end).unwrap(),
        counts,
    )
    .expect("write counter file")
}

/// A small telemetry directory with one program's counter file: plain counters, a
/// chart (`mytool/latency:…`) and a stack counter.
pub fn sample_dir(dir: &Path) {
    counter_file(
        dir,
        ("mytool", "1.2.0"),
        ("2026-11-16", "2026-11-21"),
        &[
            ("mytool/errors", 3),
            ("mytool/latency:<10ms", 42),
            ("mytool/latency:10ms-100ms", 17),
            ("mytool/latency:>100ms", 5),
            ("crash/panic\nmytool::run+0x1f\nmytool::main+0x2a", 2),
        ],
    );
}

/// An upload config approving `counters` of `program@version` on this platform.
pub fn approving_config(program: &str, version: &str, counters: &[&str]) -> String {
    let counters: Vec<String> = counters
        .iter()
        .map(|c| format!(r#"{{"Name":"{c}","Rate":1}}"#))
        .collect();
    format!(
        r#"{{"OS":["{}"],"Arch":["{}"],"Toolchain":["{}"],"SampleRate":1,
            "Programs":[{{"Name":"{program}","Versions":["{version}"],"Counters":[{}]}}]}}"#,
        telemetry_internal::OS,
        telemetry_internal::ARCH,
        telemetry_internal::toolchain(),
        counters.join(","),
    )
}

/// The example tool `tool_with_dir` (built by `cargo test` with the tests), run as a
/// tool author's test would run their tool: sandboxed under `home` (`HOME` and
/// `XDG_CONFIG_HOME`, so nothing reaches this machine's real telemetry root), with
/// `DO_NOT_TRACK` and `TELEMETRY_DEBUG` cleared.
pub fn tool_with_dir(home: &Path, name: &str, dir: &Path) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/examples/tool_with_dir
    let examples = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples");
    let exe = examples.join(format!("tool_with_dir{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.exists(),
        "{} is missing: `cargo test -p telemetry-cli` builds it (a run of one test target \
         needs `--examples` too)",
        exe.display()
    );
    let mut cmd = Command::new(exe);
    cmd.env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("APPDATA", home.join("AppData"))
        .stdin(Stdio::null())
        .arg(name)
        .arg(dir);
    cmd
}

/// `telemetry_cli::run_with_writers` as the tool `mytool` embeds it (`mytool
/// telemetry ARGS…`), with `config`, `options` and the ambient inputs `ambient`: its
/// exit code, stdout and stderr.
pub fn run_embedded(
    args: &[&str],
    config: &telemetry::Config,
    options: &telemetry_cli::Options,
    ambient: &telemetry_internal::Ambient,
) -> (std::process::ExitCode, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("mytool telemetry").chain(args.iter().copied());
    let code = telemetry_cli::run_with_writers(argv, config, options, ambient, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("stdout is UTF-8"),
        String::from_utf8(err).expect("stderr is UTF-8"),
    )
}
