//! The collector on S3-compatible storage: moto's S3 server (`moto_server`, from
//! PyPI's `moto[server]`, installed by `.ci/install-moto`), started by the test on a
//! free loopback port and stopped after it. Without `moto_server` on `PATH` each test
//! is skipped and says so, unless CI requires it (`telemetry_test_support::Tool`).

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use telemetry_server::Storage;
use telemetry_test_support::eventually;

const BUCKET: &str = "telemetry-test";

struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// moto on a free port; `None` when it is not installed (the test is skipped).
    fn start() -> Option<Moto> {
        let exe = telemetry_test_support::Tool::MOTO.find(&["moto_server"])?;
        // A free port: bind, read, release. moto binds it again at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run moto_server ({err}): install it with .ci/install-moto (pip install \"moto[server]\")")
            });
        let mut moto = Moto { child, port };
        eventually(Duration::from_secs(60), "moto_server to listen", || {
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!("moto_server exited at start: {status}");
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        // moto takes unsigned requests: create the bucket with a plain PUT.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let status = agent
            .put(&format!("{}/{BUCKET}", moto.endpoint()))
            .send_empty()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "creating the bucket");
        Some(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.endpoint()),
            ("AWS_ALLOW_HTTP", "true"),
            ("UNRELATED", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The keys under `prefix`, listed by S3's own API.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let mut response = ureq::get(&format!(
            "{}/{BUCKET}?list-type=2&prefix={prefix}",
            self.endpoint()
        ))
        .call()
        .unwrap();
        let xml = response.body_mut().read_to_string().unwrap();
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2026-11-20: merged 2 reports\n"
    );
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
