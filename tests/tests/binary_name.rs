//! A tool integrated as a maintainer would: `fdl` (`tools/fdl.rs`), a small `fd` whose
//! binary is not named after its package (`fdl` of `telemetry-tests`, as `fd` of
//! `fd-find`), with `start` first in `main`, crash reporting on and the default
//! telemetry directory. Run in a sandboxed home, its data must be found under the name
//! its users type: the directory `<config>/telemetry/fdl/`, and `telemetry --tool fdl`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::Duration;

use telemetry::{Config, Program};
use telemetry_cli::{Ambient, Options};
use telemetry_tests::{EVENT_TIMEOUT, eventually, output_within};

const FDL: &str = env!("CARGO_BIN_EXE_fdl");
const LIMIT: Duration = Duration::from_secs(20);

/// A home directory of its own, with a small tree to search.
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        for dir in ["home", "config", "tree/src", "tree/.hidden"] {
            std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        }
        for file in ["src/main.rs", "src/lib.rs", "README.md", ".hidden/x.rs"] {
            std::fs::write(tmp.path().join("tree").join(file), "").unwrap();
        }
        Sandbox { tmp }
    }

    fn tree(&self) -> PathBuf {
        self.tmp.path().join("tree")
    }

    /// The user's configuration directory, as the library finds it from the variables
    /// [`fdl`](Sandbox::fdl) sets.
    fn config_dir(&self) -> PathBuf {
        if cfg!(target_os = "macos") {
            self.tmp.path().join("home/Library/Application Support")
        } else {
            self.tmp.path().join("config")
        }
    }

    /// The telemetry root, one directory per tool.
    fn root(&self) -> PathBuf {
        self.config_dir().join("telemetry")
    }

    /// `fdl ARGS`, its home and configuration directories in the sandbox.
    fn fdl(&self, args: &[&str]) -> Command {
        self.command(Path::new(FDL), args)
    }

    /// `exe ARGS`, its home and configuration directories in the sandbox.
    fn command(&self, exe: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env("HOME", self.tmp.path().join("home"))
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env("APPDATA", self.tmp.path().join("config"))
            .env("RUST_BACKTRACE", "0")
            .env_remove("DO_NOT_TRACK")
            .env_remove("TELEMETRY_DEBUG");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        output_within(self.fdl(args), LIMIT)
    }

    /// The standalone `telemetry ARGS` command (as its binary runs it) in this sandbox:
    /// exit code, stdout and stderr.
    fn telemetry(&self, args: &[&str]) -> (ExitCode, String, String) {
        let config = Config::new(Program::new("telemetry", "0.1.0"));
        let options = Options::new().machine_wide(true);
        let ambient = Ambient::with_config_dir(self.config_dir());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let argv = std::iter::once("telemetry").chain(args.iter().copied());
        let code =
            telemetry_cli::run_with_writers(argv, &config, &options, &ambient, &mut out, &mut err);
        let text = |bytes| String::from_utf8(bytes).unwrap();
        (code, text(out), text(err))
    }

    /// The counts `telemetry --tool fdl dump` shows, with the program named in the
    /// counter file.
    fn dumped(&self) -> (String, BTreeMap<String, u64>) {
        let (code, out, err) = self.telemetry(&["--tool", "fdl", "dump"]);
        assert_eq!(code, ExitCode::SUCCESS, "{err}");
        let file: serde_json::Value = serde_json::from_str(&out).unwrap();
        let program = file["Meta"]["Program"].as_str().unwrap().to_owned();
        let counts = file["Count"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, n)| (name.clone(), n.as_u64().unwrap()))
            .collect();
        (program, counts)
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A panic message names the thread's id, which differs from run to run.
fn without_digits(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(|c: char| c.is_ascii_digit(), "#")
}

