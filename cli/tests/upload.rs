//! `telemetry upload` against a real HTTP server on 127.0.0.1, then `view` marking
//! what the saved config approves. The upload crate tests the protocol in depth; this
//! is the command's smoke test.

mod common;

use common::{counter_file, run_embedded, run_in, stderr, stdout};
use telemetry_internal::Ambient;
use telemetry_upload::testing::LoopbackServer;

fn approving_config() -> String {
    common::approving_config("mytool", "1.0.0", &["mytool/runs"])
}

/// `telemetry --dir DIR upload --upload-url URL --config-file CONFIG MORE…`.
fn upload_in(
    dir: &std::path::Path,
    upload_url: &str,
    config: &std::path::Path,
    more: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "upload",
        "--upload-url",
        upload_url,
        "--config-file",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    run_in(dir, &args)
}

/// [`opted_in_dir`] with [`approving_config`] in its `config.json`, and that file.
fn opted_in_dir_with_config() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = opted_in_dir();
    let config = tmp.path().join("config.json");
    std::fs::write(&config, approving_config()).unwrap();
    (tmp, config)
}

/// A loopback server serving [`approving_config`], and `mytool`'s `Config` for
/// `dir` with that server's URLs: how an embedding tool is set up.
fn serving_mytool(dir: &std::path::Path) -> (LoopbackServer, telemetry::Config) {
    let server = LoopbackServer::start();
    server.set_config(&approving_config());
    let config = telemetry::Config::new(telemetry::Program::new("mytool", "1.0.0"))
        .dir(dir)
        .upload_url(server.upload_url())
        .config_url(server.config_url());
    (server, config)
}

/// A directory opted in on 2026-11-01 with one week of `mytool` ended 2026-11-20.
fn opted_in_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mode"), "on 2026-11-01\n").unwrap();
    counter_file(
        tmp.path(),
        ("mytool", "1.0.0"),
        ("2026-11-13", "2026-11-20"),
        &[("mytool/runs", 3), ("mytool/secret", 1)],
    );
    tmp
}

