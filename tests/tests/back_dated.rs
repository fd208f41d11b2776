//! The recipe the facade's guide gives tool authors for checking, in their own tests,
//! that their counters arrive: a sandboxed config directory, the opt-in and a week of
//! counting back-dated with `Config::clock` (here the example tool's `--clock`), then
//! an ordinary run whose upload sends that week. The crash, counted by the telemetry
//! child, lands in the back-dated week too.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use telemetry_internal::{ARCH, Day, OS, toolchain};
use telemetry_tests::{LoopbackServer, eventually, example};

/// `greeter ARGS` with its telemetry under `config_home`.
fn greeter(config_home: &Path, args: &[&str]) -> Output {
    Command::new(example("greeter"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        // Windows' config directory: `<APPDATA>/telemetry` as `<XDG_CONFIG_HOME>/telemetry`.
        .env("APPDATA", config_home)
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG")
        .output()
        .expect("run greeter")
}

#[test]
fn a_back_dated_week_arrives_with_its_approved_counters_and_its_crash() {
    let home = tempfile::tempdir().unwrap();
    let server = LoopbackServer::start();
    server.set_config(
        &serde_json::json!({
            "OS": [OS], "Arch": [ARCH], "Toolchain": [toolchain()], "SampleRate": 1.0,
            "Programs": [{
                "Name": "greeter", "Versions": [env!("CARGO_PKG_VERSION")],
                "Counters": [{"Name": "greeter/subcommand:{greet,crash}", "Rate": 1.0}],
                "Stacks": [{"Name": "crash/panic", "Rate": 1.0, "Depth": 16}],
            }],
        })
        .to_string(),
    );
    let today = Day::of(std::time::SystemTime::now());
    let counted = today.plus(-14);
    let opted_in = counted.plus(-1).to_string();
    let counted_text = counted.to_string();

    let out = greeter(home.path(), &["--clock", &opted_in, "telemetry", "on"]);
    assert!(out.status.success(), "{out:?}");
    for args in [&["greet"][..], &["greet", "Ada"][..]] {
        let args: Vec<&str> = ["--clock", counted_text.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        let out = greeter(home.path(), &args);
        assert!(out.status.success(), "{out:?}");
    }
    let out = greeter(
        home.path(),
        &["--clock", &counted_text, "crash", "/nonexistent/secret"],
    );
    assert!(!out.status.success(), "{out:?}");
    // The next run of the program, under the same clock, has its telemetry child count
    // the recorded crash into the back-dated week's file.
    let out = greeter(home.path(), &["--clock", &counted_text, "--wait", "greet"]);
    assert!(out.status.success(), "{out:?}");

    // The telemetry child counted the crash into the back-dated week's file.
    let local = home.path().join("telemetry/greeter/local");
    let what = format!("the crash to be counted into the week of {counted}");
    eventually(Duration::from_secs(60), &what, || {
        std::fs::read_dir(&local)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.to_string_lossy()
                    .ends_with(&format!("-{counted}.v1.count"))
            })
            .filter_map(|p| telemetry_counter::read_file(p).ok())
            .any(|f| f.count.keys().any(|k| k.starts_with("crash/panic")))
    });

    // An ordinary run, on the real clock: its upload sends the ended week.
    let out = greeter(home.path(), &["--server", server.url(), "--wait", "greet"]);
    assert!(out.status.success(), "{out:?}");
    let uploads = server.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let report = uploads[0].json();
    let week = Day::parse(report["Week"].as_str().unwrap()).unwrap();
    assert!(week > counted && week <= counted.plus(7), "{report}");
    assert_eq!(uploads[0].path, format!("/upload/{week}"));
    let program = &report["Programs"][0];
    assert_eq!(program["Program"], "greeter", "{report}");
    assert_eq!(
        program["Counters"]["greeter/subcommand:greet"], 3,
        "{report}"
    );
    assert_eq!(
        program["Counters"]["greeter/subcommand:crash"], 1,
        "{report}"
    );
    let stacks = program["Stacks"].as_object().unwrap();
    assert!(
        stacks
            .keys()
            .any(|k| k.starts_with("crash/panic\ngreeter::read_settings")),
        "{report}"
    );
    // Neither the unapproved counters nor anything the user typed.
    let body = uploads[0].text();
    for never in ["greeter/name", "Ada", "secret"] {
        assert!(!body.contains(never), "{never} in {body}");
    }
}