#[test]
fn counts_go_under_the_binarys_name_where_telemetry_tool_finds_them() {
    let sandbox = Sandbox::new();
    let tree = sandbox.tree();
    let tree = tree.to_str().unwrap();

    let out = sandbox.run(&["-e", "rs", "", tree]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).lines().count(), 2, "{out:?}");
    let out = sandbox.run(&["-H", "--type", "f", "x", tree]);
    assert_eq!(stdout(&out).lines().count(), 1, "{out:?}");
    let out = sandbox.run(&["--max-depth", "1", "nothing-matches", tree]);
    assert_eq!(stdout(&out), "");
    let missing = sandbox.tmp.path().join("missing");
    let out = sandbox.run(&["a", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // One directory, named after the binary, not the package.
    assert_eq!(
        telemetry_test_support::entry_names(&sandbox.root()),
        ["fdl"]
    );
    let (program, counts) = sandbox.dumped();
    assert_eq!(program, "fdl");
    let want: BTreeMap<String, u64> = [
        ("fdl/runs", 4),
        ("fdl/option:extension", 1),
        ("fdl/option:hidden", 1),
        ("fdl/option:type", 1),
        ("fdl/option:max-depth", 1),
        ("fdl/results:1-9", 2),
        ("fdl/results:0", 1),
        ("fdl/error:no-such-path", 1),
    ]
    .into_iter()
    .map(|(name, n)| (name.to_owned(), n))
    .collect();
    assert_eq!(counts, want);

    // Nothing under the package's name; `telemetry env` lists the tool by its binary.
    let (code, _, err) = sandbox.telemetry(&["--tool", "telemetry-tests", "dump"]);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(err.contains("no telemetry directory"), "{err}");
    let (code, env, _) = sandbox.telemetry(&["env"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(env.contains("fdl"), "{env}");
    assert!(!env.contains("telemetry-tests"), "{env}");
}

/// The tool's crash is counted under its name, and what the user sees of it is what
/// they see without telemetry.
#[test]
fn a_crash_is_counted_under_the_binarys_name() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["--panic-for-tests"]);
    assert_eq!(out.status.code(), Some(101));
    // The next run's telemetry child counts the crash the journal holds.
    assert!(sandbox.run(&["README"]).status.success());
    eventually(EVENT_TIMEOUT, "the crash counter", || {
        sandbox
            .dumped()
            .1
            .keys()
            .any(|k| k.starts_with("crash/panic\nfdl::boom+0x"))
    });
    assert_eq!(
        telemetry_test_support::entry_names(&sandbox.root()),
        ["fdl"]
    );

    let quiet = Sandbox::new();
    let mut cmd = quiet.fdl(&["--panic-for-tests"]);
    cmd.env("DO_NOT_TRACK", "1");
    let without = output_within(cmd, LIMIT);
    assert_eq!(without.status.code(), out.status.code());
    assert_eq!(without.stdout, out.stdout);
    assert_eq!(without_digits(&without.stderr), without_digits(&out.stderr));
    assert!(!quiet.root().exists(), "DO_NOT_TRACK=1 wrote telemetry");
}

/// A release profile with `strip = true` leaves no symbol table to name frames with:
/// the crash is counted raw, each frame the executable's build ID and a link-time
/// address for the collector to name from uploaded symbols, and nothing says how or
/// where it happened. (Linux x86_64: the host's `strip` reads this executable.)
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn a_stripped_build_counts_its_crash_raw() {
    use telemetry::counter::stack_name::is_raw_frame;
    let sandbox = Sandbox::new();
    let stripped = sandbox.tmp.path().join("fdl");
    telemetry_test_support::stripped_copy(std::path::Path::new(FDL), &stripped);
    let out = output_within(sandbox.command(&stripped, &["--panic-for-tests"]), LIMIT);
    assert_eq!(out.status.code(), Some(101));
    let next = output_within(sandbox.command(&stripped, &["README"]), LIMIT);
    assert!(next.status.success(), "{next:?}");
    let crash = |counts: &BTreeMap<String, u64>| {
        counts
            .iter()
            .find(|(k, _)| k.starts_with("crash/"))
            .map(|(k, v)| (k.clone(), *v))
    };
    eventually(EVENT_TIMEOUT, "the crash counter", || {
        crash(&sandbox.dumped().1).is_some()
    });
    let (program, counts) = sandbox.dumped();
    assert_eq!(program, "fdl");
    let (name, count) = crash(&counts).unwrap();
    assert_eq!(count, 1);
    assert_eq!(counts.keys().filter(|k| k.starts_with("crash/")).count(), 1);
    let mut lines = name.lines();
    assert_eq!(lines.next(), Some("crash/panic"));
    let frames: Vec<&str> = lines.collect();
    let ids: std::collections::BTreeSet<&str> = frames
        .iter()
        .filter_map(|f| is_raw_frame(f))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 1, "one build ID in {name}");
    assert!(
        frames
            .iter()
            .all(|f| *f == "?+0x0" || is_raw_frame(f).is_some()),
        "{name}"
    );
}
