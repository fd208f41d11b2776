//! JSON exactly as Go's `encoding/json` writes it with `MarshalIndent(v, "", " ")`:
//! keys sorted by bytes, one space of indent per level, `{}` for an empty object, and
//! strings escaped for HTML (`<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`). Strings
//! are bytes, as Go's are: each byte that is not part of valid UTF-8 is written as the
//! six characters `\ufffd`, as Go's encoder does (one per bad byte, not one per bad
//! sequence as Rust's lossy conversion would), while a real U+FFFD is written as is.
//! One deliberate difference: DEL, C1 controls and the bidirectional overrides,
//! isolates and marks are written as `\uXXXX` escapes (Go writes them raw), so that
//! `dump` never prints them to a terminal; the decoded value is the same.
//! `telemetry dump` prints the same JSON values as Go's encoder for the data Go's
//! parser reads, so we do not use `serde_json`'s formatter, whose escaping differs
//! and which cannot hold a key that is not UTF-8.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, escaped as Go escapes it.
pub(super) fn write_string(out: &mut String, s: &str) {
    write_bytes(out, s.as_bytes());
}

/// Appends the bytes `s` as a JSON string literal, as Go's encoder writes a Go string
/// holding them: valid UTF-8 escaped as in [`write_string`], every byte of an invalid
/// sequence as `\ufffd` (Go decodes rune by rune and gets `RuneError` of width 1 for
/// each such byte, which is exactly the bytes `Utf8Chunk::invalid` holds).
pub(super) fn write_bytes(out: &mut String, s: &[u8]) {
    out.push('"');
    for chunk in s.utf8_chunks() {
        write_escaped(out, chunk.valid());
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

fn write_escaped(out: &mut String, s: &str) {
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
            // Not escaped by Go, and the one place our bytes differ from its: DEL, the
            // C1 controls (U+009B acts as `ESC [` on some terminals) and the
            // bidirectional overrides, isolates and marks, which `dump` would otherwise
            // print raw to a terminal. The JSON value is the same: any JSON reader
            // decodes `\u202e` to U+202E.
            c if super::is_unsafe_char(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// A JSON value of the shapes `dump` prints.
pub(super) enum Value<'a> {
    Number(u64),
    String(&'a str),
    /// Keys are bytes: Go's map keys need not be UTF-8.
    Object(Vec<(&'a [u8], Value<'a>)>),
    Array(Vec<Value<'a>>),
}

impl<'a> Value<'a> {
    /// An object of numbers from `(key, value)` pairs sorted by the keys' bytes.
    pub(super) fn numbers(pairs: Vec<(&'a [u8], u64)>) -> Value<'a> {
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::Number(v)))
                .collect(),
        )
    }

    /// An object from a sorted map of strings.
    pub(super) fn strings(map: &'a BTreeMap<String, String>) -> Value<'a> {
        Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_bytes(), Value::String(v)))
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
                    write_bytes(out, key);
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
        assert_eq!(string("\0\u{1b}\u{7f}"), r#""\u0000\u001b\u007f""#);
        assert_eq!(
            string("\u{9b}2J\u{202e}x\u{2066}"),
            r#""\u009b2J\u202ex\u2066""#
        );
        assert_eq!(string("\u{2028}\u{2029}é"), "\"\\u2028\\u2029é\"");
    }

    fn bytes(s: &[u8]) -> String {
        let mut out = String::new();
        write_bytes(&mut out, s);
        out
    }

    /// Go's `appendString`: one `\ufffd` escape per byte that does not decode (a
    /// truncated sequence of two bytes is two), a real U+FFFD unescaped.
    #[test]
    fn invalid_utf8_as_go_writes_it() {
        assert_eq!(bytes(b"a\xffb"), r#""a\ufffdb""#);
        assert_eq!(bytes(b"\xe2\x82"), r#""\ufffd\ufffd""#);
        assert_eq!(bytes(b"\xe2\x82\xac"), "\"\u{20ac}\"");
        assert_eq!(bytes(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
        assert_eq!(bytes(b"\xc0\x80<"), r#""\ufffd\ufffd\u003c""#);
        assert_eq!(bytes(b"\xf0\x9f\x98"), r#""\ufffd\ufffd\ufffd""#);
        assert_eq!(bytes("\u{fffd}".as_bytes()), "\"\u{fffd}\"");
        assert_eq!(bytes(b"\n\x80\n"), r#""\n\ufffd\n""#);
    }

    #[test]
    fn indents_like_go() {
        let mut out = String::new();
        let mut meta = BTreeMap::new();
        meta.insert("K".to_owned(), "v".to_owned());
        Value::Array(vec![
            Value::Object(vec![
                (b"Count", Value::numbers(Vec::new())),
                (b"Meta", Value::strings(&meta)),
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
