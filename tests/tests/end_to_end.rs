//! End to end: the example tool `mytool` with `telemetry::start`, its detached child,
//! and a loopback upload server. Run with `cargo xtask integration`.

use std::path::Path;
use std::process::{Output, Stdio};

use telemetry_internal::{Dir, Mode, format_date};
use telemetry_tests::{
    EVENT_TIMEOUT, counter_files_let_go, days, eventually, files_under, mytool, opt_in, program,
    serving_approving_config, todays_counts,
};

const SECRET: &str = "hunter2-do-not-collect";

fn run(dir: &Path, args: &[&str]) -> Output {
    mytool(dir, args).output().expect("run mytool")
}

/// Go's TestStart: the user opted in a month ago; the tool counts and panics today;
/// an upload run eight days later (by its clock) uploads one report holding both the
/// counter and the crash, and nothing of the panic message.
#[test]
fn start_counts_crashes_and_uploads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    opt_in(dir, 30);
    let server = serving_approving_config();

    let out = run(dir, &["--crashes", "panic", SECRET]);
    assert_eq!(
        out.status.code(),
        Some(101),
        "a panic exits as it always does"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(SECRET),
        "the program's own panic output is unchanged: {stderr}"
    );
    // The crash is in the journal; the next run's telemetry child counts it.
    let out = run(dir, &["--crashes", "--wait", "greet"]);
    assert!(out.status.success(), "{out:?}");
    eventually(EVENT_TIMEOUT, "the crash counter", || {
        todays_counts(dir)
            .keys()
            .any(|k| k.starts_with("crash/panic\n"))
            && counter_files_let_go(dir)
    });

    // Eight days later by the real clock (the upload run's clock seam), the week is
    // over and reported. (A pretended upload time alone never commits a week that is
    // not over by the real clock.)
    let mut upload = telemetry_upload::RunConfig::new(
        dir,
        server.upload_url(),
        telemetry_upload::ConfigSource::Url(server.config_url()),
    );
    upload.ambient = telemetry_internal::Ambient::with_config_dir(dir.join("no-config-dir"));
    upload.now = telemetry_internal::Day::from_date(days(8)).start();
    let summary = telemetry_upload::run(upload).unwrap();
    assert!(summary.to_string().ends_with(": uploaded\n"), "{summary}");

    let uploads = server.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let report = uploads[0].json();
    let prog = &report["Programs"][0];
    assert_eq!(prog["Counters"]["mytool/subcommand:panic"], 1, "{report}");
    let stacks = prog["Stacks"].as_object().unwrap();
    assert!(
        stacks.keys().any(|k| k.starts_with("crash/panic\n")),
        "{report}"
    );
    for file in files_under(dir).into_iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{} holds the secret",
            file.display()
        );
    }
    assert!(!uploads[0].text().contains(SECRET));
}

/// Go's TestConcurrentStart: ten programs start at once over three expired weeks;
/// one child uploads three reports, each exactly once. The weeks ended a day or more
/// ago: a week is reported once no process can still count into its files (a day
/// after it ends, by the real clock).
#[test]
fn concurrent_starts_upload_each_report_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    opt_in(dir, 40);
    let local = dir.join("local");
    for week in 0..3 {
        let end = days(-7 * week - 1);
        let begin = end - time::Duration::days(7);
        telemetry_counter::testing::write_file(
            &local,
            &program(),
            begin,
            end,
            &[("mytool/subcommand:greet", 5)],
        )
        .unwrap();
    }
    let server = serving_approving_config();

    let children: Vec<_> = (0..10)
        .map(|_| {
            mytool(dir, &["--server", server.url(), "--wait", "greet"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut started = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        started += usize::from(String::from_utf8_lossy(&out.stderr).contains("child: true"));
    }
    assert_eq!(started, 1, "one upload child among ten starts");

    let mut paths: Vec<String> = server.uploads().into_iter().map(|r| r.path).collect();
    paths.sort();
    let mut expected: Vec<String> = (0..3)
        .map(|w| format!("/upload/{}", format_date(days(-7 * w - 1))))
        .collect();
    expected.sort();
    assert_eq!(paths, expected);
}

#[test]
fn mode_off_writes_nothing_and_starts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    Dir::new(dir).set_mode(Mode::Off).unwrap();
    let server = serving_approving_config();
    let out = run(
        dir,
        &["--crashes", "--server", server.url(), "--wait", "greet"],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("child: false"));
    assert_eq!(files_under(dir), vec![dir.join("mode")]);
    assert!(server.requests().is_empty());
}

/// Nothing is written or started under `DO_NOT_TRACK`, nor in a process the
/// telemetry child started (`TELEMETRY_CHILD=2`), which must never recurse.
#[test]
fn do_not_track_and_descendants_write_nothing() {
    for (var, value) in [("DO_NOT_TRACK", "1"), ("TELEMETRY_CHILD", "2")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("never-created");
        let server = serving_approving_config();
        let out = mytool(
            &dir,
            &["--crashes", "--server", server.url(), "--wait", "greet"],
        )
        .env(var, value)
        .output()
        .unwrap();
        assert!(out.status.success(), "{var}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("child: false"),
            "{var}"
        );
        assert!(!dir.exists(), "{var}");
        assert!(server.requests().is_empty(), "{var}");
    }
}

/// The child must not hold the program's stdout: `mytool | cat` ends when mytool
/// does, even while the child waits on a slow server. Unix only: `sh` holds the pipe.
#[cfg(unix)]
#[test]
fn piped_output_ends_with_the_program() {
    use std::time::Duration;

    use telemetry_tests::{assert_pipeline_ends_before_the_upload, example};

    // The child uploads, then goes on past the event this test waits for.
    let tmp = telemetry_tests::scenario_dir();
    let dir = tmp.path();
    opt_in(dir, 20);
    let local = dir.join("local");
    telemetry_counter::testing::write_file(
        &local,
        &program(),
        days(-8),
        days(-1),
        &[("mytool/subcommand:greet", 1)],
    )
    .unwrap();
    let server = serving_approving_config();
    server.set_delay(Duration::from_secs(4));

    let script = format!(
        "'{}' --dir '{}' --server '{}' --crashes greet | cat",
        example("mytool").display(),
        dir.display(),
        server.url()
    );
    assert_pipeline_ends_before_the_upload(&script, &server, Duration::from_secs(2));
}

#[test]
fn thirty_runs_one_upload_child() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = serving_approving_config();
    let mut started = 0;
    // The decision log says why a run started no child; the first run's is shown if
    // none did (under Wine, a failed `CreateProcess` is one reason: see xtask's
    // `WINE_SPAWN_FAILED`).
    let mut first_log = None;
    for _ in 0..30 {
        let out = mytool(dir, &["--server", server.url(), "--wait", "greet"])
            .env("TELEMETRY_DEBUG", "1")
            .output()
            .expect("run mytool");
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        started += usize::from(stderr.contains("child: true"));
        first_log.get_or_insert(stderr);
    }
    assert_eq!(started, 1, "the first run said: {}", first_log.unwrap());
    assert_eq!(todays_counts(dir)["mytool/subcommand:greet"], 30);
    assert!(server.uploads().is_empty(), "mode local uploads nothing");
}

#[test]
fn embedded_telemetry_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run(dir, &["telemetry", "off"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(Dir::new(dir).read_mode().unwrap(), Mode::Off);
}
