//! `telemetry upload` against a real HTTP server on 127.0.0.1, then `view` marking
//! what the saved config approves. The upload crate tests the protocol in depth; this
//! is the command's smoke test.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{counter_file, run_in, stderr, stdout};

/// Requests received: (request line, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A server that answers `GET /config.json` with `config` and every other request
/// with an empty 200, and records them all.
fn server(config: String) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let log = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push((
                request_line.trim().to_owned(),
                String::from_utf8_lossy(&body).into(),
            ));
            let body = if request_line.starts_with("GET /config.json ") {
                config.as_str()
            } else {
                ""
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (url, received)
}

fn approving_config() -> String {
    common::approving_config("mytool", "1.0.0", &["mytool/runs"])
}

/// A directory opted in on 2026-11-01 with one week of `mytool` ended 2026-11-20.
fn opted_in_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mode"), "on 2026-11-01\n").unwrap();
    counter_file(
        tmp.path(),
        ("mytool", "1.0.0"),
        ("2026-11-13", "2026-11-20"),
        &[("mytool/runs", 3), ("mytool/secret", 1)],
    );
    tmp
}

#[test]
fn uploads_approved_counters_and_view_marks_them() {
    let tmp = opted_in_dir();
    let dir = tmp.path();
    let config = dir.join("config.json");
    std::fs::write(&config, approving_config()).unwrap();
    let (url, received) = server(String::new());

    let out = run_in(
        dir,
        &[
            "upload",
            "--upload-url",
            &format!("{url}/upload"),
            "--config-file",
            config.to_str().unwrap(),
            "--start-time",
            "2026-11-21",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2026-11-20: uploaded\n");
    {
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 1, "{received:?}");
        let (request, body) = &received[0];
        assert!(request.starts_with("POST /upload/2026-11-20 "), "{request}");
        assert!(body.contains("mytool/runs"), "{body}");
        assert!(!body.contains("mytool/secret"), "{body}");
    }

    // A second run has nothing left to do.
    let again = run_in(
        dir,
        &[
            "upload",
            "--upload-url",
            &format!("{url}/upload"),
            "--config-file",
            config.to_str().unwrap(),
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(received.lock().unwrap().len(), 1);

    // `view` marks what the saved config approves, and that the week was uploaded.
    let view = run_in(dir, &["view", "--text"]);
    assert!(view.status.success(), "{}", stderr(&view));
    let text = stdout(&view);
    assert!(text.contains("  approved  mytool/runs\n"), "{text}");
    assert!(text.contains("  local     mytool/secret\n"), "{text}");
    assert!(text.contains("week ending 2026-11-20"), "{text}");
    assert!(text.contains(", uploaded)"), "{text}");
}

#[test]
fn a_config_that_cannot_be_read_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mode"), "on 2026-11-01\n").unwrap();
    counter_file(
        tmp.path(),
        ("mytool", "1.0.0"),
        ("2026-11-13", "2026-11-20"),
        &[("mytool/runs", 3)],
    );
    let out = run_in(
        tmp.path(),
        &[
            "upload",
            "--upload-url",
            "http://127.0.0.1:9/upload",
            "--config-file",
            tmp.path().join("missing.json").to_str().unwrap(),
            "--start-time",
            "2026-11-21",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.starts_with("telemetry: upload failed: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_bad_start_time_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(
        tmp.path(),
        &[
            "upload",
            "--upload-url",
            "http://127.0.0.1:9",
            "--config-url",
            "http://127.0.0.1:9",
            "--start-time",
            "yesterday",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a date YYYY-MM-DD"),
        "{}",
        stderr(&out)
    );
}

/// An embedding tool's own URLs are used when the flags are absent.
#[test]
fn embedded_upload_uses_the_tools_urls() {
    if telemetry_internal::do_not_track() {
        // In-process, DO_NOT_TRACK turns the mode off and nothing is sent.
        eprintln!("note: DO_NOT_TRACK is set; skipping the in-process upload test");
        return;
    }
    let tmp = opted_in_dir();
    let (url, received) = server(approving_config());
    let config = telemetry::Config::new(telemetry::Program::new("mytool", "1.0.0"))
        .dir(tmp.path())
        .upload_url(format!("{url}/upload"))
        .config_url(format!("{url}/config.json"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = telemetry::cli::run_with_writers(
        ["mytool telemetry", "upload", "--start-time", "2026-11-21"],
        &config,
        &mut out,
        &mut err,
    );
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{err}");
    assert_eq!(out, "2026-11-20: uploaded\n");
    let received = received.lock().unwrap();
    let requests: Vec<&str> = received.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].starts_with("GET /config.json "), "{requests:?}");
    assert!(
        requests[1].starts_with("POST /upload/2026-11-20 "),
        "{requests:?}"
    );
}
