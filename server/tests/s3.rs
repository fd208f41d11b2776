//! The collector on S3-compatible storage: moto's S3 server (`common::Moto`), started
//! by the test on a free loopback port and stopped after it. Without `moto_server` on
//! `PATH` each test is skipped and says so, unless CI requires it
//! (`telemetry_test_support::Tool`).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use telemetry_server::Storage;

fn s3_server(moto: &Moto) -> TestServer {
    let storage = Storage::open(&format!("s3://{BUCKET}/collector"), moto.env()).unwrap();
    TestServer::start_on(tempfile::tempdir().unwrap(), storage, |_| {})
}

#[test]
fn s3_stores_once_merges_and_charts() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let server = s3_server(&moto);
    let first = report(week(), 0.25);
    assert_eq!(server.upload(&first), (200, "stored\n".to_owned()));
    assert_eq!(server.upload(&first), (200, "already stored\n".to_owned()));
    assert_eq!(server.upload(&report(week(), 0.5)).0, 200);
    let mut bad = report(week(), 0.75);
    bad.programs[0].counters.insert("mytool/secret".into(), 1);
    assert_eq!(server.upload(&bad).0, 400);
    assert_eq!(
        moto.keys("collector/"),
        [
            "collector/uploaded/2026-11-20/0.25.json",
            "collector/uploaded/2026-11-20/0.5.json"
        ]
    );

    let merged = server
        .runtime
        .block_on(telemetry_server::merge(&server.storage, None))
        .unwrap();
    assert_eq!((merged.len(), merged[0].reports), (1, 2));
    assert!(
        server
            .runtime
            .block_on(telemetry_server::merge(&server.storage, None))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        moto.keys("collector/merged/"),
        ["collector/merged/2026-11-20.json"]
    );
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("the week ending 2026-11-20"), "{page}");

    // The binary reads the same settings from its environment.
    let out = Command::new(env!("CARGO_BIN_EXE_telemetry-server"))
        .args([
            "merge",
            "--storage",
            &format!("s3://{BUCKET}/collector"),
            "--date",
            "2026-11-20",
        ])
        .env_clear()
        .envs(moto.env())
        .output()
        .unwrap();
    assert_eq!(succeeded(out), "2026-11-20: merged 2 reports\n");
}

#[test]
fn s3_down_is_503_and_nothing_is_stored() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    let server = s3_server(&moto);
    moto.stop();
    let started = Instant::now();
    let (status, body) = server.upload(&report(week(), 0.25));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("nothing was stored"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let err = server
        .runtime
        .block_on(telemetry_server::merge(&server.storage, None))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("storage failed while listing uploaded/"),
        "{err}"
    );
    assert_eq!(server.get("/").0, 503);
    assert_eq!(server.get("/healthz").0, 200);
}
