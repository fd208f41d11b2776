//! The `telemetry-server` binary as a child process: started, watched through its
//! JSON log lines, signalled, and measured.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use telemetry_test_support::eventually;

use super::file_url;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_telemetry-server");

/// `serve` on a free loopback port with `dir/config.json` and file storage in
/// `dir/data`, never merging; add arguments before spawning it with [`Served::spawn`].
pub fn serve_command(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--merge-every-hours",
            "0",
        ])
        .arg("--config")
        .arg(dir.join("config.json"))
        .arg("--storage")
        .arg(file_url(&dir.join("data")));
    command
}

/// Runs `command` to its end, as `Command::output` does, but kills it and fails the
/// test if it has not ended within 20 s (a server that should have refused to start
/// would otherwise hang the test for ever).
pub fn output_within_20s(command: &mut Command) -> std::process::Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (send, output) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(child.wait_with_output());
    });
    match output.recv_timeout(Duration::from_secs(20)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{command:?} still running after 20 s");
        }
    }
}

/// A `telemetry-server serve` child, killed on drop if still running.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    log: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Served {
    /// [`serve_command`] for `dir`, started.
    pub fn start(dir: &Path) -> Served {
        Served::spawn(serve_command(dir))
    }

    /// Starts `command` and waits for its `serving` log line, which gives its address.
    pub fn spawn(mut command: Command) -> Served {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let mut served = Served {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            log,
            seen: Vec::new(),
        };
        let line = served.wait_for_log("\"serving\"");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        served.addr = event["addr"].as_str().unwrap().parse().unwrap();
        served
    }

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
        let deadline = Instant::now() + Duration::from_secs(20);
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
                Duration::from_secs(20),
                &format!("the server to catch SIG{name}"),
                || self.catches(number),
            );
        }
        // The shell's own `kill`: /usr/bin/kill (procps) is not on every machine.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{name} {}", self.child.id()))
            .status()
            .unwrap();
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
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let mut status = None;
        eventually(Duration::from_secs(20), "the server to exit", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }

    /// The server's memory now and at its peak, in bytes (`VmRSS`, `VmHWM`).
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> u64 {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"));
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap();
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
    pub rss: u64,
    pub peak: u64,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
