//! `telemetry dump`: counter files as JSON, the data Go's parser reads from them.
//!
//! The output is *data-equal* to Go's `counter.Parse` — the same `Meta` and `Count`
//! maps, strings escaped as Go's `encoding/json` escapes them (names that are not
//! UTF-8 included: each bad byte is `\ufffd`, and two names that differ only in bad
//! bytes are two entries, which then print with the same key, exactly as Go's map of
//! them prints) — in the layout of `shared/fixtures/go-v1/*.json`: one object for one
//! file, an array for several, one-space indentation, `Count` before `Meta`. It is not
//! byte-equal to `gotelemetry dump`, which prints each file as `-- FILE --` followed by
//! `json.MarshalIndent(f, "", "\t")` (tab indentation, and `Meta` before `Count`, the
//! order of the fields of Go's `counter.File`), and skips files it cannot parse.
//!
//! One byte-level difference from Go's encoder, for names no real program uses: DEL,
//! the C1 controls (U+0080–U+009F) and the bidirectional overrides, isolates and marks
//! (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) are written as `\uXXXX`
//! escapes, where Go writes them raw, so that `dump` never sends them to a terminal.
//! Any JSON reader decodes both to the same string; Go's fixtures hold none of them.

use std::path::PathBuf;
use std::process::ExitCode;

use telemetry_counter::CounterFile;

use super::json::Value;
use super::{CmdResult, Context, Failure};

pub(super) fn run(ctx: &mut Context<'_>, files: &[PathBuf]) -> CmdResult {
    let files = if files.is_empty() {
        counter_files_in_local(ctx)?
    } else {
        files.to_vec()
    };
    let mut parsed = Vec::with_capacity(files.len());
    let mut failed = false;
    for path in &files {
        match super::data::parse_counter_file(path) {
            Ok(read) => {
                // A damaged file's intact counts are printed, and the exit status says
                // that the file was not whole.
                if let Some(damage) = read.damage {
                    failed = true;
                    ctx.error_line(format_args!("{}: {damage}", path.display()));
                }
                parsed.push(read.file);
            }
            Err(message) => {
                failed = true;
                ctx.error_line(format_args!("{}: {message}", path.display()));
            }
        }
    }
    // Like Go's `gotelemetry dump`, the valid files are still printed when some are
    // bad; the exit status says that not all of them were.
    if !(failed && parsed.is_empty()) {
        ctx.out.write_all(to_json(&parsed).as_bytes())?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One object for one file, an array for any other number, then a newline.
pub(super) fn to_json(files: &[CounterFile]) -> String {
    fn object(f: &CounterFile) -> Value<'_> {
        Value::Object(vec![
            (b"Count", Value::numbers(f.counts_by_bytes())),
            (b"Meta", Value::strings(&f.meta)),
        ])
    }
    let value = match files {
        [one] => object(one),
        many => Value::Array(many.iter().map(object).collect()),
    };
    let mut out = String::new();
    value.write_indented(&mut out, 0);
    out.push('\n');
    out
}

/// The counter files in `local/` of the directory worked on (of every tool's, on the
/// root), sorted by name within each directory.
fn counter_files_in_local(ctx: &Context<'_>) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for dir in ctx.read_targets()? {
        let entries = dir
            .entries(telemetry_internal::Area::Local)
            .map_err(|err| Failure::io(format!("cannot read {}", dir.local().display()), &err))?;
        files.extend(
            entries
                .into_iter()
                .filter(|e| e.kind == telemetry_internal::FileKind::CounterFile)
                .map(|e| e.path),
        );
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that are not UTF-8 stay distinct entries, in byte order, each printed as
    /// Go prints it: distinct bad bytes then share a key, as in Go's output.
    #[test]
    fn names_that_are_not_utf8_print_as_go_prints_them() {
        let mut file = CounterFile::default();
        file.count.insert("a/\u{fffd}".into(), 1);
        file.count.insert("a/b".into(), 2);
        file.non_utf8.insert(b"a/\xff".to_vec(), 3);
        file.non_utf8.insert(b"a/\xfe".to_vec(), 4);
        file.meta.insert("Program".into(), "p".into());
        let json = to_json(std::slice::from_ref(&file));
        assert_eq!(
            json,
            "{\n \"Count\": {\n  \"a/b\": 2,\n  \"a/\u{fffd}\": 1,\n  \"a/\\ufffd\": 4,\n  \
             \"a/\\ufffd\": 3\n },\n \"Meta\": {\n  \"Program\": \"p\"\n }\n}\n"
        );
    }
}
