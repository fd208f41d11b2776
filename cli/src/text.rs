//! Text shown to a person: the one escaping of untrusted names, shell quoting for
//! hints, and sizes.

use std::path::Path;

/// Quotes a path for a POSIX shell when it needs it.
pub(crate) fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:=@%".contains(&b));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Makes untrusted text (counter names, file names, file contents) safe to show to a
/// person: every character [`is_unsafe_char`] calls unsafe is shown escaped
/// (`\u{1b}`, `\n`, `\u{202e}`). The one escaping function for text a person reads:
/// stderr messages, `env`, `view --text`, `csv`, `log`; `view`'s page and `dump`'s
/// JSON escape the same characters in their own syntax. Escaping twice changes
/// nothing.
pub(crate) fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`terminal_safe`] for a path (a name found on disk may hold anything).
pub(crate) fn shown(path: &Path) -> String {
    terminal_safe(&path.display().to_string())
}

/// Whether `c` must never reach a terminal or a page as itself:
/// - control characters: C0 (ESC starts every terminal escape), DEL, and C1
///   (U+0080–U+009F: U+009B is an 8-bit CSI, U+009D an 8-bit OSC, which some
///   terminals obey like `ESC [` and `ESC ]`);
/// - the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the
///   invisible direction marks (U+200E, U+200F, U+061C), which make text display in
///   another order than it is read (a name that looks like another: CVE-2021-42574).
pub(crate) fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
}

/// A size for people: `512 bytes`, `48.2 KiB`, `3.1 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        1 => "1 byte".to_owned(),
        b if b < KIB => format!("{b} bytes"),
        b if b < KIB * KIB => format!("{:.1} KiB", b as f64 / KIB as f64),
        b => format!("{:.1} MiB", b as f64 / (KIB * KIB) as f64),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(Path::new("/tmp/a-b")), "/tmp/a-b");
        assert_eq!(shell_quote(Path::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(shell_quote(Path::new("it's")), r"'it'\''s'");
    }

    #[test]
    fn terminal_escapes() {
        assert_eq!(terminal_safe("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(terminal_safe("plain/ü"), "plain/ü");
        // C1 controls (U+009B is an 8-bit CSI) and bidi overrides and isolates.
        assert_eq!(terminal_safe("a\u{9b}2Jb"), "a\\u{9b}2Jb");
        assert_eq!(
            terminal_safe("x\u{202e}gpj.exe\u{2066}\u{2069}"),
            "x\\u{202e}gpj.exe\\u{2066}\\u{2069}"
        );
        // Escaping twice changes nothing.
        let once = terminal_safe("\u{1b}]0;PWNED\u{7}\u{202e}");
        assert_eq!(terminal_safe(&once), once);
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(16_384), "16.0 KiB");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }
}