#[test]
fn uploads_approved_counters_and_view_marks_them() {
    let (tmp, config) = opted_in_dir_with_config();
    let dir = tmp.path();
    let server = LoopbackServer::start();

    let out = upload_in(
        dir,
        &server.upload_url(),
        &config,
        &["--start-time", "2026-11-21"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2026-11-20: uploaded\n");
    {
        let received = server.requests();
        assert_eq!(received.len(), 1, "{received:?}");
        let request = &received[0];
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/upload/2026-11-20"),
            "{request:?}"
        );
        let body = request.text();
        assert!(body.contains("mytool/runs"), "{body}");
        assert!(!body.contains("mytool/secret"), "{body}");
    }

    // A second run has nothing left to do.
    let again = upload_in(dir, &server.upload_url(), &config, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(server.requests().len(), 1);

    // `view` marks what the saved config approves, and that the week was uploaded.
    let view = run_in(dir, &["view", "--text"]);
    assert!(view.status.success(), "{}", stderr(&view));
    let text = stdout(&view);
    assert!(text.contains("  approved  mytool/runs\n"), "{text}");
    assert!(text.contains("  local     mytool/secret\n"), "{text}");
    assert!(text.contains("week ending 2026-11-20"), "{text}");
    assert!(text.contains(", uploaded)"), "{text}");
}

#[test]
fn a_config_that_cannot_be_read_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mode"), "on 2026-11-01\n").unwrap();
    counter_file(
        tmp.path(),
        ("mytool", "1.0.0"),
        ("2026-11-13", "2026-11-20"),
        &[("mytool/runs", 3)],
    );
    let out = upload_in(
        tmp.path(),
        "http://127.0.0.1:9/upload",
        &tmp.path().join("missing.json"),
        &["--start-time", "2026-11-21"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.starts_with("telemetry: upload failed: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_bad_start_time_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(
        tmp.path(),
        &[
            "upload",
            "--upload-url",
            "http://127.0.0.1:9",
            "--config-url",
            "http://127.0.0.1:9",
            "--start-time",
            "yesterday",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a date YYYY-MM-DD"),
        "{}",
        stderr(&out)
    );
}

/// An embedding tool's own URLs are used when the flags are absent. The ambient
/// inputs given to the command (no DO_NOT_TRACK here) are what the run sees, whatever
/// this process's environment says.
#[test]
fn embedded_upload_uses_the_tools_urls() {
    let tmp = opted_in_dir();
    let (server, config) = serving_mytool(tmp.path());
    let (code, out, err) = run_embedded(
        &["upload", "--start-time", "2026-11-21"],
        &config,
        &telemetry_cli::Options::new(),
        &Ambient::with_config_dir(tmp.path().join("home")),
    );
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{err}");
    assert_eq!(out, "2026-11-20: uploaded\n");
    let requests: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        requests,
        [
            ("GET".to_owned(), "/config.json".to_owned()),
            ("POST".to_owned(), "/upload/2026-11-20".to_owned()),
        ],
    );
}

/// Every file under `dir` with its contents, to show that nothing changed.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                files.push((entry.path(), std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// `--dry-run` prints the body the real run then sends, byte for byte, and neither
/// sends nor changes anything.
#[test]
fn dry_run_prints_the_exact_body_and_changes_nothing() {
    let (tmp, config) = opted_in_dir_with_config();
    let dir = tmp.path();
    let server = LoopbackServer::start();
    let args = |dry: bool| {
        let mut args = vec![
            "upload".to_owned(),
            "--upload-url".to_owned(),
            server.upload_url(),
            "--config-file".to_owned(),
            config.to_str().unwrap().to_owned(),
            "--start-time".to_owned(),
            "2026-11-21".to_owned(),
        ];
        if dry {
            args.push("--dry-run".to_owned());
        }
        args
    };
    // A first dry run builds the week's report in its copy only.
    let before = snapshot(dir);
    let dry = run_in(dir, &refs(&args(true)));
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(snapshot(dir), before, "a dry run changed the directory");
    assert!(server.requests().is_empty(), "a dry run sent something");
    let text = stdout(&dry);
    assert!(
        text.starts_with(&format!("POST {}/2026-11-20 (", server.upload_url())),
        "{text}"
    );
    assert!(text.contains("\"mytool/runs\":3"), "{text}");
    assert!(!text.contains("mytool/secret"), "{text}");
    assert!(
        text.contains("2026-11-20: would be sent (body above)"),
        "{text}"
    );
    assert!(text.ends_with("was changed.\n"), "{text}");

    // A run the server answers with 500 builds the report and keeps it for retry.
    server.set_upload_status(500);
    let failed = run_in(dir, &refs(&args(false)));
    assert!(
        stdout(&failed).contains("kept for retry"),
        "{}",
        stdout(&failed)
    );
    assert_eq!(server.uploads().len(), 1);
    // The dry run of that ready report shows exactly the body the next run sends.
    let before = snapshot(dir);
    let dry = run_in(dir, &refs(&args(true)));
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(snapshot(dir), before, "a dry run changed the directory");
    assert_eq!(server.uploads().len(), 1, "a dry run sent something");
    let text = stdout(&dry);
    let body_start = text.find('\n').unwrap() + 1;
    let body_end = text.find("\n2026-11-20: would be sent").unwrap();
    let shown = text[body_start..body_end].to_owned();
    server.set_upload_status(200);
    let sent = run_in(dir, &refs(&args(false)));
    assert_eq!(stdout(&sent), "2026-11-20: uploaded\n", "{}", stderr(&sent));
    let uploads = server.uploads();
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[1].text().trim_end(), shown.trim_end());
    assert_eq!(uploads[0].text(), uploads[1].text());
}

/// A dry run writes no debug log either, though a real run in the same directory does:
/// the user's `debug/` asks for logs of what happens, and a dry run must change nothing.
#[test]
fn dry_run_writes_no_debug_log() {
    let tmp = opted_in_dir();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("debug")).unwrap();
    let config = dir.join("config.json");
    std::fs::write(&config, approving_config()).unwrap();
    let server = LoopbackServer::start();
    let mut args = vec![
        "upload",
        "--upload-url",
        &server.upload_url(),
        "--config-file",
        config.to_str().unwrap(),
        "--start-time",
        "2026-11-21",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    let before = snapshot(dir);
    args.push("--dry-run".to_owned());
    let dry = run_in(dir, &refs(&args));
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("would be sent (body above)"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(snapshot(dir), before, "a dry run changed the directory");

    args.pop();
    let real = run_in(dir, &refs(&args));
    assert_eq!(stdout(&real), "2026-11-20: uploaded\n", "{}", stderr(&real));
    let logs = std::fs::read_dir(dir.join("debug")).unwrap().count();
    assert_eq!(logs, 1, "the real run logs to debug/");
}

/// The run is off when the ambient inputs the command was given say DO_NOT_TRACK,
/// whatever this process's environment says; and it says so with the switch that
/// decided.
#[test]
fn the_given_do_not_track_turns_the_run_off() {
    let tmp = opted_in_dir();
    let before = snapshot(tmp.path());
    let (server, config) = serving_mytool(tmp.path());
    let (code, out, err) = run_embedded(
        &["upload", "--start-time", "2026-11-21"],
        &config,
        &telemetry_cli::Options::new(),
        &Ambient::with_config_dir(tmp.path().join("home")).do_not_track(true),
    );
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{err}");
    assert_eq!(
        out,
        format!(
            "Telemetry is off for {} (DO_NOT_TRACK is set; the mode file says on 2026-11-01): nothing is built, changed or sent.\n",
            tmp.path().display()
        )
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(snapshot(tmp.path()), before);
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `upload -v` prints each step while the run is still going: here the server takes
/// seconds to answer, and the first lines arrive long before the run ends.
#[test]
fn verbose_prints_steps_as_they_happen() {
    use std::io::BufRead;
    let (tmp, config) = opted_in_dir_with_config();
    let server = LoopbackServer::start();
    server.set_delay(std::time::Duration::from_secs(4));
    let mut child = common::telemetry()
        .arg("--dir")
        .arg(tmp.path())
        .args([
            "upload",
            "-v",
            "--upload-url",
            &server.upload_url(),
            "--config-file",
            config.to_str().unwrap(),
            "--start-time",
            "2026-11-21",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("upload run in "), "{first}");
    // The run is waiting for the server's answer: the step arrived before the end.
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run had ended already"
    );
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("2026-11-20")), "{rest:?}");
    assert_eq!(server.uploads().len(), 1);
}

/// With the mode off, an upload run does nothing, and says which switch decided.
#[test]
fn off_says_why_nothing_happens() {
    let tmp = opted_in_dir();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), approving_config()).unwrap();
    let before = snapshot(tmp.path());
    let out = common::telemetry()
        .env("DO_NOT_TRACK", "1")
        .arg("--dir")
        .arg(tmp.path())
        .args([
            "upload",
            "--dry-run",
            "--upload-url",
            "http://127.0.0.1:9/upload",
        ])
        .arg("--config-file")
        .arg(config.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "Telemetry is off for {} (DO_NOT_TRACK is set; the mode file says on 2026-11-01): nothing is built, changed or sent.\n",
            tmp.path().display()
        )
    );
    assert_eq!(snapshot(tmp.path()), before);
}

