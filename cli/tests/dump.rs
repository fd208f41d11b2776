//! `telemetry dump`: byte-identical to Go's JSON for every fixture, one line per bad
//! file, never a panic or a hang.

mod common;

use std::time::Duration;

use common::{fixture, run_in, stderr, stdout, telemetry};

const FIXTURES: [&str; 3] = ["empty", "small", "large"];

#[test]
fn each_fixture_dumps_exactly_as_go() {
    for name in FIXTURES {
        let out = telemetry()
            .arg("dump")
            .arg(fixture(&format!("{name}.v1.count")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let want = std::fs::read(fixture(&format!("{name}.json"))).unwrap();
        assert!(
            out.stdout == want,
            "{name}: dump differs from Go's JSON:\n{}",
            stdout(&out)
        );
        assert_eq!(stderr(&out), "");
    }
}

/// Several files make a JSON array of the objects, indented one level deeper, as Go's
/// `MarshalIndent` would print a slice of them.
#[test]
fn several_files_make_an_array() {
    let mut cmd = telemetry();
    cmd.arg("dump");
    for name in FIXTURES {
        cmd.arg(fixture(&format!("{name}.v1.count")));
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut want = String::from("[\n");
    for (i, name) in FIXTURES.iter().enumerate() {
        let one = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
        let indented: Vec<String> = one.trim_end().lines().map(|l| format!(" {l}")).collect();
        want.push_str(&indented.join("\n"));
        want.push_str(if i + 1 < FIXTURES.len() { ",\n" } else { "\n" });
    }
    want.push_str("]\n");
    assert_eq!(stdout(&out), want);
}

#[test]
fn without_files_dumps_local_counter_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = common::counter_file(
        tmp.path(),
        ("mytool", "1.0.0"),
        ("2026-11-20", "2026-11-27"),
        &[("a&b", 1)],
    );
    let out = run_in(tmp.path(), &["dump"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("{\n \"Count\": {\n  \"a\\u0026b\": 1\n },\n \"Meta\": {\n"),
        "{text}"
    );
    assert!(text.contains("\"Program\": \"mytool\""), "{text}");
    assert!(
        text.contains("\"TimeBegin\": \"2026-11-20T00:00:00Z\""),
        "{text}"
    );

    // Also by name, and an empty local/ gives an empty array.
    let by_name = telemetry().arg("dump").arg(&path).output().unwrap();
    assert_eq!(by_name.stdout, out.stdout);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(stdout(&run_in(tmp.path(), &["dump"])), "[]\n");
}

/// Each bad file: exit 1, exactly one line on stderr naming it, nothing on stdout,
/// and well within a few seconds.
#[test]
fn bad_files_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("small.v1.count")).unwrap();
    let truncated = tmp.path().join("truncated.v1.count");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let random = tmp.path().join("random.v1.count");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..20_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let header_then_garbage = tmp.path().join("garbage.v1.count");
    let mut garbage = good.clone();
    for b in &mut garbage[200..] {
        *b = 0xff;
    }
    std::fs::write(&header_then_garbage, garbage).unwrap();
    let missing = tmp.path().join("missing.v1.count");
    let directory = tmp.path().join("dir.v1.count");
    std::fs::create_dir(&directory).unwrap();

    for path in [
        &truncated,
        &random,
        &header_then_garbage,
        &missing,
        &directory,
    ] {
        let start = std::time::Instant::now();
        let out = telemetry().arg("dump").arg(path).output().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            path.display()
        );
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        assert!(out.stdout.is_empty(), "{}", path.display());
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{}: {err}", path.display());
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }

    // A bad file among good ones: the good ones are printed, as Go's `gotelemetry dump`
    // does, stderr names each bad one, and the status says not all were valid.
    let out = telemetry()
        .arg("dump")
        .arg(fixture("small.v1.count"))
        .arg(&truncated)
        .arg(fixture("empty.v1.count"))
        .arg(&random)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.contains("truncated.v1.count") && err.contains("random.v1.count"),
        "{err}"
    );
    let both = telemetry()
        .arg("dump")
        .arg(fixture("small.v1.count"))
        .arg(fixture("empty.v1.count"))
        .output()
        .unwrap();
    assert!(both.status.success());
    assert_eq!(stdout(&out), stdout(&both));
}

/// A FIFO would block a plain read forever.
#[cfg(unix)]
#[test]
fn a_fifo_is_refused_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo.v1.count");
    // mkfifo(1) is part of every Unix this runs on; its absence is a failure, not a skip.
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    let out = telemetry().arg("dump").arg(&fifo).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

/// A counter file cut short by another process: the counts that can be proven intact
/// are still printed, with one line saying what was lost, and the exit status says the
/// file was not whole.
#[test]
fn a_damaged_file_shows_its_intact_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..400)
        .map(|i| format!("mytool/a-long-counter-name-to-fill-pages-{i:03}"))
        .collect();
    let counts: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 7)).collect();
    let path = common::counter_file(
        tmp.path(),
        ("mytool", "1.0.0"),
        ("2026-11-02", "2026-11-09"),
        &counts,
    );
    let whole = std::fs::metadata(&path).unwrap().len();
    assert!(whole >= 32 * 1024, "{whole}: the records must span pages");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(20 * 1024).unwrap();
    drop(file);

    let out = telemetry().arg("dump").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("truncated counter file"), "{err}");
    assert!(err.contains("counters proven intact"), "{err}");
    let json = stdout(&out);
    let shown = names.iter().filter(|n| json.contains(n.as_str())).count();
    assert!(
        shown > 0 && shown < names.len(),
        "{shown} of {}",
        names.len()
    );
    assert!(json.contains("\"Program\": \"mytool\""), "{json}");
}
