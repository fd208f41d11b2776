//! What the workspace's tests share: one rule for a test that needs a system tool
//! (Chromium, strace, moto's S3 server, Python's duckdb, a tmpfs mount, `script`), the
//! one headless Chromium runner, the one way to wait for an event ([`eventually`],
//! [`wait_until`]), the one way for a test binary to re-run a test in a child
//! process ([`child`]), and the collector run as a child process ([`Served`]).
//!
//! # The rule for a missing tool
//! A developer runs `cargo xtask test` on a fresh machine with nothing installed. A
//! test that needs a tool that is not there says so in one line, naming the command
//! that installs it, and is counted as skipped; it does not fail, and it does not pass
//! silently either:
//!
//! ```text
//! SKIPPED page_loads_cleanly_and_shows_the_values: needs chromium (install: .ci/install-chromium)
//! ```
//!
//! The line goes straight to the test's stderr (past libtest's capture, so plain
//! `cargo test` shows it) and, when `TELEMETRY_SKIP_LOG` names a file, is appended
//! there: `cargo xtask test` sets it and lists every skipped test at the end.
//!
//! CI must run everything, so there a missing tool fails the test: when `CI` is set
//! (to anything but empty, `0` or `false`), when `TELEMETRY_REQUIRE_TOOLS=1`, or when
//! the tool's own variable is `1` (`TELEMETRY_REQUIRE_CHROMIUM`,
//! `TELEMETRY_REQUIRE_STRACE`, `TELEMETRY_REQUIRE_MOTO`, `TELEMETRY_REQUIRE_DUCKDB`,
//! `TELEMETRY_REQUIRE_TMPFS`, `TELEMETRY_REQUIRE_SCRIPT`).
//!
//! ```no_run
//! use telemetry_test_support::{Chromium, Tool};
//!
//! let Some(chromium) = Chromium::find() else {
//!     return; // skipped, and said so
//! };
//! # let _ = chromium;
//! let Some(moto) = Tool::MOTO.find(&["moto_server"]) else {
//!     return;
//! };
//! # let _ = moto;
//! // A tool found some other way: say whether it is usable.
//! let usable = std::process::Command::new("strace").arg("-V").output().is_ok();
//! if !Tool::STRACE.available(usable) {
//!     return;
//! }
//! ```
#![forbid(unsafe_code)]

pub mod child;
mod nested_cargo;
mod served;
mod wait;

pub use nested_cargo::without_package_vars;
pub use served::{Memory, Served, serve_command};
pub use wait::{eventually, wait_until};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// A system tool some tests need, with the command that installs it.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// What the tool is, as a person would name it.
    pub name: &'static str,
    /// The command that installs it (run from the workspace root).
    pub install: &'static str,
    /// The variable that, set to `1`, makes its absence a failure.
    pub require_var: &'static str,
}

impl Tool {
    /// Debian's `chromium`, for the pages of `telemetry view` and the dashboard.
    pub const CHROMIUM: Tool = Tool {
        name: "chromium",
        install: ".ci/install-chromium",
        require_var: "TELEMETRY_REQUIRE_CHROMIUM",
    };
    /// `strace`, to kill or fail a process at an exact system call.
    pub const STRACE: Tool = Tool {
        name: "strace",
        install: ".ci/install-tools",
        require_var: "TELEMETRY_REQUIRE_STRACE",
    };
    /// moto's S3-compatible server, `moto_server`.
    pub const MOTO: Tool = Tool {
        name: "moto_server",
        install: ".ci/install-moto",
        require_var: "TELEMETRY_REQUIRE_MOTO",
    };
    /// Python's `duckdb` package, to query the collector's Parquet files with SQL.
    pub const DUCKDB: Tool = Tool {
        name: "python3 with the duckdb package",
        install: ".ci/install-duckdb",
        require_var: "TELEMETRY_REQUIRE_DUCKDB",
    };
    /// `mount -t tmpfs`, for a real full disk: needs `mount` and root.
    pub const TMPFS: Tool = Tool {
        name: "mount -t tmpfs (as root)",
        install: ".ci/install-tools, and run the tests as root",
        require_var: "TELEMETRY_REQUIRE_TMPFS",
    };
    /// OpenSSL's headers and `pkg-config`, to build the `native-tls` feature on Linux.
    pub const OPENSSL: Tool = Tool {
        name: "OpenSSL's headers (libssl-dev) and pkg-config",
        install: ".ci/install-tools",
        require_var: "TELEMETRY_REQUIRE_OPENSSL",
    };
    /// `script` (util-linux), to give a command a terminal.
    pub const SCRIPT: Tool = Tool {
        name: "script",
        install: ".ci/install-tools",
        require_var: "TELEMETRY_REQUIRE_SCRIPT",
    };

