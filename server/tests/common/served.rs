//! The `telemetry-server` binary as a child process: `test-support`'s [`Served`]
//! (started, watched through its JSON log lines, signalled, and measured) on this
//! test's build of the binary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use telemetry_test_support::Served;

use super::file_url;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_telemetry-server");

/// `serve` on a free loopback port with `dir/config.json` and file storage in
/// `dir/data`, never merging; add arguments before spawning it with [`Served::spawn`].
pub fn serve_command(dir: &Path) -> Command {
    telemetry_test_support::serve_command(
        Path::new(BIN),
        &dir.join("config.json"),
        &file_url(&dir.join("data")),
    )
}

/// [`serve_command`] for `dir`, started.
pub fn start_served(dir: &Path) -> Served {
    Served::spawn(serve_command(dir))
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
