//! Where a run says what it did: the caller's writer and, if the user made a `debug/`
//! directory, a log file there. Never standard output or error.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use telemetry_internal::Day;

pub(crate) struct Log {
    writer: Option<Box<dyn Write + Send>>,
    file: Option<File>,
}

impl Log {
    pub(crate) fn new(writer: Option<Box<dyn Write + Send>>) -> Log {
        Log { writer, file: None }
    }

    /// Also writes to `debug/<program>-<date>-<pid>.log` if `debug` is a directory.
    /// A plain file named `debug`, or one that cannot be written, turns this off
    /// quietly: logging must never stop an upload.
    pub(crate) fn open_debug(&mut self, debug: Option<&Path>, date: Day) {
        let Some(debug) = debug else { return };
        let program = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .map(|s| sanitize(&s))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "telemetry".to_owned());
        let name = format!("{program}-{date}-{}.log", std::process::id());
        // Never through a link planted under the log's name.
        self.file = telemetry_internal::fs::open_append(&debug.join(name)).ok();
    }

    pub(crate) fn line(&mut self, args: std::fmt::Arguments<'_>) {
        let text = format!("{args}\n");
        if let Some(w) = &mut self.writer {
            let _ = w.write_all(text.as_bytes());
            let _ = w.flush();
        }
        if let Some(f) = &mut self.file {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

/// Keeps a log file name to characters that are safe everywhere.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
        .take(64)
        .collect()
}

/// `log!(log, "...", args)`: one line to every destination.
macro_rules! log {
    ($log:expr, $($arg:tt)*) => {
        $log.line(format_args!($($arg)*))
    };
}
pub(crate) use log;
