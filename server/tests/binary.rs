//! The `telemetry-server` binary as an operator runs it: a first start needs only a
//! config, a bad config or a taken port is a one-line error exit that leaves nothing
//! behind, SIGHUP reloads (and a config that is not a small regular file, or approves
//! nothing, is refused), SIGTERM lets an upload in flight finish, logs are JSON lines
//! on stderr, and `merge` is idempotent.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use telemetry_test_support::eventually;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    dir
}

/// A report of a week that is recent by the real clock.
fn recent_report(x: f64) -> telemetry_upload::Report {
    let week = telemetry_internal::Day::of(std::time::SystemTime::now()).plus(-2);
    report(week, x)
}

#[test]
fn a_bad_config_at_start_is_a_one_line_error_exit() {
    let dir = setup();
    std::fs::write(dir.path().join("config.json"), "{\"SampleRate\": 7}").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(dir.path().join("config.json"))
        .arg("--storage")
        .arg(file_url(&dir.path().join("data")))
        .output()
        .unwrap();
    let stderr = one_line_refusal(out);
    assert!(
        stderr.starts_with("telemetry-server: the upload config "),
        "{stderr}"
    );
    assert!(
        stderr.contains("SampleRate 7 is not between 0 and 1"),
        "{stderr}"
    );
    assert_eq!(files_under(dir.path()), ["config.json"], "nothing created");

    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--storage", "ftp://x"])
        .arg("--config")
        .arg(dir.path().join("config.json"))
        .output()
        .unwrap();
    let stderr = one_line_refusal(out);
    assert!(
        stderr.contains("cannot use storage \"ftp://x\""),
        "{stderr}"
    );
}

#[test]
fn sighup_reloads_the_config_and_a_bad_one_keeps_the_old() {
    let dir = setup();
    let mut served = start_served(dir.path());
    let url = format!("http://{}/config.json", served.addr);
    assert_eq!(get(&url).1, CONFIG);

    // Reloads are polled every 2 s too; SIGHUP makes it immediate and is logged.
    let newer = CONFIG.replace("1.1.0", "1.2.0");
    std::fs::write(dir.path().join("config.json"), &newer).unwrap();
    served.signal("HUP");
    served.wait_for_log("upload config reloaded");
    assert_eq!(get(&url).1, newer);

    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    served.signal("HUP");
    let line = served.wait_for_log("keeping the old one");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["level"], "ERROR", "{line}");
    assert_eq!(get(&url).1, newer);
    assert!(served.child.try_wait().unwrap().is_none(), "still serving");
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish() {
    let dir = setup();
    let mut served = start_served(dir.path());
    let report = recent_report(0.5);
    let body = json(&report);
    let mut stream = TcpStream::connect(served.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /upload/{} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        report.week,
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..20]).unwrap();
    // The request is in flight once the server has read all that was sent of it.
    let port = served.addr.port();
    eventually(
        Duration::from_secs(20),
        "the server to read the request's start",
        || unread_bytes(port) == 0,
    );
    served.signal("TERM");
    served.wait_for_log("shutting down");
    // New connections are refused while the old one finishes.
    assert!(TcpStream::connect(served.addr).is_err());
    stream.write_all(&body[20..]).unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.ends_with("stored\n"), "{answer}");
    let status = served.wait();
    assert!(status.success(), "{status}");
    assert_eq!(files_under(&dir.path().join("data")).len(), 1);
}

