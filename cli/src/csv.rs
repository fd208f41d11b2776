//! `telemetry csv`: one row per program, version, week and counter, for spreadsheets.

use std::collections::BTreeMap;
use std::process::ExitCode;

use super::data::{self, Entry};
use super::{CmdResult, Context};

const HEADER: [&str; 6] = ["program", "version", "week", "kind", "counter", "count"];

pub(super) fn run(ctx: &mut Context<'_>) -> CmdResult {
    let data = data::load(&ctx.dir()?)?;
    for skipped in &data.skipped {
        ctx.warn(format!("skipped {skipped}"));
    }
    ctx.out.write_all(to_csv(&data.entries).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The CSV text: a header row, then rows sorted by program, version, week and counter,
/// counts summed over platforms and files. Lines end with `\n`, as Go's `encoding/csv`
/// writes them; readers accept that as well as RFC 4180's CRLF.
pub(super) fn to_csv(entries: &[Entry]) -> String {
    let mut rows: BTreeMap<(&str, &str, &str, &str, &str), u64> = BTreeMap::new();
    for e in entries {
        let kinds = [("counter", &e.counters), ("stack", &e.stacks)];
        for (kind, map) in kinds {
            for (name, &n) in map {
                let key = (&*e.program, &*e.version, &*e.week, kind, name.as_str());
                let total = rows.entry(key).or_insert(0);
                *total = total.saturating_add(n);
            }
        }
    }
    let mut out = String::new();
    write_row(&mut out, HEADER);
    for ((program, version, week, kind, name), n) in rows {
        write_row(
            &mut out,
            [program, version, week, kind, name, &n.to_string()],
        );
    }
    out
}

fn write_row<const N: usize>(out: &mut String, fields: [&str; N]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_field(out, field);
    }
    out.push('\n');
}

/// Quotes a field when it holds a comma, a quote, a line break or leading/trailing
/// space, doubling quotes inside (RFC 4180). A field that a spreadsheet would run as
/// a formula (`=`, `+`, `-`, `@` first) is not altered: the data is for reading, and
/// quoting keeps it text for any CSV reader.
fn write_field(out: &mut String, field: &str) {
    let needs_quotes = field.is_empty()
        || field.contains([',', '"', '\n', '\r'])
        || field.starts_with(' ')
        || field.ends_with(' ');
    if needs_quotes {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
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
        assert_eq!(field("crash\nmain.f"), "\"crash\nmain.f\"");
        assert_eq!(field(""), "\"\"");
    }
}
