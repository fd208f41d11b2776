//! The `telemetry` command's subcommands other than `dump`, run as a person would.

mod common;

use std::fs;
use std::path::Path;

use common::{run_in, sample_dir, stderr, stdout, telemetry};

fn today() -> String {
    telemetry_internal::format_date(telemetry_internal::today())
}

fn mode_file(dir: &Path) -> String {
    fs::read_to_string(dir.join("mode")).unwrap()
}

#[test]
fn on_off_local_write_the_mode_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new"); // created on demand

    let on = run_in(&dir, &["on"]);
    assert!(on.status.success(), "{}", stderr(&on));
    assert_eq!(mode_file(&dir), format!("on {}\n", today()));
    let text = stdout(&on);
    // What turning on means: what, where, how to look, how to turn it off.
    for needle in ["upload config", "never", "view", " off", " local", &today()] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(
        text.contains(&format!("--dir {} view", dir.display())),
        "{text}"
    );

    let off = run_in(&dir, &["off"]);
    assert!(off.status.success());
    assert_eq!(mode_file(&dir), "off\n");
    assert!(stdout(&off).contains("off"), "{}", stdout(&off));

    let local = run_in(&dir, &["local"]);
    assert!(local.status.success());
    assert_eq!(mode_file(&dir), "local\n");
    assert!(
        stdout(&local).contains("never uploaded"),
        "{}",
        stdout(&local)
    );
}

#[test]
fn do_not_track_is_mentioned_when_turning_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = telemetry()
        .env("DO_NOT_TRACK", "1")
        .arg("--dir")
        .arg(tmp.path())
        .arg("on")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("DO_NOT_TRACK"), "{}", stderr(&out));
}

#[test]
fn env_shows_dir_mode_reason_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run_in(dir, &["env"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("dir: {}\n", dir.display())),
        "{text}"
    );
    assert!(
        text.contains("mode: local (no mode file; local is the default)"),
        "{text}"
    );

    sample_dir(dir);
    fs::create_dir(dir.join("upload")).unwrap();
    fs::write(dir.join("upload/2026-11-14.json"), "{}").unwrap();
    run_in(dir, &["on"]);
    let text = stdout(&run_in(dir, &["env"]));
    assert!(
        text.contains(&format!(
            "mode: on {0} (the mode file says on {0})",
            today()
        )),
        "{text}"
    );
    assert!(text.contains("(1 file)\n  mytool@1.2.0-"), "{text}");
    assert!(text.contains("  2026-11-14.json\n"), "{text}");

    fs::write(dir.join("mode"), "maybe\n").unwrap();
    let text = stdout(&run_in(dir, &["env"]));
    assert!(
        text.contains("mode: local (the mode file holds \"maybe\""),
        "{text}"
    );

    let dnt = telemetry()
        .env("DO_NOT_TRACK", "1")
        .arg("--dir")
        .arg(dir)
        .arg("env")
        .output()
        .unwrap();
    assert!(
        stdout(&dnt).contains("mode: off (DO_NOT_TRACK is set;"),
        "{}",
        stdout(&dnt)
    );
}

