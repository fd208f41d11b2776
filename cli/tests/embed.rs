//! `telemetry_cli::run_with_writers` as a tool embeds it: its own name in messages and
//! help, its own version, its privacy policy, its own directory without `--dir`, and
//! the ambient inputs it is given rather than the test process's environment (CI runs
//! this suite with `DO_NOT_TRACK=1` exported).

mod common;

use std::process::ExitCode;

use common::run_embedded;
use telemetry::{Config, Program};
use telemetry_cli::Options;
use telemetry_internal::Ambient;

const POLICY: &str = "https://example.com/mytool/privacy";

fn run(args: &[&str], config: &Config) -> (ExitCode, String, String) {
    let home = tempfile::tempdir().unwrap();
    run_embedded(
        args,
        config,
        &Options::new(),
        &Ambient::with_config_dir(home.path()),
    )
}

#[test]
fn uses_the_tools_dir_and_name() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::new(Program::new("mytool", "1.0.0")).dir(tmp.path());
    let (code, out, _) = run(&["local"], &config);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("mode")).unwrap(),
        "local\n"
    );
    assert!(out.contains("mytool telemetry view"), "{out}");

    let (code, out, _) = run(&["env"], &config);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        out.contains(&format!("dir: {}\n", tmp.path().display())),
        "{out}"
    );

    let (code, out, err) = run(&["nope"], &config);
    assert_eq!(code, ExitCode::from(2));
    assert!(out.is_empty());
    assert!(err.contains("Usage: mytool telemetry"), "{err}");

    let (code, out, err) = run(&["--help"], &config);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(err.is_empty());
    assert!(out.contains("Usage: mytool telemetry"), "{out}");

    // --version is the tool's, not the telemetry crate's.
    let (code, out, _) = run(&["--version"], &config);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out, "mytool telemetry 1.0.0\n");
}

#[test]
fn without_dir_uses_the_tools_directory_under_the_injected_root() {
    let home = tempfile::tempdir().unwrap();
    let ambient = Ambient::with_config_dir(home.path());
    let config = Config::new(Program::new("mytool", "1.0.0"));
    let (code, out, err) = run_embedded(&["off"], &config, &Options::new(), &ambient);
    assert_eq!(code, ExitCode::SUCCESS, "{err}");
    // Embedded, `off` is the tool's, not the user-wide switch.
    let root = home.path().join("telemetry");
    assert_eq!(
        std::fs::read_to_string(root.join("mytool/mode")).unwrap(),
        "off\n"
    );
    assert!(!root.join("mode").exists());
    assert!(out.contains("mytool telemetry local"), "{out}");
}

#[test]
fn do_not_track_comes_from_the_injected_ambient() {
    let home = tempfile::tempdir().unwrap();
    let config = Config::new(Program::new("mytool", "1.0.0"));
    let clear = Ambient::with_config_dir(home.path());
    let (_, out, _) = run_embedded(&["env"], &config, &Options::new(), &clear);
    assert!(
        out.contains("mode: local (no mode file; local is the default)"),
        "{out}"
    );
    let dnt = clear.clone().do_not_track(true);
    let (_, out, _) = run_embedded(&["env"], &config, &Options::new(), &dnt);
    assert!(out.contains("mode: off (DO_NOT_TRACK is set;"), "{out}");
    let (_, _, err) = run_embedded(&["on"], &config, &Options::new(), &dnt);
    assert!(err.contains("DO_NOT_TRACK is set"), "{err}");
    let (_, out, _) = run_embedded(&["view", "--text"], &config, &Options::new(), &dnt);
    assert!(
        out.contains("DO_NOT_TRACK is set in the environment"),
        "{out}"
    );
}

#[test]
fn the_privacy_policy_is_shown_by_on_env_and_help() {
    let home = tempfile::tempdir().unwrap();
    let ambient = Ambient::with_config_dir(home.path());
    let config = Config::new(Program::new("mytool", "1.0.0"));
    let options = Options::new().privacy_policy(POLICY);
    for args in [&["on"][..], &["env"], &["--help"]] {
        let (code, out, err) = run_embedded(args, &config, &options, &ambient);
        assert_eq!(code, ExitCode::SUCCESS, "{args:?}: {err}");
        assert!(out.contains(POLICY), "{args:?}: {out}");
    }
    let (_, out, _) = run_embedded(&["env"], &config, &Options::new(), &ambient);
    assert!(!out.contains("privacy policy"), "{out}");
}

#[test]
fn errors_are_one_line_with_the_tools_name() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    let config = Config::new(Program::new("mytool", "1.0.0")).dir(&file);
    let (code, _, err) = run(&["csv"], &config);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(err.starts_with("mytool telemetry: cannot read "), "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn no_home_is_a_one_line_error() {
    let config = Config::new(Program::new("mytool", "1.0.0"));
    let mut no_home = Ambient::with_config_dir("/unused");
    no_home.config_dir = None;
    let (code, _, err) = run_embedded(&["env"], &config, &Options::new(), &no_home);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(
        err,
        "mytool telemetry: no telemetry root: there is no home directory; use --dir PATH\n"
    );
}

/// Under the tool's pretended clock (`Config::clock`, for tests that back-date a week),
/// the embedded `on` dates the opt-in that day, so the back-dated week may be uploaded.
#[test]
fn on_dates_the_opt_in_by_the_tools_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let day = telemetry_internal::Day::parse("2026-11-09").unwrap();
    let config = Config::new(Program::new("mytool", "1.0.0"))
        .dir(tmp.path())
        .clock(day.start());
    let (code, out, _) = run(&["on"], &config);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("mode")).unwrap(),
        "on 2026-11-09\n"
    );
    assert!(out.contains("before 2026-11-09 is never uploaded"), "{out}");
}
