//! The README's "Try it" command, exactly as written there, run by `sh` from the
//! workspace root: it passes, and what it prints reads as the example tool's data.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The first ```sh block after `heading` in the README.
fn command_under(heading: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in README.md"))
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a ```sh block")
        .0;
    block.trim().to_owned()
}

#[test]
fn the_try_it_command_shows_the_hello_tools_counts() {
    let command = command_under("## Try it");
    assert!(command.contains("--example hello"), "{command}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The command says `cargo`: run it with the cargo running these tests.
    let cargo_dir = Path::new(&cargo)
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(cargo_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut child = Command::new("sh")
        .args(["-c", &command])
        .current_dir(&root)
        .env("PATH", path)
        // As a newcomer runs it: `DO_NOT_TRACK` (which CI's second pass exports) would
        // rightly leave the directory empty.
        .env_remove("DO_NOT_TRACK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // Building the example and the command from cold may take minutes.
    let mut status = None;
    let finished = telemetry_test_support::wait_until(Duration::from_secs(15 * 60), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !finished {
        let _ = child.kill();
        panic!("{command} did not finish in time");
    }
    let status = status.unwrap();
    let out = reader.join().unwrap();
    assert!(status.success(), "{status}: {}", errors.join().unwrap());
    for expected in [
        "Hello, Ada!\nHello, Grace!\n(counted into ",
        "\"Program\": \"hello\"",
        "\"hello/runs\": 1",
        "\"hello/greetings\": 2",
        "\"hello/name:given\": 2",
        "\"hello/long-name\\nhello::greet+0x",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
    assert!(!out.contains("telemetry-counter@"), "{out}");
    assert!(
        !out.contains("Ada\""),
        "a name given reached a counter:\n{out}"
    );
}

/// `cargo xtask --help` lists every task, one line each, and exits 0; an unknown task
/// is a usage error.
#[test]
fn help_lists_the_tasks_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    for task in ["test ", "integration ", "faults ", "demo ", "cross "] {
        let lines = help
            .lines()
            .filter(|l| l.trim_start().starts_with(task))
            .count();
        assert_eq!(lines, 1, "{task:?} in:\n{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
