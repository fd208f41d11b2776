//! The scenarios of Go's upload tests, on real files and a real HTTP server.

mod common;

use std::collections::BTreeMap;

use common::*;
use telemetry_internal::{Ambient, Mode, ModeSwitch, Program};
use telemetry_test_support::child;
use telemetry_upload::{ConfigSource, LocalOnlyReason, ReportStatus, UploadError};

#[test]
fn basic() {
    let env = Env::new(&["tool/a"]);
    let file = env.count(
        &TOOL,
        "2026-11-13",
        "2026-11-20",
        &[("tool/a", 3), ("tool/b", 5)],
    );
    let summary = env.run("2026-11-21");
    assert_eq!(lines(&summary), ["2026-11-20: uploaded"]);

    let posts = env.server.uploads();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/upload/2026-11-20");
    let report = posts[0].json();
    assert_eq!(report["Week"], "2026-11-20");
    assert_eq!(report["LastWeek"], "");
    let x = report["X"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&x));
    assert!(report["Config"].as_str().unwrap().starts_with("fnv1a64:"));
    let program = &report["Programs"][0];
    assert_eq!(program["Program"], "tool");
    assert_eq!(program["Version"], "1.0.0");
    assert_eq!(program["Toolchain"], telemetry_internal::toolchain());
    assert_eq!(program["OS"], telemetry_internal::OS);
    assert_eq!(program["Arch"], telemetry_internal::ARCH);
    assert_eq!(program["Counters"], serde_json::json!({"tool/a": 3}));
    assert_eq!(program["Stacks"], serde_json::json!({}));

    // The local report keeps everything; the sent one is copied to upload/.
    assert!(!file.exists(), "counter files are deleted once reported");
    assert_eq!(env.local_names(), ["local.2026-11-20.json"]);
    let local: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.local().join("local.2026-11-20.json")).unwrap())
            .unwrap();
    assert_eq!(
        local["Programs"][0]["Counters"],
        serde_json::json!({"tool/a": 3, "tool/b": 5})
    );
    assert_eq!(local["X"], report["X"]);
    assert_eq!(
        std::fs::read(env.dir().upload().join("2026-11-20.json")).unwrap(),
        posts[0].body
    );
    assert!(
        telemetry_upload::last_config(&env.root()).is_some(),
        "config saved"
    );

    // Nothing is left to do, and nothing is sent twice.
    assert!(env.run("2026-11-22").reports.is_empty());
    assert_eq!(env.server.uploads().len(), 1);

    // The next week names the last one uploaded.
    env.count(&TOOL, "2026-11-20", "2026-11-27", &[("tool/a", 1)]);
    assert_eq!(lines(&env.run("2026-11-28")), ["2026-11-27: uploaded"]);
    assert_eq!(env.server.uploads()[1].json()["LastWeek"], "2026-11-20");
}

#[test]
fn retries_across_200_400_500() {
    // 500: kept, and sent again by the next run.
    let env = Env::new(&["tool/a"]);
    env.server.set_upload_status(500);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    assert_eq!(
        lines(&env.run("2026-11-21")),
        [format!(
            "2026-11-20: kept for retry: server said 500 at {}/2026-11-20",
            env.server.upload_url()
        )]
    );
    assert_eq!(
        env.local_names(),
        ["2026-11-20.json", "local.2026-11-20.json"]
    );
    assert_eq!(
        lines(&env.run("2026-11-22")),
        [format!(
            "2026-11-20: kept for retry: server said 500 at {}/2026-11-20",
            env.server.upload_url()
        )]
    );
    assert_eq!(env.server.uploads().len(), 2, "one POST per run");
    env.server.set_upload_status(200);
    assert_eq!(lines(&env.run("2026-11-23")), ["2026-11-20: uploaded"]);
    assert_eq!(env.server.uploads().len(), 3);
    let bodies: Vec<_> = env
        .server
        .uploads()
        .iter()
        .map(|p| p.body.clone())
        .collect();
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "the same report each time"
    );
    assert!(env.run("2026-11-24").reports.is_empty());
    assert_eq!(env.server.uploads().len(), 3);
    // The week is finished: its lock went with it.
    assert_eq!(env.upload_names(), ["2026-11-20.json", "config.json"]);
    // A lock a dead run left for a week that can no longer be uploaded is tidied away.
    std::fs::write(env.dir().upload().join("2026-10-01.lock"), "").unwrap();
    env.run("2027-01-15");
    assert_eq!(env.upload_names(), ["2026-11-20.json", "config.json"]);

    // 400: dropped, never sent again, no copy in upload/.
    let env = Env::new(&["tool/a"]);
    env.server.set_upload_status(400);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    assert_eq!(
        lines(&env.run("2026-11-21")),
        ["2026-11-20: rejected by the server (400); deleted"]
    );
    assert_eq!(env.local_names(), ["local.2026-11-20.json"]);
    env.server.set_upload_status(200);
    assert!(env.run("2026-11-22").reports.is_empty());
    assert_eq!(env.server.uploads().len(), 1);
    assert!(!env.upload_names().contains(&"2026-11-20.json".to_owned()));

    // Network error: kept.
    let env = Env::new(&["tool/a"]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let mut config = env.config("2026-11-21");
    config.upload_url = "http://127.0.0.1:1/upload".into();
    let summary = telemetry_upload::run(config).unwrap();
    assert!(
        matches!(summary.reports[0].status, ReportStatus::KeptForRetry { .. }),
        "{summary}"
    );
    assert!(env.local_names().contains(&"2026-11-20.json".to_owned()));
}