#[test]
fn logs_are_json_lines_and_merge_is_idempotent() {
    let dir = setup();
    let mut served = start_served(dir.path());
    let week = recent_report(0.5).week;
    assert_eq!(
        post(
            &format!("http://{}/upload/{week}", served.addr),
            b"nonsense"
        )
        .0,
        400
    );
    let line = served.wait_for_log("upload rejected");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a report"),
        "{line}"
    );
    assert!(event["timestamp"].is_string(), "{line}");
    for x in [0.25, 0.5] {
        let (status, body) = post(
            &format!("http://{}/upload/{week}", served.addr),
            &json(&recent_report(x)),
        );
        assert_eq!(status, 200, "{body}");
    }
    served.signal("TERM");
    assert!(served.wait().success());
    for line in &served.seen {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }

    let merge = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("merge")
            .arg("--storage")
            .arg(file_url(&dir.path().join("data")))
            .args(args)
            .output()
            .unwrap();
        succeeded(out)
    };
    assert_eq!(merge(&[]), format!("{week}: merged 2 reports\n"));
    let merged = std::fs::read(dir.path().join(format!("data/merged/{week}.json"))).unwrap();
    assert_eq!(merge(&[]), "", "nothing left to merge");
    assert_eq!(
        merge(&["--date", &week]),
        format!("{week}: merged 2 reports\n")
    );
    assert_eq!(
        std::fs::read(dir.path().join(format!("data/merged/{week}.json"))).unwrap(),
        merged
    );

    let out = Command::new(BIN)
        .args([
            "merge",
            "--storage",
            "file:///nonexistent/x",
            "--date",
            "2026-02-30",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

/// `serve` with `dir/config.json` on `listen`, nothing else given.
fn serve_without_storage(dir: &Path, listen: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", listen, "--merge-every-hours", "0"])
        .arg("--config")
        .arg(dir.join("config.json"))
        .env_remove("XDG_DATA_HOME");
    command
}

/// Replaces the config file by what `make` puts at its path, asks for a reload, and
/// returns the log line that refuses it.
fn reload_refused(served: &mut Served, dir: &Path, make: impl FnOnce(&Path)) -> String {
    let config = dir.join("config.json");
    std::fs::remove_file(&config).unwrap();
    make(&config);
    let skip = served.seen.len();
    served.signal("HUP");
    served.wait_for_log_after(skip, "keeping the old one")
}

#[test]
fn a_config_replaced_by_a_fifo_leaves_the_server_answering_and_stoppable() {
    let dir = setup();
    let mut served = start_served(dir.path());
    let line = reload_refused(&mut served, dir.path(), |config| {
        let made = Command::new("mkfifo").arg(config).status().unwrap();
        assert!(made.success());
    });
    assert!(line.contains("is not a regular file"), "{line}");
    assert_eq!(get(&served.url("/healthz")), (200, "ok\n".to_owned()));
    assert_eq!(
        get(&served.url("/config.json")).1,
        CONFIG,
        "the old one kept"
    );
    served.signal("TERM");
    assert!(served.wait().success());
}

#[test]
fn a_config_linked_to_a_device_or_too_large_is_refused_without_growing() {
    let dir = setup();
    // An address-space limit, so that a server that did read /dev/zero whole dies
    // at once instead of taking the machine's memory.
    let mut command = Command::new("prlimit");
    command.arg(format!("--as={}", 2u64 << 30)).arg("--");
    let served_command = serve_command(dir.path());
    command
        .arg(served_command.get_program())
        .args(served_command.get_args());
    let mut served = Served::spawn(command);

    let line = reload_refused(&mut served, dir.path(), |config| {
        std::os::unix::fs::symlink("/dev/zero", config).unwrap();
    });
    assert!(line.contains("/dev/zero is not a regular file"), "{line}");
    let line = reload_refused(&mut served, dir.path(), |config| {
        let mut big = CONFIG.as_bytes().to_vec();
        big.resize(5 << 20, b' ');
        std::fs::write(config, big).unwrap();
    });
    assert!(line.contains("is larger than 4194304 bytes"), "{line}");
    let peak = served.memory().peak;
    assert!(peak < 64 << 20, "peak RSS {} MiB", peak >> 20);
    assert_eq!(
        get(&served.url("/config.json")).1,
        CONFIG,
        "the old one kept"
    );

    // A link to a regular file is how configs are often put in place (Kubernetes'
    // ConfigMap volumes): it is followed.
    let newer = CONFIG.replace("1.1.0", "1.2.0");
    std::fs::write(dir.path().join("real.json"), &newer).unwrap();
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real.json"), dir.path().join("config.json"))
        .unwrap();
    served.signal("HUP");
    served.wait_for_log("upload config reloaded");
    assert_eq!(get(&served.url("/config.json")).1, newer);
}

#[test]
fn configs_that_approve_nothing_or_rates_out_of_range_are_refused() {
    let rate = CONFIG.replace(
        "\"mytool/runs\", \"Rate\": 1",
        "\"mytool/runs\", \"Rate\": 1.5",
    );
    let cases = [
        (
            rate.as_str(),
            "the Rate 1.5 of \\\"mytool/runs\\\" in program \\\"mytool\\\" is not between 0 and 1",
        ),
        (
            r#"{"OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"], "Programs": []}"#,
            "it approves nothing",
        ),
        (
            r#"{"Programs": [{"Name": "mytool", "Versions": ["1.0.0"], "Counters": [{"Name": "mytool/runs", "Rate": 1}]}]}"#,
            "it approves nothing",
        ),
        (
            r#"{"OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"],
             "Programs": [{"Name": "mytool", "Versions": ["1.0.0"], "Counters": [{"Name": "mytool/runs", "Rate": 0}]}]}"#,
            "it approves nothing",
        ),
    ];
    // At start: a one-line error, and nothing created.
    for (config, reason) in cases {
        let dir = setup();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let out = output_within_20s(&mut serve_command(dir.path()));
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&reason.replace("\\\"", "\"")), "{stderr}");
        assert_eq!(files_under(dir.path()), ["config.json"], "nothing created");
    }
    // At reload: logged, and the old one kept.
    let dir = setup();
    let mut served = start_served(dir.path());
    for (config, reason) in cases {
        let line = reload_refused(&mut served, dir.path(), |path| {
            std::fs::write(path, config).unwrap();
        });
        assert!(line.contains(reason), "{line}");
        assert_eq!(get(&served.url("/config.json")).1, CONFIG);
    }
}

