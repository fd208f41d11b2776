//! The counter file parser on arbitrary bytes: it must return, quickly, without
//! panicking, and whatever it accepts must be self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = telemetry_counter::parse(data) {
        assert!(file.meta.contains_key("TimeBegin"));
        let split = file.counters().count() + file.stacks().count();
        assert_eq!(split, file.count.len());
    }
});
