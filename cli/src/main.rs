//! The `telemetry` command.
#![forbid(unsafe_code)]
fn main() {}
