//! Merging stored reports and drawing them: `merge` is idempotent and catches up on
//! late uploads; the dashboard shows every week's bars and escapes every name.

mod common;

use common::*;
use telemetry_internal::Day;
use telemetry_server::{Bar, DaySummary, merge};
use telemetry_test_support::eventually;

#[test]
fn merge_writes_merged_lines_and_chart_data_and_is_idempotent() {
    let server = TestServer::start();
    let mut second = report(week(), 0.5);
    second.programs.push(program(&[("mytool/runs", 10)]));
    second.programs[1].version = "1.1.0".into();
    second.programs[0]
        .stacks
        .insert("mytool/bug\nmain.rs:1\nlib.rs:2".into(), 4);
    for r in [report(week(), 0.25), second] {
        assert_eq!(server.upload(&r).0, 200);
    }
    let merged = server
        .runtime
        .block_on(merge(&server.storage, None))
        .unwrap();
    assert_eq!(merged.len(), 1);
    assert_eq!(
        (merged[0].date, merged[0].reports, merged[0].skipped),
        (week(), 2, 0)
    );
    let data = server.data();
    let lines = std::fs::read_to_string(data.join("merged/2026-11-20.json")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    for line in lines.lines() {
        telemetry_upload::Report::parse(line.as_bytes()).unwrap();
    }
    let charts: DaySummary =
        serde_json::from_slice(&std::fs::read(data.join("charts/2026-11-20.json")).unwrap())
            .unwrap();
    let mytool = &charts.programs["mytool"];
    assert_eq!((charts.reports, mytool.reports), (2, 2));
    assert_eq!(
        mytool.charts["mytool/runs"][""],
        Bar {
            reports: 2,
            count: 16
        }
    );
    assert_eq!(
        mytool.charts["mytool/flag"]["json"],
        Bar {
            reports: 2,
            count: 2
        }
    );
    assert_eq!(
        mytool.builds["Version"]["1.1.0"],
        Bar {
            reports: 1,
            count: 1
        }
    );
    assert_eq!(mytool.stacks["mytool/bug\nmain.rs:1\nlib.rs:2"].count, 4);

    // Nothing new: nothing to merge; merging the day again writes the same bytes.
    assert!(
        server
            .runtime
            .block_on(merge(&server.storage, None))
            .unwrap()
            .is_empty()
    );
    let before = (
        std::fs::read(data.join("merged/2026-11-20.json")).unwrap(),
        std::fs::read(data.join("charts/2026-11-20.json")).unwrap(),
    );
    server
        .runtime
        .block_on(merge(&server.storage, Some(week())))
        .unwrap();
    let after = (
        std::fs::read(data.join("merged/2026-11-20.json")).unwrap(),
        std::fs::read(data.join("charts/2026-11-20.json")).unwrap(),
    );
    assert_eq!(before, after);

    // A late upload makes the day unmerged again.
    assert_eq!(server.upload(&report(week(), 0.75)).0, 200);
    let merged = server
        .runtime
        .block_on(merge(&server.storage, None))
        .unwrap();
    assert_eq!((merged.len(), merged[0].reports), (1, 3));
}

#[test]
fn objects_that_are_not_reports_are_skipped_not_fatal() {
    let server = TestServer::start();
    assert_eq!(server.upload(&report(week(), 0.25)).0, 200);
    std::fs::write(
        server.data().join("uploaded/2026-11-20/0.5.json"),
        "garbage",
    )
    .unwrap();
    let merged = server
        .runtime
        .block_on(merge(&server.storage, Some(week())))
        .unwrap();
    assert_eq!((merged[0].reports, merged[0].skipped), (1, 1));
    assert_eq!(
        merged[0].to_string(),
        "2026-11-20: merged 1 reports (1 objects skipped)"
    );
}

#[test]
fn a_merge_that_cannot_write_leaves_no_partial_output() {
    let server = TestServer::start();
    assert_eq!(server.upload(&report(week(), 0.25)).0, 200);
    std::fs::write(server.data().join("merged"), "not a directory").unwrap();
    let err = server
        .runtime
        .block_on(merge(&server.storage, Some(week())))
        .unwrap_err();
    assert!(err.to_string().contains("merged/2026-11-20.json"), "{err}");
    assert_eq!(
        files_under(&server.data()),
        ["merged", "uploaded/2026-11-20/0.25.json"]
    );
}

#[test]
fn the_dashboard_shows_weeks_side_by_side_and_escapes_names() {
    let server = TestServer::start();
    server.serve_config(&config_with_hostile_counter());
    let mut hostile = report(week(), 0.25);
    hostile.programs[0]
        .counters
        .insert("mytool/<script>alert(1)</script>".into(), 7);
    hostile.programs[0].stacks.insert(
        "mytool/bug\n<img src=x onerror=alert(1)>\nmain.rs:9".into(),
        2,
    );
    assert_eq!(server.upload(&hostile).0, 200);
    // The week before, another report.
    let earlier = Day::parse("2026-11-13").unwrap();
    assert_eq!(server.upload(&report(earlier, 0.5)).0, 200);
    server
        .runtime
        .block_on(merge(&server.storage, None))
        .unwrap();

    let (status, headers, page) = get_with_headers(&server.url("/"));
    assert_eq!(status, 200, "{page}");
    let csp = headers
        .iter()
        .find(|(k, _)| k == "content-security-policy")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        csp,
        Some(
            "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    );
    assert!(page.contains("the week ending 2026-11-20"), "{page}");
    assert!(page.contains("<h2>mytool</h2>"), "{page}");
    assert!(page.contains("mytool/flag"), "{page}");
    assert!(
        page.contains("week ending 2026-11-13 (1 reports)"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(
        page.contains("mytool/&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(page.matches("<svg").count() >= 5, "{page}");

    let (status, older) = server.get("/charts/2026-11-13");
    assert_eq!(status, 200);
    assert!(older.contains("the week ending 2026-11-13"), "{older}");
    assert_eq!(server.get("/charts/2025-01-01").0, 404);
    assert_eq!(server.get("/charts/not-a-date").0, 400);
    assert_eq!(server.get("/charts/..%2f..%2fetc").0, 400);
    let (status, css) = server.get("/style.css");
    assert_eq!(status, 200);
    assert!(css.contains("svg"));
}

#[test]
fn an_empty_store_has_a_dashboard_too() {
    let server = TestServer::start();
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("No merged data yet"), "{page}");
}

#[test]
fn the_dashboard_saturates_its_sums() {
    let server = TestServer::start();
    // Two days of planted chart data, each claiming u64::MAX reports and counts.
    let max = u64::MAX;
    let day = format!(
        r#"{{"Objects": {max}, "Reports": {max}, "Programs": {{"mytool": {{"Reports": {max},
        "Builds": {{"OS": {{"linux": {{"Reports": {max}, "Count": {max}}}}}}},
        "Charts": {{"mytool/runs": {{"": {{"Reports": {max}, "Count": {max}}}}}}}}}}}}}"#
    );
    std::fs::create_dir_all(server.data().join("charts")).unwrap();
    for date in ["2026-11-19", "2026-11-20"] {
        std::fs::write(server.data().join(format!("charts/{date}.json")), &day).unwrap();
    }
    let (status, page) = server.get("/charts/2026-11-20");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("<p class=\"muted\">{max} reports")),
        "{page}"
    );
    assert!(page.contains(&format!("\u{3a3} {max}")), "{page}");
    assert!(
        !page.contains(&(max - 1).to_string()),
        "a wrapped sum: {page}"
    );
}

