//! From a parsed report to a counter name: relocate, symbolize, drop the panic
//! machinery, encode.
//!
//! The name is built only from the report's kind (a fixed set of words) and from names
//! of functions in the executable itself, so nothing the program computed — a panic
//! message, a path, an argument — can reach it (invariant 3 of ARCHITECTURE.md).

use telemetry_counter::stack_name;

use crate::wire::{Frame, Report};

/// Counted when the input is not what a parent writes.
pub(crate) const MALFORMED: &str = "crash/malformed";
/// Counted when a crash report has no frame the child can name.
pub(crate) const NO_FRAMES: &str = stack_name::NO_FRAMES;

/// Looks up the function containing an address of the current process.
pub(crate) trait Symbolize {
    /// The demangled name (without hash) and start address of the function that
    /// contains `addr`, if any.
    fn function(&self, addr: usize) -> Option<(String, usize)>;
}

/// The demangled name without the trailing hash (`mytool::run`, not
/// `mytool::run::h0123456789abcdef`), for every symbol table's names; C names are
/// returned as they are.
pub(crate) fn demangle(mangled: &[u8]) -> String {
    let text = String::from_utf8_lossy(mangled);
    format!("{:#}", rustc_demangle::demangle(&text))
}

/// A [`Symbolize`] that knows nothing: every frame is unnamed.
pub(crate) struct NoSymbols;

impl Symbolize for NoSymbols {
    fn function(&self, _addr: usize) -> Option<(String, usize)> {
        None
    }
}

/// The stack counter name for `report`, whose addresses are in a process where the
/// sentinel function was at `parent_sentinel`; here it is at `child_sentinel`.
pub(crate) fn counter_name(
    report: &Report,
    parent_sentinel: usize,
    child_sentinel: usize,
    symbols: &dyn Symbolize,
) -> String {
    let relocate = |addr: usize| {
        addr.wrapping_sub(parent_sentinel)
            .wrapping_add(child_sentinel)
    };
    let named: Vec<Option<String>> = report
        .frames
        .iter()
        .map(|&frame| {
            let (addr, lookup) = match frame {
                Frame::Pc(addr) => (relocate(addr), relocate(addr)),
                // The return address may be the first byte of the next function.
                Frame::Ret(addr) => (relocate(addr), relocate(addr).wrapping_sub(1)),
                Frame::Outside => return None,
            };
            let (function, start) = symbols.function(lookup)?;
            Some(telemetry_counter::frame(
                &function,
                addr.wrapping_sub(start),
            ))
        })
        .collect();
    stack_name::finish_crash_stack(report.kind.counter_prefix(), &named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_without_hash() {
        assert_eq!(
            demangle(b"_ZN6mytool3run17h0123456789abcdefE"),
            "mytool::run"
        );
        assert_eq!(demangle(b"memcpy"), "memcpy");
    }
    use crate::wire::{FatalSignal, Kind};

    /// Functions at 0x1000-byte intervals from 0x10000, named after the table.
    struct Table(&'static [&'static str]);

    impl Symbolize for Table {
        fn function(&self, addr: usize) -> Option<(String, usize)> {
            let index = addr.checked_sub(0x10000)? / 0x1000;
            let name = self.0.get(index)?;
            Some((name.to_string(), 0x10000 + index * 0x1000))
        }
    }

    const TABLE: Table = Table(&[
        "core::panicking::panic_fmt",
        "<alloc::boxed::Box<F,A> as core::ops::function::Fn<Args>>::call",
        "telemetry_crashmonitor::parent::panic_hook",
        "mytool::cmd::run",
        "mytool::main",
        "std::rt::lang_start_internal",
        "__rust_begin_short_backtrace",
    ]);

    fn name(kind: Kind, frames: &[Frame]) -> String {
        let report = Report {
            kind,
            frames: frames.to_vec(),
        };
        // The parent's sentinel was 0x5000 below the child's.
        let shifted = frames
            .iter()
            .map(|f| match *f {
                Frame::Pc(a) => Frame::Pc(a - 0x5000),
                Frame::Ret(a) => Frame::Ret(a - 0x5000),
                Frame::Outside => Frame::Outside,
            })
            .collect();
        let report = Report {
            frames: shifted,
            ..report
        };
        counter_name(&report, 0x1000, 0x6000, &TABLE)
    }

    #[test]
    fn panic_starts_at_the_panicking_function() {
        let got = name(
            Kind::Panic,
            &[
                Frame::Outside,
                Frame::Ret(0x12010),
                Frame::Ret(0x11008),
                Frame::Ret(0x10020),
                Frame::Ret(0x13042),
                Frame::Ret(0x14100),
                Frame::Ret(0x15000), // lang_start: the call is at its end, in mytool::main
                Frame::Outside,
            ],
        );
        assert_eq!(
            got,
            "crash/panic\nmytool::cmd::run+0x42\nmytool::main+0x100\nmytool::main+0x1000\n?+0x0"
        );
    }

    #[test]
    fn signal_keeps_the_faulting_frame() {
        let got = name(
            Kind::Signal(FatalSignal::Segv),
            &[Frame::Pc(0x10000), Frame::Ret(0x13001), Frame::Outside],
        );
        assert_eq!(
            got,
            "crash/signal:SIGSEGV\ncore::panicking::panic_fmt+0x0\nmytool::cmd::run+0x1\n?+0x0"
        );
    }

    #[test]
    fn abort_drops_libc_and_std() {
        let got = name(
            Kind::Abort,
            &[
                Frame::Outside,
                Frame::Outside,
                Frame::Ret(0x15010),
                Frame::Ret(0x14004),
            ],
        );
        assert_eq!(got, "crash/abort\nmytool::main+0x4");
    }

    #[test]
    fn nothing_nameable_is_no_frames() {
        assert_eq!(name(Kind::Panic, &[]), NO_FRAMES);
        assert_eq!(
            name(Kind::Panic, &[Frame::Ret(0x10010), Frame::Outside]),
            NO_FRAMES
        );
        assert_eq!(
            name(Kind::Signal(FatalSignal::Bus), &[Frame::Outside]),
            NO_FRAMES
        );
        assert_eq!(name(Kind::Abort, &[Frame::Ret(0x99999)]), NO_FRAMES);
        let report = Report {
            kind: Kind::Panic,
            frames: vec![Frame::Ret(0x13000)],
        };
        assert_eq!(counter_name(&report, 1, 1, &NoSymbols), NO_FRAMES);
    }
}
