//! JSON exactly as Go's `encoding/json` writes it with `MarshalIndent(v, "", " ")`:
//! keys sorted by bytes, one space of indent per level, `{}` for an empty object, and
//! strings escaped for HTML (`<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`). `telemetry
//! dump` must print byte for byte what Go's tools print, so we do not use
//! `serde_json`'s formatter, whose escaping differs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, escaped as Go escapes it.
pub(super) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go 1.22 and later write these two short forms (golang/go#64941).
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // Control characters, the HTML-sensitive three, and the JavaScript line
            // separators, which Go escapes so that JSON is safe inside <script>.
            '\0'..='\u{1f}' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON value of the shapes `dump` prints.
pub(super) enum Value<'a> {
    Number(u64),
    String(&'a str),
    Object(Vec<(&'a str, Value<'a>)>),
    Array(Vec<Value<'a>>),
}

impl<'a> Value<'a> {
    /// An object from a sorted map of numbers.
    pub(super) fn numbers(map: &'a BTreeMap<String, u64>) -> Value<'a> {
        Value::Object(
            map.iter()
                .map(|(k, &v)| (k.as_str(), Value::Number(v)))
                .collect(),
        )
    }

    /// An object from a sorted map of strings.
    pub(super) fn strings(map: &'a BTreeMap<String, String>) -> Value<'a> {
        Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str(), Value::String(v)))
                .collect(),
        )
    }

    /// Appends the value, indented as `MarshalIndent` with one space does, as if it
    /// began at nesting `depth`.
    pub(super) fn write_indented(&self, out: &mut String, depth: usize) {
        let indent = |out: &mut String, depth: usize| {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', depth));
        };
        match self {
            Value::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Value::String(s) => write_string(out, s),
            Value::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Value::Array(items) if items.is_empty() => out.push_str("[]"),
            Value::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, depth + 1);
                    write_string(out, key);
                    out.push_str(": ");
                    value.write_indented(out, depth + 1);
                }
                indent(out, depth);
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, depth + 1);
                    item.write_indented(out, depth + 1);
                }
                indent(out, depth);
                out.push(']');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(string("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(string("q\"\\"), r#""q\"\\""#);
        assert_eq!(string("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(string("\0\u{1b}\u{7f}"), "\"\\u0000\\u001b\u{7f}\"");
        assert_eq!(string("\u{2028}\u{2029}é"), "\"\\u2028\\u2029é\"");
    }

    #[test]
    fn indents_like_go() {
        let mut out = String::new();
        let empty = BTreeMap::new();
        let mut meta = BTreeMap::new();
        meta.insert("K".to_owned(), "v".to_owned());
        Value::Array(vec![
            Value::Object(vec![
                ("Count", Value::numbers(&empty)),
                ("Meta", Value::strings(&meta)),
            ]),
            Value::Array(vec![]),
        ])
        .write_indented(&mut out, 0);
        assert_eq!(
            out,
            "[\n {\n  \"Count\": {},\n  \"Meta\": {\n   \"K\": \"v\"\n  }\n },\n []\n]"
        );
    }
}
