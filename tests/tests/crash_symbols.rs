//! A crash of a stripped build, named at the collector from the vendor's symbols:
//! the example `greeter` and a copy of it stripped with `strip --strip-all` (one
//! source, one build ID) each panic for real; the next run of each counts its crash
//! from the journal (the stripped one raw, `<build-id>+0x…`, the other named by its
//! own symbol table); both weeks are uploaded to a real `telemetry-server serve` on
//! 127.0.0.1. Until `telemetry-server symbols add` stores the unstripped executable's
//! symbols they are two stacks; after it (and a merge), one stack holding both
//! reports' counts, spelled byte for byte as the unstripped build spells it.
//! Linux x86_64: the host's `strip` reads this executable.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use telemetry::counter::stack_name::is_raw_frame;
use telemetry_internal::{ARCH, Day, OS, toolchain};
use telemetry_test_support::{Served, serve_command};
use telemetry_tests::{
    EVENT_TIMEOUT, counter_files_let_go, eventually, example, output_within,
    telemetry_server_binary,
};

const LIMIT: Duration = Duration::from_secs(20);

/// The upload config the collector serves: `greeter`'s counters and its panic
/// stacks, raw ones (up to 32 frames) included.
fn upload_config() -> String {
    serde_json::json!({
        "OS": [OS], "Arch": [ARCH], "Toolchain": [toolchain()], "SampleRate": 1.0,
        "Programs": [{
            "Name": "greeter", "Versions": [env!("CARGO_PKG_VERSION")],
            "Counters": [{"Name": "greeter/subcommand:{greet,crash}", "Rate": 1.0}],
            "Stacks": [{"Name": "crash/panic", "Rate": 1.0, "Depth": 32}],
        }],
    })
    .to_string()
}

/// `telemetry-server serve` on a free loopback port, file storage, never merging by
/// itself; killed on drop.
struct Collector {
    served: Served,
    storage: String,
}

impl Collector {
    fn start(dir: &Path) -> Collector {
        let config = dir.join("config.json");
        std::fs::write(&config, upload_config()).unwrap();
        let storage = format!("file://{}", dir.join("data").display());
        let command = serve_command(&telemetry_server_binary(), &config, &storage);
        Collector {
            served: Served::spawn(command),
            storage,
        }
    }

    fn url(&self) -> String {
        self.served.url("")
    }

