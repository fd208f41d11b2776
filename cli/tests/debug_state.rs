//! The debug state as a person meets it: the decision log of `start` and `telemetry
//! env` say the same words for the same state, `env` says that a `debug/` directory
//! keeps a log on every run, and `telemetry log --off` ends it.

mod common;

use common::{run_in, stderr, stdout, tool_with_dir};

/// `start`'s decision line (under `TELEMETRY_DEBUG=1`) and `env`'s mode line, for a
/// directory without a mode file and then with one: the same words.
#[test]
fn the_decision_log_and_env_use_the_same_words() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("data");
    let env_mode_line = || {
        let out = run_in(&dir, &["env"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let line = text.lines().find(|l| l.starts_with("mode: ")).unwrap();
        line.strip_prefix("mode: ").unwrap().to_owned()
    };
    let decision = || {
        let out = tool_with_dir(home.path(), "samewords", &dir)
            .env("TELEMETRY_DEBUG", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stderr(&out);
        let line = text
            .lines()
            .find(|l| l.contains("telemetry: mode "))
            .unwrap();
        // `samewords[pid] telemetry: mode local (WHY), directory /…`
        let start = line.find("telemetry: mode ").unwrap() + "telemetry: mode ".len();
        let end = line.rfind(", directory ").unwrap();
        line[start..end].to_owned()
    };
    let first = decision();
    assert_eq!(first, "local (no mode file; local is the default)");
    assert_eq!(first, env_mode_line());
    std::fs::write(dir.join("mode"), "off\n").unwrap();
    let off = decision();
    assert_eq!(off, "off (the mode file says off)");
    assert_eq!(off, env_mode_line());
}

/// Once `debug/` exists (TELEMETRY_DEBUG=1 creates it for the child's log), `env` says
/// that it keeps a log on every run, and `log --off` removes it, so logging ends.
#[test]
fn debug_stays_on_until_log_off() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let env = stdout(&run_in(dir, &["env"]));
    assert!(env.contains("/debug off (TELEMETRY_DEBUG=1"), "{env}");

    std::fs::create_dir(dir.join("debug")).unwrap();
    std::fs::write(dir.join("debug/sidecar.log"), "a line\n").unwrap();
    let env = stdout(&run_in(dir, &["env"]));
    assert!(
        env.contains("with or without TELEMETRY_DEBUG; to stop: telemetry --dir "),
        "{env}"
    );
    assert!(env.contains(" log --off\n"), "{env}");

    let out = run_in(dir, &["log", "--off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Debug logging is off for "),
        "{}",
        stdout(&out)
    );
    assert!(!dir.join("debug").exists());
    let env = stdout(&run_in(dir, &["env"]));
    assert!(env.contains("/debug off ("), "{env}");
    let again = run_in(dir, &["log", "--off"]);
    assert!(again.status.success());
    assert!(stdout(&again).contains("already off"), "{}", stdout(&again));
}

/// `log --off` never removes through a link planted as `debug`, nor the files links
/// inside `debug/` point to.
#[cfg(unix)]
#[test]
fn log_off_never_follows_links() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("precious"), "x").unwrap();
    let dir = tmp.path().join("t");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("debug")).unwrap();
    let out = run_in(&dir, &["log", "--off"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("never follows"), "{}", stderr(&out));
    assert!(victim.join("precious").exists());

    std::fs::remove_file(dir.join("debug")).unwrap();
    std::fs::create_dir(dir.join("debug")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("debug/inner")).unwrap();
    std::os::unix::fs::symlink(victim.join("precious"), dir.join("debug/file")).unwrap();
    let out = run_in(&dir, &["log", "--off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.join("debug").exists());
    assert!(victim.join("precious").exists());
}