    /// Whether the calling test may go on: `true` if `usable`. Otherwise the test is
    /// skipped (see the crate docs): one line says so, and `false` tells the caller to
    /// return; unless the tool is required here, in which case this panics with the
    /// same line.
    pub fn available(&self, usable: bool) -> bool {
        if usable {
            return true;
        }
        let test = std::thread::current()
            .name()
            .filter(|name| *name != "main")
            .unwrap_or("a test")
            .to_owned();
        if let Err(required) = self.skip(&test) {
            panic!("{required}");
        }
        false
    }

    /// Skips `what` (a test, or a step of `cargo xtask test`) for want of this tool:
    /// writes the one `SKIPPED` line to stderr and to the skip log. `Err` with that
    /// line, and nothing written, where the tool is required (CI): the caller fails.
    pub fn skip(&self, what: &str) -> Result<(), String> {
        let need = format!("{what}: needs {} (install: {})", self.name, self.install);
        if let Some(why) = self.required_by(|name| std::env::var(name).ok()) {
            return Err(format!("{need}, which is required here ({why})"));
        }
        let line = format!("SKIPPED {need}");
        // Straight to the file descriptor: libtest captures only print!/eprint!.
        let _ = writeln!(std::io::stderr(), "{line}");
        if let Some(log) = std::env::var_os(SKIP_LOG_VAR) {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log);
            if let Ok(mut file) = file {
                // One write per line, so lines of parallel tests do not interleave.
                let _ = file.write_all(format!("{line}\n").as_bytes());
            }
        }
        Ok(())
    }

    /// The first of `names` on `PATH`; `None` when the calling test is skipped (see
    /// [`available`](Tool::available)).
    pub fn find(&self, names: &[&str]) -> Option<PathBuf> {
        let found = find_on_path(names);
        if self.available(found.is_some()) {
            found
        } else {
            None
        }
    }

    /// Why this tool may not be skipped, if it may not: the variable that says so.
    fn required_by(&self, var: impl Fn(&str) -> Option<String>) -> Option<String> {
        if var("CI").is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false")) {
            return Some("CI is set".to_owned());
        }
        for name in [self.require_var, "TELEMETRY_REQUIRE_TOOLS"] {
            if var(name).is_some_and(|v| v == "1") {
                return Some(format!("{name}=1"));
            }
        }
        None
    }
}

/// The variable naming the file where skipped tests are listed, one line each.
pub const SKIP_LOG_VAR: &str = "TELEMETRY_SKIP_LOG";

/// The first of `names` found as an executable file on `PATH`.
pub fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// Copies the executable `from` to `to` and strips every symbol table from the copy
/// with binutils' `strip --strip-all` (the same build ID, nothing to name frames
/// with). Panics if `strip` fails.
pub fn stripped_copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    let status = Command::new("strip")
        .arg("--strip-all")
        .arg(to)
        .status()
        .expect("run strip (binutils)");
    assert!(
        status.success(),
        "strip --strip-all {}: {status}",
        to.display()
    );
}

/// The names of the entries of `dir`, sorted: what a test compares before and after.
pub fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Headless Chromium, the one runner of the workspace's browser tests.
#[derive(Clone, Debug)]
pub struct Chromium {
    exe: PathBuf,
}

/// How long one Chromium run may take before the test fails.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(120);

