//! The small things people notice: `on` twice, a closed pipe, completions and a man
//! page, the debug log, a bad `--dir`, `view` with a config given or under
//! `DO_NOT_TRACK`, and a Go toolchain's telemetry directory.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use common::{counter_file, fixture, run_in, sample_dir, stderr, stdout, telemetry};
use telemetry_upload::testing::LoopbackServer;

#[test]
fn on_when_already_on_keeps_the_date_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("mode"), "on 2026-11-01\n").unwrap();
    let out = run_in(tmp.path(), &["on"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(tmp.path().join("mode")).unwrap(),
        "on 2026-11-01\n"
    );
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "Telemetry uploading was already on since 2026-11-01; the opt-in date is unchanged"
        ),
        "{text}"
    );
    assert!(
        text.contains("before 2026-11-01 is never uploaded"),
        "{text}"
    );
}

/// `telemetry dump | head -c 1`: the reader goes away long before the output (far
/// more than a pipe's buffer) is written. The command stops quietly, with status 0.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..3000)
        .map(|i| format!("mytool/counter-{i:05}"))
        .collect();
    let counts: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
    counter_file(
        tmp.path(),
        ("mytool", "1.0.0"),
        ("2026-11-16", "2026-11-21"),
        &counts,
    );
    for command in [&["dump"][..], &["csv"], &["view", "--text"]] {
        let mut child = telemetry()
            .arg("--dir")
            .arg(tmp.path())
            .args(command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{command:?}");
        assert_eq!(stderr(&out), "", "{command:?}");
    }
}

#[test]
fn completions_and_man_page_come_from_the_definitions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = telemetry().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        for word in ["telemetry", "upload", "dry-run", "config-file", "tool"] {
            assert!(text.contains(word), "{shell}: {word} missing");
        }
    }
    let out = telemetry().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = telemetry().arg("man").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains(".TH telemetry 1"), "{page}");
    assert!(page.contains("\\-\\-tool"), "{page}");
    assert!(page.contains("upload"), "{page}");
}

#[test]
fn log_prints_the_recent_lines_and_env_points_at_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample_dir(dir);
    let out = run_in(dir, &["log"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("No debug log in "),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&run_in(dir, &["env"])).contains("(TELEMETRY_DEBUG=1 prints what telemetry decides")
    );

    let debug = dir.join("debug");
    fs::create_dir(&debug).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&debug, fs::Permissions::from_mode(0o700)).unwrap();
    }
    // A long log: 400 KiB, more than is ever read of one.
    let mut log = String::new();
    for i in 0..20_000 {
        log.push_str(&format!("mytool[42]: line {i:05} of the log\n"));
    }
    log.push_str("mytool[42]: a \x1b[31mred\x1b[0m line\n");
    fs::write(debug.join("sidecar.log"), &log).unwrap();

    let out = run_in(dir, &["log", "-n", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "==> {} <==\nmytool[42]: line 19998 of the log\nmytool[42]: line 19999 of the log\nmytool[42]: a \\u{{1b}}[31mred\\u{{1b}}[0m line\n",
            debug.join("sidecar.log").display()
        )
    );
    let all = stdout(&run_in(dir, &["log", "-n", "10000"]));
    // Bounded: only the last 256 KiB are read, so not all 20 000 lines come back.
    let lines = all.lines().count();
    assert!((5_000..10_001).contains(&lines), "{lines}");
    let out = run_in(dir, &["log", "-n", "0"]);
    assert_eq!(out.status.code(), Some(2));

    let env = stdout(&run_in(dir, &["env"]));
    assert!(
        env.contains(&format!("log: {} (1 file, ", debug.display())),
        "{env}"
    );
    assert!(
        env.contains(&format!("--dir {} log", dir.display())),
        "{env}"
    );
}

#[test]
fn a_bad_dir_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    for command in [
        &["env"][..],
        &["view", "--text"],
        &["view"],
        &["csv"],
        &["dump"],
        &["log"],
    ] {
        let out = run_in(&missing, command);
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        let err = stderr(&out);
        assert_eq!(
            err,
            format!(
                "telemetry: no telemetry directory at {}\n",
                missing.display()
            ),
            "{command:?}"
        );
        assert!(out.stdout.is_empty(), "{command:?}");
    }
    assert!(!missing.exists());
    // Choosing a mode for a directory not used yet creates it.
    assert!(run_in(&missing, &["local"]).status.success());
    assert_eq!(fs::read_to_string(missing.join("mode")).unwrap(), "local\n");
}