/// Only an answer that says the report itself is invalid (400, 413, 422) drops it.
/// Every other answer (a wrong upload URL's 404, 401, 403, 405, the busy server's 408
/// and 429, any other 4xx, 5xx) keeps it for the next daily run, and the log names
/// the status and the URL.
#[test]
fn only_an_invalid_report_is_dropped() {
    for status in [401, 403, 404, 405, 408, 418, 429, 451, 502, 503] {
        let env = Env::new(&["tool/a"]);
        env.server.set_upload_status(status);
        env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
        let (summary, log) = env.run_logged("2026-11-21");
        let url = format!("{}/2026-11-20", env.server.upload_url());
        assert_eq!(
            lines(&summary),
            [format!(
                "2026-11-20: kept for retry: server said {status} at {url}"
            )],
            "{status}"
        );
        assert!(
            log.contains(&format!("POST {url} answered {status}")),
            "{status}: {log}"
        );
        assert_eq!(
            env.local_names(),
            ["2026-11-20.json", "local.2026-11-20.json"],
            "{status}"
        );
        // The next day the tool is fixed (or the server relents): the same report goes.
        env.server.set_upload_status(200);
        assert_eq!(lines(&env.run("2026-11-22")), ["2026-11-20: uploaded"]);
        let uploads = env.server.uploads();
        assert_eq!(uploads.len(), 2, "{status}");
        assert_eq!(uploads[0].body, uploads[1].body, "{status}");
    }
    for status in [400, 413, 422] {
        let env = Env::new(&["tool/a"]);
        env.server.set_upload_status(status);
        env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
        assert_eq!(
            lines(&env.run("2026-11-21")),
            [format!(
                "2026-11-20: rejected by the server ({status}); deleted"
            )]
        );
        assert_eq!(env.local_names(), ["local.2026-11-20.json"]);
    }
}

/// A collector answers a report whose week has not ended by its clock (the client's
/// clock runs fast) with 425 Too Early and `Retry-After`: the report is kept, the log
/// says when the server asked to be tried again, and the next daily run sends it.
#[test]
fn too_early_keeps_the_report_for_the_next_day() {
    let env = Env::new(&["tool/a"]);
    env.server.set_upload_status(425);
    env.server.set_retry_after(Some("7200"));
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 5)]);
    let (summary, log) = env.run_logged("2026-11-21");
    let url = format!("{}/2026-11-20", env.server.upload_url());
    assert_eq!(
        lines(&summary),
        [format!(
            "2026-11-20: kept for retry: server said 425 at {url} (Retry-After: 7200 s)"
        )]
    );
    assert!(
        log.contains(&format!(
            "2026-11-20: POST {url} answered 425 (Retry-After: 7200 s); keeping the report \
             for the next daily run"
        )),
        "{log}"
    );
    assert!(env.local_names().contains(&"2026-11-20.json".to_owned()));
    // An HTTP date is shown as given; a hostile value is shown harmlessly.
    env.server
        .set_retry_after(Some("Sun, 22 Nov 2026 08:00:00 GMT; <x>"));
    let (_, log) = env.run_logged("2026-11-22");
    assert!(
        log.contains("(Retry-After: Sun, 22 Nov 2026 08:00:00 GMT? ?x?)"),
        "{log}"
    );
    env.server.set_upload_status(200);
    env.server.set_retry_after(None);
    assert_eq!(lines(&env.run("2026-11-23")), ["2026-11-20: uploaded"]);
    assert_eq!(env.server.uploads().len(), 3);
    assert_eq!(
        env.server.uploads()[2].json()["Programs"][0]["Counters"]["tool/a"],
        5
    );
}