#[test]
fn weeks_outside_the_calendar_are_refused_cleanly() {
    let server = TestServer::start();
    // A planted chart file of year 0 is not the latest week the index shows.
    std::fs::create_dir_all(server.data().join("charts")).unwrap();
    std::fs::write(
        server.data().join("charts/0000-01-01.json"),
        r#"{"Reports": 1}"#,
    )
    .unwrap();
    for path in [
        "/charts/0000-01-01",
        "/charts/0001-01-27",
        "/charts/9999-12-25",
        "/charts/9999-12-31",
    ] {
        let (status, page) = server.get(path);
        assert_eq!(status, 400, "{path}: {page}");
        assert!(page.contains("Out of range"), "{path}: {page}");
        assert!(!page.contains("-00"), "{path}: {page}");
    }
    for path in ["/charts/0001-01-28", "/charts/9999-12-24"] {
        let (status, page) = server.get(path);
        assert_eq!(status, 404, "{path}: no reports that week: {page}");
    }
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("No merged data yet"), "{page}");
}

#[test]
fn staging_files_of_interrupted_writes_are_swept_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let week_dir = data.join("uploaded/2026-11-20");
    std::fs::create_dir_all(&week_dir).unwrap();
    std::fs::create_dir_all(data.join("merged")).unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let plant = |path: std::path::PathBuf, old: bool| {
        let file = std::fs::File::create(&path).unwrap();
        if old {
            file.set_modified(two_hours_ago).unwrap();
        }
        path
    };
    // Left by a writer killed mid-write (object_store names them `<key>#<n>`).
    let debris = [
        plant(week_dir.join("0.25.json#1"), true),
        plant(week_dir.join("0.25.json#2"), true),
        plant(data.join("merged/2026-11-20.json#1"), true),
    ];
    // Being written right now, and a stored report: both kept.
    let kept = [
        plant(week_dir.join("0.5.json#1"), false),
        plant(week_dir.join("0.125.json"), true),
    ];
    let storage = telemetry_server::Storage::open(&file_url(&data), []).unwrap();
    let server = TestServer::start_on(dir, storage, |_| {});
    eventually(
        std::time::Duration::from_secs(10),
        "the staging files to be swept",
        || !debris.iter().any(|p| p.exists()),
    );
    for path in &kept {
        assert!(path.exists(), "{path:?} removed");
    }
    drop(server);
}
