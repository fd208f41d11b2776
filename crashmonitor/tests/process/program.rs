//! The program's role: crash reporting installed as `telemetry::start` installs it,
//! then the scenario's crash (or none).

use std::env;

use telemetry_crashmonitor::CrashMonitorError;

use crate::crashes::{illegal_instruction, null_write, panic_in_main, panic_in_thread, recurse};
use crate::{ROLE, UNMONITORED, platform, program_name, telemetry_dir};

/// Plays `scenario`: what the host does before crash reporting starts (the
/// platform's part), the install, then the crash.
pub(crate) fn play(scenario: &str) {
    if platform::prepare(scenario) {
        // The scenario was played whole (it installs crash reporting itself).
        return;
    }
    if env::var_os(UNMONITORED).is_none() {
        install();
    }
    match scenario {
        "clean" => {
            let second = telemetry_crashmonitor::install(&telemetry_dir(), &program_name());
            assert!(
                env::var_os(UNMONITORED).is_some()
                    || matches!(second, Err(CrashMonitorError::AlreadyInstalled)),
                "{second:?}"
            );
        }
        "panic-main" => panic_in_main(),
        "stop-then-panic" => {
            telemetry_crashmonitor::stop();
            telemetry_crashmonitor::stop(); // twice is harmless
            panic_in_main();
        }
        "panic-thread" => {
            let joined = std::thread::spawn(panic_in_thread).join();
            assert!(joined.is_err());
            // The process survives the panic and exits normally: no crash.
        }
        "caught-panics-then-segv" => {
            for _ in 0..2 {
                assert!(std::panic::catch_unwind(panic_in_main).is_err());
            }
            assert!(std::thread::spawn(panic_in_thread).join().is_err());
            null_write();
        }
        "segv" => null_write(),
        "sigill" => illegal_instruction(),
        "overflow" => {
            recurse(0);
        }
        other => platform::crash(other),
    }
}

/// Installs crash reporting as `telemetry::start` does; the journal must be usable,
/// unless a scenario planted something in its place.
pub(crate) fn install() {
    let installed = telemetry_crashmonitor::install(&telemetry_dir(), &program_name());
    if env::var(ROLE).as_deref() == Ok("journal-planted") {
        assert!(
            matches!(installed, Err(CrashMonitorError::Journal(_))),
            "{installed:?}"
        );
    } else {
        installed.expect("install");
    }
}
