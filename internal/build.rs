//! Records the version of the rustc building this crate, which is the toolchain of the
//! whole program: counter files are keyed by it, as Go's are keyed by the Go version.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .unwrap_or_default();
    println!("cargo:rustc-env=TELEMETRY_RUSTC_VERSION={}", version.trim());
}
