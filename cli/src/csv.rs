//! `telemetry csv`: one row per program, version, platform, week and counter, for
//! spreadsheets.

use std::collections::BTreeMap;
use std::process::ExitCode;

use super::data::{self, Entry};
use super::{CmdResult, Context, terminal_safe};

/// The columns. `toolchain`, `os` and `arch` are Go's `GoVersion`, `GOOS` and `GOARCH`.
const HEADER: [&str; 9] = [
    "program",
    "version",
    "toolchain",
    "os",
    "arch",
    "week",
    "kind",
    "counter",
    "count",
];

pub(super) fn run(ctx: &mut Context<'_>) -> CmdResult {
    let mut entries = Vec::new();
    for dir in ctx.read_targets()? {
        let data = data::load(&dir)?;
        for skipped in &data.skipped {
            ctx.warn(format!("skipped {}", terminal_safe(skipped)));
        }
        entries.extend(data.entries);
    }
    ctx.out.write_all(to_csv(&entries).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The CSV text: a header row, then rows sorted by program, version, platform, week
/// and counter, counts summed over files. Lines end with `\n`, as Go's `encoding/csv`
/// writes them; readers accept that as well as RFC 4180's CRLF.
pub(super) fn to_csv(entries: &[Entry]) -> String {
    type Key<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
    );
    let mut rows: BTreeMap<Key<'_>, u64> = BTreeMap::new();
    for e in entries {
        let kinds = [("counter", &e.counters), ("stack", &e.stacks)];
        for (kind, map) in kinds {
            for (name, &n) in map {
                let key = (
                    &*e.program,
                    &*e.version,
                    &*e.toolchain,
                    &*e.os,
                    &*e.arch,
                    &*e.week,
                    kind,
                    name.as_str(),
                );
                let total = rows.entry(key).or_insert(0);
                *total = total.saturating_add(n);
            }
        }
    }
    let mut out = String::new();
    write_row(&mut out, HEADER.map(str::to_owned));
    for ((program, version, toolchain, os, arch, week, kind, name), n) in rows {
        write_row(
            &mut out,
            [
                program,
                version,
                toolchain,
                os,
                arch,
                week,
                kind,
                name,
                &n.to_string(),
            ]
            .map(str::to_owned),
        );
    }
    out
}

fn write_row<const N: usize>(out: &mut String, fields: [String; N]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_field(out, field);
    }
    out.push('\n');
}

/// Writes one field of untrusted text (names come from any program that counts):
/// - control characters are escaped as `view --text` shows them (`\n`, `\u{1b}`), so
///   a stack counter's frames stay on one line and no terminal escape gets through;
/// - a field a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first, OWASP's
///   list) gets a leading `'`, which spreadsheets show as text; numbers are ours and
///   never need it;
/// - a field holding a comma, a quote or leading/trailing space is quoted, quotes
///   doubled (RFC 4180).
fn write_field(out: &mut String, field: &str) {
    let mut field = terminal_safe(field);
    if field.starts_with(['=', '+', '-', '@']) {
        field.insert(0, '\'');
    }
    let needs_quotes = field.is_empty()
        || field.contains([',', '"'])
        || field.starts_with(' ')
        || field.ends_with(' ');
    if needs_quotes {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: &str) -> String {
        let mut out = String::new();
        write_field(&mut out, s);
        out
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(field("mytool/errors"), "mytool/errors");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field(""), "\"\"");
    }

    #[test]
    fn escapes_controls_and_formulas() {
        assert_eq!(field("crash\nmain.f"), "crash\\nmain.f");
        assert_eq!(field("red\x1b[31m"), "red\\u{1b}[31m");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("a=b"), "a=b");
        // Tab and CR, OWASP's other two, are escaped to `\t`/`\r` and so start with `\`.
        assert_eq!(field("\t=1"), "\\t=1");
    }
}
