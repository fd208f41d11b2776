//! The small files of a telemetry directory: the mode file's grammar (`Mode::parse`)
//! and the `weekends` file (read from a real directory, repaired as Go reads garbage).
//! First byte: which file; the rest: its contents.
//!
//! The directory is on a memory file system where there is one (`/dev/shm`): the
//! reader's repairs `fsync`, which on a disk costs milliseconds per input. Each input
//! gets a fresh directory, removed when it is done, so a run leaves nothing behind;
//! directories of earlier runs that were killed mid-input are removed at start.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use telemetry_internal::Mode;

/// The scratch directories' name, followed by the process ID.
const PREFIX: &str = "telemetry-fuzz-";

static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    remove_dead(&base);
    remove_dead(&std::env::temp_dir());
    base.join(format!("{PREFIX}{}", std::process::id()))
});

/// Removes the scratch directories in `base` whose process is gone (Linux: no
/// `/proc/PID`; elsewhere nothing is removed).
fn remove_dead(base: &Path) {
    if !Path::new("/proc/self").is_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, contents)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(contents) {
            if let Ok(Mode::On { since }) = Mode::parse(text) {
                assert_eq!(
                    Mode::parse(&format!("on {since}")).ok(),
                    Some(Mode::On { since })
                );
            }
        }
    } else {
        let local = DIR.join("local");
        std::fs::create_dir_all(&local).unwrap();
        std::fs::write(local.join("weekends"), contents).unwrap();
        let day = telemetry_internal::weekend(&local).expect("weekends readable");
        // Whatever was there, the file now says the same day, canonically.
        assert_eq!(telemetry_internal::weekend(&local).unwrap(), day);
        std::fs::remove_dir_all(&*DIR).unwrap();
    }
});
