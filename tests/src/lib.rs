//! Support for the end-to-end tests in `tests/tests/`: a loopback upload server and
//! the path of the example programs they drive. Run them with `cargo xtask integration`.
//!
//! ```
//! let server = telemetry_tests::UploadServer::start(r#"{"Programs": []}"#);
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! assert!(server.uploads().is_empty());
//! ```
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: String,
    /// The path, e.g. `/upload/2026-11-20`.
    pub path: String,
    /// The body.
    pub body: String,
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Request>>,
    upload_status: AtomicU16,
    delay_ms: AtomicU64,
}

/// An HTTP server on 127.0.0.1 that serves an upload config at `/config.json` and
/// records POSTs to `/upload/<date>`, answering them with a chosen status.
pub struct UploadServer {
    url: String,
    config: Arc<String>,
    state: Arc<State>,
}

impl UploadServer {
    /// Starts a server serving `config` (JSON). It runs until the process exits.
    pub fn start(config: &str) -> UploadServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let state = Arc::new(State::default());
        state.upload_status.store(200, Ordering::SeqCst);
        let config = Arc::new(config.to_owned());
        let (st, cfg) = (state.clone(), config.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (st, cfg) = (st.clone(), cfg.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &st, &cfg);
                });
            }
        });
        UploadServer { url, config, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where reports go: `<url>/upload`.
    pub fn upload_url(&self) -> String {
        format!("{}/upload", self.url)
    }

    /// Where the config is: `<url>/config.json`.
    pub fn config_url(&self) -> String {
        format!("{}/config.json", self.url)
    }

    /// The config served.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Answers uploads with `status` from now on.
    pub fn set_upload_status(&self, status: u16) {
        self.state.upload_status.store(status, Ordering::SeqCst);
    }

    /// Waits `delay` before answering any request.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every POST so far.
    pub fn uploads(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }
}

fn serve(stream: TcpStream, state: &State, config: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut len = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    std::thread::sleep(Duration::from_millis(state.delay_ms.load(Ordering::SeqCst)));
    let (status, reply) = match (method.as_str(), path.as_str()) {
        ("GET", "/config.json") => (200, config.to_owned()),
        ("POST", p) if p.starts_with("/upload/") => {
            (state.upload_status.load(Ordering::SeqCst), String::new())
        }
        _ => (404, String::new()),
    };
    state
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Request {
            method,
            path,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    stream.flush()
}

/// The path of the example program `name`, built by `cargo test -p telemetry-tests`
/// (Cargo builds a package's examples along with its tests).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
