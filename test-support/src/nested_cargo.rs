//! Cargo commands started from inside another Cargo run (a test, `cargo xtask`).

use std::process::Command;

/// Removes from `cmd` what Cargo sets for one package's run (`cargo run -p xtask`, a
/// test of some package): a nested build is not that package's, and a dependency's
/// build script that reads these (ring's reads `CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`,
/// `OUT_DIR`) would see them change and rebuild itself and everything above it, here
/// and again in the next ordinary build of the same target directory.
pub fn without_package_vars(cmd: &mut Command) {
    const PER_PACKAGE: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_") || PER_PACKAGE.contains(&&*name) {
            cmd.env_remove(&*name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_variables_are_removed_and_others_kept() {
        let mut cmd = Command::new("true");
        // The test harness runs under Cargo, which sets these for this package.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        without_package_vars(&mut cmd);
        let removed: Vec<String> = cmd
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        assert!(removed.iter().any(|n| n == "CARGO_PKG_NAME"), "{removed:?}");
        assert!(
            removed.iter().any(|n| n == "CARGO_MANIFEST_DIR"),
            "{removed:?}"
        );
        assert!(
            !removed.iter().any(|n| n == "PATH" || n == "CARGO"),
            "{removed:?}"
        );
    }
}
