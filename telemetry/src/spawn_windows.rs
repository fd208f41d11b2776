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
//! only its three standard handles.

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

    /// Set in the copies of this test binary that the test starts: the file where the
    /// copy writes whether it has a console.
    const PROBE: &str = "TELEMETRY_SPAWN_WINDOWS_PROBE";

    /// What a copy of this test, started with `flags`, says about its console.
    fn probe(flags: u32) -> String {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("probe.txt");
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "spawn_windows::tests::detached_child_has_no_console",
            "--test-threads=1",
        ])
        .env(PROBE, &out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .creation_flags(flags);
        let status = cmd.status().unwrap();
        assert!(status.success(), "{status}");
        std::fs::read_to_string(&out).unwrap()
    }

    #[test]
    fn detached_child_has_no_console() {
        if let Some(out) = std::env::var_os(PROBE) {
            // The copy: `CONOUT$` is the console's screen buffer, which only a process
            // with a console can open.
            let console = std::fs::File::options().write(true).open("CONOUT$").is_ok();
            std::fs::write(out, if console { "console" } else { "no console" }).unwrap();
            return;
        }
        // The probe can tell: a child given a console of its own has one.
        const CREATE_NEW_CONSOLE: u32 = 0x0000_0010;
        assert_eq!(probe(CREATE_NEW_CONSOLE), "console");
        assert_eq!(probe(CHILD_CREATION_FLAGS), "no console");
    }
}
