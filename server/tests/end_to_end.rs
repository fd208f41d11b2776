//! The real client against the real collector: `telemetry upload` (the CLI's upload
//! command, in process) builds a week's report from a counter file, fetches the
//! config from the collector's `/config.json`, and POSTs to its `/upload/<date>`;
//! then the collector merges and charts it.

mod common;

use std::path::Path;

use common::*;
use telemetry::{Config, Program};
use telemetry_internal::Day;

/// A config approving `mytool` as this build counts it (its toolchain, OS, arch).
fn native_config() -> String {
    format!(
        r#"{{"OS": ["{}"], "Arch": ["{}"], "Toolchain": ["{}"], "SampleRate": 1,
        "Programs": [{{"Name": "mytool", "Versions": ["1.0.0"],
            "Counters": [{{"Name": "mytool/runs", "Rate": 1}}, {{"Name": "mytool/flag:{{json,text}}", "Rate": 1}}],
            "Stacks": [{{"Name": "mytool/bug", "Rate": 1, "Depth": 16}}]}}]}}"#,
        telemetry_internal::OS,
        telemetry_internal::ARCH,
        telemetry_internal::toolchain()
    )
}

/// A telemetry directory opted in on 2026-11-01 with the week ended 2026-11-20.
fn opted_in_dir(root: &Path) {
    std::fs::create_dir_all(root.join("local")).unwrap();
    std::fs::write(root.join("mode"), "on 2026-11-01\n").unwrap();
    telemetry_counter::testing::write_file(
        &root.join("local"),
        &Program::new("mytool", "1.0.0"),
        Day::parse("2026-11-13").unwrap().date(),
        Day::parse("2026-11-20").unwrap().date(),
        &[
            ("mytool/runs", 3),
            ("mytool/flag:json", 2),
            ("mytool/secret-path", 1),
            ("mytool/bug\nmytool::main+0x10\nmytool::run+0x22", 1),
        ],
    )
    .unwrap();
}

/// `telemetry --dir DIR upload …` in process; returns (exit ok, stdout, stderr).
fn telemetry_upload(dir: &Path, server: &TestServer) -> (bool, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = telemetry_cli::run_with_writers(
        [
            "telemetry",
            "--dir",
            dir.to_str().unwrap(),
            "upload",
            "--upload-url",
            &server.url("/upload"),
            "--config-url",
            &server.url("/config.json"),
            "--start-time",
            "2026-11-21",
        ],
        &Config::new(Program::new("mytool", "1.0.0")),
        &telemetry_cli::Options::new(),
        // DO_NOT_TRACK unset, whatever the environment running the test says.
        &telemetry_internal::Ambient::with_config_dir(dir.join("no-config-dir")),
        &mut out,
        &mut err,
    );
    (
        code == std::process::ExitCode::SUCCESS,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn server_with_native_config(
    adjust: impl FnOnce(&mut telemetry_server::ServeConfig),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), native_config()).unwrap();
    let storage = telemetry_server::Storage::open(&file_url(&dir.path().join("data")), []).unwrap();
    TestServer::start_on(dir, storage, adjust)
}

#[test]
fn telemetry_upload_is_stored_merged_and_charted() {
    let server = server_with_native_config(|_| {});
    let client = tempfile::tempdir().unwrap();
    opted_in_dir(client.path());

    let (ok, out, err) = telemetry_upload(client.path(), &server);
    assert!(ok, "{err}");
    assert_eq!(out, "2026-11-20: uploaded\n", "{err}");
    let stored = files_under(&server.data());
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].starts_with("uploaded/2026-11-20/"), "{stored:?}");
    let report = std::fs::read_to_string(server.data().join(&stored[0])).unwrap();
    assert!(report.contains("mytool/runs"), "{report}");
    assert!(!report.contains("secret-path"), "{report}");

    // A second run has nothing to send.
    let (ok, _, err) = telemetry_upload(client.path(), &server);
    assert!(ok, "{err}");
    assert_eq!(files_under(&server.data()).len(), 1);

    let merged = server
        .runtime
        .block_on(telemetry_server::merge(&server.storage, None))
        .unwrap();
    assert_eq!(merged[0].reports, 1);
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("mytool/runs"), "{page}");
    assert!(page.contains("mytool::main+0x10"), "{page}");
}

#[test]
fn a_rejected_report_is_dropped_by_the_client() {
    // The collector's clock says the week is long gone: 400, and the client, told
    // so, deletes the report instead of retrying it for ever.
    let server = server_with_native_config(|c| c.today = Day::parse("2026-12-31"));
    let client = tempfile::tempdir().unwrap();
    opted_in_dir(client.path());
    let (ok, out, err) = telemetry_upload(client.path(), &server);
    assert!(ok, "{err}");
    assert_eq!(
        out, "2026-11-20: rejected by the server (400); deleted\n",
        "{err}"
    );
    assert_eq!(files_under(&server.data()), Vec::<String>::new());
}

#[test]
fn storage_trouble_makes_the_client_retry_later() {
    let server = server_with_native_config(|_| {});
    std::fs::write(server.data().join("uploaded"), "not a directory").unwrap();
    let client = tempfile::tempdir().unwrap();
    opted_in_dir(client.path());
    let (ok, out, err) = telemetry_upload(client.path(), &server);
    assert!(ok, "{err}");
    assert!(out.starts_with("2026-11-20: kept for retry"), "{out}{err}");
    // Storage is back: the next run sends the kept report.
    std::fs::remove_file(server.data().join("uploaded")).unwrap();
    let (ok, out, err) = telemetry_upload(client.path(), &server);
    assert!(ok, "{err}");
    assert_eq!(out, "2026-11-20: uploaded\n", "{err}");
    assert_eq!(files_under(&server.data()).len(), 1);
}
