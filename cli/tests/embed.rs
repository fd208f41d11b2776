//! `telemetry_cli::run_with_writers` as a tool embeds it: its own name in messages,
//! its own default directory without `--dir`.

use std::process::ExitCode;

use telemetry::{Config, Program};

fn run(args: &[&str], config: &Config) -> (ExitCode, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("mytool telemetry").chain(args.iter().copied());
    let code = telemetry_cli::run_with_writers(argv, config, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
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
