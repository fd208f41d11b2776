//! `telemetry view`'s page in a real browser: it loads with no console message (no
//! script error, no blocked fetch) and shows the values of a fixture directory.
//!
//! Needs `chromium` (`.ci/install-chromium`). Without it each test is skipped and says
//! so, unless CI requires it (the rule of `telemetry_test_support::Tool::available`).

mod common;

use std::path::Path;

use common::{counter_file, run_in, sample_dir, stderr};
use telemetry_test_support::Chromium;

fn file_url(page: &Path) -> String {
    format!("file://{}", page.display())
}

#[test]
fn page_loads_cleanly_and_shows_the_values() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("telemetry");
    sample_dir(&dir);
    counter_file(
        &dir,
        ("other", "0.9.0"),
        ("2026-11-21", "2026-11-28"),
        &[("other/hostile:<script>alert(1)</script>", 31337)],
    );
    std::fs::copy(
        common::fixture("small.v1.count"),
        dir.join("local/ref@devel-go1.19.8-linux-amd64-2026-11-20.v1.count"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("upload")).unwrap();
    std::fs::write(
        dir.join("upload/config.json"),
        common::approving_config("mytool", "1.2.0", &["mytool/errors"]),
    )
    .unwrap();
    let out = run_in(&dir, &["view"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = dir.join("view.html");

    let dom = chromium.load_cleanly(&file_url(&page), &tmp.path().join("profile"));
    assert!(
        dom.contains("<h1>Telemetry: what this machine collected</h1>"),
        "{dom}"
    );
    for value in [
        "mytool/errors",
        "crash/panic",
        "mytool::run+0x1f",
        "golang.org/x/telemetry/cmd/ref",
        "example.com/mytool/cmd.main:+12,+0x2a",
    ] {
        assert!(dom.contains(value), "{value} not shown:\n{dom}");
    }
    for value in [">3<", ">42<", ">17<", ">5<", ">2<", ">31337<"] {
        assert!(dom.contains(value), "value {value} not shown:\n{dom}");
    }
    assert!(
        dom.contains("<span class=\"approved\">approved</span>"),
        "{dom}"
    );
    // The hostile name is text, not an element.
    assert!(!dom.contains("<script>alert"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    // The mode and the switch that decided it, and the Go file's platform.
    assert!(
        dom.contains("<strong id=\"mode\">local</strong> (no mode file; local is the default)"),
        "{dom}"
    );
    assert!(dom.contains("go1.19.8 · linux/amd64"), "{dom}");

    // A picture for a person to compare by eye (kept in the target directory).
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("telemetry-view.png");
    let _ = std::fs::remove_file(&png);
    chromium.screenshot(&file_url(&page), &tmp.path().join("profile2"), &png);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 10_000,
        "an empty picture: {} bytes",
        bytes.len()
    );
}

/// The standalone command's page of the whole root: one section per tool, each with
/// its mode and the switch that decided it.
#[test]
fn root_page_loads_cleanly_and_shows_every_tool() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let root = common::root_in(home.path());
    sample_dir(&root.join("mytool"));
    std::fs::write(root.join("mytool/mode"), "on 2026-11-01\n").unwrap();
    counter_file(
        &root.join("other"),
        ("other", "0.9.0"),
        ("2026-11-21", "2026-11-28"),
        &[("other/runs", 7)],
    );
    std::fs::write(root.join("mode"), "off\n").unwrap();
    let out = common::run_home(home.path(), &["view"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = root.join("view.html");
    let dom = chromium.load_cleanly(&file_url(&page), &home.path().join("profile"));
    for tool in ["mytool", "other"] {
        assert!(
            dom.contains(&format!("<h2 class=\"tool\">Tool <code>{tool}</code></h2>")),
            "{dom}"
        );
    }
    assert!(dom.contains("user-wide switch off ("), "{dom}");
    assert!(
        dom.contains("mode <strong>off</strong> (the user-wide switch "),
        "{dom}"
    );
    assert!(dom.contains(">7<") && dom.contains(">42<"), "{dom}");
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("telemetry-view-root.png");
    let _ = std::fs::remove_file(&png);
    chromium.screenshot(&file_url(&page), &home.path().join("profile2"), &png);
    assert!(std::fs::read(&png).unwrap().len() > 10_000);
}
