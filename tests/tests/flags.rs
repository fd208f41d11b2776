//! `count_flags` and `count_subcommands` on real command lines: a derive tool and a
//! builder tool run as processes, their counter files read back. Only argument ids
//! given on the command line are counted, never a value, a default, an environment
//! variable, a group or an external subcommand's name.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use telemetry_tests::{example, files_under};

/// Runs the example `tool` with `args`, its telemetry directory given through the
/// environment, and returns every counter of its counter file with the file's bytes
/// (none of either when the run counted nothing, and so made no file).
fn run(tool: &str, dir: &Path, args: &[&str]) -> (BTreeMap<String, u64>, Vec<u8>) {
    let out = Command::new(example(tool))
        .args(args)
        .env("FLAGS_TOOL_DIR", dir)
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG")
        .output()
        .expect("run the example");
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = files_under(&dir.join("local"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".v1.count"))
        .collect();
    assert!(files.len() <= 1, "{files:?}");
    let Some(file) = files.first() else {
        return (BTreeMap::new(), Vec::new());
    };
    let bytes = std::fs::read(file).unwrap();
    let parsed = telemetry_counter::parse(&bytes).expect("a valid counter file");
    (parsed.count, bytes)
}

fn names(counts: &BTreeMap<String, u64>, prefix: &str) -> Vec<String> {
    counts
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, n)| format!("{name}={n}"))
        .collect()
}

#[test]
fn derive_tool_counts_given_ids_and_the_subcommand_never_values() {
    let tmp = tempfile::tempdir().unwrap();
    let (counts, bytes) = run(
        "flags_derive",
        tmp.path(),
        &[
            "--name",
            "hunter2",
            "-v",
            "build",
            "--release",
            "--target=SECRET-TARGET",
        ],
    );
    assert_eq!(
        names(&counts, "flags_derive/"),
        [
            "flags_derive/command:build=1",
            "flags_derive/flag:build=1",
            "flags_derive/flag:build/release=1",
            "flags_derive/flag:build/target=1",
            "flags_derive/flag:name=1",
            "flags_derive/flag:verbose=1",
        ],
        "{counts:?}"
    );
    for value in ["hunter2", "SECRET-TARGET"] {
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "{value} in the counter file"
        );
    }
}

#[test]
fn derive_tool_counts_a_nested_subcommand_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (counts, _) = run(
        "flags_derive",
        tmp.path(),
        &[
            "--jobs",
            "8",
            "remote",
            "add",
            "--force",
            "https://example.invalid/x",
        ],
    );
    assert_eq!(
        names(&counts, "flags_derive/"),
        [
            "flags_derive/command:remote=1",
            "flags_derive/command:remote/add=1",
            "flags_derive/flag:jobs=1",
            "flags_derive/flag:remote=1",
            "flags_derive/flag:remote/add=1",
            "flags_derive/flag:remote/add/force=1",
            "flags_derive/flag:remote/add/url=1",
        ],
        "{counts:?}"
    );
}

#[test]
fn derive_tool_with_nothing_given_counts_nothing_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    // `dir` comes from the environment and `jobs` from its default: neither counts.
    let (counts, _) = run("flags_derive", tmp.path(), &[]);
    assert_eq!(names(&counts, "flags_derive/"), Vec::<String>::new());
    // Nor does anything else: the run made no counter file.
    assert!(counts.is_empty(), "{counts:?}");
}

#[test]
fn builder_tool_counts_given_ids_not_groups_defaults_or_env() {
    let tmp = tempfile::tempdir().unwrap();
    let (counts, bytes) = run(
        "flags_builder",
        tmp.path(),
        &["--json", "search", "-n", "3", "my secret pattern"],
    );
    assert_eq!(
        names(&counts, "flags_builder/"),
        [
            "flags_builder/flag:json=1",
            "flags_builder/flag:search=1",
            "flags_builder/flag:search/limit=1",
            "flags_builder/flag:search/pattern=1",
        ],
        "{counts:?}"
    );
    let value = b"my secret pattern";
    assert!(!bytes.windows(value.len()).any(|w| w == value));
}

#[test]
fn builder_tool_never_counts_an_external_subcommands_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    // Given on the command line this time: `dir` is counted, its value is not.
    let (counts, bytes) = run(
        "flags_builder",
        tmp.path(),
        &["--dir", dir, "typed-by-someone", "--x"],
    );
    assert_eq!(
        names(&counts, "flags_builder/"),
        ["flags_builder/flag:dir=1"],
        "{counts:?}"
    );
    let typed = b"typed-by-someone";
    assert!(!bytes.windows(typed.len()).any(|w| w == typed));
}