#[test]
fn time_out_keeps_the_report_and_is_bounded() {
    let env = Env::new(&["tool/a"]);
    env.server.set_silent(true);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let mut config = env.config("2026-11-21");
    config.timeout = std::time::Duration::from_secs(1);
    let began = std::time::Instant::now();
    let summary = telemetry_upload::run(config).unwrap();
    assert!(
        began.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert!(
        matches!(summary.reports[0].status, ReportStatus::KeptForRetry { .. }),
        "{summary}"
    );
    assert!(env.local_names().contains(&"2026-11-20.json".to_owned()));
}

#[test]
fn several_weeks_at_once() {
    let env = Env::new(&["tool/a"]);
    let other = Program::new("other", "2.0.0");
    env.count(&TOOL, "2026-11-06", "2026-11-13", &[("tool/a", 1)]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 2)]);
    env.count(&other, "2026-11-14", "2026-11-20", &[("tool/a", 100)]);
    env.count(&TOOL, "2026-11-20", "2026-11-27", &[("tool/a", 3)]);
    env.count(&TOOL, "2026-11-27", "2026-12-04", &[("tool/a", 4)]); // not expired
    let summary = env.run("2026-11-28");
    assert_eq!(
        lines(&summary),
        [
            "2026-11-13: uploaded",
            "2026-11-20: uploaded",
            "2026-11-27: uploaded"
        ]
    );
    let mut by_path: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for post in env.server.uploads() {
        assert!(
            by_path.insert(post.path.clone(), post.json()).is_none(),
            "one POST each"
        );
    }
    let counts: Vec<_> = by_path
        .values()
        .map(|r| {
            let programs = r["Programs"].as_array().unwrap();
            assert_eq!(programs.len(), 1, "`other` is not approved: {r}");
            programs[0]["Counters"]["tool/a"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(counts, [1, 2, 3]);
    assert_eq!(env.count_files(), 1, "the current week's file stays");
    // The local report of the week with two programs lists both.
    let local = std::fs::read_to_string(env.local().join("local.2026-11-20.json")).unwrap();
    assert!(local.contains("\"other\""));
}

#[test]
fn empty_week_does_not_block_the_next() {
    let env = Env::new(&["week1", "week2"]);
    env.count(&TOOL, "2026-11-06", "2026-11-13", &[]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("week2", 1)]);
    let summary = env.run("2026-11-21");
    assert_eq!(
        lines(&summary),
        [
            "2026-11-13: local only (no counter in it is approved for upload)",
            "2026-11-20: uploaded"
        ]
    );
    let posts = env.server.uploads();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].text().contains("week2"));
    assert!(
        env.local_names()
            .contains(&"local.2026-11-13.json".to_owned())
    );
    assert_eq!(env.count_files(), 0);
}

#[test]
fn counter_file_with_missing_dates() {
    let env = Env::new(&["tool/a"]);
    // A file whose metadata lost its dates takes them from its name, as a one-day
    // file (Go's parser does the same).
    let path = env.count(&TOOL, "2026-11-18", "2026-11-20", &[("tool/a", 7)]);
    patch(&path, "TimeBegin: ", "TimeBegXn: ");
    patch(&path, "TimeEnd: ", "TimeEnX: ");
    // One without dates and without a date in its name cannot be placed in a week.
    let nameless = env.local().join("tool.v1.count");
    std::fs::copy(&path, &nameless).unwrap();
    // Garbage is skipped too.
    let garbage = env.local().join("tool@1.0.0-x-2026-11-10.v1.count");
    std::fs::write(&garbage, b"not a counter file").unwrap();

    let log = SharedLog::default();
    let mut config = env.config("2026-11-21");
    config.log = Some(Box::new(log.clone()));
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(lines(&summary), ["2026-11-19: uploaded"]);
    assert!(env.server.uploads()[0].text().contains("\"tool/a\":7"));
    assert!(
        nameless.exists() && garbage.exists(),
        "unparseable files are left alone"
    );
    let text = log.text();
    assert!(text.contains("skipping tool.v1.count"), "{text}");
    assert!(
        text.contains("skipping tool@1.0.0-x-2026-11-10.v1.count"),
        "{text}"
    );
}

