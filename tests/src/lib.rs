//! Support for the end-to-end tests in `tests/tests/`: a loopback upload server
//! ([`LoopbackServer`], re-exported from `telemetry_upload::testing`) and the path of
//! the example programs they drive. Run them with `cargo xtask integration`.
//!
//! ```
//! let server = telemetry_tests::LoopbackServer::start();
//! server.set_config(r#"{"Programs": []}"#);
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! assert!(server.uploads().is_empty());
//! ```
#![forbid(unsafe_code)]

use std::path::PathBuf;

pub use telemetry_upload::testing::{LoopbackServer, Request};

/// The path of the example program `name`, built by `cargo test -p telemetry-tests`
/// (Cargo builds a package's examples along with its tests).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
