//! The report reader (`local/*.json` read back) and the collector's validation of a
//! POSTed body: `Report::parse`, then `UploadConfig::check_report` and
//! `approved_part` against the Go fixture config, and the URL date (`YYYY-MM-DD`).
//! Input: `DATE\n` then the body.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use telemetry_internal::Day;
use telemetry_upload::{Report, UploadConfig};

static CONFIG: LazyLock<UploadConfig> = LazyLock::new(|| {
    UploadConfig::parse(include_bytes!("../../testdata/go-upload-config.json"))
        .expect("fixture config parses")
});

fuzz_target!(|data: &[u8]| {
    let (date, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    if let Ok(date) = std::str::from_utf8(date) {
        if let Some(day) = Day::parse(date) {
            assert_eq!(Day::parse(&day.to_string()), Some(day));
        }
    }
    let Ok(report) = Report::parse(body) else {
        return;
    };
    let _ = CONFIG.check_report(&report);
    let _ = CONFIG.approved_part(&report);
});
