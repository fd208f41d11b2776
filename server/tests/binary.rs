//! The `telemetry-server` binary as an operator runs it: a bad config is a one-line
//! error exit, SIGHUP reloads, SIGTERM lets an upload in flight finish, logs are JSON
//! lines on stderr, and `merge` is idempotent.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;

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
    assert_eq!(files_under(dir.path()), ["config.json"], "nothing created");

    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--storage", "ftp://x"])
        .arg("--config")
        .arg(dir.path().join("config.json"))
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
