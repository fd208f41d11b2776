//! Test helpers: a real HTTP server on 127.0.0.1, telemetry directories with real
//! counter files, and dates.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use telemetry_internal::{Date, Dir, Mode, Program, parse_date};
use telemetry_upload::{ConfigSource, RunConfig, RunSummary};

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a POSTed report is JSON")
    }
}

struct Shared {
    requests: Mutex<Vec<Request>>,
    status: AtomicU16,
    /// Accept connections but never answer (for time-outs).
    silent: AtomicBool,
    config: Mutex<Vec<u8>>,
    stop: AtomicBool,
}

/// An HTTP/1.1 server on 127.0.0.1 that records every request and answers POSTs with
/// a settable status and `GET /config.json` with a settable body.
pub struct Server {
    pub url: String,
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(status: u16) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            status: AtomicU16::new(status),
            silent: AtomicBool::new(false),
            config: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        Server {
            url: format!("http://{addr}/upload"),
            shared,
            addr,
            thread: Some(thread),
        }
    }

    pub fn config_url(&self) -> String {
        format!("http://{}/config.json", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
    }

    pub fn set_config(&self, config: &str) {
        *self.shared.config.lock().unwrap() = config.as_bytes().to_vec();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn posts(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    pub fn gets(&self) -> usize {
        self.requests().iter().filter(|r| r.method == "GET").count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.silent.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, s: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    s.requests.lock().unwrap().push(Request {
        method: method.clone(),
        path: path.clone(),
        body,
    });
    // A silent server holds the connection open until the test ends (bounded).
    let mut waited = 0;
    while s.silent.load(Ordering::SeqCst) && waited < 300 {
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    let (status, body) = if method == "GET" {
        let config = s.config.lock().unwrap().clone();
        if config.is_empty() {
            (404, Vec::new())
        } else {
            (200, config)
        }
    } else {
        (s.status.load(Ordering::SeqCst), b"ok".to_vec())
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

pub fn day(text: &str) -> Date {
    parse_date(text).unwrap_or_else(|| panic!("bad date {text}"))
}

/// Midnight UTC of `text`.
pub fn at(text: &str) -> SystemTime {
    SystemTime::from(day(text).midnight().assume_utc())
}

pub const TOOL: Program = Program::new("tool", "1.0.0");

/// A config approving `counters` (and stack `stacks`) of `tool@1.0.0` on this platform.
pub fn config_json(counters: &[&str], stacks: &[&str]) -> String {
    let list = |names: &[&str], depth: bool| {
        names
            .iter()
            .map(|n| {
                let extra = if depth { ", \"Depth\": 16" } else { "" };
                format!(
                    "{{\"Name\": {}, \"Rate\": 1{extra}}}",
                    serde_json::to_string(n).unwrap()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"{{"OS": ["{}"], "Arch": ["{}"], "Toolchain": ["{}"], "SampleRate": 1,
  "Programs": [{{"Name": "tool", "Versions": ["1.0.0"], "Counters": [{}], "Stacks": [{}]}}]}}"#,
        telemetry_internal::OS,
        telemetry_internal::ARCH,
        telemetry_internal::toolchain(),
        list(counters, false),
        list(stacks, true),
    )
}

/// A telemetry directory, a server, and a config file.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub server: Server,
    pub config_file: PathBuf,
}

impl Env {
    /// Mode `on` since 2026-01-01, a 200 server, a config approving `counters`.
    pub fn new(counters: &[&str]) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let config_file = tmp.path().join("upload-config.json");
        std::fs::write(&config_file, config_json(counters, &[])).unwrap();
        let env = Env {
            server: Server::start(200),
            tmp,
            config_file,
        };
        env.set_mode(Mode::On {
            since: day("2026-01-01"),
        });
        env
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("telemetry")
    }

    pub fn dir(&self) -> Dir {
        Dir::new(self.root())
    }

    pub fn local(&self) -> PathBuf {
        self.dir().local()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.dir().set_mode(mode).unwrap();
    }

    /// A counter file of `program` for `begin..end`.
    pub fn count(
        &self,
        program: &Program,
        begin: &str,
        end: &str,
        counts: &[(&str, u64)],
    ) -> PathBuf {
        telemetry_counter::testing::write_file(&self.local(), program, day(begin), day(end), counts)
            .unwrap()
    }

    pub fn config(&self, start: &str) -> RunConfig {
        let mut config = RunConfig::new(
            self.root(),
            self.server.url.clone(),
            ConfigSource::File(self.config_file.clone()),
        );
        config.start_time = Some(at(start));
        config.timeout = Duration::from_secs(10);
        config
    }

    pub fn run(&self, start: &str) -> RunSummary {
        telemetry_upload::run(self.config(start)).expect("the run succeeds")
    }

    /// Names of the files in `local/` (or `upload/`), sorted.
    pub fn names(&self, dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    pub fn local_names(&self) -> Vec<String> {
        self.names(&self.local())
            .into_iter()
            .filter(|n| n != "weekends")
            .collect()
    }

    pub fn upload_names(&self) -> Vec<String> {
        self.names(&self.dir().upload())
    }

    pub fn count_files(&self) -> usize {
        self.local_names()
            .iter()
            .filter(|n| n.ends_with(".v1.count"))
            .count()
    }
}

/// A writer that tests can read back: the run's log.
#[derive(Clone, Default)]
pub struct SharedLog(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedLog {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The statuses of a summary as text, one per report.
pub fn lines(summary: &RunSummary) -> Vec<String> {
    summary.reports.iter().map(ToString::to_string).collect()
}