fn patch(path: &std::path::Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("found");
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn mode_off_writes_nothing() {
    let env = Env::new(&["tool/a"]);
    env.set_mode(Mode::Off);
    std::fs::create_dir(env.dir().debug()).unwrap();
    let file = env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let before = env.local_names();
    let mut config = env.config("2026-11-21");
    config.config = ConfigSource::Url(env.server.config_url());
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(summary.off, Some(ModeSwitch::Tool));
    assert!(summary.reports.is_empty());
    assert_eq!(
        summary.to_string(),
        "Telemetry is off (its mode is off): nothing was uploaded.\n"
    );
    assert_eq!(env.local_names(), before);
    assert!(file.exists());
    assert!(
        env.names(&env.dir().debug()).is_empty(),
        "no debug log either"
    );
    assert!(!env.dir().upload().exists());
    assert!(env.server.requests().is_empty());
}

#[test]
fn mode_local_builds_local_reports_only() {
    let env = Env::new(&["tool/a"]);
    env.set_mode(Mode::Local);
    env.server.set_config(&config_json(&["tool/a"], &[]));
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let mut config = env.config("2026-11-21");
    config.config = ConfigSource::Url(env.server.config_url());
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(lines(&summary), ["2026-11-20: local only (mode is not on)"]);
    assert_eq!(env.local_names(), ["local.2026-11-20.json"]);
    assert!(
        env.server.requests().is_empty(),
        "no config download, no POST"
    );
}

#[test]
fn mode_on_with_date_never_sends_earlier_data() {
    let env = Env::new(&["tool/a"]);
    env.server.set_config(&config_json(&["tool/a"], &[]));
    env.set_mode(Mode::On {
        since: day("2026-11-13"),
    });
    // Began on the opt-in day: may hold data from before it.
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let mut config = env.config("2026-11-21");
    config.config = ConfigSource::Url(env.server.config_url());
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(
        lines(&summary),
        ["2026-11-20: local only (holds data from before the opt-in date)"]
    );
    assert_eq!(
        env.server.requests().len(),
        0,
        "nothing uploadable: no config download"
    );

    // A week in which one program's file began before the opt-in is all held back.
    env.count(&TOOL, "2026-11-14", "2026-11-27", &[("tool/a", 1)]);
    env.count(
        &Program::new("tool", "1.0.1"),
        "2026-11-12",
        "2026-11-27",
        &[("tool/a", 1)],
    );
    assert_eq!(
        lines(&env.run("2026-11-28")),
        ["2026-11-27: local only (holds data from before the opt-in date)"]
    );

    // The day after the opt-in is fine.
    env.count(&TOOL, "2026-11-14", "2026-12-04", &[("tool/a", 1)]);
    let mut config = env.config("2026-12-05");
    config.config = ConfigSource::Url(env.server.config_url());
    assert_eq!(
        lines(&telemetry_upload::run(config).unwrap()),
        ["2026-12-04: uploaded"]
    );
    assert_eq!(
        env.server
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        1,
        "the config is downloaded when needed"
    );
    assert_eq!(env.server.uploads().len(), 1);

    // A ready report built under an earlier opt-in stays when the user opts in again
    // later (Go's beforefirstupload).
    env.server.set_upload_status(500);
    env.count(&TOOL, "2026-12-05", "2026-12-11", &[("tool/a", 1)]);
    assert_eq!(
        lines(&env.run("2026-12-12")),
        [format!(
            "2026-12-11: kept for retry: server said 500 at {}/2026-12-11",
            env.server.upload_url()
        )]
    );
    env.set_mode(Mode::On {
        since: day("2026-12-11"),
    });
    env.server.set_upload_status(200);
    assert_eq!(
        lines(&env.run("2026-12-13")),
        ["2026-12-11: local only (holds data from before the opt-in date)"]
    );
    assert!(
        env.local_names().contains(&"2026-12-11.json".to_owned()),
        "kept"
    );
    env.set_mode(Mode::On {
        since: day("2026-12-01"),
    });
    assert_eq!(lines(&env.run("2026-12-14")), ["2026-12-11: uploaded"]);
}

#[test]
fn debug_log_variants() {
    // debug/ is a directory: a log file appears there.
    let env = Env::new(&["tool/a"]);
    std::fs::create_dir(env.dir().debug()).unwrap();
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    env.run("2026-11-21");
    let logs = env.names(&env.dir().debug());
    assert_eq!(logs.len(), 1, "{logs:?}");
    let name = &logs[0];
    assert!(
        name.ends_with(&format!("-2026-11-21-{}.log", std::process::id())),
        "{name}"
    );
    let text = std::fs::read_to_string(env.dir().debug().join(name)).unwrap();
    assert!(text.contains("2026-11-20: uploaded"), "{text}");

    // debug is a plain file: nothing breaks, the file is untouched.
    let env = Env::new(&["tool/a"]);
    std::fs::write(env.dir().debug(), "not a directory").unwrap();
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    assert_eq!(lines(&env.run("2026-11-21")), ["2026-11-20: uploaded"]);
    assert_eq!(
        std::fs::read_to_string(env.dir().debug()).unwrap(),
        "not a directory"
    );

    // No debug: none is created.
    let env = Env::new(&["tool/a"]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    assert_eq!(lines(&env.run("2026-11-21")), ["2026-11-20: uploaded"]);
    assert!(!env.dir().debug().exists());
}

#[test]
fn concurrent_uploaders_send_each_report_once() {
    // Races are found by repetition; each round is a few milliseconds.
    for _ in 0..10 {
        concurrent_round();
    }
}

fn concurrent_round() {
    let env = Env::new(&["tool/a", "tool/b"]);
    let other = Program::new("tool", "0.9.0"); // not approved: local only
    let weeks = [
        ("2026-11-06", "2026-11-13"),
        ("2026-11-13", "2026-11-20"),
        ("2026-11-20", "2026-11-27"),
    ];
    let mut want_a = 0;
    for (i, (begin, end)) in weeks.iter().enumerate() {
        for program in [&TOOL, &other] {
            let a = 10 * i as u64 + 1;
            if program == &TOOL {
                want_a += a;
            }
            env.count(
                program,
                begin,
                end,
                &[("tool/a", a), ("tool/b", 2), ("tool/secret", 9)],
            );
        }
        // A second file of the same week (a later begin day).
        let later = telemetry_internal::format_date(day(begin).next_day().unwrap());
        env.count(&TOOL, &later, end, &[("tool/a", 1000)]);
        want_a += 1000;
    }
    std::thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| env.run("2026-11-28"));
        }
    });
    let posts = env.server.uploads();
    let mut paths: Vec<_> = posts.iter().map(|p| p.path.clone()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/upload/2026-11-13",
            "/upload/2026-11-20",
            "/upload/2026-11-27"
        ]
    );
    let mut got_a = 0;
    let mut got_b = 0;
    for post in &posts {
        assert!(!post.text().contains("secret"));
        let programs = post.json()["Programs"].as_array().unwrap().clone();
        assert_eq!(programs.len(), 1);
        got_a += programs[0]["Counters"]["tool/a"].as_u64().unwrap();
        got_b += programs[0]["Counters"]["tool/b"].as_u64().unwrap();
    }
    assert_eq!(got_a, want_a);
    assert_eq!(got_b, 6);
    assert_eq!(env.count_files(), 0);
    assert_eq!(
        env.local_names(),
        [
            "local.2026-11-13.json",
            "local.2026-11-20.json",
            "local.2026-11-27.json"
        ]
    );
    // The local reports hold every count exactly once too.
    let mut local_secret = 0;
    for name in env.local_names() {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.local().join(name)).unwrap()).unwrap();
        for p in r["Programs"].as_array().unwrap() {
            local_secret += p["Counters"]["tool/secret"].as_u64().unwrap_or(0);
        }
    }
    assert_eq!(local_secret, 9 * 6);
}

