//! The crash journal's record reader (the slots a crashing process writes into
//! `local/crash.journal`, read back by the telemetry child): strict, never
//! panicking, bounded in frames and text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telemetry_crashmonitor::fuzzing::journal_parse(data);
});
