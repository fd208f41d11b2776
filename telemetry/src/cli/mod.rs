//! The `telemetry` command as a library (in progress).