#[test]
fn too_old_and_future_dated_reports() {
    let env = Env::new(&["tool/a"]);
    // Ready reports, built while the server failed: one dated after a later run that
    // pretends to be earlier, one that is 30 days old by then (deleted unsent).
    env.server.set_upload_status(500);
    env.count(&TOOL, "2026-11-26", "2026-12-03", &[("tool/a", 4)]);
    env.run("2026-12-04");
    env.count(&TOOL, "2026-10-24", "2026-10-31", &[("tool/a", 3)]);
    env.run("2026-11-01");
    env.server.set_upload_status(200);
    let uploads_before = env.server.uploads().len();
    assert_eq!(uploads_before, 2);
    // A week that ended 22 days before the run: local only.
    env.count(&TOOL, "2026-11-01", "2026-11-08", &[("tool/a", 1)]);
    // Exactly 21 days: still uploaded.
    env.count(&TOOL, "2026-11-02", "2026-11-09", &[("tool/a", 2)]);

    let mut config = env.config("2026-11-30");
    config.now = at("2026-12-05"); // the real clock; the run pretends an earlier day
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(
        lines(&summary),
        [
            "2026-10-31: not sent: older than 21 days; deleted",
            "2026-11-08: local only (older than 21 days)",
            "2026-11-09: uploaded",
            "2026-12-03: dated after today; kept for later",
        ]
    );
    let posts = &env.server.uploads()[uploads_before..];
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/upload/2026-11-09");
    assert_eq!(
        env.local_names(),
        [
            "2026-12-03.json",
            "local.2026-10-31.json",
            "local.2026-11-08.json",
            "local.2026-11-09.json",
            "local.2026-12-03.json",
        ]
    );
}

/// A pretended time far in the future never ages a report out: a ready report kept
/// after a 500 is sent by a run pretending the year 9999 (not deleted unsent as
/// "older than 21 days"), since by the real clock it is a day old.
#[test]
fn a_pretended_future_never_deletes_a_ready_report() {
    let env = Env::new(&["tool/a"]);
    env.server.set_upload_status(500);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 3)]);
    env.run("2026-11-21");
    assert!(env.local_names().contains(&"2026-11-20.json".to_owned()));
    env.server.set_upload_status(200);
    let mut config = env.config("2026-11-22");
    config.start_time = Some(at("9999-12-31"));
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(lines(&summary), ["2026-11-20: uploaded"]);
    assert_eq!(env.server.uploads().len(), 2);
}

