//! The collector, `telemetry-server serve`, as a child process of a test: started on
//! a free loopback port, watched through its JSON log lines on stderr, signalled and
//! measured, killed on drop. Shared by the collector's own tests and the end-to-end
//! scenarios that upload to it, which reach its binary in different ways (so the
//! binary's path is given).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::eventually;

/// How long a server may take to say something a test waits for.
const LOG_TIMEOUT: Duration = Duration::from_secs(20);

/// `bin serve` on a free loopback port with the upload config `config` and the
/// storage URL `storage`, never merging by itself; add arguments or environment
/// before starting it with [`Served::spawn`].
pub fn serve_command(bin: &Path, config: &Path, storage: &str) -> Command {
    let mut command = Command::new(bin);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--merge-every-hours",
            "0",
        ])
        .arg("--config")
        .arg(config)
        .args(["--storage", storage]);
    command
}

/// A `telemetry-server serve` child, killed on drop if still running.
#[derive(Debug)]
pub struct Served {
    /// The process.
    pub child: Child,
    /// The address it serves on, from its `serving` log line.
    pub addr: SocketAddr,
    log: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Served {
    /// Starts `command` (a [`serve_command`]) and waits for its `serving` log line,
    /// which gives its address.
    pub fn spawn(mut command: Command) -> Served {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let (send, log) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let mut served = Served {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
            seen: Vec::new(),
        };
        let line = served.wait_for_log("\"serving\"");
        served.addr = json_string_field(&line, "addr")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in the `serving` line: {line}"));
        served
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits (at most 20 s) for a stderr line containing `text`.
    pub fn wait_for_log(&mut self, text: &str) -> String {
        self.wait_for_log_after(0, text)
    }

    /// Like [`wait_for_log`](Served::wait_for_log), among the lines from the
    /// `skip`-th on (`seen.len()` before an action: a line that action caused).
    pub fn wait_for_log_after(&mut self, skip: usize, text: &str) -> String {
        let deadline = Instant::now() + LOG_TIMEOUT;
        loop {
            if let Some(line) = self.seen.iter().skip(skip).find(|l| l.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no log line with {text:?}; got:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Sends the signal `name` (`HUP`, `TERM`, …). `HUP` and `TERM` are sent once the
    /// server catches them: the server installs its handlers after it logs
    /// `serving`, and a signal that comes first would end it by its default action.
    pub fn signal(&self, name: &str) {
        let number = match name {
            "HUP" => Some(1),
            "TERM" => Some(15),
            _ => None,
        };
        if let Some(number) = number {
            eventually(
                LOG_TIMEOUT,
                &format!("the server to catch SIG{name}"),
                || self.catches(number),
            );
        }
        // The shell's own `kill`: /usr/bin/kill (procps) is not on every machine.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{name} {}", self.child.id()))
            .status()
            .expect("run sh");
        assert!(status.success());
    }

    /// Whether the server has a handler for the signal `number` (`SigCgt` in
    /// `/proc/PID/status`, a mask with bit `number - 1` for each caught signal).
    fn catches(&self, number: u32) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
        else {
            return false;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (number - 1)) != 0)
    }

    /// Waits (at most 20 s) for the server to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let mut status = None;
        eventually(LOG_TIMEOUT, "the server to exit", || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status.expect("exited")
    }

    /// The server's memory now and at its peak, in bytes (`VmRSS`, `VmHWM` of
    /// `/proc/PID/status`: Linux).
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        let field = |name: &str| -> u64 {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"));
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .expect("a number of KiB");
            kib * 1024
        };
        Memory {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
        }
    }
}

/// Resident memory of a process, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    /// Now (`VmRSS`).
    pub rss: u64,
    /// At its peak (`VmHWM`).
    pub peak: u64,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The string value of `"name":"…"` in a JSON log line (no escapes in it: an
/// address).
fn json_string_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_from_the_serving_line() {
        let line =
            r#"{"timestamp":"t","level":"INFO","message":"serving","addr":"127.0.0.1:4242"}"#;
        assert_eq!(json_string_field(line, "addr"), Some("127.0.0.1:4242"));
        assert_eq!(json_string_field(line, "port"), None);
    }
}