#[test]
fn clean_deletes_data_and_keeps_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample_dir(dir);
    run_in(dir, &["on"]);
    assert!(run_in(dir, &["view"]).status.success());
    assert!(dir.join("view.html").exists());
    let local = dir.join("local");
    let upload = dir.join("upload");
    let debug = dir.join("debug");
    fs::create_dir_all(&upload).unwrap();
    fs::create_dir_all(&debug).unwrap();
    for name in [
        "weekends",
        "upload.token",
        "2026-11-21.json",
        "local.2026-11-21.json",
        "local.2026-11-21.json.tmp-123-abc",
        "notes.txt",
    ] {
        fs::write(local.join(name), "x").unwrap();
    }
    // A stray lock of a week sent already, and the lock of a week a run may be
    // building now.
    let in_use = format!("{}.lock", today());
    for name in ["2026-11-14.json", "2026-11-14.lock", &in_use, "config.json"] {
        fs::write(upload.join(name), "x").unwrap();
    }
    fs::write(dir.join("mode.tmp-9-ff"), "on").unwrap();
    // Temporary files an hour old are debris whoever wrote them.
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for temporary in [
        local.join("local.2026-11-21.json.tmp-123-abc"),
        dir.join("mode.tmp-9-ff"),
    ] {
        fs::File::options()
            .write(true)
            .open(temporary)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    fs::write(debug.join("sidecar.log"), "POST body {...}\n").unwrap();
    let out = run_in(dir, &["clean"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // counter file, 2 reports, 1 temporary, 1 uploaded copy, view.html, mode temp, log,
    // the stray lock
    assert!(stdout(&out).contains("Removed 9 files"), "{}", stdout(&out));
    let names = |p: &Path| {
        let mut v: Vec<String> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&local), ["notes.txt", "upload.token", "weekends"]);
    assert_eq!(names(&upload), [in_use.as_str(), "config.json"]);
    assert_eq!(names(&debug), Vec::<String>::new(), "debug/ itself stays");
    assert_eq!(names(dir), ["debug", "local", "mode", "upload"]);
    assert_eq!(mode_file(dir), format!("on {}\n", today()));
}

/// A temporary file that a live process is writing is not debris yet: `clean` leaves
/// it to its writer (here this test process), which renames it when done.
#[test]
fn clean_leaves_a_temporary_file_being_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample_dir(dir);
    let local = dir.join("local");
    let writing = local.join(format!(
        "local.2026-11-21.json.tmp-{}-abc",
        std::process::id()
    ));
    fs::write(&writing, "{").unwrap();
    let out = run_in(dir, &["clean"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Removed 1 file "), "{}", stdout(&out));
    assert!(writing.exists());
}

fn platform() -> String {
    format!(
        "{},{},{}",
        telemetry_internal::toolchain(),
        telemetry_internal::OS,
        telemetry_internal::ARCH
    )
}

#[test]
fn csv_has_a_row_per_program_version_platform_week_counter() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::counter_file(
        dir,
        ("mytool", "1.2.0"),
        ("2026-11-16", "2026-11-21"),
        &[
            ("mytool/flag:a,b", 2),
            ("mytool/say \"hi\"", 1),
            ("crash/panic\nmytool::run\nmytool::main", 7),
            ("=HYPERLINK(\"http://evil\")", 1),
            ("@SUM(A1:A9)", 1),
            ("mytool/red\x1b[31m", 1),
        ],
    );
    common::counter_file(
        dir,
        ("other", "0.1.0"),
        ("2026-11-16", "2026-11-21"),
        &[("plain", 9)],
    );
    let out = run_in(dir, &["csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let p = platform();
    assert_eq!(
        stdout(&out),
        format!(
            "program,version,toolchain,os,arch,week,kind,counter,count\n\
             mytool,1.2.0,{p},2026-11-21,counter,\"'=HYPERLINK(\"\"http://evil\"\")\",1\n\
             mytool,1.2.0,{p},2026-11-21,counter,'@SUM(A1:A9),1\n\
             mytool,1.2.0,{p},2026-11-21,counter,\"mytool/flag:a,b\",2\n\
             mytool,1.2.0,{p},2026-11-21,counter,mytool/red\\u{{1b}}[31m,1\n\
             mytool,1.2.0,{p},2026-11-21,counter,\"mytool/say \"\"hi\"\"\",1\n\
             mytool,1.2.0,{p},2026-11-21,stack,crash/panic\\nmytool::run\\nmytool::main,7\n\
             other,0.1.0,{p},2026-11-21,counter,plain,9\n"
        )
    );
}

#[test]
fn csv_reads_reports_and_skips_broken_files() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    fs::create_dir_all(&local).unwrap();
    fs::write(
        local.join("local.2026-11-14.json"),
        r#"{"Week":"2026-11-14","LastWeek":"","X":0.5,"Config":"v1","Programs":[
            {"Program":"mytool","Version":"1.1.0","Toolchain":"1.95.0","OS":"linux","Arch":"x86_64",
             "Counters":{"mytool/errors":4},"Stacks":{}}]}"#,
    )
    .unwrap();
    fs::write(local.join("broken.v1.count"), "nope").unwrap();
    let out = run_in(tmp.path(), &["csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "program,version,toolchain,os,arch,week,kind,counter,count\n\
         mytool,1.1.0,1.95.0,linux,x86_64,2026-11-14,counter,mytool/errors,4\n"
    );
    assert!(stderr(&out).contains("broken.v1.count"), "{}", stderr(&out));
}

#[test]
fn view_writes_a_page_that_escapes_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample_dir(dir);
    common::counter_file(
        dir,
        ("mytool", "1.3.0"),
        ("2026-11-21", "2026-11-28"),
        &[
            ("<script>alert(1)</script>", 1),
            ("x:<img src=x onerror=alert(2)>", 2),
            ("crash/\"'&\n<b>frame</b>", 3),
        ],
    );
    // The last fetched config approves one counter and one chart bucket.
    fs::create_dir_all(dir.join("upload")).unwrap();
    let config = common::approving_config(
        "mytool",
        "1.2.0",
        &["mytool/errors", "mytool/latency:{<10ms}"],
    );
    fs::write(dir.join("upload/config.json"), config).unwrap();
    let out = run_in(dir, &["view"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page_path = dir.join("view.html");
    assert_eq!(stdout(&out), format!("{}\n", page_path.display()));
    let page = fs::read_to_string(&page_path).unwrap();
    assert!(!page.contains("<script"), "unescaped script");
    assert!(!page.contains("<img"), "unescaped img");
    assert!(!page.contains("<b>"), "unescaped frame");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(page.contains("crash/&quot;&#39;&amp;"));
    // No fetches: no external URL but the SVG namespace, and a CSP forbidding them.
    assert!(page.contains("default-src 'none'"));
    let urls = page.matches("http").count();
    assert_eq!(urls, page.matches("http://www.w3.org/2000/svg").count() + 1); // + http-equiv
    // Charts for chart:bucket names, with the values.
    assert!(page.contains("<figcaption><code>mytool/latency</code></figcaption>"));
    for value in [">42 ✓<", ">17<", ">5<"] {
        assert!(page.contains(value), "{value}");
    }

    assert!(page.contains(
        "<tr><td><code>mytool/errors</code></td><td class=\"n\">3</td><td><span class=\"approved\">approved</span></td></tr>"
    ));
    assert!(page.contains("class=\"bar approved\""));
    assert!(page.contains(">42 ✓</text>"));
    assert!(page.contains(">17</text>"));
    assert!(page.contains("last fetched upload config (version <code>fnv1a64:"));

    // --output puts it elsewhere.
    let elsewhere = dir.join("page.html");
    let out = run_in(dir, &["view", "--output", elsewhere.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        fs::read_to_string(&elsewhere)
            .unwrap()
            .contains("mytool/errors")
    );
}

#[test]
fn view_text_is_a_table() {
    let tmp = tempfile::tempdir().unwrap();
    sample_dir(tmp.path());
    common::counter_file(
        tmp.path(),
        ("evil", "1.0.0"),
        ("2026-11-21", "2026-11-28"),
        &[("red\x1b[31m", 1)],
    );
    let out = run_in(tmp.path(), &["view", "--text"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("mytool 1.2.0, week ending 2026-11-21"),
        "{text}"
    );
    assert!(
        text.contains("     42  local     mytool/latency:<10ms\n"),
        "{text}"
    );
    assert!(text.contains("      2  local     crash/panic\n"), "{text}");
    assert!(text.contains("mytool::run+0x1f\n"), "{text}");
    // Terminal escapes in names are shown, not obeyed.
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains("red\\u{1b}[31m"), "{text}");
    assert!(!tmp.path().join("view.html").exists());
}

#[cfg(unix)]
#[test]
fn view_open_starts_the_browser_and_never_fails_hard() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    sample_dir(tmp.path());
    let record = tmp.path().join("opened");
    let browser = tmp.path().join("fake-browser");
    fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" > '{}'\n", record.display()),
    )
    .unwrap();
    fs::set_permissions(&browser, fs::Permissions::from_mode(0o755)).unwrap();
    let out = telemetry()
        .env("BROWSER", &browser)
        .arg("--dir")
        .arg(tmp.path())
        .args(["view", "--open"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The browser is not waited for: wait for what it records.
    telemetry_test_support::eventually(
        std::time::Duration::from_secs(10),
        "the browser to record its argument",
        || fs::read_to_string(&record).is_ok_and(|t| t.ends_with('\n')),
    );
    let opened = fs::read_to_string(&record).unwrap();
    assert_eq!(
        opened.trim(),
        tmp.path().join("view.html").to_str().unwrap()
    );

    // No browser at all: a warning, the path, and success.
    let out = telemetry()
        .env("BROWSER", tmp.path().join("no-such-browser"))
        .arg("--dir")
        .arg(tmp.path())
        .args(["view", "--open"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("could not open a browser"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("view.html"));
}

#[test]
fn bad_usage_exits_2_with_usage_on_stderr() {
    for args in [
        &["frobnicate"][..],
        &["env", "--bogus"],
        &[],
        &["dump", "--x"],
        &["on", "extra"],
    ] {
        let out = telemetry().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("Usage:"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = telemetry()
        .args(["upload", "--upload-url", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "upload needs a config source");
}

#[test]
fn help_and_version_succeed() {
    let out = telemetry().arg("--help").output().unwrap();
    assert!(out.status.success());
    for command in [
        "on",
        "off",
        "local",
        "env",
        "dump",
        "view",
        "csv",
        "clean",
        "upload",
        "log",
        "completions",
        "man",
    ] {
        assert!(
            stdout(&out).contains(&format!("\n  {command} ")),
            "{command}"
        );
    }
    let out = telemetry().args(["view", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("--text"));
    assert!(
        telemetry()
            .arg("--version")
            .output()
            .unwrap()
            .status
            .success()
    );
}

#[test]
fn unreadable_dir_exits_1_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    // A plain file where the directory should be: unreadable even for root.
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, "").unwrap();
    for command in [
        "env", "view", "csv", "clean", "dump", "on", "off", "local", "log",
    ] {
        let out = run_in(&file, &[command]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{command}: {err}");
        assert!(err.starts_with("telemetry: "), "{command}: {err}");
        assert!(err.contains("not-a-dir"), "{command}: {err}");
    }
}

#[test]
fn no_home_and_no_dir_is_a_clear_error() {
    let out = telemetry()
        .env_remove("HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("APPDATA")
        .arg("env")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("use --dir PATH"), "{}", stderr(&out));
}

/// Linux only: elsewhere the root is not under `XDG_CONFIG_HOME`, and the test must
/// not touch the real one.
#[cfg(target_os = "linux")]
#[test]
fn the_root_follows_the_user_config_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let out = telemetry()
        .env("XDG_CONFIG_HOME", tmp.path())
        .arg("off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode_file(&tmp.path().join("telemetry")), "off\n");
}