/// On a terminal, a run that takes a while shows a progress line (then clears it);
/// `script` gives the command a terminal as stderr.
#[cfg(target_os = "linux")]
#[test]
fn a_slow_run_shows_progress_on_a_terminal() {
    let (tmp, config) = opted_in_dir_with_config();
    let server = LoopbackServer::start();
    server.set_delay(std::time::Duration::from_millis(2500));
    let command = format!(
        "{} --dir {} upload --upload-url {} --config-file {} --start-time 2026-11-21",
        env!("CARGO_BIN_EXE_telemetry"),
        tmp.path().display(),
        server.upload_url(),
        config.display()
    );
    let nowhere = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests-empty-home");
    let Some(script) = telemetry_test_support::Tool::SCRIPT.find(&["script"]) else {
        return;
    };
    let out = std::process::Command::new(script)
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env_remove("DO_NOT_TRACK")
        .env("HOME", &nowhere)
        .env("XDG_CONFIG_HOME", nowhere.join(".config"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("\r\x1b[Ktelemetry: uploading… 1s "),
        "{text:?}"
    );
    // The line is cleared before the result is printed.
    assert!(text.contains("\r\x1b[K2026-11-20: uploaded"), "{text:?}");
    assert_eq!(server.uploads().len(), 1);
}

/// `--dry-run` needs no upload URL, and always reads and checks the upload config: a
/// config that does not parse is an error (exit 1) even when no week is due, and one
/// that parses is named with its version.
#[test]
fn dry_run_needs_no_upload_url_and_always_checks_the_config() {
    let (tmp, config) = opted_in_dir_with_config();
    let dir = tmp.path();
    let before = snapshot(dir);
    let dry = |config: &std::path::Path, start: &str| {
        run_in(
            dir,
            &[
                "upload",
                "--dry-run",
                "--config-file",
                config.to_str().unwrap(),
                "--start-time",
                start,
            ],
        )
    };
    let out = dry(&config, "2026-11-21");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("POST <upload URL>/2026-11-20 ("), "{text}");
    assert!(text.contains("\"mytool/runs\":3"), "{text}");
    assert!(text.contains(", read and checked.\n"), "{text}");
    assert!(text.contains("No upload URL was given"), "{text}");
    assert_eq!(snapshot(dir), before);

    // No week due (the week has not ended on the day pretended), and a config that
    // does not parse: an error all the same.
    let elsewhere = tempfile::tempdir().unwrap();
    let bad = elsewhere.path().join("bad.json");
    std::fs::write(&bad, "{\"Programs\": [").unwrap();
    let out = dry(&bad, "2026-11-14");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("upload config"), "{err}");
    assert!(err.contains("bad.json"), "{err}");
    let out = dry(&config, "2026-11-14");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Nothing would be sent."),
        "{}",
        stdout(&out)
    );
    assert_eq!(snapshot(dir), before);
}

