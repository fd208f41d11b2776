//! The elf symbol-table reader on truncated and lying headers: never panic, never
//! allocate what a header claims beyond the table bound, and look up addresses in
//! whatever it accepted (the last 32 bytes of the input give four addresses).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telemetry_crashmonitor::fuzzing::elf_symbols(data);
});
