//! Uploads accepted per second with file storage: 16 concurrent keep-alive clients
//! POST distinct approved reports to a collector on 127.0.0.1, and every request's
//! latency is recorded. The baseline, measured in the same run, is `GET /healthz`
//! through the same server and clients (HTTP cost without parsing or storage).
//!
//! `cargo bench -p telemetry-server --bench uploads` (add `-- N` for N uploads per
//! client, default 1000; `-- fsync` to sync each report to disk). The store is a temp
//! dir: `TMPDIR=/dev/shm` takes the disk out of the measurement. Without `--bench` (as `cargo test --benches` runs it) it
//! does a few requests only, as a smoke test.
#![allow(missing_docs, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use telemetry_server::{ServeConfig, Storage};

const CLIENTS: usize = 16;
const CONFIG: &str = r#"{"OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"], "SampleRate": 1,
    "Programs": [{"Name": "mytool", "Versions": ["1.0.0"],
    "Counters": [{"Name": "mytool/flag:{a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t}", "Rate": 1}],
    "Stacks": [{"Name": "mytool/bug", "Rate": 1}]}]}"#;

/// A report of 20 counters and 2 stacks (about 1 KB), unique by `X`.
fn body(week: &str, x: f64) -> Vec<u8> {
    let counters: Vec<String> = (b'a'..=b't')
        .map(|c| format!("\"mytool/flag:{}\": {}", c as char, c))
        .collect();
    format!(
        r#"{{"Week": "{week}", "X": {x:?}, "Programs": [{{"Program": "mytool", "Version": "1.0.0",
        "Toolchain": "1.95.0", "OS": "linux", "Arch": "x86_64", "Counters": {{{}}},
        "Stacks": {{"mytool/bug\nmytool::parse+0x1f\nmytool::main+0x2a": 2, "mytool/bug\nmytool::render+0x44": 1}}}}]}}"#,
        counters.join(", ")
    )
    .into_bytes()
}

/// One keep-alive HTTP/1.1 connection; returns the status of each request.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> u16 {
        let stream = self.reader.get_mut();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        stream.write_all(&request).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut rest = vec![0; length];
        self.reader.read_exact(&mut rest).unwrap();
        status
    }
}

/// Runs `per_client` requests on each of 16 clients; returns (requests/s, p50, p99, max).
fn load(
    addr: SocketAddr,
    per_client: usize,
    upload: bool,
    week: &str,
    round: u64,
) -> (f64, Duration, Duration, Duration) {
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let week = week.to_owned();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let t = Instant::now();
                    let status = if upload {
                        // Distinct X per request: every upload is a new object.
                        let n = (round * 1_000_000 + (c * per_client + i) as u64) as f64;
                        let x = (n + 1.0) / 1e9;
                        client.request("POST", &format!("/upload/{week}"), &body(&week, x))
                    } else {
                        client.request("GET", "/healthz", b"")
                    };
                    latencies.push(t.elapsed());
                    assert_eq!(status, 200);
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        *all.last().unwrap(),
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let per_client: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 1000 } else { 5 });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let storage =
        Storage::open(&format!("file://{}", dir.path().join("data").display()), []).unwrap();
    let mut settings = ServeConfig::new(dir.path().join("config.json"), storage);
    settings.merge_every = None;
    let week = telemetry_internal::Day::of(std::time::SystemTime::now()).to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(telemetry_server::serve(listener, settings, async {
        let _ = stopped.await;
    }));

    println!(
        "machine: {} cores, load average before: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    // Warm up (page cache, directories, connections).
    load(addr, per_client.min(50), true, &week, 9);
    let (rps, p50, p99, max) = load(addr, per_client, false, &week, 0);
    println!(
        "baseline GET /healthz: {rps:>8.0} req/s  p50 {p50:>9.2?}  p99 {p99:>9.2?}  max {max:>9.2?}  ({} requests, {CLIENTS} clients)",
        per_client * CLIENTS
    );
    let (rps, p50, p99, max) = load(addr, per_client, true, &week, 1);
    println!(
        "POST /upload (file):   {rps:>8.0} req/s  p50 {p50:>9.2?}  p99 {p99:>9.2?}  max {max:>9.2?}  ({} uploads, {CLIENTS} clients)",
        per_client * CLIENTS
    );
    println!("load average after: {}", loadavg());
    let stored = std::fs::read_dir(dir.path().join("data/uploaded").join(&week))
        .unwrap()
        .count();
    assert_eq!(stored, per_client * CLIENTS + per_client.min(50) * CLIENTS);
    let _ = stop.send(());
    runtime.block_on(server).unwrap().unwrap();
}
