//! The process's surroundings that decide what telemetry may do, read once.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// What the environment says, captured at one boundary (`telemetry::start`, the
/// `telemetry` command) and passed down, so that no code deep inside reads the
/// environment and no test depends on the environment it happens to run in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ambient {
    /// `DO_NOT_TRACK` asks for telemetry to be off.
    pub do_not_track: bool,
    /// The user's configuration directory (`$XDG_CONFIG_HOME` or `~/.config` on Linux,
    /// `~/Library/Application Support` on macOS, `%AppData%` on Windows), if there is a
    /// home directory at all.
    pub config_dir: Option<PathBuf>,
}

impl Ambient {
    /// Reads `DO_NOT_TRACK` and the user's configuration directory from this process's
    /// environment. The only place that does.
    pub fn from_process() -> Ambient {
        let var = |name: &str| std::env::var_os(name);
        Ambient {
            do_not_track: do_not_track_value(var("DO_NOT_TRACK").as_deref()),
            config_dir: user_config_dir(var),
        }
    }

    /// Ambient inputs for tests: `DO_NOT_TRACK` unset, the given config directory.
    pub fn with_config_dir(config_dir: impl Into<PathBuf>) -> Ambient {
        Ambient {
            do_not_track: false,
            config_dir: Some(config_dir.into()),
        }
    }

    /// The same, with `DO_NOT_TRACK` set as given.
    #[must_use]
    pub fn do_not_track(mut self, on: bool) -> Ambient {
        self.do_not_track = on;
        self
    }

    /// The telemetry root, `<config dir>/telemetry`: one directory per tool below it, and
    /// the user-wide `mode` switch in it.
    pub fn root(&self) -> Option<crate::Root> {
        self.config_dir
            .as_deref()
            .map(|c| crate::Root::new(c.join("telemetry")))
    }
}

/// Whether a `DO_NOT_TRACK` value asks for telemetry to be off: set to anything but
/// empty, `0` or `false` (<https://consoledonottrack.com>).
pub(crate) fn do_not_track_value(value: Option<&OsStr>) -> bool {
    let Some(value) = value else { return false };
    let value = value.to_string_lossy();
    let value = value.trim();
    !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
}

fn user_config_dir(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let non_empty = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if cfg!(windows) {
        return non_empty("APPDATA").filter(|p| p.is_absolute());
    }
    let home = non_empty("HOME").filter(|p| p.is_absolute());
    if cfg!(target_os = "macos") {
        return home.map(|h| h.join("Library").join("Application Support"));
    }
    match non_empty("XDG_CONFIG_HOME") {
        // The XDG spec says relative paths are invalid and must be ignored.
        Some(xdg) if Path::new(&xdg).is_absolute() => Some(xdg),
        _ => home.map(|h| h.join(".config")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn do_not_track_values() {
        let dnt = |v: &str| do_not_track_value(Some(OsStr::new(v)));
        assert!(!do_not_track_value(None));
        for off in ["", "0", "false", "FALSE", " 0 "] {
            assert!(!dnt(off), "{off:?}");
        }
        for on in ["1", "true", "yes"] {
            assert!(dnt(on), "{on:?}");
        }
    }

    #[test]
    fn config_dir_from_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        if cfg!(all(unix, not(target_os = "macos"))) {
            assert_eq!(
                user_config_dir(env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")])),
                Some(PathBuf::from("/x"))
            );
            assert_eq!(
                user_config_dir(env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "rel")])),
                Some(PathBuf::from("/h/.config"))
            );
            assert_eq!(user_config_dir(env(&[("HOME", "rel")])), None);
            assert_eq!(user_config_dir(env(&[("HOME", "")])), None);
        }
        assert_eq!(user_config_dir(env(&[])), None);
        let root = Ambient::with_config_dir("/c").root().unwrap();
        assert_eq!(root.path(), Path::new("/c/telemetry"));
    }
}