impl Chromium {
    /// `chromium` (or `chromium-browser`) on `PATH`; `None` when the calling test is
    /// skipped (see [`Tool::available`]).
    pub fn find() -> Option<Chromium> {
        let exe = Tool::CHROMIUM.find(&["chromium", "chromium-browser"])?;
        Some(Chromium { exe })
    }

    fn command(&self, profile: &Path) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::null());
        command
    }

    /// Loads `url` (`http://…` or `file://…`) with a fresh profile in `profile`;
    /// returns the DOM it built and Chromium's log, in which console messages, script
    /// errors and CSP violations appear. Panics if Chromium fails or takes longer
    /// than two minutes.
    pub fn dump_dom(&self, url: &str, profile: &Path) -> (String, String) {
        let child = self
            .command(profile)
            .args(["--enable-logging=stderr", "--v=0", "--dump-dom", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let out = wait_bounded(child);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Loads `url` as [`dump_dom`](Chromium::dump_dom) does and returns the DOM,
    /// failing the test if the page logged anything to the console, threw a script
    /// error or broke its Content Security Policy: the page loaded cleanly.
    pub fn load_cleanly(&self, url: &str, profile: &Path) -> String {
        let (dom, log) = self.dump_dom(url, profile);
        let console: Vec<&str> = log.lines().filter(|l| is_page_complaint(l)).collect();
        assert!(
            console.is_empty(),
            "console messages:\n{}",
            console.join("\n")
        );
        dom
    }

    /// Renders `url` to the PNG file `png`, 1100×1500, for a person to look at.
    pub fn screenshot(&self, url: &str, profile: &Path, png: &Path) {
        let child = self
            .command(profile)
            .args(["--hide-scrollbars", "--window-size=1100,1500"])
            .arg(format!("--screenshot={}", png.display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        wait_bounded(child);
    }
}

/// Whether a line of Chromium's log is the page's complaint: a console message, an
/// uncaught script error, a CSP violation.
fn is_page_complaint(line: &str) -> bool {
    line.contains(":CONSOLE")
        || line.contains("Uncaught")
        || line.contains("Content Security Policy")
}

/// Waits for a Chromium run, reading its output as it comes (a full pipe never blocks
/// it); kills it and panics past the deadline, panics if it failed.
fn wait_bounded(mut child: std::process::Child) -> std::process::Output {
    fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut status = None;
    let exited = wait_until(CHROMIUM_DEADLINE, || {
        status = child.try_wait().expect("wait for chromium");
        status.is_some()
    });
    let Some(status) = status.filter(|_| exited) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "chromium did not finish within {} s",
            CHROMIUM_DEADLINE.as_secs()
        );
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    assert!(
        status.success(),
        "chromium failed ({status}): {}",
        String::from_utf8_lossy(&stderr)
    );
    std::process::Output {
        status,
        stdout,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(set: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            set.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn ci_or_the_tools_variable_makes_a_tool_required() {
        let chromium = Tool::CHROMIUM;
        assert_eq!(chromium.required_by(vars(&[])), None);
        assert_eq!(chromium.required_by(vars(&[("CI", "false")])), None);
        assert_eq!(chromium.required_by(vars(&[("CI", "0")])), None);
        assert_eq!(chromium.required_by(vars(&[("CI", "")])), None);
        assert!(chromium.required_by(vars(&[("CI", "true")])).is_some());
        assert!(chromium.required_by(vars(&[("CI", "1")])).is_some());
        assert!(
            chromium
                .required_by(vars(&[("TELEMETRY_REQUIRE_CHROMIUM", "1")]))
                .is_some()
        );
        assert!(
            chromium
                .required_by(vars(&[("TELEMETRY_REQUIRE_TOOLS", "1")]))
                .is_some()
        );
        // Another tool's variable does not require this one.
        assert_eq!(
            chromium.required_by(vars(&[("TELEMETRY_REQUIRE_STRACE", "1")])),
            None
        );
    }

    #[test]
    fn path_lookup_finds_executables_only() {
        let tmp = std::env::temp_dir().join(format!("test-support-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let plain = tmp.join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(!is_executable(&tmp), "a directory");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert!(!is_executable(&plain));
            std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert!(is_executable(&plain));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
