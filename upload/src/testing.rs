//! For tests of programs that upload: [`LoopbackServer`], a real HTTP server on
//! loopback (`127.0.0.1`), never anything else; and the reports tests build by hand
//! ([`report`], [`program_report`]).
//!
//! It serves an upload config at `GET /config.json`, answers `POST /upload/<date>`
//! with a status the test chooses, and records every request it receives, so a test
//! can point [`RunConfig`](crate::RunConfig) (or a whole program) at it and then look
//! at exactly what was sent. It can also answer late ([`LoopbackServer::set_delay`]) or
//! not at all ([`LoopbackServer::set_silent`]) for tests of time-outs.
//!
//! It uses only the standard library (a [`TcpListener`] and a thread a connection),
//! speaks just enough HTTP/1.1 for one request a connection (`Content-Length` bodies,
//! `Connection: close` answers), and never panics in its threads: a connection that
//! fails is dropped.
//!
//! ```
//! use std::io::{Read, Write};
//!
//! let server = telemetry_upload::testing::LoopbackServer::start();
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! server.set_upload_status(201);
//!
//! let mut stream = std::net::TcpStream::connect(server.url().trim_start_matches("http://"))?;
//! stream.write_all(b"POST /upload/2026-11-20 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
//!
//! let uploads = server.uploads();
//! assert_eq!(uploads.len(), 1);
//! assert_eq!(uploads[0].path, "/upload/2026-11-20");
//! assert_eq!(uploads[0].text(), "{}");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{ProgramReport, Report};

/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a silent server holds a connection before answering anyway, so no
/// thread outlives a forgotten test by much.
const MAX_SILENCE: Duration = Duration::from_secs(30);
/// How often a waiting connection checks whether to stop waiting.
const POLL: Duration = Duration::from_millis(20);

/// One request the server received, recorded as soon as its body was read (before any
/// delay or silence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET` or `POST`.
    pub method: String,
    /// The path, e.g. `/upload/2026-11-20`.
    pub path: String,
    /// The body, as sent (empty for a `GET`).
    pub body: Vec<u8>,
}

impl Request {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// If the body is not JSON: this is for the test's thread, where that is a failure.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "the body of {} {} is not JSON ({err}): {}",
                self.method,
                self.path,
                self.text()
            )
        })
    }
}

/// What the test's thread and the connection threads share.
struct Shared {
    requests: Mutex<Vec<Request>>,
    /// The body of `GET /config.json`; `None` answers 404.
    config: Mutex<Option<Vec<u8>>>,
    upload_status: AtomicU16,
    /// A `Retry-After` header for upload answers.
    retry_after: Mutex<Option<String>>,
    delay_ms: AtomicU64,
    silent: AtomicBool,
    stop: AtomicBool,
    /// The peer of every connection accepted, in order.
    accepted: Mutex<Vec<SocketAddr>>,
    /// Connections accepted whose request is still being read or answered.
    open: AtomicUsize,
}

/// Locks `mutex`, whether or not a thread panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An HTTP/1.1 server on `127.0.0.1` that serves an upload config at `/config.json`,
/// answers POSTs to `/upload/<date>` with a settable status, and records every request.
///
/// Any other request is recorded and answered 404. Dropping the server stops it: it
/// accepts no more connections, and connections held by [`set_silent`] or
/// [`set_delay`] are closed without an answer.
///
/// [`set_silent`]: LoopbackServer::set_silent
/// [`set_delay`]: LoopbackServer::set_delay
pub struct LoopbackServer {
    addr: SocketAddr,
    url: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Starts a server on a free port of `127.0.0.1`, answering uploads with 200 and
    /// serving no config (404) until [`set_config`](LoopbackServer::set_config).
    ///
    /// # Panics
    /// If it cannot listen on `127.0.0.1`; [`try_start`](LoopbackServer::try_start)
    /// returns that error instead.
    pub fn start() -> LoopbackServer {
        LoopbackServer::try_start().expect("listen on 127.0.0.1")
    }