    /// `telemetry-server ARGS --storage <this server's storage>`, which must succeed:
    /// its stdout.
    fn run(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(telemetry_server_binary());
        cmd.args(args).args(["--storage", &self.storage]);
        let out = output_within(cmd, LIMIT);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// `GET /api/stacks?since=…`, over HTTP/1.0 (the whole body, then the close).
    fn api_stacks(&self, since: Day) -> serde_json::Value {
        use std::io::{Read, Write};
        let addr = self.served.addr;
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        write!(
            stream,
            "GET /api/stacks?since={since} HTTP/1.0\r\nHost: {addr}\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{answer}"
        );
        serde_json::from_str(body).unwrap()
    }
}

/// `greeter ARGS` (the executable `exe`) with its telemetry under `home`.
fn greeter(exe: &Path, home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .env("RUST_BACKTRACE", "0")
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG");
    output_within(cmd, LIMIT)
}

/// Opts in, panics on `day` (back-dated, so that the week is over and the collector
/// takes it today), has the next run count the crash, and uploads the week to
/// `collector`: the crash counter's name, as the counter file holds it.
fn crash_and_upload(exe: &Path, home: &Path, day: Day, collector: &Collector) -> String {
    let day_text = day.to_string();
    let out = greeter(
        exe,
        home,
        &["--clock", &day.plus(-1).to_string(), "telemetry", "on"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = greeter(
        exe,
        home,
        &["--clock", &day_text, "crash", "/nonexistent/settings"],
    );
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    let out = greeter(exe, home, &["--clock", &day_text, "--wait", "greet"]);
    assert!(out.status.success(), "{out:?}");

    let dir = home.join("telemetry/greeter");
    let local = dir.join("local");
    let crash = || {
        std::fs::read_dir(&local)
            .ok()?
            .flatten()
            .filter_map(|e| telemetry_counter::read_file(e.path()).ok())
            .flat_map(|f| f.count.into_keys())
            .find(|k| k.starts_with("crash/"))
    };
    eventually(EVENT_TIMEOUT, "the crash counter", || {
        crash().is_some() && counter_files_let_go(&dir)
    });
    let name = crash().unwrap();

    let mut upload = telemetry_upload::RunConfig::new(
        &dir,
        format!("{}/upload", collector.url()),
        telemetry_upload::ConfigSource::Url(format!("{}/config.json", collector.url())),
    );
    upload.ambient = telemetry_internal::Ambient::with_config_dir(home.join("no-config-dir"));
    upload.now = std::time::SystemTime::now();
    let summary = telemetry_upload::run(upload).unwrap();
    assert!(summary.to_string().ends_with(": uploaded\n"), "{summary}");
    name
}

/// The weeks stored under `uploaded/`: one or two, as each telemetry directory
/// chose its own weekday for weeks to end on.
fn uploaded_weeks(dir: &Path) -> Vec<String> {
    let mut weeks: Vec<String> = std::fs::read_dir(dir.join("data/uploaded"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    weeks.sort();
    assert!(matches!(weeks.len(), 1 | 2), "{weeks:?}");
    weeks
}

/// `telemetry-server merge --date WEEK` for each week (a named day is merged again):
/// how many reports it merged.
fn merge(collector: &Collector, weeks: &[String]) -> usize {
    weeks
        .iter()
        .map(|week| {
            let merged = collector.run(&["merge", "--date", week]);
            let reports = merged
                .split_once("merged ")
                .and_then(|(_, rest)| rest.split_once(" report"))
                .and_then(|(n, _)| n.parse::<usize>().ok());
            reports.unwrap_or_else(|| panic!("merge --date {week}: {merged}"))
        })
        .sum()
}

fn rows(answer: &serde_json::Value) -> &Vec<serde_json::Value> {
    answer["Stacks"].as_array().unwrap()
}

#[test]
fn a_stripped_builds_crash_joins_the_unstripped_builds_stack_once_symbols_are_added() {
    let tmp = tempfile::tempdir().unwrap();
    let server_dir = tmp.path().join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    let collector = Collector::start(&server_dir);

    // One build, and a copy of it stripped of every symbol table (same build ID).
    let unstripped: PathBuf = example("greeter");
    let stripped_dir = tmp.path().join("stripped");
    std::fs::create_dir_all(&stripped_dir).unwrap();
    let stripped = stripped_dir.join("greeter");
    telemetry_test_support::stripped_copy(&unstripped, &stripped);

    let day = Day::of(std::time::SystemTime::now()).plus(-9);
    let (home_raw, home_named) = (tmp.path().join("home-raw"), tmp.path().join("home-named"));
    let raw = crash_and_upload(&stripped, &home_raw, day, &collector);
    let named = crash_and_upload(&unstripped, &home_named, day, &collector);

    // The stripped build counted its crash raw: every frame a link-time address in
    // the one build, or unknown.
    let mut lines = raw.lines();
    assert_eq!(lines.next(), Some("crash/panic"), "{raw}");
    let frames: Vec<&str> = lines.collect();
    assert!(
        frames
            .iter()
            .all(|f| *f == "?+0x0" || is_raw_frame(f).is_some()),
        "{raw}"
    );
    let ids: BTreeSet<&str> = frames
        .iter()
        .filter_map(|f| is_raw_frame(f))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 1, "one build ID in {raw}");
    // The unstripped build named its own.
    assert!(
        named.starts_with("crash/panic\ngreeter::read_settings+0x"),
        "{named}"
    );
    assert!(named.lines().all(|f| is_raw_frame(f).is_none()), "{named}");

    let weeks = uploaded_weeks(&server_dir);
    let since = day.plus(-7);
    assert_eq!(merge(&collector, &weeks), 2);

    // Without the symbols: two stacks, the raw one as uploaded.
    let before = collector.api_stacks(since);
    let mut texts: Vec<&str> = rows(&before)
        .iter()
        .map(|s| s["Stack"].as_str().unwrap())
        .collect();
    texts.sort_unstable();
    let mut want = vec![raw.as_str(), named.as_str()];
    want.sort_unstable();
    assert_eq!(texts, want, "{before:#}");
    let raw_row = rows(&before)
        .iter()
        .find(|s| s["Stack"] == raw.as_str())
        .unwrap();
    assert_eq!(raw_row["Raw"], true, "{before:#}");
    assert_eq!(raw_row["Count"], 1, "{before:#}");

    // The vendor stores the unstripped build's symbols, and merges the day again.
    let added = collector.run(&["symbols", "add", unstripped.to_str().unwrap()]);
    let id = ids.first().unwrap();
    assert!(added.starts_with(&format!("{id}  elf x86_64  ")), "{added}");
    assert_eq!(merge(&collector, &weeks), 2);
    for week in &weeks {
        let day =
            std::fs::read_to_string(server_dir.join(format!("data/merged/{week}.json"))).unwrap();
        assert!(!day.contains(id), "{day}");
    }

    // One stack, both reports' counts, spelled as the unstripped build spells it.
    let after = collector.api_stacks(since);
    assert_eq!(rows(&after).len(), 1, "{after:#}");
    let row = &rows(&after)[0];
    assert_eq!(row["Stack"].as_str(), Some(named.as_str()), "{after:#}");
    assert_eq!(row["Count"], 2, "{after:#}");
    assert_eq!(row["Reports"], 2, "{after:#}");
    assert_eq!(row["Raw"], false, "{after:#}");

    // `telemetry-server stacks` prints the same list.
    let printed = collector.run(&["stacks", "--since", &since.to_string(), "--format", "json"]);
    let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed["Stacks"], after["Stacks"]);
}