#[test]
fn unapproved_counters_never_leave() {
    let env = Env::new(&[]);
    std::fs::write(
        &env.config_file,
        config_json(&["tool/ok", "tool/flag:{x,y}"], &["tool/bug"]),
    )
    .unwrap();
    env.count(
        &TOOL,
        "2026-11-13",
        "2026-11-20",
        &[
            ("tool/ok", 1),
            ("tool/flag:x", 2),
            ("tool/flag:z-secret", 3),
            ("tool/secret", 4),
            ("tool/bug\nsrc/main.rs:10\nsrc/lib.rs:20", 5),
            ("tool/secretbug\nsrc/main.rs:10", 6),
            ("tool/ok\nsecret-stack-of-an-approved-counter-name", 7),
        ],
    );
    env.count(
        &Program::new("tool", "6.6.6"),
        "2026-11-13",
        "2026-11-20",
        &[("tool/ok", 8)],
    );
    env.count(
        &Program::new("secret", "1.0.0"),
        "2026-11-13",
        "2026-11-20",
        &[("tool/ok", 9)],
    );
    assert_eq!(lines(&env.run("2026-11-21")), ["2026-11-20: uploaded"]);
    let posts = env.server.uploads();
    assert_eq!(posts.len(), 1);
    let text = posts[0].text();
    assert!(!text.contains("secret"), "{text}");
    assert!(!text.contains("6.6.6"), "{text}");
    let program = &posts[0].json()["Programs"][0];
    assert_eq!(
        program["Counters"],
        serde_json::json!({"tool/ok": 1, "tool/flag:x": 2})
    );
    let stacks = program["Stacks"].as_object().unwrap();
    assert_eq!(stacks.len(), 1);
    assert_eq!(stacks.values().next().unwrap(), 5);

    // A config for another platform approves nothing at all.
    let env = Env::new(&["tool/a"]);
    std::fs::write(
        &env.config_file,
        config_json(&["tool/a"], &[]).replace(telemetry_internal::OS, "plan9"),
    )
    .unwrap();
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    assert_eq!(
        lines(&env.run("2026-11-21")),
        ["2026-11-20: local only (no counter in it is approved for upload)"]
    );
    assert!(env.server.uploads().is_empty());
}

