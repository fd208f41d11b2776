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

/// The most frames a crash stack counter names; the rest of a deeper stack is dropped.
pub const MAX_CRASH_FRAMES: usize = 16;

/// The counter name of a crash stack with nothing nameable in it.
pub const NO_FRAMES: &str = "crash/no-frames";

/// The counter name of a crash stack under `prefix` (`crash/panic`, `crash/abort`,
/// `crash/signal:SIGSEGV`, …) from its `frames` in recorded order, each already named
/// (`Some("function+0xOFF")`, by [`frame`] or as a raw `<build-id>+0x<addr>`) or
/// unknown (`None`).
///
/// The one finishing rule shared by the tool, which names frames from its own
/// executable, and by the collector, which names a raw stack from uploaded symbols, so
/// that both forms of one crash end up with the same name byte for byte:
/// a panic or an abort is reported from inside the code that raised it (std's panic and
/// abort functions, libc's `abort`, the crash monitor's hook), so for `crash/panic` and
/// `crash/abort` the leading frames that are unknown or such machinery are skipped;
/// the stack is then cut to [`MAX_CRASH_FRAMES`], unknown frames are spelled `?+0x0`,
/// and a stack with no known frame is [`NO_FRAMES`].
pub fn finish_crash_stack(prefix: &str, frames: &[Option<String>]) -> String {
    let skip = if prefix == "crash/panic" || prefix == "crash/abort" {
        frames
            .iter()
            .take_while(|f| f.as_deref().is_none_or(is_machinery))
            .count()
    } else {
        0
    };
    let kept = &frames[skip..];
    let kept = &kept[..kept.len().min(MAX_CRASH_FRAMES)];
    if kept.iter().all(Option::is_none) {
        return NO_FRAMES.to_owned();
    }
    let unknown = frame("?", 0);
    let spelled: Vec<&str> = kept
        .iter()
        .map(|f| f.as_deref().unwrap_or(&unknown))
        .collect();
    encode(prefix, &spelled)
}

/// Whether a named frame belongs to the code that raises a panic or abort rather than to
/// the code that crashed: Rust's standard library and runtime, the unwinder, and the
/// crash monitor.
pub fn is_machinery(frame: &str) -> bool {
    // Trait impls are named `<alloc::boxed::Box<F> as core::ops::Fn<A>>::call`.
    let path = frame.trim_start_matches('<');
    const PREFIXES: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "panic_unwind::",
        "panic_abort::",
        "backtrace::",
        "telemetry_crashmonitor::",
        "rust_begin_unwind",
        "rust_panic",
        "__rust",
        "__rustc::",
        "_Unwind_",
    ];
    PREFIXES.iter().any(|p| path.starts_with(p))
}

