//! Escaping untrusted text for HTML. Counter names come from any program that counts
//! into the directory, and file names from whatever is on disk, so every piece of
//! text that reaches the page goes through [`escape`].

/// Escapes `text` for use in HTML text and in quoted attribute values (also inside
/// inline SVG). The characters the terminal escaping calls unsafe (controls, which
/// HTML forbids, and bidirectional overrides, which would show a name in another
/// order) are shown as it shows them, `\u{202e}`; tab and newline stay.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if super::is_unsafe_char(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("a\0b\u{1b}c\nd"), "a\\u{0}b\\u{1b}c\nd");
        assert_eq!(escape("x\u{202e}y\u{9b}"), "x\\u{202e}y\\u{9b}");
    }
}
