//! Stack counter names: `prefix\nframe\nframe…`, in Go's encoding.
//!
//! Go compresses a frame whose path (everything before the last `.`) equals the
//! previous frame's path to `"` + `.` + the rest, and `DecodeStack` expands it. We
//! encode and decode the same way so that files interoperate. Rust frames
//! (`crate::module::function+0x1f`) have no `.`, so for them compression never applies;
//! Go frames in Go-written files still decode.

use crate::layout::MAX_NAME_LEN;

/// The name of one frame: `function+0xoffset`. Shared by stack counters and the crash
/// monitor, so that a crash and a stack counter name the same code the same way.
///
/// `function` is a demangled name, which the two Rust manglings spell differently:
/// v0 (the default of newer toolchains) writes an inherent method `<Type>::method`
/// where legacy writes `Type::method`, and v0 spells out a generic function's
/// arguments (`core::hint::black_box::<u8>`), which legacy has no record of. Both are
/// named the legacy way here, so that the same code gets the same counter whichever
/// toolchain built it. Trait methods (`<Type as Trait>::method`) read the same in
/// both and are left alone.
pub fn frame(function: &str, offset: usize) -> String {
    let function = without_turbofish(function);
    match inherent_v0(&function) {
        Some((path, rest)) => format!("{path}{rest}+{offset:#x}"),
        None => format!("{function}+{offset:#x}"),
    }
}

/// `<Type>::method` split into `Type` and `::method`, if `function` is one.
fn inherent_v0(function: &str) -> Option<(&str, &str)> {
    let inner = function.strip_prefix('<')?;
    let close = closing_angle(inner)?;
    let (path, rest) = (&inner[..close], &inner[close + 1..]);
    (rest.starts_with("::")
        && !path.contains(" as ")
        && !path.starts_with('[')
        && !path.starts_with('&'))
    .then_some((path, rest))
}

/// `function` without the generic arguments of its path segments (`::<…>`).
fn without_turbofish(function: &str) -> std::borrow::Cow<'_, str> {
    if !function.contains("::<") {
        return function.into();
    }
    let mut out = String::with_capacity(function.len());
    let mut rest = function;
    while let Some(at) = rest.find("::<") {
        let Some(close) = closing_angle(&rest[at + 3..]) else {
            break; // unbalanced: keep the rest as it is
        };
        out.push_str(&rest[..at]);
        rest = &rest[at + 3 + close + 1..];
    }
    out.push_str(rest);
    out.into()
}

/// In `s`, which follows a `<`, the index of the `>` that closes it: nested generic
/// arguments are skipped, and so is the `>` of a `->` (`fn() -> u8`).
fn closing_angle(s: &str) -> Option<usize> {
    let mut depth = 1usize;
    let mut previous = '\0';
    s.char_indices().find_map(|(i, c)| {
        match c {
            '<' => depth += 1,
            '>' if previous != '-' => depth -= 1,
            _ => {}
        }
        previous = c;
        (depth == 0).then_some(i)
    })
}

/// Whether `name` is a stack counter name (`prefix\nframe…`; plain names have no
/// newline).
pub fn is_stack(name: &str) -> bool {
    name.contains('\n')
}

/// The counter name for a stack of `frames` under `prefix`, ditto-compressed and cut
/// to [`MAX_NAME_LEN`] bytes with a final `truncated` line if too long.
pub fn encode<S: AsRef<str>>(prefix: &str, frames: &[S]) -> String {
    let mut name = String::from(prefix);
    let mut last_path: Option<&str> = None;
    for frame in frames {
        let frame = frame.as_ref();
        name.push('\n');
        match frame.rfind('.') {
            Some(dot) if last_path == Some(&frame[..dot]) => {
                name.push('"');
                name.push_str(&frame[dot..]);
            }
            Some(dot) => {
                last_path = Some(&frame[..dot]);
                name.push_str(frame);
            }
            None => name.push_str(frame),
        }
    }
    if name.len() > MAX_NAME_LEN {
        const TRUNCATED: &str = "\ntruncated\n";
        let mut cut = MAX_NAME_LEN - TRUNCATED.len();
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        name.push_str(TRUNCATED);
    }
    name
}

