//! The small files of a telemetry directory: the mode file's grammar (`Mode::parse`)
//! and the `weekends` file (read from a real directory, repaired as Go reads garbage).
//! First byte: which file; the rest: its contents.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use telemetry_internal::Mode;

static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("telemetry-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
});

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
    }
});