    /// Starts a server like [`start`](LoopbackServer::start), returning the error if it
    /// cannot listen or start its thread.
    pub fn try_start() -> std::io::Result<LoopbackServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            config: Mutex::new(None),
            upload_status: AtomicU16::new(200),
            retry_after: Mutex::new(None),
            delay_ms: AtomicU64::new(0),
            silent: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            accepted: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
        });
        let state = shared.clone();
        let accept = std::thread::Builder::new()
            .name("loopback-server".into())
            .spawn(move || accept_loop(&listener, &state))?;
        Ok(LoopbackServer {
            addr,
            url: format!("http://{addr}"),
            shared,
            accept: Some(accept),
        })
    }

    /// The server's root, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where reports go: `<url>/upload` (a report for DATE is POSTed to
    /// `<url>/upload/DATE`).
    pub fn upload_url(&self) -> String {
        format!("{}/upload", self.url())
    }

    /// Where the config is served: `<url>/config.json`.
    pub fn config_url(&self) -> String {
        format!("{}/config.json", self.url())
    }

    /// Serves `config` at `/config.json` from now on.
    pub fn set_config(&self, config: &str) {
        *lock(&self.shared.config) = Some(config.as_bytes().to_vec());
    }

    /// The config served at `/config.json`, if any.
    pub fn config(&self) -> Option<String> {
        lock(&self.shared.config)
            .as_ref()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }

    /// Answers uploads (POSTs to `/upload/...`) with `status` from now on.
    pub fn set_upload_status(&self, status: u16) {
        self.shared.upload_status.store(status, Ordering::SeqCst);
    }

    /// Adds `Retry-After: <value>` to every answer to an upload from now on (`None`:
    /// no such header), as a collector does with 425, 429 or 503.
    pub fn set_retry_after(&self, value: Option<&str>) {
        *lock(&self.shared.retry_after) = value.map(str::to_owned);
    }

    /// Waits `delay` after reading each request before answering it.
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// While `silent`, requests are read and recorded but not answered: the connection
    /// stays open (for at most 30 seconds, or until the server is dropped), which is
    /// how a test makes a client time out. Turning it off answers the held requests.
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
    }

    /// Every request so far, in the order they were read.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// Every POST so far, in the order they were read: the uploads (a POST to another
    /// path is included too, so that a wrong URL shows in the test).
    pub fn uploads(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    /// Makes a connection to the server and closes it at once, sending nothing (it is
    /// not recorded), and returns its address, for [`is_settled`]: the server accepts
    /// connections in the order they were made, so once it has accepted the probe it
    /// has accepted every connection made before it, even by a client that has died
    /// since.
    ///
    /// [`is_settled`]: LoopbackServer::is_settled
    pub fn probe(&self) -> std::io::Result<SocketAddr> {
        let stream = TcpStream::connect(self.addr)?;
        stream.local_addr()
    }

    /// Whether the server has accepted the connection [`probe`] made and is done with
    /// every connection: each request sent before the probe has then been recorded,
    /// or dropped if its client did not send it whole. Never true while a connection
    /// is held by [`set_delay`] or [`set_silent`].
    ///
    /// [`probe`]: LoopbackServer::probe
    /// [`set_delay`]: LoopbackServer::set_delay
    /// [`set_silent`]: LoopbackServer::set_silent
    pub fn is_settled(&self, probe: SocketAddr) -> bool {
        // The accept loop counts a connection open before it records it as accepted:
        // once the probe is recorded, every connection before it has been counted.
        let accepted = lock(&self.shared.accepted).contains(&probe);
        accepted && self.shared.open.load(Ordering::SeqCst) == 0
    }
}

