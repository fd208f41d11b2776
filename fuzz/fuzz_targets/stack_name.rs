//! The stack-name decoder (ditto marks, frames) and the frame-name normalizer
//! (generic arguments stripped, brackets, `->`, turbofish): never panic, on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_counter::stack_name;

fuzz_target!(|data: &[u8]| {
    let decoded = stack_name::decode_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = stack_name::is_stack(text);
        assert_eq!(stack_name::decode(text).into_bytes(), decoded);
        let offset = data.len().wrapping_mul(0x9e37_79b9);
        let frame = telemetry_counter::frame(text, offset);
        // A frame name is one line of a stack counter name: normalizing never adds a
        // line break (a symbol name never has one to begin with).
        assert!(text.contains('\n') || !frame.contains('\n'), "{frame:?}");
        let frames: Vec<&str> = text.split('\n').collect();
        let _ = stack_name::decode(&stack_name::encode("crash", &frames));
    }
});
