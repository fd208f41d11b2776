//! `cargo xtask demo` end to end, as a newcomer runs it: the real xtask binary builds
//! the collector, the command and the example tool, and a back-dated week arrives at
//! the collector, merged, with its dashboard answering at the printed URL. The
//! binaries are built by the demo itself (with the workspace's target directory), so
//! the first run after a change may compile; the whole test is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Building the collector from cold on a loaded 2-core machine takes minutes; the demo
/// itself takes seconds.
const DEADLINE: Duration = Duration::from_secs(20 * 60);

/// `GET path` over HTTP/1.0; the status and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the collector");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_demo_shows_a_back_dated_week_arriving_at_the_collector() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("demo")
        // The demo's processes drop it; a developer's or CI's setting must not matter.
        .env("DO_NOT_TRACK", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run xtask demo");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });

    // Read until the demo waits for Enter, within the deadline.
    let began = Instant::now();
    let mut shown = Vec::new();
    loop {
        let left = DEADLINE.saturating_sub(began.elapsed());
        match received.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains("Press Enter to stop it");
                shown.push(line);
                if done {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "the demo did not finish within {DEADLINE:?}:\n{}",
                    shown.join("\n")
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                panic!(
                    "the demo ended ({status}) before it was done:\n{}\n{}",
                    shown.join("\n"),
                    errors.join().unwrap()
                );
            }
        }
    }
    let text = shown.join("\n");
    for expected in [
        "$ greeter --clock ",
        "telemetry on",
        "uploaded the report of the week ending ",
        "What arrived at the collector: 1 report(s)",
        "greeter/subcommand:greet     3",
        "greeter/subcommand:crash     1",
        "crash/panic ",
        "greeter::read_settings+0x",
        "Stayed on the machine, not approved by the config: greeter/name:default 1, greeter/name:given 2",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let summary = text.split("What arrived").nth(1).unwrap();
    assert!(!summary.contains("Ada"), "a name greeted arrived:\n{text}");

    // The dashboard answers at the printed URL while the demo waits, and shows the
    // week's data.
    let url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("the dashboard"))
        .map(str::trim)
        .expect("the dashboard's URL is printed");
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("not an http URL: {url}"));
    let (status, page) = http_get(addr, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("greeter/subcommand"), "{page}");

    // Enter stops the collector and removes the sandbox.
    let sandbox = text
        .lines()
        .find_map(|l| l.strip_prefix("A report's way from a tool to its collector, in a sandbox: "))
        .expect("the sandbox is named")
        .to_owned();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {}", errors.join().unwrap());
    assert!(
        !std::path::Path::new(&sandbox).exists(),
        "{sandbox} is left behind"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "the collector still listens on {addr}"
    );
}
