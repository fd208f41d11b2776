//! What a tool pays in crates for each way of depending on telemetry: the
//! facade with default features at most 55 crates and never clap, the facade with
//! only `crash` at most 15, the counter crate alone at most 9. Counted with
//! `cargo tree` (normal dependencies, this platform, the workspace's lock file), each
//! crate once, the root included.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The crates in the normal dependency tree of `package` built with `features`.
fn crates(package: &str, features: &[&str]) -> BTreeSet<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .args(["tree", "--offline", "--locked", "-p", package])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(features)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn facade_default_features_stay_within_55_crates_without_clap() {
    let found = crates("telemetry", &[]);
    assert!(found.contains("telemetry-upload"), "{found:?}");
    assert!(found.len() <= 55, "{} crates: {found:?}", found.len());
    for never in ["clap", "telemetry-cli", "backtrace"] {
        assert!(!found.contains(never), "{never} in {found:?}");
    }
}

#[test]
fn facade_with_only_crash_stays_within_15_crates() {
    let found = crates(
        "telemetry",
        &["--no-default-features", "--features", "crash"],
    );
    assert!(found.contains("telemetry-crashmonitor"), "{found:?}");
    assert!(found.len() <= 15, "{} crates: {found:?}", found.len());
    for never in ["telemetry-upload", "ureq", "serde_json", "fd-lock"] {
        assert!(!found.contains(never), "{never} in {found:?}");
    }
}

#[test]
fn counter_alone_stays_within_9_crates() {
    let found = crates("telemetry-counter", &[]);
    assert!(found.len() <= 9, "{} crates: {found:?}", found.len());
}
