//! The telemetry directory and the names of everything in it.
//!
//! ```text
//! <root>/
//!   mode                 on YYYY-MM-DD | local | off
//!   local/               counter files, weekends, upload.token, reports not yet sent
//!   upload/              copies of reports that were sent, per-report locks
//!   debug/               logs, only if the user created this directory
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::mode::{Mode, ModeError};

/// A telemetry directory. Creating a `Dir` touches nothing on disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dir {
    root: PathBuf,
}

impl Dir {
    /// A telemetry directory rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Dir {
        Dir { root: root.into() }
    }

    /// The default directory for `program`: `<user config dir>/<program>/telemetry`,
    /// where the user config dir is `$XDG_CONFIG_HOME` or `~/.config` on Linux and
    /// other Unixes, `~/Library/Application Support` on macOS and `%AppData%` on
    /// Windows. `None` when there is no home directory, which callers treat as off.
    pub fn default_for(program: &str) -> Option<Dir> {
        let config = user_config_dir()?;
        Some(Dir::new(config.join(program).join("telemetry")))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `local/`: counter files, the `weekends` file, the upload token and reports.
    pub fn local(&self) -> PathBuf {
        self.root.join("local")
    }

    /// `upload/`: copies of uploaded reports and per-report locks.
    pub fn upload(&self) -> PathBuf {
        self.root.join("upload")
    }

    /// `debug/`: logs are written here only if the user created it as a directory.
    pub fn debug(&self) -> PathBuf {
        self.root.join("debug")
    }

    /// `debug/` if it exists and is a directory (a plain file named `debug` is not).
    pub fn debug_if_enabled(&self) -> Option<PathBuf> {
        let debug = self.debug();
        debug.is_dir().then_some(debug)
    }

    /// The `mode` file.
    pub fn mode_file(&self) -> PathBuf {
        self.root.join("mode")
    }

    /// The effective mode for this process: `Off` under `DO_NOT_TRACK`, otherwise the
    /// mode file, where anything missing, unreadable or malformed means `Local`.
    pub fn mode(&self) -> Mode {
        if crate::mode::do_not_track() {
            return Mode::Off;
        }
        self.read_mode().unwrap_or(Mode::Local)
    }

    /// What the mode file says, ignoring `DO_NOT_TRACK`. A missing file is `Local`;
    /// an unreadable or malformed one is an error (for `telemetry env` to explain).
    pub fn read_mode(&self) -> Result<Mode, ModeError> {
        match fs::read(self.mode_file()) {
            Ok(bytes) => Mode::parse_file(&bytes),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Mode::Local),
            Err(err) => Err(ModeError::Unreadable(err)),
        }
    }

    /// Writes the mode file atomically, creating the directory if needed.
    pub fn set_mode(&self, mode: Mode) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        write_atomic(&self.mode_file(), format!("{mode}\n").as_bytes())
    }
}

/// Replaces `path` with `contents` so that readers see the old file or the new one,
/// never a partial one. The last of several writers wins.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let result = write_new(&tmp, contents).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `contents` only if it does not exist yet. Unlike writing with
/// `create_new`, no reader ever sees the file empty (Go's `weekends` file could be
/// read empty by a concurrent first run: golang/go#68390). Returns `false` if another
/// writer won the race. (Reports are created this way too, so that concurrent
/// uploaders neither tear nor duplicate one: golang/go#65970.)
pub fn create_complete(path: &Path, contents: &[u8]) -> io::Result<bool> {
    let tmp = temp_sibling(path);
    if let Err(err) = write_new(&tmp, contents) {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    // A hard link publishes a complete file and fails if the name is taken.
    let linked = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // File systems without hard links: fall back to a rename, which is still
        // atomic but lets the last of two racing writers win.
        Err(_) if !path.exists() => fs::rename(&tmp, path).map(|()| true),
        Err(err) => Err(err),
    };
    let _ = fs::remove_file(&tmp);
    linked
}

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp-{}-{:x}",
        std::process::id(),
        crate::random_u64()
    ));
    path.with_file_name(name)
}

fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn user_config_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if cfg!(windows) {
        return non_empty("APPDATA").map(PathBuf::from);
    }
    let home = non_empty("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return home.map(|h| h.join("Library").join("Application Support"));
    }
    match non_empty("XDG_CONFIG_HOME").map(PathBuf::from) {
        // The XDG spec says relative paths are invalid and must be ignored.
        Some(xdg) if xdg.is_absolute() => Some(xdg),
        _ => home.map(|h| h.join(".config")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let dir = Dir::new("/t");
        assert_eq!(dir.local(), Path::new("/t/local"));
        assert_eq!(dir.upload(), Path::new("/t/upload"));
        assert_eq!(dir.debug(), Path::new("/t/debug"));
        assert_eq!(dir.mode_file(), Path::new("/t/mode"));
    }

    #[test]
    fn debug_only_when_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        assert_eq!(dir.debug_if_enabled(), None);
        fs::write(dir.debug(), "not a dir").unwrap();
        assert_eq!(dir.debug_if_enabled(), None);
        fs::remove_file(dir.debug()).unwrap();
        fs::create_dir(dir.debug()).unwrap();
        assert_eq!(dir.debug_if_enabled(), Some(dir.debug()));
    }

    #[test]
    fn create_complete_keeps_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("weekends");
        assert!(create_complete(&path, b"3\n").unwrap());
        assert!(!create_complete(&path, b"5\n").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"3\n");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_atomic_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mode");
        write_atomic(&path, b"off\n").unwrap();
        write_atomic(&path, b"local\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"local\n");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn unwritable_root_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        // A root below a plain file can never be created.
        let dir = Dir::new(file.join("telemetry"));
        assert!(dir.set_mode(Mode::Off).is_err());
        assert!(matches!(dir.read_mode(), Err(ModeError::Unreadable(_))));
        if !crate::do_not_track() {
            assert_eq!(dir.mode(), Mode::Local);
        }
    }
}