#[test]
fn a_bad_config_leaves_every_file_in_place() {
    let env = Env::new(&["tool/a"]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    // A week whose report exists (its file would normally be deleted) and a ready one.
    env.count(&TOOL, "2026-11-06", "2026-11-13", &[("tool/a", 1)]);
    std::fs::write(env.local().join("local.2026-11-13.json"), "{}").unwrap();
    std::fs::write(env.local().join("2026-11-13.json"), "{}").unwrap();
    let before = env.local_names();

    // Served but not JSON.
    env.server.set_config("<html>not a config</html>");
    let mut config = env.config("2026-11-21");
    config.config = ConfigSource::Url(env.server.config_url());
    let err = telemetry_upload::run(config).unwrap_err();
    assert!(matches!(err, UploadError::ConfigParse { .. }), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(env.local_names(), before);
    assert!(env.server.uploads().is_empty());
    assert!(telemetry_upload::last_config(&env.root()).is_none());

    // Not served at all.
    let server = LoopbackServer::start();
    let mut config = env.config("2026-11-21");
    config.config = ConfigSource::Url(server.config_url());
    let err = telemetry_upload::run(config).unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert!(matches!(err, UploadError::ConfigFetch { .. }));
    assert_eq!(env.local_names(), before);

    // A missing file.
    let mut config = env.config("2026-11-21");
    config.config = ConfigSource::File(env.tmp.path().join("missing.json"));
    assert!(matches!(
        telemetry_upload::run(config),
        Err(UploadError::ConfigRead { .. })
    ));
    assert_eq!(env.local_names(), before);

    // With a good config the same directory is processed.
    env.server.set_config(&config_json(&["tool/a"], &[]));
    let mut config = env.config("2026-11-21");
    config.config = ConfigSource::Url(env.server.config_url());
    let summary = telemetry_upload::run(config).unwrap();
    // The planted `{}` pair of 2026-11-13 is not a report this code built.
    assert_eq!(
        lines(&summary),
        [
            "2026-11-13: not sent, not ours: not a report: missing field `Week` at line 1 column 2",
            "2026-11-20: uploaded"
        ]
    );
    let saved = telemetry_upload::last_config(&env.root()).unwrap();
    let mut meta = BTreeMap::new();
    for (k, v) in [
        ("Program", "tool"),
        ("Version", "1.0.0"),
        ("OS", telemetry_internal::OS),
        ("Arch", telemetry_internal::ARCH),
        ("Toolchain", telemetry_internal::toolchain()),
    ] {
        meta.insert(k.to_owned(), v.to_owned());
    }
    assert!(saved.approves(&meta, "tool/a"));
    assert!(!saved.approves(&meta, "tool/b"));
}

#[test]
fn plain_http_to_another_host_is_refused() {
    let env = Env::new(&["tool/a"]);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let before = env.local_names();
    let mut config = env.config("2026-11-21");
    config.upload_url = "http://telemetry.example.com/upload".into();
    let err = telemetry_upload::run(config).unwrap_err();
    assert!(matches!(err, UploadError::InsecureUrl { .. }), "{err}");
    assert!(err.to_string().contains("https"));
    assert_eq!(env.local_names(), before);

    let mut config = env.config("2026-11-21");
    config.config = ConfigSource::Url("http://example.com/config.json".into());
    assert!(matches!(
        telemetry_upload::run(config),
        Err(UploadError::InsecureUrl { .. })
    ));
}

#[test]
fn sample_rate_zero_or_missing_uploads_everything_as_in_go() {
    for rate in ["\"SampleRate\": 0,", ""] {
        let env = Env::new(&["tool/a"]);
        std::fs::write(
            &env.config_file,
            config_json(&["tool/a"], &[]).replace("\"SampleRate\": 1,", rate),
        )
        .unwrap();
        env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
        assert_eq!(
            lines(&env.run("2026-11-21")),
            ["2026-11-20: uploaded"],
            "{rate}"
        );
    }
    // A tiny rate samples (almost) nothing: X would have to be below 1e-300.
    let env = Env::new(&["tool/a"]);
    std::fs::write(
        &env.config_file,
        config_json(&["tool/a"], &[]).replace("\"SampleRate\": 1", "\"SampleRate\": 1e-300"),
    )
    .unwrap();
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let summary = env.run("2026-11-21");
    assert_eq!(
        summary.reports[0].status,
        ReportStatus::LocalOnly {
            reason: LocalOnlyReason::NotSampled
        }
    );
    assert!(env.server.uploads().is_empty());
}

#[test]
fn existing_reports_are_not_rebuilt() {
    // Go's alreadydonelocal: the local report exists, so the file is only deleted.
    let env = Env::new(&["tool/a"]);
    let file = env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    std::fs::write(env.local().join("local.2026-11-20.json"), "{}").unwrap();
    assert!(env.run("2026-11-21").reports.is_empty());
    assert!(!file.exists());
    assert_eq!(env.local_names(), ["local.2026-11-20.json"]);
    assert!(env.server.uploads().is_empty());

    // Go's alreadydoneuploaded: the report was sent already. Only the local report is
    // built, and nothing is sent.
    let env = Env::new(&["tool/a"]);
    let file = env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    std::fs::create_dir_all(env.dir().upload()).unwrap();
    std::fs::write(env.dir().upload().join("2026-11-20.json"), "{}").unwrap();
    assert_eq!(
        lines(&env.run("2026-11-21")),
        ["2026-11-20: already uploaded"]
    );
    assert!(!file.exists());
    assert_eq!(env.local_names(), ["local.2026-11-20.json"]);
    assert!(env.server.uploads().is_empty());

    // A ready report that was sent by someone else is tidied, not sent again.
    std::fs::write(env.local().join("2026-11-20.json"), "{}").unwrap();
    assert_eq!(
        lines(&env.run("2026-11-21")),
        ["2026-11-20: already uploaded"]
    );
    assert_eq!(env.local_names(), ["local.2026-11-20.json"]);
    assert!(env.server.uploads().is_empty());

    // A file that expires after the start time is still being counted into.
    let env = Env::new(&["tool/a"]);
    let file = env.count(&TOOL, "2026-11-20", "2026-11-22", &[("tool/a", 1)]);
    assert!(env.run("2026-11-21").reports.is_empty());
    assert!(file.exists());
    // It expires at midnight, but a process may still count into it for a while: a
    // run at exactly that time only shows what it would do, and commits nothing.
    assert_eq!(
        lines(&env.run("2026-11-22")),
        [
            "2026-11-22: not over by the real clock: nothing written, sent or deleted \
          (at the pretended time: would be sent)"
        ]
    );
    assert!(file.exists());
    assert_eq!(
        env.local_names(),
        [file.file_name().unwrap().to_str().unwrap()]
    );
    // A day later by the real clock it is reported, and the file goes.
    let mut config = env.config("2026-11-22");
    config.now = at("2026-11-23");
    assert_eq!(
        lines(&telemetry_upload::run(config).unwrap()),
        ["2026-11-22: uploaded"]
    );
    assert!(!file.exists());
    assert_eq!(env.server.uploads().len(), 1);
}

/// What the child of `a_counter_file_still_mapped_is_deleted_once_unmapped` says once
/// it holds the mapping.
const MAPPED: &str = "child: mapped";

/// What a child of a test here does, by its role (`telemetry_test_support::child`):
/// `map|FILE` maps the counter file FILE and holds it until its stdin closes, as a
/// program counting into it would; `run|root|upload_url|config_file|start` does one
/// upload run.
fn play(role: &str) {
    match role.split_once('|') {
        Some(("map", path)) => {
            telemetry_counter::testing::map_for_life(std::path::Path::new(path)).unwrap();
            // The parent waits for this line.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{MAPPED}");
            }
            let _ = std::io::Read::read(&mut std::io::stdin(), &mut [0]);
        }
        Some(("run", spec)) => {
            let parts: Vec<&str> = spec.split('|').collect();
            let mut config = telemetry_upload::RunConfig::new(
                parts[0],
                parts[1],
                ConfigSource::File(parts[2].into()),
            );
            // Whatever the environment of the test says: the test wants tracking allowed.
            config.ambient = Ambient::default();
            config.now = at(parts[3]);
            config.start_time = Some(at(parts[3]));
            telemetry_upload::run(config).unwrap();
        }
        _ => panic!("unknown role {role}"),
    }
}

/// A program still counting into last week's file holds it mapped. On Unix it holds
/// the file's lease too: the run leaves the week alone (a report now would miss what
/// the program counts next, and deleting the file would lose it), and reports it
/// once the program lets go. Windows has no lease but refuses to delete a mapped
/// file: the run reports the week, and the file goes once the mapping does. Either
/// way nothing is sent twice.
#[test]
fn a_counter_file_still_mapped_is_deleted_once_unmapped() {
    if child::play_role(play) {
        return;
    }
    use std::io::BufRead;
    let env = Env::new(&["tool/a"]);
    let file = env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 1)]);
    let mut child = child::command(&format!("map|{}", file.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = Vec::new();
    let mut mapped = false;
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        mapped = line == MAPPED;
        if mapped {
            break;
        }
        said.push(line);
    }
    assert!(mapped, "the child failed: {said:#?}");

    let (summary, log) = env.run_logged("2026-11-21");
    if cfg!(unix) {
        assert_eq!(
            lines(&summary),
            ["2026-11-20: a process still counts into its counter files; kept for later"]
        );
        assert!(file.exists(), "{log}");
        assert!(env.server.uploads().is_empty());
        assert_eq!(
            env.local_names(),
            [file.file_name().unwrap().to_str().unwrap()]
        );
    } else {
        assert_eq!(lines(&summary), ["2026-11-20: uploaded"]);
        // Windows may refuse (the run then says so) or, as Wine does, accept and
        // remove the file only when the mapping goes.
        if log.contains("cannot delete") {
            assert!(file.exists(), "{log}");
        }
    }

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let summary = env.run("2026-11-21");
    if cfg!(unix) {
        assert_eq!(lines(&summary), ["2026-11-20: uploaded"]);
    } else {
        assert!(summary.reports.is_empty());
    }
    assert!(!file.exists());
    assert_eq!(env.server.uploads().len(), 1);
    assert_eq!(env.local_names(), ["local.2026-11-20.json"]);
}

