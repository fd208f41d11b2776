//! The command against a directory someone else prepared: links planted in place of
//! `local/`, `upload/` or `debug/`, huge sparse files, names made of terminal escapes
//! and bidirectional overrides. Nothing is followed, nothing outside the directory is
//! touched, nothing is read whole, nothing reaches the terminal raw.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{counter_file, run_in, stderr, stdout, telemetry};
use telemetry_test_support::entry_names;

/// Characters that must never reach a terminal as themselves.
fn assert_no_raw_escapes(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    for bad in [
        '\u{1b}', '\u{7}', '\u{9b}', '\u{9d}', '\u{202e}', '\u{2066}',
    ] {
        assert!(
            !text.contains(bad),
            "{what} holds a raw U+{:04X}:\n{text}",
            u32::from(bad)
        );
    }
}

/// A directory outside the telemetry directory, holding files named as telemetry's
/// own, so that anything that follows a link would list, show or remove them.
#[cfg(unix)]
fn victim(parent: &Path) -> std::path::PathBuf {
    let victim = parent.join("victim");
    std::fs::create_dir(&victim).unwrap();
    counter_file(
        &victim,
        ("victim", "1.0.0"),
        ("2026-11-13", "2026-11-20"),
        &[("victim/secret", 7)],
    );
    // `counter_file` writes into `<victim>/local/`; move its files up to the victim.
    for entry in std::fs::read_dir(victim.join("local")).unwrap() {
        let entry = entry.unwrap();
        std::fs::rename(entry.path(), victim.join(entry.file_name())).unwrap();
    }
    std::fs::remove_dir(victim.join("local")).unwrap();
    for name in ["2026-11-20.json", "local.2026-11-20.json", "sidecar.log"] {
        std::fs::write(victim.join(name), "{}").unwrap();
    }
    victim
}