impl std::fmt::Debug for LoopbackServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`; if that fails, leave it be rather
        // than wait for a connection that may never come.
        let woken = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let (true, Some(accept)) = (woken, self.accept.take()) {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        shared.open.fetch_add(1, Ordering::SeqCst);
        if let Ok(peer) = stream.peer_addr() {
            lock(&shared.accepted).push(peer);
        }
        let state = shared.clone();
        // If no thread can be started the connection is dropped, like any failure.
        let started = std::thread::Builder::new()
            .name("loopback-connection".into())
            .spawn(move || {
                let _ = serve(stream, &state);
                state.open.fetch_sub(1, Ordering::SeqCst);
            });
        if started.is_err() {
            shared.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reads one request from `stream`, records it, and answers it.
fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(());
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
    let mut body = Vec::new();
    reader.take(length as u64).read_to_end(&mut body)?;
    if body.len() != length {
        return Ok(());
    }
    lock(&shared.requests).push(Request {
        method: method.clone(),
        path: path.clone(),
        body,
    });

    let delay = Duration::from_millis(shared.delay_ms.load(Ordering::SeqCst));
    if !wait(shared, |elapsed| elapsed < delay) {
        return Ok(());
    }
    if !wait(shared, |elapsed| {
        elapsed < MAX_SILENCE && shared.silent.load(Ordering::SeqCst)
    }) {
        return Ok(());
    }

    let mut extra = String::new();
    let (status, reply) = match (method.as_str(), path.as_str()) {
        ("GET", "/config.json") => match lock(&shared.config).clone() {
            Some(config) => (200, config),
            None => (404, Vec::new()),
        },
        ("POST", p) if p.starts_with("/upload/") => {
            if let Some(value) = lock(&shared.retry_after).as_deref() {
                extra = format!("Retry-After: {value}\r\n");
            }
            (shared.upload_status.load(Ordering::SeqCst), Vec::new())
        }
        _ => (404, Vec::new()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        reason(status),
        reply.len()
    )?;
    stream.write_all(&reply)?;
    stream.flush()
}

/// Sleeps while `more(elapsed)` holds; false if the server stopped meanwhile.
fn wait(shared: &Shared, more: impl Fn(Duration) -> bool) -> bool {
    let began = Instant::now();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        let elapsed = began.elapsed();
        if !more(elapsed) {
            return true;
        }
        std::thread::sleep(POLL);
    }
}

/// A reason phrase for the status line (clients ignore it; it helps when reading).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        425 => "Too Early",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The TLS implementation a test reaches its HTTPS server with (see
/// [`trust_loopback_https`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestTls {
    /// rustls (feature `tls`).
    Rustls,
    /// The platform's TLS (feature `native-tls`).
    NativeTls,
}

/// Loopback HTTPS servers of tests, by port: the TLS to reach them with and the DER
/// root certificate their certificate chains to.
static TRUSTED: Mutex<Vec<(u16, TestTls, Vec<u8>)>> = Mutex::new(Vec::new());

/// Makes uploads and config fetches to `https://127.0.0.1:<port>/…` use `tls` and
/// trust only `root_der` (a DER certificate the test generated), so a test can run an
/// HTTPS server on loopback with a certificate of its own. Applies to that exact
/// loopback address and port only, never to any other host; a later call for the same
/// port replaces the earlier one.
pub fn trust_loopback_https(port: u16, tls: TestTls, root_der: Vec<u8>) {
    let mut trusted = lock(&TRUSTED);
    trusted.retain(|(p, _, _)| *p != port);
    trusted.push((port, tls, root_der));
}

/// What [`trust_loopback_https`] registered for `url`'s port, if `url` is
/// `https://127.0.0.1:<port>/…`.
pub(crate) fn trusted_for_tests(url: &str) -> Option<(TestTls, Vec<u8>)> {
    let rest = url.strip_prefix("https://127.0.0.1:")?;
    let port: u16 = rest.split('/').next()?.parse().ok()?;
    lock(&TRUSTED)
        .iter()
        .find(|(p, _, _)| *p == port)
        .map(|(_, tls, root)| (*tls, root.clone()))
}

/// A report of `week` (`YYYY-MM-DD`) with sample rate `x`, config `v1` and no last
/// week, holding `programs`: the one way tests build a [`Report`] by hand.
///
/// ```
/// use telemetry_upload::testing::{program_report, report};
///
/// let report = report("2026-11-20", 0.5, vec![program_report("mytool", "1.0.0")
///     .with_counters(&[("mytool/runs", 3)])]);
/// assert_eq!(report.programs[0].counters["mytool/runs"], 3);
/// ```
pub fn report(week: &str, x: f64, programs: Vec<ProgramReport>) -> Report {
    Report {
        week: week.to_owned(),
        last_week: String::new(),
        x,
        config: "v1".to_owned(),
        programs,
    }
}

/// `program` at `version`, built with toolchain `1.95.0` for `linux`/`x86_64`, with
/// nothing counted yet ([`ProgramReport::with_counters`],
/// [`ProgramReport::with_stacks`] add counts).
pub fn program_report(program: &str, version: &str) -> ProgramReport {
    ProgramReport {
        program: program.to_owned(),
        version: version.to_owned(),
        toolchain: "1.95.0".to_owned(),
        os: "linux".to_owned(),
        arch: "x86_64".to_owned(),
        ..ProgramReport::default()
    }
}

impl ProgramReport {
    /// The entry with these plain counters (`name`, count) added.
    pub fn with_counters(mut self, counters: &[(&str, u64)]) -> Self {
        self.counters
            .extend(counters.iter().map(|&(name, n)| (name.to_owned(), n)));
        self
    }

    /// The entry with these stack counters (`name`, count) added.
    pub fn with_stacks(mut self, stacks: &[(&str, u64)]) -> Self {
        self.stacks
            .extend(stacks.iter().map(|&(name, n)| (name.to_owned(), n)));
        self
    }
}
