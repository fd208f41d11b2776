//! Telemetry in a library: the `plugin` example is a `cdylib` that the `plugin_host`
//! example loads at run time (`dlopen`, `LoadLibraryW`). The executable is the host's,
//! so `start` must never re-execute it and the facade's constructor must do nothing;
//! counting still works, crash reporting and uploads are off, and the log says why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use telemetry_tests::{example, output_within, todays_counts_of};

const LIMIT: Duration = Duration::from_secs(60);

/// The plugin library, next to the examples.
fn plugin() -> PathBuf {
    let host = example("plugin_host");
    host.with_file_name(format!(
        "{}plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

fn host(dir: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(example("plugin_host"));
    cmd.env_remove("DO_NOT_TRACK")
        .env("PLUGIN_PATH", plugin())
        .env("PLUGIN_TELEMETRY_DIR", dir)
        .env("PLUGIN_LOG", log);
    cmd
}

#[test]
fn a_plugin_counts_but_never_re_executes_its_host() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, log) = (tmp.path().join("t"), tmp.path().join("decisions.log"));
    let out = output_within(host(&dir, &log), LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout, "loaded\nstarted child: false\n", "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains(
            "no child started: telemetry is in a library loaded by another program, not in its executable"
        ),
        "{log}"
    );
    assert_eq!(
        todays_counts_of(&dir, "plugin").get("plugin/calls"),
        Some(&1),
        "{log}"
    );
    assert!(
        !dir.join("local").join("upload.token").exists(),
        "no upload was prepared"
    );
}

/// A copy of the host that looks in every way like a real telemetry child (as the
/// copy `start` used to re-execute did) loads the plugin: its constructor must not
/// take the host for its child (which would run the child's work and exit inside
/// `dlopen`).
#[test]
fn a_plugin_constructor_does_nothing_even_in_a_telemetry_child() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, log) = (tmp.path().join("t"), tmp.path().join("decisions.log"));
    let mut cmd = host(&dir, &log);
    // The child's argument (what Windows recognises a child by).
    cmd.arg("** telemetry **").env("PLUGIN_HOST_AS_CHILD", "1");
    let out = output_within(cmd, LIMIT);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "loaded\nstarted child: false\n",
        "{out:?}"
    );
}
