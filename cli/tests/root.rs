//! The standalone command on the telemetry root: every tool's directory, the
//! user-wide switch, `--tool NAME`. Each test has its own home directory, set only on
//! the child process.

mod common;

use std::fs;

use common::{counter_file, root_in, run_home, stderr, stdout, telemetry_with_home};

/// A home whose root holds `mytool` (on since 2026-11-01, one counter file) and
/// `other` (no mode file, empty).
fn home_with_two_tools() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let root = root_in(home.path());
    let mytool = root.join("mytool");
    counter_file(
        &mytool,
        ("mytool", "1.2.0"),
        ("2026-11-16", "2026-11-21"),
        &[("mytool/runs", 3)],
    );
    fs::write(mytool.join("mode"), "on 2026-11-01\n").unwrap();
    fs::create_dir_all(root.join("other")).unwrap();
    home
}

#[test]
fn env_lists_every_tool_its_mode_the_deciding_switch_and_its_data() {
    let home = home_with_two_tools();
    let root = root_in(home.path());
    let out = run_home(home.path(), &["env"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("root: {}\n", root.display())),
        "{text}"
    );
    assert!(text.contains("user-wide switch: not set ("), "{text}");
    assert!(
        text.contains(&format!(
            "\nmytool: {}\n  mode: on 2026-11-01 (the mode file says on 2026-11-01)\n  data: 1 file, 16.0 KiB\n",
            root.join("mytool").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("\nother: ")
            && text.contains(
                "  mode: local (no mode file; local is the default)\n  data: 0 files, 0 bytes\n"
            ),
        "{text}"
    );
    assert!(!text.contains("DO_NOT_TRACK"), "{text}");

    // The user-wide switch decides, and says so.
    assert!(run_home(home.path(), &["off"]).status.success());
    let text = stdout(&run_home(home.path(), &["env"]));
    assert!(text.contains("user-wide switch: off ("), "{text}");
    assert!(
        text.contains(&format!(
            "  mode: off (the user-wide switch {} is off; the mode file says on 2026-11-01)",
            root.join("mode").display()
        )),
        "{text}"
    );

    // DO_NOT_TRACK decides over everything, and says so.
    let out = telemetry_with_home(home.path())
        .env("DO_NOT_TRACK", "1")
        .arg("env")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("DO_NOT_TRACK: set"), "{text}");
    assert!(
        text.contains("  mode: off (DO_NOT_TRACK is set; the mode file says on 2026-11-01)"),
        "{text}"
    );
}

#[test]
fn off_and_local_set_the_user_wide_switch_and_on_asks_for_a_tool() {
    let home = home_with_two_tools();
    let root = root_in(home.path());
    let off = run_home(home.path(), &["off"]);
    assert!(off.status.success(), "{}", stderr(&off));
    assert_eq!(fs::read_to_string(root.join("mode")).unwrap(), "off\n");
    assert!(
        stdout(&off).contains("off for every tool"),
        "{}",
        stdout(&off)
    );
    // Each tool's own choice is kept.
    assert_eq!(
        fs::read_to_string(root.join("mytool/mode")).unwrap(),
        "on 2026-11-01\n"
    );

    let local = run_home(home.path(), &["local"]);
    assert!(local.status.success(), "{}", stderr(&local));
    assert_eq!(fs::read_to_string(root.join("mode")).unwrap(), "local\n");
    // It does not hide that a tool still uploads.
    assert!(
        stdout(&local).contains(
            "mytool: uploading is on (since 2026-11-01); to keep it local: telemetry --tool mytool local"
        ),
        "{}",
        stdout(&local)
    );

    let on = run_home(home.path(), &["on"]);
    assert_eq!(on.status.code(), Some(2));
    let err = stderr(&on);
    assert!(err.contains("telemetry --tool mytool on"), "{err}");
    assert!(err.contains("tools: mytool, other"), "{err}");
    assert!(on.stdout.is_empty());
    assert!(!root.join("other/mode").exists());
}

#[test]
fn tool_is_a_directory_under_the_root() {
    let home = home_with_two_tools();
    let root = root_in(home.path());
    let out = run_home(home.path(), &["--tool", "other", "on"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        fs::read_to_string(root.join("other/mode"))
            .unwrap()
            .starts_with("on "),
    );
    // Hints repeat --tool.
    assert!(
        stdout(&out).contains("telemetry --tool other view"),
        "{}",
        stdout(&out)
    );
    let out = run_home(home.path(), &["--tool", "mytool", "env"]);
    assert!(
        stdout(&out).contains(&format!("dir: {}\n", root.join("mytool").display())),
        "{}",
        stdout(&out)
    );

    // A typo is an error naming the tools there, not an empty directory.
    let out = run_home(home.path(), &["--tool", "mytoll", "view", "--text"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no telemetry directory at"), "{err}");
    assert!(
        err.contains("tools with a directory: mytool, other"),
        "{err}"
    );

    // Not a path.
    for bad in ["../x", "a/b", ".."] {
        let out = run_home(home.path(), &["--tool", bad, "off"]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            stderr(&out).contains("is not a tool name"),
            "{}",
            stderr(&out)
        );
    }
    // --dir and --tool together is bad usage.
    let out = run_home(home.path(), &["--tool", "a", "--dir", "/tmp", "env"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn view_csv_dump_and_clean_cover_every_tool() {
    let home = home_with_two_tools();
    let root = root_in(home.path());
    counter_file(
        &root.join("other"),
        ("other", "0.1.0"),
        ("2026-11-16", "2026-11-21"),
        &[("other/runs", 5)],
    );
    let csv = stdout(&run_home(home.path(), &["csv"]));
    assert!(csv.contains("mytool,1.2.0,"), "{csv}");
    assert!(csv.contains("other,0.1.0,"), "{csv}");

    let view = run_home(home.path(), &["view", "--text"]);
    assert!(view.status.success(), "{}", stderr(&view));
    let text = stdout(&view);
    assert!(text.starts_with("Telemetry root "), "{text}");
    assert!(text.contains("\n== mytool: "), "{text}");
    assert!(text.contains("\n== other: "), "{text}");

    let page = run_home(home.path(), &["view"]);
    assert!(page.status.success(), "{}", stderr(&page));
    assert_eq!(
        stdout(&page),
        format!("{}\n", root.join("view.html").display())
    );
    let html = fs::read_to_string(root.join("view.html")).unwrap();
    assert!(
        html.contains("<h2 class=\"tool\">Tool <code>mytool</code></h2>"),
        "{html}"
    );

    let dump = run_home(home.path(), &["dump"]);
    assert!(dump.status.success(), "{}", stderr(&dump));
    let json = stdout(&dump);
    assert!(json.starts_with("[\n"), "{json}");
    assert!(
        json.contains("\"mytool/runs\": 3") && json.contains("\"other/runs\": 5"),
        "{json}"
    );

    let clean = run_home(home.path(), &["clean"]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    // Two counter files and the root's view.html.
    assert!(
        stdout(&clean).contains("Removed 3 files"),
        "{}",
        stdout(&clean)
    );
    assert!(!root.join("view.html").exists());
    assert_eq!(
        fs::read_to_string(root.join("mytool/mode")).unwrap(),
        "on 2026-11-01\n"
    );
    assert_eq!(stdout(&run_home(home.path(), &["dump"])), "[]\n");

    // Uploading is per tool.
    let upload = run_home(
        home.path(),
        &[
            "upload",
            "--upload-url",
            "http://127.0.0.1:9",
            "--config-url",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(upload.status.code(), Some(2));
    assert!(
        stderr(&upload).contains("--tool NAME"),
        "{}",
        stderr(&upload)
    );
}

/// Turning one tool on while the user-wide switch is off works, and warns that the
/// switch still keeps it off.
#[test]
fn on_for_a_tool_under_the_user_wide_off_warns() {
    let home = home_with_two_tools();
    let root = root_in(home.path());
    assert!(run_home(home.path(), &["off"]).status.success());
    let out = run_home(home.path(), &["--tool", "other", "on"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        fs::read_to_string(root.join("other/mode"))
            .unwrap()
            .starts_with("on "),
    );
    let err = stderr(&out);
    assert!(
        err.starts_with("telemetry: warning: the user-wide switch keeps every tool off ("),
        "{err}"
    );
    assert!(err.contains("to lift it: telemetry local"), "{err}");
    let env = stdout(&run_home(home.path(), &["--tool", "other", "env"]));
    assert!(env.contains("mode: off (the user-wide switch "), "{env}");
}

/// `--tool NAME on|off|local` for a tool without a directory (a typo) changes nothing,
/// says so, lists the known tools and fails: a person must never believe they opted
/// out of a tool that goes on uploading. `--create` is for a tool that has not run yet.
#[test]
fn a_mode_for_a_tool_without_a_directory_is_refused() {
    let home = home_with_two_tools();
    let root = root_in(home.path());
    for mode in ["off", "local", "on"] {
        let out = run_home(home.path(), &["--tool", "mytoll", mode]);
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", stdout(&out));
        assert!(out.stdout.is_empty(), "{mode}: {}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(
            err.contains("tools with a directory: mytool, other"),
            "{err}"
        );
        assert!(
            err.contains(&format!("telemetry --tool mytoll {mode} --create")),
            "{err}"
        );
        assert!(!root.join("mytoll").exists(), "{mode}");
    }
    let out = run_home(home.path(), &["--tool", "mytoll", "off", "--create"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(root.join("mytoll/mode")).unwrap(),
        "off\n"
    );
    // A tool that has a directory needs no --create.
    let out = run_home(home.path(), &["--tool", "other", "off"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A tool with its own directory (`Config::dir`) is listed by `start` in the root's
/// registry, so that `telemetry env`, `csv` and `--tool NAME` find it; listed by the
/// run that makes the day's counter file (a run that finds it listed writes nothing),
/// and never under mode off.
#[test]
fn tools_with_their_own_directory_are_findable_from_the_root() {
    let home = tempfile::tempdir().unwrap();
    let root = root_in(home.path());
    let elsewhere = home.path().join("elsewhere").join("data");
    let run_tool = || {
        let out = common::tool_with_dir(home.path(), "customtool", &elsewhere)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(out.stderr.is_empty(), "{}", stderr(&out));
    };
    run_tool();
    let registry = root.join("directories");
    assert_eq!(
        fs::read_to_string(&registry).unwrap(),
        format!("customtool\t{}\n", elsewhere.display())
    );
    let written = fs::metadata(&registry).unwrap().modified().unwrap();
    run_tool();
    assert_eq!(
        fs::metadata(&registry).unwrap().modified().unwrap(),
        written
    );
    // Listing is once-a-day work, done by the run that makes the day's counter file:
    // the other runs of the day do not look at the registry, and the next day's
    // first run lists the tool again (here: the day's file deleted).
    fs::remove_file(&registry).unwrap();
    run_tool();
    assert!(!registry.exists(), "a later run of the day lists nothing");
    for entry in fs::read_dir(elsewhere.join("local")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "count") {
            fs::remove_file(path).unwrap();
        }
    }
    run_tool();
    assert_eq!(
        fs::read_to_string(&registry).unwrap(),
        format!("customtool\t{}\n", elsewhere.display())
    );

    let env = run_home(home.path(), &["env"]);
    assert!(env.status.success(), "{}", stderr(&env));
    let text = stdout(&env);
    assert!(
        text.contains(&format!(
            "\ncustomtool: {} (elsewhere, listed in {})\n",
            elsewhere.display(),
            registry.display()
        )),
        "{text}"
    );
    let csv = stdout(&run_home(home.path(), &["csv"]));
    assert!(csv.contains(",customtool/runs,"), "{csv}");
    let one = stdout(&run_home(home.path(), &["--tool", "customtool", "env"]));
    assert!(
        one.contains(&format!("dir: {}\n", elsewhere.display())),
        "{one}"
    );
    let off = run_home(home.path(), &["--tool", "customtool", "off"]);
    assert!(off.status.success(), "{}", stderr(&off));
    assert_eq!(fs::read_to_string(elsewhere.join("mode")).unwrap(), "off\n");
    assert!(!root.join("customtool").exists());

    // Under mode off nothing is written, the registry included.
    let fresh = tempfile::tempdir().unwrap();
    let out = common::tool_with_dir(fresh.path(), "customtool", &fresh.path().join("d"))
        .env("DO_NOT_TRACK", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!root_in(fresh.path()).exists());
    assert!(!fresh.path().join("d").exists());
}
