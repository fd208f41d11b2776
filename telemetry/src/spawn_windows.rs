//! Windows: how the telemetry child is detached from the program that starts it.
//!
//! On Unix the child leaves the program's session (`setsid`). On Windows the same
//! separation is chosen when the process is created, by three flags:
//! - `DETACHED_PROCESS`: the child gets no console at all — neither the program's (so
//!   it cannot write to the program's terminal, and closing that window or pressing
//!   Ctrl+C there does not reach it) nor a new one (so no console window flashes up when
//!   a console program starts its child);
//! - `CREATE_NO_WINDOW`: the same for a program that itself has no console (a GUI
//!   program starting a console-subsystem child would otherwise open a window; ignored
//!   next to `DETACHED_PROCESS`, but says what we want if that flag is ever dropped);
//! - `CREATE_NEW_PROCESS_GROUP`: `GenerateConsoleCtrlEvent` sent to the program's group
//!   (Ctrl+Break) skips the child.
//!
//! The child does not outlive a job object that kills its processes when closed (a CI
//! system, a terminal multiplexer): breaking away needs `CREATE_BREAKAWAY_FROM_JOB`,
//! which fails the whole spawn where the job forbids it, so it is not asked for; such a
//! job ends the child with the program, and its crash report or upload waits for the
//! next run. Handles: std creates its handles non-inheritable, so the child inherits
//! only its three standard handles, and the crash pipe as its stdin.

use std::os::windows::process::CommandExt;
use std::process::Command;

/// `DETACHED_PROCESS`
const DETACHED_PROCESS: u32 = 0x0000_0008;
/// `CREATE_NEW_PROCESS_GROUP`
const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
/// `CREATE_NO_WINDOW`
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// The creation flags of the telemetry child.
pub(crate) const CHILD_CREATION_FLAGS: u32 =
    DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW;

/// Makes `cmd` start the telemetry child detached: no console, its own process group.
pub(crate) fn detach(cmd: &mut Command) {
    cmd.creation_flags(CHILD_CREATION_FLAGS);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// Set in the copy of this test binary that `detached_child_has_no_console` starts.
    const PROBE: &str = "TELEMETRY_SPAWN_WINDOWS_PROBE";

    /// In the probe: whether this process has a console, told by opening `CONOUT$`
    /// (the console's screen buffer, which exists only for a process with a console),
    /// written to the file the parent named. A normal test run does nothing.
    #[test]
    fn probe() {
        if let Some(out) = std::env::var_os(PROBE) {
            let console = std::fs::File::options().write(true).open("CONOUT$").is_ok();
            let said = if console { "console" } else { "no console" };
            std::fs::write(out, said).unwrap();
        }
    }

    #[test]
    fn detached_child_has_no_console() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("probe.txt");
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "spawn_windows::tests::probe", "--test-threads=1"])
            .env(PROBE, &out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        detach(&mut cmd);
        let status = cmd.status().unwrap();
        assert!(status.success(), "{status}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "no console");
    }
}
