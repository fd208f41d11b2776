//! The decision log end to end: `TELEMETRY_DEBUG=1` puts the parent's lines on
//! stderr and the child's in `debug/sidecar.log`, the uploaded body included;
//! `Config::logger` does the same in code; without either, stderr stays empty.

use telemetry_internal::{Dir, format_date};
use telemetry_tests::{
    EVENT_TIMEOUT, days, eventually, expired_week, mytool, opt_in, output_within,
    serving_approving_config,
};

const LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

#[test]
fn telemetry_debug_logs_the_parent_to_stderr_and_the_child_to_debug() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    opt_in(&dir, 30);
    expired_week(&dir, &[("mytool/subcommand:greet", 3)]);
    let server = serving_approving_config();
    let mut cmd = mytool(
        &dir,
        &["--crashes", "--server", server.url(), "--wait", "greet"],
    );
    cmd.env("TELEMETRY_DEBUG", "1");
    let out = output_within(cmd, LIMIT);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid_prefix = "mytool[";
    for expected in [
        "telemetry: mode on ",
        "(the mode file says on ",
        "telemetry: counting into ",
        "telemetry: upload due: token taken",
        "telemetry: child started (pid ",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
    for line in stderr.lines().filter(|l| !l.starts_with("child: ")) {
        assert!(line.starts_with(pid_prefix), "{line}");
    }
    assert_eq!(server.uploads().len(), 1);
    let log = std::fs::read_to_string(Dir::new(&dir).sidecar_log()).unwrap();
    assert!(
        log.contains("mytool child["),
        "the child's lines name it: {log}"
    );
    assert!(
        log.contains("started: crash counting on, upload due"),
        "{log}"
    );
    assert!(
        log.contains(&format!("upload: {}: uploaded", format_date(days(-1)))),
        "{log}"
    );
    // Each upload's exact body, as sent.
    let body = server.uploads()[0].text();
    assert!(log.contains(body.trim()), "the body {body} in {log}");
}

#[test]
fn logger_in_code_logs_crash_reporting() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    let out = output_within(
        mytool(&dir, &["--crashes", "--log", "--wait", "greet"]),
        LIMIT,
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("telemetry: mode local (no mode file; local is the default)"),
        "{stderr}"
    );
    // Nothing to count and nothing to upload: no process is started.
    assert!(
        stderr.contains("crash reporting on: no crash waiting")
            && stderr.contains("no child started: no crash to count and no upload due"),
        "{stderr}"
    );
    // A crash, then a run that finds it: its child counts it.
    let out = output_within(mytool(&dir, &["--crashes", "panic", "x"]), LIMIT);
    assert_eq!(out.status.code(), Some(101));
    let out = output_within(
        mytool(&dir, &["--crashes", "--log", "--wait", "greet"]),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("crashes of earlier runs wait in the journal")
            && stderr.contains("child started (pid ")
            && stderr.contains("crash counting on, upload not due"),
        "{stderr}"
    );
    // The logger asks for the child's lines too: debug/ is created for them.
    eventually(EVENT_TIMEOUT, "the child's log", || {
        std::fs::read_to_string(Dir::new(&dir).sidecar_log())
            .is_ok_and(|l| l.contains("crash journal: counted crash/panic"))
    });
}

#[test]
fn without_a_logger_stderr_is_empty_and_debug_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    let out = output_within(mytool(&dir, &["--crashes", "greet"]), LIMIT);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert!(!Dir::new(&dir).debug().exists());
}