/// Embedded, `mytool telemetry upload --dry-run` uses the tool's own URLs: it fetches
/// the tool's config (even when no week is due) and shows the POST to the tool's
/// upload URL, sending nothing.
#[test]
fn embedded_dry_run_uses_the_tools_urls() {
    let tmp = opted_in_dir();
    let (server, config) = serving_mytool(tmp.path());
    let run = |start: &str| {
        let (code, out, err) = run_embedded(
            &["upload", "--dry-run", "--start-time", start],
            &config,
            &telemetry_cli::Options::new(),
            &Ambient::with_config_dir(tmp.path().join("home")),
        );
        assert_eq!(code, std::process::ExitCode::SUCCESS, "{err}");
        out
    };
    let out = run("2026-11-21");
    assert!(
        out.starts_with(&format!("POST {}/2026-11-20 (", server.upload_url())),
        "{out}"
    );
    assert!(
        out.contains(&format!("Upload config {}: version ", server.config_url())),
        "{out}"
    );
    let out = run("2026-11-14");
    assert!(out.contains("Nothing would be sent."), "{out}");
    let requests: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let get = ("GET".to_owned(), "/config.json".to_owned());
    // Fetched for the check and for the week, then for the check alone.
    assert_eq!(requests, [get.clone(), get.clone(), get]);
}

/// `--start-time` far in the future on a directory whose current week is still being
/// counted: the run shows what it would do and commits nothing (no report written, no
/// counter file deleted, nothing sent), because the week is not over by the real clock.
/// Committing it would write the week as "local only (older than 21 days)", and the
/// real run a week later would delete a counter file whose counts were never reported.
#[test]
fn a_far_future_start_time_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("mode"), "on 2026-11-01\n").unwrap();
    let today = telemetry_internal::Day::of(std::time::SystemTime::now());
    let week = today.plus(7);
    let file = counter_file(
        dir,
        ("mytool", "1.0.0"),
        (&today.to_string(), &week.to_string()),
        &[("mytool/runs", 6)],
    );
    let config = dir.join("config.json");
    std::fs::write(&config, approving_config()).unwrap();
    let server = LoopbackServer::start();
    let upload =
        |start: &str| upload_in(dir, &server.upload_url(), &config, &["--start-time", start]);

    let out = upload("9999-12-31");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{week}: not over by the real clock: nothing written, sent or deleted \
             (at the pretended time: would be sent)\n"
        )
    );
    assert!(server.requests().iter().all(|r| r.method != "POST"));
    let mut local: Vec<String> = std::fs::read_dir(dir.join("local"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    local.sort();
    assert_eq!(
        local,
        [file.file_name().unwrap().to_str().unwrap().to_owned()]
    );
    assert!(!dir.join("upload").join(format!("{week}.json")).exists());

    // The real run, once the week is over by the real clock (the run's clock seam),
    // reports the counts.
    let mut run = telemetry_upload::RunConfig::new(
        dir,
        server.upload_url(),
        telemetry_upload::ConfigSource::File(config.clone()),
    );
    run.ambient = telemetry_internal::Ambient::with_config_dir(dir.join("no-config-dir"));
    run.now = week.plus(1).start();
    let summary = telemetry_upload::run(run).unwrap();
    assert_eq!(summary.to_string(), format!("{week}: uploaded\n"));
    let uploads = server.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].json()["Programs"][0]["Counters"]["mytool/runs"],
        6
    );
    assert!(!file.exists());
}
