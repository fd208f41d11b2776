//! The dashboard in a real browser: headless Chromium loads it from the collector
//! with no console message (no CSP violation, no blocked load, no script error), and
//! shows the names and numbers, a hostile counter name as text.
//!
//! Needs `chromium` (`.ci/install-chromium`). Without it the test is skipped and says
//! so, unless CI requires it (the rule of `telemetry_test_support::Tool::available`).

mod common;

use common::*;
use telemetry_test_support::Chromium;

#[test]
fn the_dashboard_loads_cleanly_in_chromium() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let server = TestServer::start();
    server.serve_config(&config_with_hostile_counter());
    let mut hostile = report(week(), 0.25);
    hostile.programs[0]
        .counters
        .insert("mytool/<script>alert(1)</script>".into(), 31337);
    hostile.programs[0]
        .stacks
        .insert("mytool/bug\nmytool::main+0x1f\nmytool::run+0x2a".into(), 5);
    assert_eq!(server.upload(&hostile).0, 200);
    let earlier = telemetry_internal::Day::parse("2026-11-13").unwrap();
    assert_eq!(server.upload(&report(earlier, 0.5)).0, 200);
    server
        .runtime
        .block_on(telemetry_server::merge(&server.storage, None))
        .unwrap();

    let profile = tempfile::tempdir().unwrap();
    let dom = chromium.load_cleanly(&server.url("/"), profile.path());
    assert!(
        dom.contains("<h1>Telemetry: the week ending 2026-11-20</h1>"),
        "{dom}"
    );
    for value in [
        "mytool/runs",
        "mytool/flag",
        "mytool::main+0x1f",
        ">linux<",
        ">1.0.0<",
    ] {
        assert!(dom.contains(value), "{value} not shown:\n{dom}");
    }
    assert!(!dom.contains("<script>alert"), "{dom}");
    assert!(
        dom.contains("mytool/&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(dom.contains("31337"), "{dom}");
}