/// The build ID and link-time address of a raw crash frame, `<build-id>+0x<addr>`: a
/// frame the tool could not name, kept for the collector to name from uploaded
/// symbols. The build ID is lowercase hex of even length, 32 to 80 characters (a GNU
/// build ID, a Mach-O UUID, a PE CodeView GUID with its age); the address is `0x` and
/// lowercase hex, as `{:#x}` writes it.
pub fn is_raw_frame(line: &str) -> Option<(&str, u64)> {
    let (build_id, addr) = line.split_once("+0x")?;
    let lower_hex =
        |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !(32..=80).contains(&build_id.len()) || build_id.len() % 2 != 0 || !lower_hex(build_id) {
        return None;
    }
    if !lower_hex(addr) || addr.len() > 16 || (addr.len() > 1 && addr.starts_with('0')) {
        return None;
    }
    let addr = u64::from_str_radix(addr, 16).ok()?;
    Some((build_id, addr))
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
    #[test]
    fn crash_stacks_skip_machinery_of_panics_and_aborts_only() {
        let f = |s: &str| Some(s.to_owned());
        let frames = [
            None,
            f("core::panicking::panic_fmt+0x10"),
            f("<alloc::boxed::Box<F,A> as core::ops::function::Fn<Args>>::call+0x8"),
            f("telemetry_crashmonitor::hook+0x20"),
            f("mytool::cmd::run+0x42"),
            f("std::rt::lang_start+0x1"),
            None,
        ];
        assert_eq!(
            finish_crash_stack("crash/panic", &frames),
            "crash/panic\nmytool::cmd::run+0x42\nstd::rt::lang_start+0x1\n?+0x0"
        );
        assert_eq!(
            finish_crash_stack("crash/abort", &frames[4..5]),
            "crash/abort\nmytool::cmd::run+0x42"
        );
        // A signal's first frame is where the fault happened, machinery or not.
        assert_eq!(
            finish_crash_stack("crash/signal:SIGSEGV", &frames[..2]),
            "crash/signal:SIGSEGV\n?+0x0\ncore::panicking::panic_fmt+0x10"
        );
        let raw = f("0123456789abcdef0123456789abcdef01234567+0x1a2b");
        assert_eq!(
            finish_crash_stack("crash/panic", &[None, raw.clone()]),
            "crash/panic\n0123456789abcdef0123456789abcdef01234567+0x1a2b"
        );
    }

    #[test]
    fn crash_stacks_are_cut_and_empty_ones_named_no_frames() {
        assert_eq!(finish_crash_stack("crash/panic", &[]), NO_FRAMES);
        assert_eq!(
            finish_crash_stack("crash/signal:SIGBUS", &[None, None]),
            NO_FRAMES
        );
        let machinery = Some("std::process::abort+0x5".to_owned());
        assert_eq!(
            finish_crash_stack("crash/abort", &[machinery, None]),
            NO_FRAMES
        );
        let deep: Vec<Option<String>> =
            (0..40).map(|i| Some(format!("mytool::f{i}+0x1"))).collect();
        let name = finish_crash_stack("crash/signal:SIGILL", &deep);
        assert_eq!(name.lines().count(), 1 + MAX_CRASH_FRAMES);
        assert!(name.ends_with("\nmytool::f15+0x1"));
        // Unknown frames beyond the cut do not matter; known ones before it do.
        let mut late = vec![None; MAX_CRASH_FRAMES];
        late.push(Some("mytool::late+0x1".to_owned()));
        assert_eq!(finish_crash_stack("crash/signal:SIGFPE", &late), NO_FRAMES);
    }

    #[test]
    fn machinery() {
        assert!(is_machinery(
            "std::panicking::begin_panic_handler::{{closure}}"
        ));
        assert!(is_machinery("<core::option::Option<T>>::unwrap"));
        assert!(is_machinery("__rustc::rust_begin_unwind"));
        assert!(!is_machinery("mytool::main"));
        assert!(!is_machinery(
            "<mytool::Guard as core::ops::drop::Drop>::drop"
        ));
        assert!(!is_machinery("stdx::main"));
    }

    #[test]
    fn raw_frames() {
        let gnu = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(is_raw_frame(&format!("{gnu}+0x1a2b")), Some((gnu, 0x1a2b)));
        assert_eq!(is_raw_frame(&format!("{gnu}+0x0")), Some((gnu, 0)));
        let uuid = "00112233445566778899aabbccddeeff";
        assert_eq!(
            is_raw_frame(&format!("{uuid}+0xffffffffffffffff")),
            Some((uuid, u64::MAX))
        );
        let pe = format!("{uuid}1a"); // GUID + age, an even length
        assert_eq!(
            is_raw_frame(&format!("{pe}+0x10")),
            Some((pe.as_str(), 0x10))
        );
        for not in [
            "mytool::main+0x10".to_owned(),
            "?+0x0".to_owned(),
            format!("{}+0x10", &gnu[..31]),         // too short
            format!("{}+0x10", &gnu[..33]),         // odd
            format!("{}+0x10", "ab".repeat(41)),    // too long
            format!("{}+0x10", gnu.to_uppercase()), // not lowercase
            format!("{gnu}+0x"),
            format!("{gnu}+0xG"),
            format!("{gnu}+0x010"),
            format!("{gnu}+0x10000000000000000"),
            format!("{gnu}+10"),
            format!("{gnu}+0x1+0x2"),
        ] {
            assert_eq!(is_raw_frame(&not), None, "{not}");
        }
    }
}