/// Expands ditto marks, as Go's `DecodeStack` does. Names without a newline are
/// returned unchanged.
pub fn decode(name: &str) -> String {
    // Lines are split at '\n' and cut at '.' and '"', all ASCII, so UTF-8 in means
    // UTF-8 out; the lossy conversion never replaces anything.
    String::from_utf8(decode_bytes(name.as_bytes()))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`decode`] on the bytes of a name, which Go does not require to be UTF-8.
pub fn decode_bytes(name: &[u8]) -> Vec<u8> {
    if !name.contains(&b'\n') {
        return name.to_owned();
    }
    let mut out = Vec::with_capacity(name.len() * 2);
    let mut last_path: Vec<u8> = Vec::new(); // empty, or ends with '.'
    for (i, line) in name.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        match line.iter().rposition(|&b| b == b'.') {
            None | Some(0) => out.extend_from_slice(line),
            Some(1) if line.first() == Some(&b'"') => {
                out.extend_from_slice(&last_path);
                out.extend_from_slice(line.get(2..).unwrap_or_default());
            }
            Some(dot) => {
                last_path.clear();
                last_path.extend_from_slice(line.get(..=dot).unwrap_or_default());
                out.extend_from_slice(line);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_alike_under_both_manglings() {
        for (v0, legacy) in [
            ("<mytool::Thing>::run", "mytool::Thing::run"),
            (
                "core::hint::black_box::<[u64; 32]>",
                "core::hint::black_box",
            ),
            (
                "mytool::parse::<fn() -> u8, alloc::vec::Vec<u8>>::{closure#0}",
                "mytool::parse::{closure#0}",
            ),
            ("<mytool::Thing>::get::<u8>", "mytool::Thing::get"),
            ("<mytool::Thing<u8>>::run", "mytool::Thing<u8>::run"),
            (
                "<mytool::Thing>::run::{closure#0}",
                "mytool::Thing::run::{closure#0}",
            ),
        ] {
            assert_eq!(frame(v0, 0x1f), format!("{legacy}+0x1f"));
            assert_eq!(frame(legacy, 0x1f), format!("{legacy}+0x1f"));
        }
        for unchanged in [
            "<mytool::Thing as core::fmt::Debug>::fmt",
            "<[u8]>::len",
            "<&str>::len",
            "mytool::run",
            "?",
            "<broken",
            "mytool::broken::<u8",
        ] {
            assert_eq!(frame(unchanged, 0), format!("{unchanged}+0x0"));
        }
    }

    #[test]
    fn decodes_go_ditto_marks() {
        let encoded = "crash/crash\nexample.com/mytool/cmd.run:+3,+0x1f\n\".main:+12,+0x2a";
        assert_eq!(
            decode(encoded),
            "crash/crash\nexample.com/mytool/cmd.run:+3,+0x1f\nexample.com/mytool/cmd.main:+12,+0x2a"
        );
        assert_eq!(decode("plain/name"), "plain/name");
    }

    #[test]
    fn round_trips() {
        let frames = ["a/b.f:1", "a/b.g:2", "c.h:3", "mytool::run+0x1f", "c.i:4"];
        let name = encode("p", &frames);
        assert_eq!(name, "p\na/b.f:1\n\".g:2\nc.h:3\nmytool::run+0x1f\n\".i:4");
        assert_eq!(decode(&name), format!("p\n{}", frames.join("\n")));
    }

    #[test]
    fn truncates_long_stacks() {
        let frames = vec!["x".repeat(100); 100];
        let name = encode("p", &frames);
        assert_eq!(name.len(), MAX_NAME_LEN);
        assert!(name.ends_with("\ntruncated\n"));
        let wide = vec!["é".repeat(100); 100];
        assert!(encode("p", &wide).len() <= MAX_NAME_LEN);
    }
}
