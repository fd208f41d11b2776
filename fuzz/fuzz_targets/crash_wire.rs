//! The crash pipe reader (the few ASCII lines a crashing parent writes to its
//! telemetry child): strict, never panicking, bounded in frames.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telemetry_crashmonitor::fuzzing::wire_parse(data);
});
