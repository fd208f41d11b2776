//! `telemetry upload --dry-run`: the exact bodies an upload run would POST, with
//! nothing sent and nothing changed.
//!
//! The upload crate has no dry-run API yet, so the real [`telemetry_upload::run`] runs
//! on a private copy of the telemetry directory and POSTs to a server on 127.0.0.1
//! inside this process, which records each body and answers 200. What is shown is
//! therefore what the real code builds and re-checks against the config at send
//! time, byte for byte; the user's directory is only read.
//!
//! FIXME(upload): replace with a `telemetry_upload` dry-run entry (e.g.
//! `RunConfig::dry_run` returning the bodies in `RunSummary`) when there is one.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use telemetry_internal::{Area, Dir, FileKind};
use telemetry_upload::{ConfigSource, ReportStatus, RunConfig};

use super::{CmdResult, Context, Failure, terminal_safe};

/// The largest file copied: counter files are a few pages, reports far smaller.
const MAX_FILE: u64 = 64 << 20;
/// The largest body recorded; the upload crate never sends anything near this.
const MAX_BODY: usize = 16 << 20;

pub(super) fn run(
    ctx: &mut Context<'_>,
    dir: &Dir,
    upload_url: String,
    source: ConfigSource,
    start_time: Option<SystemTime>,
    verbose: bool,
) -> CmdResult {
    let copy = PrivateCopy::of(dir).map_err(|err| {
        Failure::io(
            format!("cannot copy {} for a dry run", dir.root().display()),
            &err,
        )
    })?;
    let server = Recorder::start()
        .map_err(|err| Failure::io("cannot start the dry run's loopback server", &err))?;
    let mut config = RunConfig::new(copy.dir.root(), server.url.clone(), source);
    config.start_time = start_time;
    let result = super::upload::run_streaming(ctx, config, verbose);
    let bodies = server.stop();
    let summary = result.map_err(|err| Failure::Message(format!("upload failed: {err}")))?;
    let base = upload_url.trim_end_matches('/');
    for (path, body) in &bodies {
        // `path` is `/<YYYY-MM-DD>`, as the upload crate appends it to the URL.
        writeln!(ctx.out, "POST {base}{path} ({} bytes)", body.len())?;
        ctx.out.write_all(body)?;
        if !body.ends_with(b"\n") {
            writeln!(ctx.out)?;
        }
    }
    if bodies.is_empty() {
        writeln!(ctx.out, "Nothing would be sent.")?;
    }
    for report in &summary.reports {
        let status = match &report.status {
            ReportStatus::Uploaded => "would be sent (body above)".to_owned(),
            other => other.to_string(),
        };
        writeln!(
            ctx.out,
            "{}: {}",
            telemetry_internal::format_date(report.week),
            terminal_safe(&status)
        )?;
    }
    writeln!(
        ctx.out,
        "Dry run: nothing was sent, and nothing in {} was changed.",
        dir.root().display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A copy of a telemetry directory's mode, `local/` and `upload/` in a private
/// temporary directory, removed on drop.
struct PrivateCopy {
    dir: Dir,
}

impl PrivateCopy {
    fn of(original: &Dir) -> io::Result<PrivateCopy> {
        let path = std::env::temp_dir().join(format!(
            "telemetry-dry-run-{}-{:016x}",
            std::process::id(),
            telemetry_internal::random_u64()
        ));
        let copy = PrivateCopy {
            dir: Dir::new(path),
        };
        copy.dir.ensure_local()?;
        copy.dir.ensure_upload()?;
        copy_file(&original.mode_file(), &copy.dir.mode_file())?;
        for area in [Area::Local, Area::Upload] {
            let target = match area {
                Area::Local => copy.dir.local(),
                Area::Upload => copy.dir.upload(),
            };
            for entry in original.entries(area)? {
                // Only what an upload reads: not the token, leftovers or strangers.
                let wanted = !matches!(
                    entry.kind,
                    FileKind::UploadToken | FileKind::Temporary | FileKind::Other
                );
                if let (true, Some(name)) = (wanted, entry.path.file_name()) {
                    copy_file(&entry.path, &target.join(name))?;
                }
            }
        }
        Ok(copy)
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir.root());
    }
}

/// Copies a regular file (bounded, never through a link); a missing one is skipped.
fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    let bytes = match telemetry_internal::fs::read_bounded(from, MAX_FILE) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    telemetry_internal::fs::create_new(to)?.write_all(&bytes)
}

/// What the server recorded: each POST's path and body, in order.
type Recorded = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A one-purpose HTTP server on 127.0.0.1 that records POST bodies and answers 200.
struct Recorder {
    url: String,
    bodies: Recorded,
    stop: Arc<AtomicBool>,
    address: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    fn start() -> io::Result<Recorder> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let address = listener.local_addr()?;
        let bodies: Recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bodies, stop) = (bodies.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        if let Ok(request) = serve(stream) {
                            if let Ok(mut bodies) = bodies.lock() {
                                bodies.push(request);
                            }
                        }
                    }
                }
            })
        };
        Ok(Recorder {
            url: format!("http://{address}"),
            bodies,
            stop,
            address,
            thread: Some(thread),
        })
    }

    /// Stops the server and returns what it recorded, in order.
    fn stop(mut self) -> Vec<(String, Vec<u8>)> {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.bodies.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Reads one request (bounded in time and size) and answers 200 to a POST.
fn serve(stream: TcpStream) -> io::Result<(String, Vec<u8>)> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(MAX_BODY as u64 + 64 * 1024));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut writer = stream;
    if method != "POST" || length > MAX_BODY {
        writer.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Err(io::Error::other("not a report"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    Ok((path.to_owned(), body))
}
