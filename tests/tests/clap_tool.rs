//! A tool that parses its arguments with clap before `start` (a required subcommand,
//! nothing else accepted) still gets its crashes counted and its uploads made: the
//! child runs before `main`, so clap never sees `** telemetry **`.

use std::path::Path;
use std::process::{Command, Output};

use telemetry_tests::{
    EVENT_TIMEOUT, eventually, example, example_in, expired_week_of, opt_in,
    serving_approving_config, todays_counts_of,
};

fn clap_tool(dir: &Path, args: &[&str]) -> Output {
    example_in("clap_tool", dir, args)
        .output()
        .expect("run clap_tool")
}

#[test]
fn clap_rejects_the_childs_argument_so_the_child_never_reaches_main() {
    // What the child's command line would do to `main`: exit 2 with a usage error.
    let out = Command::new(example("clap_tool"))
        .arg("** telemetry **")
        .env_remove("DO_NOT_TRACK")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn clap_tool_panic_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = clap_tool(dir, &["panic", "hunter2"]);
    assert_eq!(out.status.code(), Some(101));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    // The crash is in the journal; the next run, parsed by clap before `start` as
    // every run is, has its telemetry child count it.
    let out = clap_tool(dir, &["greet"]);
    assert!(out.status.success(), "{out:?}");
    eventually(EVENT_TIMEOUT, "the crash counter", || {
        todays_counts_of(dir, "clap_tool")
            .keys()
            .any(|k| k.starts_with("crash/panic\n") && k.contains("clap_tool::boom"))
    });
    assert_eq!(
        todays_counts_of(dir, "clap_tool").get("clap_tool/subcommand:panic"),
        Some(&1)
    );
}

#[test]
fn clap_tool_upload_happens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    opt_in(dir, 30);
    let server = serving_approving_config();
    // A week the tool counted in, over by the real clock (a pretended upload time
    // never commits a week that is not: a process may still count into it).
    expired_week_of(dir, "clap_tool", &[("clap_tool/subcommand:greet", 2)]);
    let out = clap_tool(dir, &["--server", server.url(), "--wait", "greet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "child: true\n");
    let uploads = server.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let report = uploads[0].json();
    let greets = report["Programs"][0]["Counters"]["clap_tool/subcommand:greet"].as_u64();
    assert_eq!(greets, Some(2), "{report}");
}