/// A `local` (or `upload`, `debug`) link planted in a tool's directory: `clean` removes
/// nothing through it, and `dump`, `view`, `csv` and `env` refuse to read through it,
/// each with one line and exit status 1.
#[cfg(unix)]
#[test]
fn planted_links_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = victim(tmp.path());
    let before = entry_names(&victim);
    assert_eq!(before.len(), 4, "{before:?}");
    let dir = tmp.path().join("tool");
    std::fs::create_dir(&dir).unwrap();

    for area in ["local", "upload", "debug"] {
        let link = dir.join(area);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        for args in [
            &["clean"][..],
            &["dump"],
            &["view", "--text"],
            &["csv"],
            &["env"],
        ] {
            let out = run_in(&dir, args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{area}: {args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{area}: {args:?}: {err}");
            assert!(
                err.contains("is a symbolic link, not a directory: telemetry never follows links"),
                "{area}: {args:?}: {err}"
            );
            let text = stdout(&out);
            assert!(!text.contains("victim"), "{area}: {args:?}: {text}");
            assert_eq!(
                entry_names(&victim),
                before,
                "{area}: {args:?} touched the victim"
            );
        }
        std::fs::remove_file(&link).unwrap();
    }
}

/// On the root, `clean` cleans every tool it can and leaves a tool with a planted link
/// alone (exit 1, one line naming it); nothing outside the root is removed.
#[cfg(unix)]
#[test]
fn clean_on_the_root_skips_a_tool_with_a_planted_link() {
    let home = tempfile::tempdir().unwrap();
    let victim = victim(home.path());
    let before = entry_names(&victim);
    let root = common::root_in(home.path());
    let good = root.join("good");
    counter_file(
        &good,
        ("good", "1.0.0"),
        ("2026-11-13", "2026-11-20"),
        &[("good/runs", 1)],
    );
    let bad = root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::os::unix::fs::symlink(&victim, bad.join("local")).unwrap();

    let out = common::run_home(home.path(), &["clean"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad/local"), "{err}");
    assert_eq!(entry_names(&victim), before);
    assert!(
        entry_names(&good.join("local")).is_empty(),
        "the good tool was cleaned"
    );
    // The link itself stays: it is the user's to look at.
    assert!(bad.join("local").is_symlink());

    // Listing commands on the root refuse it too.
    for args in [&["dump"][..], &["csv"], &["view", "--text"]] {
        let out = common::run_home(home.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(!stdout(&out).contains("victim"), "{args:?}");
    }
    let env = common::run_home(home.path(), &["env"]);
    assert_eq!(env.status.code(), Some(1), "{}", stderr(&env));
    assert!(stdout(&env).contains("never follows"), "{}", stdout(&env));
}

/// A planted 4 GiB sparse counter file is refused from its size, at once and without
/// reading it (it took 16.8 s and 4.2 GB of memory to be called "wrong header"), by
/// name and from `local/`.
#[test]
fn a_huge_sparse_file_is_refused_quickly() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let huge = local.join("mytool@1.0.0-1.95.0-linux-amd64-2026-11-23.v1.count");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    for out in [
        telemetry().arg("dump").arg(&huge).output().unwrap(),
        run_in(tmp.path(), &["dump"]),
    ] {
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("larger than 67108864 bytes"), "{err}");
    }
    let start = Instant::now();
    let out = run_in(tmp.path(), &["csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    let start_dump = Instant::now();
    let _ = telemetry().arg("dump").arg(&huge).output().unwrap();
    // Refused from its size: far under the time it takes to read 64 MiB, let alone 4 GiB.
    assert!(
        start_dump.elapsed() < Duration::from_secs(2),
        "{:?}",
        start_dump.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

/// A name made of terminal escapes: the OSC that sets the window title, a screen clear,
/// an 8-bit CSI, a right-to-left override.
#[cfg(unix)]
const HOSTILE_FILE: &str = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{202e}-2026-11-23.v1.count";

/// Every name shown to a person goes through one escaping: a file name in `dump`'s and
/// `upload -v`'s messages, counter names in `dump`, `view`, `csv`, file names in `env`.
#[cfg(unix)]
#[test]
fn names_never_reach_the_terminal_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    counter_file(
        dir,
        ("mytool", "1.0.0"),
        ("2026-11-13", "2026-11-20"),
        &[
            ("mytool/\u{9b}2J", 1),
            ("mytool/\u{202e}exe.txt", 2),
            ("mytool/\u{2066}x\u{2069}", 3),
            ("mytool/\u{9d}0;t\u{7}", 4),
        ],
    );
    let garbage = dir.join("local").join(HOSTILE_FILE);
    std::fs::write(&garbage, vec![0u8; 20_000]).unwrap();

    let dump = run_in(dir, &["dump"]);
    assert_eq!(dump.status.code(), Some(1), "{}", stderr(&dump));
    assert!(
        stderr(&dump).contains("\\u{1b}]0;PWNED\\u{7}"),
        "{}",
        stderr(&dump)
    );
    assert!(stderr(&dump).contains("\\u{202e}"), "{}", stderr(&dump));
    assert_no_raw_escapes("dump's stderr", &dump.stderr);
    assert_no_raw_escapes("dump's JSON", &dump.stdout);
    // The JSON keeps the names, as JSON escapes that decode to the same text.
    let json = stdout(&dump);
    assert!(json.contains(r#""mytool/\u009b2J": 1"#), "{json}");
    assert!(json.contains(r#""mytool/\u202eexe.txt": 2"#), "{json}");
    assert!(json.contains(r#""mytool/\u2066x\u2069": 3"#), "{json}");

    for args in [&["view", "--text"][..], &["csv"], &["env"]] {
        let out = run_in(dir, args);
        assert_no_raw_escapes(&format!("{args:?} stdout"), &out.stdout);
        assert_no_raw_escapes(&format!("{args:?} stderr"), &out.stderr);
    }
    let text = stdout(&run_in(dir, &["view", "--text"]));
    assert!(text.contains("mytool/\\u{202e}exe.txt"), "{text}");
    let csv = stdout(&run_in(dir, &["csv"]));
    assert!(csv.contains("mytool/\\u{9b}2J"), "{csv}");

    // The page escapes them too (an override would reorder what is shown).
    let page = dir.join("page.html");
    let out = run_in(dir, &["view", "--output", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_raw_escapes("view's page", &std::fs::read(&page).unwrap());

    // `upload -v` names the file it skips.
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        common::approving_config("mytool", "1.0.0", &["mytool/x"]),
    )
    .unwrap();
    let out = run_in(
        dir,
        &[
            "upload",
            "-v",
            "--dry-run",
            "--config-file",
            config.to_str().unwrap(),
            "--upload-url",
            "http://127.0.0.1:9/upload",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("skipping \\u{1b}]0;PWNED"), "{err}");
    assert_no_raw_escapes("upload -v", &out.stderr);
}
