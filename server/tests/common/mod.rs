//! Shared by the collector's tests: a real server on 127.0.0.1, clients, fixtures.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod moto;
mod served;

#[allow(unused_imports)] // Not every test binary uses moto.
pub use moto::*;
#[allow(unused_imports)] // Not every test binary runs the server as a child.
pub use served::*;
use telemetry_internal::Day;
use telemetry_server::{ServeConfig, Storage};
use telemetry_upload::{ProgramReport, Report, testing};

/// The day the tests pretend it is, so that their weeks are recent.
pub fn today() -> Day {
    Day::parse("2026-11-23").unwrap()
}

/// A week that ended recently.
pub fn week() -> Day {
    Day::parse("2026-11-20").unwrap()
}

pub const CONFIG: &str = r#"{
    "OS": ["linux", "macos"], "Arch": ["x86_64", "aarch64"], "Toolchain": ["1.95.0"],
    "SampleRate": 1,
    "Programs": [{"Name": "mytool", "Versions": ["1.0.0", "1.1.0"],
        "Counters": [{"Name": "mytool/runs", "Rate": 1}, {"Name": "mytool/flag:{json,text}", "Rate": 1},
            {"Name": "mytool/rare", "Rate": 0.1}],
        "Stacks": [{"Name": "mytool/bug", "Rate": 1, "Depth": 16}]}]
}"#;

/// A report of `mytool` that the config approves.
pub fn report(week: Day, x: f64) -> Report {
    testing::report(
        &week.to_string(),
        x,
        vec![program(&[("mytool/runs", 3), ("mytool/flag:json", 1)])],
    )
}

/// `mytool` 1.0.0 on linux/x86_64 with `counters`.
pub fn program(counters: &[(&str, u64)]) -> ProgramReport {
    testing::program_report("mytool", "1.0.0").with_counters(counters)
}

/// [`CONFIG`] that also approves a counter whose name is markup, which every page
/// must show as text.
pub fn config_with_hostile_counter() -> String {
    CONFIG.replace(
        "\"mytool/runs\"",
        "\"mytool/<script>alert(1)</script>\", \"Rate\": 1}, {\"Name\": \"mytool/runs\"",
    )
}

/// The stdout of a finished command, which must have succeeded (else its stderr
/// fails the test).
pub fn succeeded(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// The stderr of a command that refused to run: exit status 1 and one line.
pub fn one_line_refusal(out: std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).expect("stderr is UTF-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

pub fn json(report: &Report) -> Vec<u8> {
    serde_json::to_vec(report).unwrap()
}

/// A collector running in this process on a loopback port, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub storage: Storage,
    pub config_file: PathBuf,
    pub runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), telemetry_server::ServerError>>>,
}

impl TestServer {
    /// A server with file storage in a temp dir and [`CONFIG`].
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    pub fn start_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&file_url(&dir.path().join("data")), []).unwrap();
        Self::start_on(dir, storage, adjust)
    }

    pub fn start_on(
        dir: tempfile::TempDir,
        storage: Storage,
        adjust: impl FnOnce(&mut ServeConfig),
    ) -> TestServer {
        let config_file = dir.path().join("config.json");
        if !config_file.exists() {
            std::fs::write(&config_file, CONFIG).unwrap();
        }
        let mut settings = ServeConfig::new(&config_file, storage.clone());
        settings.today = Some(today());
        settings.merge_every = None;
        settings.reload_interval = Duration::from_millis(50);
        settings.shutdown_grace = Duration::from_secs(5);
        adjust(&mut settings);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = runtime.spawn(telemetry_server::serve(listener, settings, async {
            let _ = stopped.await;
        }));
        let server = TestServer {
            addr,
            dir,
            storage,
            config_file,
            runtime,
            stop: Some(stop),
            handle: Some(handle),
        };
        // `serve` reads the config before it accepts: wait for that, so a test that
        // rewrites the file next cannot race the first read.
        assert_eq!(server.get("/healthz").0, 200, "the server did not start");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        post(&self.url(path), body)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        get(&self.url(path))
    }

    /// Writes `config` as the server's upload config and waits until it serves it
    /// (it validates uploads with what it serves).
    pub fn serve_config(&self, config: &str) {
        std::fs::write(&self.config_file, config).unwrap();
        telemetry_test_support::eventually(
            Duration::from_secs(30),
            "the new config to be loaded",
            || self.get("/config.json").1 == config,
        );
    }

    pub fn upload(&self, report: &Report) -> (u16, String) {
        self.post(&format!("/upload/{}", report.week), &json(report))
    }

    /// Stops the server and returns what `serve` returned.
    pub fn stop(mut self) -> Result<(), telemetry_server::ServerError> {
        let _ = self.stop.take().unwrap().send(());
        let handle = self.handle.take().unwrap();
        self.runtime.block_on(handle).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = self.runtime.block_on(handle);
        }
    }
}

pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn post(url: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = post_with_headers(url, body);
    (status, body)
}

pub fn get(url: &str) -> (u16, String) {
    let (status, _, body) = get_with_headers(url);
    (status, body)
}

pub fn get_with_headers(url: &str) -> (u16, Vec<(String, String)>, String) {
    answer(agent().get(url).call().unwrap())
}

pub fn post_with_headers(url: &str, body: &[u8]) -> (u16, Vec<(String, String)>, String) {
    answer(agent().post(url).send(body).unwrap())
}

/// A response's status, headers and body.
fn answer(mut response: ureq::http::Response<ureq::Body>) -> (u16, Vec<(String, String)>, String) {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.body_mut().read_to_string().unwrap();
    (status, headers, body)
}

/// The value of header `name` (lower case), which must be there.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> &'h str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

/// Sends raw bytes and reads until the server closes the connection (or 20 s pass).
pub fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer and close before reading everything we send.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status line's code of a raw HTTP answer.
pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The bytes sent over established loopback connections to `port` that the server
/// has not read yet (`/proc/net/tcp`: the server's receive queues, connections not
/// accepted yet included, and the clients' send queues). Zero once the server has
/// read everything its clients sent so far.
pub fn unread_bytes(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let mut unread = 0u64;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port_of = |address: &str| {
            address
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        };
        if fields.len() < 5 || fields[3] != "01" {
            continue;
        }
        let Some((tx, rx)) = fields[4].split_once(':') else {
            continue;
        };
        let queued = |hex: &str| u64::from_str_radix(hex, 16).unwrap_or(0);
        if port_of(fields[1]) == Some(port) {
            unread += queued(rx);
        }
        if port_of(fields[2]) == Some(port) {
            unread += queued(tx);
        }
    }
    unread
}