#[test]
fn a_first_start_needs_only_a_config() {
    let dir = setup();
    let data_home = dir.path().join("xdg");
    let mut command = serve_without_storage(dir.path(), "127.0.0.1:0");
    command.env("XDG_DATA_HOME", &data_home);
    let mut served = Served::spawn(command);
    let line = served.wait_for_log("no --storage given");
    let where_ = data_home.join("telemetry-server");
    assert!(line.contains(&file_url(&where_)), "{line}");
    let line = served.wait_for_log("\"serving\"");
    assert!(
        line.contains(&format!("\"dashboard\":\"http://{}/\"", served.addr)),
        "{line}"
    );
    let report = recent_report(0.5);
    assert_eq!(
        post(
            &served.url(&format!("/upload/{}", report.week)),
            &json(&report)
        )
        .0,
        200
    );
    assert_eq!(
        files_under(&where_),
        [format!("uploaded/{}/0.5.json", report.week)]
    );
    drop(served);

    // Without XDG_DATA_HOME: under HOME.
    let home = dir.path().join("home");
    let mut command = serve_without_storage(dir.path(), "127.0.0.1:0");
    command.env("HOME", &home);
    let mut served = Served::spawn(command);
    let line = served.wait_for_log("no --storage given");
    let where_ = home.join(".local/share/telemetry-server");
    assert!(line.contains(&file_url(&where_)), "{line}");
    assert!(where_.is_dir());
}

#[test]
fn help_says_where_the_dashboard_and_the_reports_are() {
    for args in [&["--help"][..], &["serve", "--help"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("dashboard at /"), "{args:?}: {help}");
        assert!(
            help.contains("$XDG_DATA_HOME/telemetry-server"),
            "{args:?}: {help}"
        );
        assert!(
            help.contains("~/.local/share/telemetry-server"),
            "{args:?}: {help}"
        );
    }
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
}

#[test]
fn a_start_on_a_port_in_use_creates_nothing_and_suggests_listen() {
    let dir = setup();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let data_home = dir.path().join("xdg");
    for storage in [None, Some(file_url(&dir.path().join("data")))] {
        let mut command = serve_without_storage(dir.path(), &addr.to_string());
        command.env("XDG_DATA_HOME", &data_home);
        if let Some(storage) = &storage {
            command.args(["--storage", storage]);
        }
        let out = output_within_20s(&mut command);
        assert_eq!(out.status.code(), Some(1), "{storage:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!("telemetry-server: cannot listen on {addr}: ")),
            "{stderr}"
        );
        assert!(
            last.ends_with("choose another address with --listen"),
            "{stderr}"
        );
        assert_eq!(files_under(dir.path()), ["config.json"], "nothing created");
        assert!(!data_home.exists());
    }
}

#[test]
fn requests_to_unknown_paths_are_logged_with_their_path() {
    let dir = setup();
    let mut served = start_served(dir.path());
    let report = recent_report(0.5);
    // A tool whose upload URL lacks /upload.
    let (status, body) = post(&served.url(&format!("/{}", report.week)), &json(&report));
    assert_eq!(status, 404, "{body}");
    let line = served.wait_for_log("no such path");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["level"], "INFO", "{line}");
    assert_eq!(event["method"], "POST", "{line}");
    assert_eq!(event["path"], format!("/{}", report.week), "{line}");
}

#[test]
fn a_resend_to_read_only_storage_is_already_stored() {
    let dir = setup();
    let report = recent_report(0.5);
    {
        let served = start_served(dir.path());
        let url = served.url(&format!("/upload/{}", report.week));
        assert_eq!(post(&url, &json(&report)), (200, "stored\n".to_owned()));
    }
    // Read-only storage: every directory 0555, and a server without root's
    // permission to write anyway.
    let data = dir.path().join("data");
    for path in [
        data.join(format!("uploaded/{}", report.week)),
        data.join("uploaded"),
        data.clone(),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let served = Served::spawn(without_root_write_access(serve_command(dir.path())));
    let url = served.url(&format!("/upload/{}", report.week));
    // The client did not see the first answer: it is done.
    assert_eq!(
        post(&url, &json(&report)),
        (200, "already stored\n".to_owned())
    );
    // A report not stored yet cannot be.
    let (status, body) = post(&url, &json(&recent_report(0.25)));
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        files_under(&data),
        [format!("uploaded/{}/0.5.json", report.week)]
    );
}

/// `command`, run so that file permissions bind it: as root (which ignores them), under
/// `setpriv` without CAP_DAC_OVERRIDE.
fn without_root_write_access(command: Command) -> Command {
    let probe = tempfile::tempfile().unwrap();
    if probe.metadata().unwrap().uid() != 0 {
        return command;
    }
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args([
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
            "--",
        ])
        .arg(command.get_program())
        .args(command.get_args());
    wrapped
}