#[test]
fn concurrent_processes_send_each_report_once() {
    if child::play_role(play) {
        return;
    }
    let env = Env::new(&["tool/a"]);
    let weeks = [("2026-11-06", "2026-11-13"), ("2026-11-13", "2026-11-20")];
    for (begin, end) in weeks {
        for version in ["1.0.0", "1.0.1", "1.0.2"] {
            env.count(
                &Program::owned("tool", version),
                begin,
                end,
                &[("tool/a", 1)],
            );
        }
        env.count(
            &TOOL,
            &telemetry_internal::format_date(day(begin).next_day().unwrap()),
            end,
            &[("tool/a", 10)],
        );
    }
    let spec = format!(
        "run|{}|{}|{}|2026-11-21",
        env.root().display(),
        env.server.upload_url(),
        env.config_file.display()
    );
    let children: Vec<_> = (0..5)
        .map(|_| {
            child::command(&spec)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let posts = env.server.uploads();
    let mut paths: Vec<_> = posts.iter().map(|p| p.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/upload/2026-11-13", "/upload/2026-11-20"]);
    for post in &posts {
        assert_eq!(post.json()["Programs"][0]["Counters"]["tool/a"], 11);
    }
    assert_eq!(env.count_files(), 0);
    assert_eq!(
        env.local_names(),
        ["local.2026-11-13.json", "local.2026-11-20.json"]
    );
}

/// A counter file that another process cut short: the week is still reported with
/// every count the parser proved intact, and the log says what was lost.
#[test]
fn a_damaged_counter_file_reports_its_intact_counts() {
    let names: Vec<String> = (0..400)
        .map(|i| format!("tool/a-long-counter-name-to-fill-pages-{i:03}"))
        .collect();
    let approved: Vec<&str> = names.iter().map(String::as_str).collect();
    let env = Env::new(&approved);
    let counts: Vec<(&str, u64)> = approved.iter().map(|n| (*n, 4)).collect();
    // Written elsewhere and copied in cut short: Windows refuses to shorten a file
    // this process has mapped.
    let scratch = tempfile::tempdir().unwrap();
    let whole = telemetry_counter::testing::write_file(
        scratch.path(),
        &TOOL,
        day("2026-11-13"),
        day("2026-11-20"),
        &counts,
    )
    .unwrap();
    let mut bytes = std::fs::read(&whole).unwrap();
    assert!(bytes.len() >= 32 * 1024, "{}: must span pages", bytes.len());
    bytes.truncate(20 * 1024);
    telemetry_internal::fs::ensure_private_dir(&env.local()).unwrap();
    std::fs::write(env.local().join(whole.file_name().unwrap()), bytes).unwrap();

    let (summary, log) = env.run_logged("2026-11-21");
    assert_eq!(lines(&summary), ["2026-11-20: uploaded"], "{log}");
    assert!(log.contains("counters proven intact"), "{log}");
    let posts = env.server.uploads();
    assert_eq!(posts.len(), 1);
    let sent = posts[0].json()["Programs"][0]["Counters"]
        .as_object()
        .unwrap()
        .clone();
    assert!(
        !sent.is_empty() && sent.len() < names.len(),
        "{} of {}",
        sent.len(),
        names.len()
    );
    assert!(sent.values().all(|v| v == 4), "{sent:?}");
}
