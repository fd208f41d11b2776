//! The upload config parser, with its brace expansion (`chart:{a,b}`) and its size and
//! expansion caps: never panic, never blow up, and an accepted config answers
//! questions about any counter.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use telemetry_upload::UploadConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = UploadConfig::parse(data) else {
        return;
    };
    let _ = config.check_servable();
    let _ = config.version();
    let _ = config.sample_rate();
    let _ = config.samples(0.5);
    let mut meta = BTreeMap::new();
    for (k, v) in [
        ("Program", "cmd/go"),
        ("Version", "v1.0.0"),
        ("Toolchain", "go1.23.0"),
        ("GOOS", "linux"),
        ("GOARCH", "amd64"),
    ] {
        meta.insert(k.to_string(), v.to_string());
    }
    for counter in ["chart:a", "go/invocations", "crash/no-frames", ""] {
        let _ = config.approves(&meta, counter);
    }
});
