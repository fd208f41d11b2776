//! Who is counting: the program, its version, and the platform it was built for.

use std::borrow::Cow;
use std::fmt;

/// The operating system, as `std::env::consts::OS` spells it (`linux`, `macos`, …).
pub const OS: &str = std::env::consts::OS;
/// The architecture, as `std::env::consts::ARCH` spells it (`x86_64`, `aarch64`, …).
pub const ARCH: &str = std::env::consts::ARCH;

/// A program's name and version, usually captured with `program!()`: the name of the
/// binary being compiled (`CARGO_BIN_NAME`; the package's `CARGO_PKG_NAME` where Cargo
/// compiles no binary) and the package's `CARGO_PKG_VERSION`.
///
/// The name is the telemetry directory's (`<root>/<name>`) and the one reports carry,
/// which an upload config's `Programs[].Name` must match. [`Program::new`] sets both
/// by hand.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Program {
    name: Cow<'static, str>,
    version: Cow<'static, str>,
}

impl Program {
    /// A program from static strings; usable in `const` and `static` items. Use it
    /// instead of `program!()` to report under another name than the binary's.
    pub const fn new(name: &'static str, version: &'static str) -> Program {
        Program {
            name: Cow::Borrowed(name),
            version: Cow::Borrowed(version),
        }
    }

    /// A program whose name or version is only known at run time.
    pub fn owned(name: impl Into<String>, version: impl Into<String>) -> Program {
        Program {
            name: Cow::Owned(name.into()),
            version: Cow::Owned(version.into()),
        }
    }

    /// The program's name, e.g. `mytool`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program's version, e.g. `1.2.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether name and version are safe inside a file name and a report: non-empty,
    /// at most 128 bytes, and made of ASCII letters, digits and `.` `_` `+` `-` only.
    /// The ASCII names and versions Cargo accepts (up to 128 bytes) pass, so
    /// `program!()` does unless the name is not ASCII (Cargo accepts `größe`).
    pub fn is_valid(&self) -> bool {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
        };
        ok(&self.name) && ok(&self.version)
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// The toolchain the program was built with: the rustc version number (`1.95.0`), or
/// `nightly`, `beta` or `dev` for such builds, so that files do not multiply daily.
pub fn toolchain() -> &'static str {
    static TOOLCHAIN: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    TOOLCHAIN.get_or_init(|| toolchain_from_rustc_version(env!("TELEMETRY_RUSTC_VERSION")))
}

/// Maps `rustc --version` output to a toolchain name (see [`toolchain`]).
pub(crate) fn toolchain_from_rustc_version(version: &str) -> &'static str {
    let number = version.split_whitespace().nth(1).unwrap_or("");
    let (release, pre) = number.split_once('-').unwrap_or((number, ""));
    let well_formed = !release.is_empty()
        && release.split('.').count() == 3
        && release
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return "dev";
    }
    match pre {
        "" => Box::leak(release.to_owned().into_boxed_str()),
        p if p.starts_with("nightly") => "nightly",
        p if p.starts_with("beta") => "beta",
        _ => "dev",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchains() {
        let t = toolchain_from_rustc_version;
        assert_eq!(t("rustc 1.95.0 (59807616e 2026-04-14)"), "1.95.0");
        assert_eq!(t("rustc 1.97.0-nightly (abc 2026-05-01)"), "nightly");
        assert_eq!(t("rustc 1.96.0-beta.3 (abc 2026-05-01)"), "beta");
        assert_eq!(t("rustc 1.96.0-dev"), "dev");
        assert_eq!(t(""), "dev");
        assert_eq!(t("rustc banana"), "dev");
        let built = toolchain();
        assert!(
            ["nightly", "beta", "dev"].contains(&built)
                || built.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{built}"
        );
    }

    #[test]
    fn validity() {
        assert!(Program::new("mytool", "1.2.3-alpha.1+build").is_valid());
        assert!(!Program::new("", "1").is_valid());
        assert!(!Program::new("../etc", "1").is_valid());
        assert!(!Program::new("a/b", "1").is_valid());
        assert!(!Program::new("a", "1 2").is_valid());
        assert!(!Program::owned("a", "x".repeat(200)).is_valid());
        assert_eq!(Program::new("t", "0.1.0").to_string(), "t@0.1.0");
    }
}
