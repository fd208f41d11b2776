//! The decision log: one plain line per decision `start` or the child makes, to the
//! writer a tool hands to [`Config::logger`](crate::Config::logger) (or stderr under
//! `TELEMETRY_DEBUG=1`). Without one nothing is formatted and nothing is written.
//!
//! Lines look like `mytool[4242] telemetry: mode local (no mode file; local is the
//! default), directory …`: the program name and pid, then one event. They never hold a panic message, a
//! counter value, or a counter name beyond what a report holds.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use telemetry_internal::{Ambient, Dir, EffectiveMode};

/// A writer shared by a `Config` and its clones.
pub(crate) type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

/// Where lines go, with the prefix they get. A clone writes to the same writer.
#[derive(Clone)]
pub(crate) struct Log {
    sink: Option<(SharedWriter, String)>,
}

impl Log {
    /// Logs nowhere.
    pub(crate) fn none() -> Log {
        Log { sink: None }
    }

    /// Logs to `writer`, each line prefixed with `name[pid] telemetry: `.
    pub(crate) fn to(writer: Box<dyn Write + Send>, name: &str) -> Log {
        Log::shared(Arc::new(Mutex::new(writer)), name)
    }

    /// Logs to a writer shared with others.
    pub(crate) fn shared(writer: SharedWriter, name: &str) -> Log {
        let prefix = format!("{name}[{}] telemetry: ", std::process::id());
        Log {
            sink: Some((writer, prefix)),
        }
    }

    /// Whether anything is logged.
    pub(crate) fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes one line. Failures to write are ignored: logging must never change what
    /// telemetry does, let alone what the program does.
    pub(crate) fn line(&self, args: fmt::Arguments<'_>) {
        if let Some((writer, prefix)) = &self.sink {
            let text = format!("{prefix}{args}\n");
            let mut writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writer.write_all(text.as_bytes());
            let _ = writer.flush();
        }
    }

    /// A writer for a library that logs whole lines of its own (the upload run): each
    /// line it writes gets this log's prefix and `what: `. `None` when not logging.
    #[cfg_attr(not(feature = "upload"), allow(dead_code))]
    pub(crate) fn writer(&self, what: &str) -> Option<Box<dyn Write + Send>> {
        let (writer, prefix) = self.sink.as_ref()?;
        Some(Box::new(Prefixed {
            writer: writer.clone(),
            prefix: format!("{prefix}{what}: "),
            pending: Vec::new(),
        }))
    }
}

/// Prefixes each complete line written through it; a trailing partial line is written
/// when it is dropped.
#[cfg_attr(not(feature = "upload"), allow(dead_code))]
struct Prefixed {
    writer: SharedWriter,
    prefix: String,
    pending: Vec<u8>,
}

#[cfg_attr(not(feature = "upload"), allow(dead_code))]
impl Prefixed {
    fn emit(&mut self, line: &[u8]) {
        let mut text = Vec::with_capacity(self.prefix.len() + line.len() + 1);
        text.extend_from_slice(self.prefix.as_bytes());
        text.extend_from_slice(line);
        text.push(b'\n');
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writer.write_all(&text);
        let _ = writer.flush();
    }
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(line.strip_suffix(b"\n").unwrap_or(&line));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Prefixed {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

/// Why the mode is in force, in the words `telemetry env` uses for the same state
/// ([`EffectiveMode::explain`]); worked out only when the line is written, since it
/// reads the mode file again.
pub(crate) struct Why<'a> {
    pub(crate) effective: EffectiveMode,
    pub(crate) dir: &'a Dir,
    pub(crate) ambient: &'a Ambient,
}

impl fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.effective.explain(self.dir, self.ambient))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose output the test can read.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_prefixed_and_nothing_is_written_without_a_sink() {
        let out = Shared::default();
        let log = Log::to(Box::new(out.clone()), "mytool");
        log.line(format_args!("mode {}", "local"));
        let mut upload = log.writer("upload").unwrap();
        upload.write_all(b"one\ntw").unwrap();
        upload.write_all(b"o\nthree").unwrap();
        drop(upload);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let pid = std::process::id();
        assert_eq!(
            text,
            format!(
                "mytool[{pid}] telemetry: mode local\n\
                 mytool[{pid}] telemetry: upload: one\n\
                 mytool[{pid}] telemetry: upload: two\n\
                 mytool[{pid}] telemetry: upload: three\n"
            )
        );
        let none = Log::none();
        assert!(!none.is_on());
        assert!(none.writer("upload").is_none());
        none.line(format_args!("dropped"));
    }
}
