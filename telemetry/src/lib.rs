//! Honest, opt-in, privacy-preserving telemetry for Rust command-line tools and servers.
//! (Facade: in progress.)
#![forbid(unsafe_code)]

mod config;
#[cfg(feature = "cli")]
pub mod cli;

pub use config::Config;
pub use telemetry_counter as counter;
pub use telemetry_counter::program;
pub use telemetry_internal::{Dir, Mode, Program};