#[test]
fn view_marks_approvals_from_a_config_given_before_any_upload() {
    let tmp = tempfile::tempdir().unwrap();
    sample_dir(tmp.path());
    let config = common::approving_config("mytool", "1.2.0", &["mytool/errors"]);
    let file = tmp.path().join("config.json");
    fs::write(&file, &config).unwrap();

    let plain = stdout(&run_in(tmp.path(), &["view", "--text"]));
    assert!(plain.contains("  local     mytool/errors\n"), "{plain}");

    let out = run_in(
        tmp.path(),
        &["view", "--text", "--config-file", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("  approved  mytool/errors\n"), "{text}");
    assert!(
        text.contains("  local     mytool/latency:<10ms\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Upload config: the upload config from {} (version ",
            file.display()
        )),
        "{text}"
    );

    let server = LoopbackServer::start();
    server.set_config(&config);
    let out = run_in(tmp.path(), &["view", "--config-url", &server.config_url()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = fs::read_to_string(tmp.path().join("view.html")).unwrap();
    assert!(page.contains(
        "<tr><td><code>mytool/errors</code></td><td class=\"n\">3</td><td><span class=\"approved\">approved</span></td></tr>"
    ));
    assert_eq!(server.requests().len(), 1, "one GET, nothing sent");
    assert_eq!(server.requests()[0].method, "GET");
    // Nothing was saved: the config given is only for this view.
    assert!(!tmp.path().join("upload/config.json").exists());

    // Only https, or http to this machine.
    let out = run_in(
        tmp.path(),
        &["view", "--config-url", "http://example.com/config.json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("only https"), "{}", stderr(&out));
    let out = run_in(
        tmp.path(),
        &["view", "--config-file", "/nonexistent/c.json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn view_explains_that_do_not_track_turns_it_off() {
    let tmp = tempfile::tempdir().unwrap();
    sample_dir(tmp.path());
    fs::write(tmp.path().join("mode"), "on 2026-11-01\n").unwrap();
    let view = |dnt: bool, args: &[&str]| {
        let mut cmd = telemetry();
        if dnt {
            cmd.env("DO_NOT_TRACK", "1");
        }
        cmd.arg("--dir")
            .arg(tmp.path())
            .args(args)
            .output()
            .unwrap()
    };
    let text = stdout(&view(true, &["view", "--text"]));
    assert!(
        text.contains("(mode off: DO_NOT_TRACK is set; the mode file says on 2026-11-01)"),
        "{text}"
    );
    assert!(
        text.contains("That is why the mode shows as off."),
        "{text}"
    );
    let text = stdout(&view(false, &["view", "--text"]));
    assert!(
        text.contains("(mode on 2026-11-01: the mode file says on 2026-11-01)"),
        "{text}"
    );
    assert!(!text.contains("DO_NOT_TRACK"), "{text}");

    assert!(view(true, &["view"]).status.success());
    let page = fs::read_to_string(tmp.path().join("view.html")).unwrap();
    assert!(
        page.contains("<strong id=\"mode\">off</strong> (DO_NOT_TRACK is set;"),
        "{page}"
    );
    assert!(page.contains("id=\"do-not-track\""), "{page}");
}

/// A directory laid out as Go's toolchain keeps it (`go env GOTELEMETRYDIR`): Go's
/// counter files (metadata `GoVersion`, `GOOS`, `GOARCH`), Go's reports (the same
/// names, and `"Programs": null` for an empty week).
fn go_dir(path: &Path) {
    let local = path.join("local");
    let upload = path.join("upload");
    fs::create_dir_all(&local).unwrap();
    fs::create_dir_all(&upload).unwrap();
    // Go writes the date after every mode (`mode + " " + asof` in its SetModeAsOf).
    fs::write(path.join("mode"), "off 2026-10-01").unwrap();
    fs::copy(
        fixture("small.v1.count"),
        local.join("ref@devel-go1.19.8-linux-amd64-2026-11-20.v1.count"),
    )
    .unwrap();
    fs::write(local.join("weekends"), "3\n").unwrap();
    fs::write(
        local.join("local.2026-11-13.json"),
        r#"{"Week":"2026-11-13","LastWeek":"2026-11-06","X":0.61,"Programs":[{"Program":"golang.org/x/tools/gopls","Version":"v0.14.2","GoVersion":"go1.21.5","GOOS":"darwin","GOARCH":"arm64","Counters":{"gopls/client:vscode":3,"gopls/goversion:1.21":1},"Stacks":null}],"Config":"v0.0.1"}"#,
    )
    .unwrap();
    fs::write(
        upload.join("2026-11-06.json"),
        r#"{"Week":"2026-11-06","LastWeek":"","X":0.2,"Programs":null,"Config":"v0.0.1"}"#,
    )
    .unwrap();
}

#[test]
fn a_go_toolchains_directory_shows_properly() {
    let tmp = tempfile::tempdir().unwrap();
    go_dir(tmp.path());

    let out = run_in(tmp.path(), &["view", "--text"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "nothing skipped");
    let text = stdout(&out);
    assert!(
        text.contains("golang.org/x/telemetry/cmd/ref devel, week ending 2026-11-21 (go1.19.8 linux/amd64; counter file)"),
        "{text}"
    );
    assert!(
        text.contains("golang.org/x/tools/gopls v0.14.2, week ending 2026-11-13 (go1.21.5 darwin/arm64; report)"),
        "{text}"
    );
    assert!(
        text.contains("      3  local     gopls/client:vscode\n"),
        "{text}"
    );

    let out = run_in(tmp.path(), &["csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let csv = stdout(&out);
    assert!(
        csv.contains("golang.org/x/telemetry/cmd/ref,devel,go1.19.8,linux,amd64,2026-11-21,counter,mytool/errors,3\n"),
        "{csv}"
    );
    assert!(
        csv.contains("golang.org/x/tools/gopls,v0.14.2,go1.21.5,darwin,arm64,2026-11-13,counter,gopls/client:vscode,3\n"),
        "{csv}"
    );

    let out = run_in(tmp.path(), &["dump"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, fs::read(fixture("small.json")).unwrap());

    let out = run_in(tmp.path(), &["view"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = fs::read_to_string(tmp.path().join("view.html")).unwrap();
    assert!(page.contains("go1.21.5 · darwin/arm64"), "{page}");
    assert!(!page.contains("class=\"warning\""), "{page}");
}
