//! `telemetry upload` against a real HTTP server on 127.0.0.1, then `view` marking
//! what the saved config approves. The upload crate tests the protocol in depth; this
//! is the command's smoke test.

mod common;

use common::{counter_file, run_in, stderr, stdout};
use telemetry_upload::testing::LoopbackServer;

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
    let server = LoopbackServer::start();

    let out = run_in(
        dir,
        &[
            "upload",
            "--upload-url",
            &server.upload_url(),
            "--config-file",
            config.to_str().unwrap(),
            "--start-time",
            "2026-11-21",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2026-11-20: uploaded\n");
    {
        let received = server.requests();
        assert_eq!(received.len(), 1, "{received:?}");
        let request = &received[0];
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/upload/2026-11-20"),
            "{request:?}"
        );
        let body = request.text();
        assert!(body.contains("mytool/runs"), "{body}");
        assert!(!body.contains("mytool/secret"), "{body}");
    }

    // A second run has nothing left to do.
    let again = run_in(
        dir,
        &[
            "upload",
            "--upload-url",
            &server.upload_url(),
            "--config-file",
            config.to_str().unwrap(),
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(server.requests().len(), 1);

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
    let server = LoopbackServer::start();
    server.set_config(&approving_config());
    let config = telemetry::Config::new(telemetry::Program::new("mytool", "1.0.0"))
        .dir(tmp.path())
        .upload_url(server.upload_url())
        .config_url(server.config_url());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = telemetry_cli::run_with_writers(
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
    let requests: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        requests,
        [
            ("GET".to_owned(), "/config.json".to_owned()),
            ("POST".to_owned(), "/upload/2026-11-20".to_owned()),
        ],
    );
}
