//! The `telemetry-server` binary as an operator runs it: a bad config is a one-line
//! error exit, SIGHUP reloads, SIGTERM lets an upload in flight finish, logs are JSON
//! lines on stderr, and `merge` is idempotent.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_telemetry-server");

/// A `telemetry-server serve` child, killed on drop if still running.
struct Served {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    fn start(dir: &Path) -> Served {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--merge-every-hours",
                "0",
            ])
            .arg("--config")
            .arg(dir.join("config.json"))
            .arg("--storage")
            .arg(file_url(&dir.join("data")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let mut served = Served {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            log,
            seen: Vec::new(),
        };
        let line = served.wait_for_log("\"serving\"");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        served.addr = event["addr"].as_str().unwrap().parse().unwrap();
        served
    }

    /// Waits (at most 20 s) for a stderr line containing `text`.
    fn wait_for_log(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no log line with {text:?}; got:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn signal(&self, name: &str) {
        // The shell's own `kill`: /usr/bin/kill (procps) is not on every machine.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{name} {}", self.child.id()))
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    dir
}

/// A report of a week that is recent by the real clock.
fn recent_report(x: f64) -> telemetry_upload::Report {
    let week = telemetry_internal::Day::of(std::time::SystemTime::now()).plus(-2);
    report(week, x)
}

#[test]
fn a_bad_config_at_start_is_a_one_line_error_exit() {
    let dir = setup();
    std::fs::write(dir.path().join("config.json"), "{\"SampleRate\": 7}").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(dir.path().join("config.json"))
        .arg("--storage")
        .arg(file_url(&dir.path().join("data")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("telemetry-server: the upload config "),
        "{stderr}"
    );
    assert!(
        stderr.contains("SampleRate 7 is not between 0 and 1"),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            "x.json",
            "--storage",
            "ftp://x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot use storage \"ftp://x\""),
        "{stderr}"
    );
}

#[test]
fn sighup_reloads_the_config_and_a_bad_one_keeps_the_old() {
    let dir = setup();
    let mut served = Served::start(dir.path());
    let url = format!("http://{}/config.json", served.addr);
    assert_eq!(get(&url).1, CONFIG);

    // Reloads are polled every 2 s too; SIGHUP makes it immediate and is logged.
    let newer = CONFIG.replace("1.1.0", "1.2.0");
    std::fs::write(dir.path().join("config.json"), &newer).unwrap();
    served.signal("HUP");
    served.wait_for_log("upload config reloaded");
    assert_eq!(get(&url).1, newer);

    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    served.signal("HUP");
    let line = served.wait_for_log("keeping the old one");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["level"], "ERROR", "{line}");
    assert_eq!(get(&url).1, newer);
    assert!(served.child.try_wait().unwrap().is_none(), "still serving");
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish() {
    let dir = setup();
    let mut served = Served::start(dir.path());
    let report = recent_report(0.5);
    let body = json(&report);
    let mut stream = TcpStream::connect(served.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /upload/{} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        report.week,
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..20]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    served.signal("TERM");
    served.wait_for_log("shutting down");
    // New connections are refused while the old one finishes.
    assert!(TcpStream::connect(served.addr).is_err());
    stream.write_all(&body[20..]).unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.ends_with("stored\n"), "{answer}");
    let status = served.wait();
    assert!(status.success(), "{status}");
    assert_eq!(files_under(&dir.path().join("data")).len(), 1);
}

#[test]
fn logs_are_json_lines_and_merge_is_idempotent() {
    let dir = setup();
    let mut served = Served::start(dir.path());
    let week = recent_report(0.5).week;
    assert_eq!(
        post(
            &format!("http://{}/upload/{week}", served.addr),
            b"nonsense"
        )
        .0,
        400
    );
    let line = served.wait_for_log("upload rejected");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a report"),
        "{line}"
    );
    assert!(event["timestamp"].is_string(), "{line}");
    for x in [0.25, 0.5] {
        let (status, body) = post(
            &format!("http://{}/upload/{week}", served.addr),
            &json(&recent_report(x)),
        );
        assert_eq!(status, 200, "{body}");
    }
    served.signal("TERM");
    assert!(served.wait().success());
    for line in &served.seen {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }

    let merge = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("merge")
            .arg("--storage")
            .arg(file_url(&dir.path().join("data")))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(merge(&[]), format!("{week}: merged 2 reports\n"));
    let merged = std::fs::read(dir.path().join(format!("data/merged/{week}.json"))).unwrap();
    assert_eq!(merge(&[]), "", "nothing left to merge");
    assert_eq!(
        merge(&["--date", &week]),
        format!("{week}: merged 2 reports\n")
    );
    assert_eq!(
        std::fs::read(dir.path().join(format!("data/merged/{week}.json"))).unwrap(),
        merged
    );

    let out = Command::new(BIN)
        .args([
            "merge",
            "--storage",
            "file:///nonexistent/x",
            "--date",
            "2026-02-30",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
}
