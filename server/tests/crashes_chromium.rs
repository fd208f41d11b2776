//! The Crashes page in a real browser: headless Chromium loads it from the collector
//! with no console message (no CSP violation, no blocked load, no script error), and
//! shows claimed, conflicting, unclaimed and raw stacks, a hostile frame as text.
//!
//! Needs `chromium` (`.ci/install-chromium`). Without it the test is skipped and says
//! so, unless CI requires it (the rule of `telemetry_test_support::Tool::available`).
//! With `CRASHES_SCREENSHOT=FILE.png` it also saves a screenshot of the page there,
//! for a person to look at.

mod common;

use common::*;
use telemetry_server::{ServeConfig, Storage};
use telemetry_test_support::Chromium;

const CONFIG: &str = r#"{
    "OS": ["linux", "macos"], "Arch": ["x86_64", "aarch64"], "Toolchain": ["1.95.0"], "SampleRate": 1,
    "Programs": [{"Name": "mytool", "Versions": ["1.0.0", "1.1.0"],
        "Counters": [{"Name": "mytool/runs", "Rate": 1}],
        "Stacks": [{"Name": "crash/panic", "Rate": 1, "Depth": 32},
                   {"Name": "crash/signal:SIGSEGV", "Rate": 1, "Depth": 32},
                   {"Name": "crash/signal:SIGBUS", "Rate": 1, "Depth": 32},
                   {"Name": "crash/abort", "Rate": 1, "Depth": 32}]}]
}"#;

const CLAIMS: &str = r#"[
    {"Issue": "https://example.com/mytool/issues/12", "Predicate": "\"crash/panic\" && \"mytool::parse::\""},
    {"Issue": "https://example.com/mytool/issues/31", "Predicate": "\"SIGSEGV\" && \"mytool::cache::\""},
    {"Issue": "https://example.com/mytool/issues/40", "Predicate": "\"SIGSEGV\" && \"macos/\""}
]"#;

#[test]
fn the_crashes_page_loads_cleanly_in_chromium() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let claims = dir.path().join("stacks.json");
    std::fs::write(&claims, CLAIMS).unwrap();
    let storage = Storage::open(&file_url(&dir.path().join("data")), []).unwrap();
    let server = TestServer::start_on(dir, storage, |settings: &mut ServeConfig| {
        settings.stacks_config = Some(claims);
    });

    let raw_id = "5f".repeat(20);
    let stacks: [(&str, &[(&str, u64)]); 3] = [
        (
            "1.0.0",
            &[
                (
                    "crash/panic\nmytool::parse::line+0x1f\nmytool::main+0x2a",
                    7,
                ),
                (
                    "crash/signal:SIGSEGV\nmytool::cache::get+0x10\nmytool::run+0x8c\nmytool::main+0x44",
                    2,
                ),
            ],
        ),
        (
            "1.1.0",
            &[
                (
                    "crash/panic\nmytool::parse::line+0x1f\nmytool::main+0x2a",
                    1,
                ),
                (
                    "crash/abort\n<img src=x onerror=alert(1)>+0x3\nmytool::main+0x10",
                    1,
                ),
            ],
        ),
        ("1.1.0", &[]),
    ];
    for (i, (version, named)) in stacks.iter().enumerate() {
        let mut r = report(week(), 0.1 + i as f64 * 0.2);
        r.programs[0].counters = [("mytool/runs".to_owned(), 1)].into_iter().collect();
        r.programs[0].version = (*version).to_owned();
        for (stack, n) in *named {
            r.programs[0].stacks.insert((*stack).to_owned(), *n);
        }
        if i == 2 {
            r.programs[0].os = "macos".into();
            r.programs[0].arch = "aarch64".into();
            r.programs[0].stacks.insert(
                "crash/signal:SIGSEGV\nmytool::cache::get+0x10\nmytool::run+0x8c\nmytool::main+0x44"
                    .into(),
                1,
            );
            r.programs[0].stacks.insert(
                format!("crash/signal:SIGBUS\n{raw_id}+0x1a2b\n{raw_id}+0x40c1\n?+0x0"),
                1,
            );
        }
        assert_eq!(server.upload(&r).0, 200, "{r:?}");
    }
    server
        .runtime
        .block_on(telemetry_server::merge(&server.storage, None))
        .unwrap();

    let url = server.url("/crashes?since=2026-11-01");
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium.load_cleanly(&url, profile.path());
    assert!(dom.contains("<h1>Crashes since 2026-11-01</h1>"), "{dom}");
    for shown in [
        "mytool::parse::line+0x1f\nmytool::main+0x2a",
        "<a href=\"https://example.com/mytool/issues/12\">https://example.com/mytool/issues/12</a>",
        "<span class=\"conflict\">conflict</span>",
        "<span class=\"unclaimed\">unclaimed</span>",
        &format!("{raw_id}+0x1a2b"),
        "raw frames: no symbols stored",
        "linux/x86_64 macos/aarch64",
        "mytool 1.0.0, 1.1.0",
        "&lt;img src=x onerror=alert(1)&gt;+0x3",
    ] {
        assert!(dom.contains(shown), "{shown} not shown:\n{dom}");
    }
    assert!(!dom.contains("<img"), "{dom}");

    if let Some(png) = std::env::var_os("CRASHES_SCREENSHOT") {
        chromium.screenshot(&url, profile.path(), std::path::Path::new(&png));
    }
}
