//! From a crash record to a counter name: symbolize the link-time addresses with the
//! executable's own symbols (or spell them raw), drop the panic machinery, encode.
//!
//! The name is built only from the report's kind (a fixed set of words) and from names
//! of functions in the executable itself, so nothing the program computed — a panic
//! message, a path, an argument — can reach it (invariant 3 of ARCHITECTURE.md).

use telemetry_counter::stack_name;

use telemetry_internal::image::ExeIdentity;

use crate::record::{self, Frame, Record};

/// Counted for a record that is not what a crashing process writes.
pub(crate) const MALFORMED: &str = "crash/malformed";
/// Counted for a crash with no frame that can be named.
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
#[cfg(test)]
pub(crate) struct NoSymbols;

#[cfg(test)]
impl Symbolize for NoSymbols {
    fn function(&self, _addr: usize) -> Option<(String, usize)> {
        None
    }
}

/// The running executable, as the telemetry child names records with it: its identity
/// (build ID and bias) and its symbol table, both read on first use.
#[derive(Default)]
pub(crate) struct OwnExe {
    loaded: bool,
    identity: Option<ExeIdentity>,
    symbols: Option<Box<dyn Symbolize>>,
}

impl OwnExe {
    /// The counter name of `record`: named from this executable's symbols if the
    /// record is this executable's (same build ID; with no build ID, the same
    /// link-time address of the sentinel function) and it has a symbol table, else
    /// raw (see [`raw_name`]).
    pub(crate) fn name(&mut self, record: &Record) -> String {
        if !self.loaded {
            self.loaded = true;
            self.identity = telemetry_internal::image::exe_identity();
            self.symbols = self.identity.as_ref().and_then(own_symbols);
        }
        let same = self
            .identity
            .as_ref()
            .is_some_and(|own| match own.build_id.as_deref() {
                Some(id) => id == record.build_id,
                None => {
                    record.build_id.is_empty()
                        && record.sentinel == record::sentinel().wrapping_sub(own.bias)
                }
            });
        match (&self.identity, &self.symbols) {
            (Some(own), Some(symbols)) if same => named_name(record, own.bias, symbols.as_ref()),
            _ => raw_name(record),
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn own_symbols(identity: &ExeIdentity) -> Option<Box<dyn Symbolize>> {
    let symbols = crate::symbols::ElfSymbols::current_exe(identity.bias)?;
    Some(Box::new(symbols))
}

#[cfg(target_os = "macos")]
fn own_symbols(_identity: &ExeIdentity) -> Option<Box<dyn Symbolize>> {
    let symbols = crate::macho::MachSymbols::current_exe()?;
    Some(Box::new(symbols))
}

#[cfg(windows)]
fn own_symbols(_identity: &ExeIdentity) -> Option<Box<dyn Symbolize>> {
    let image = crate::signal_windows::exe_image()?;
    let symbols = crate::pe::PeSymbols::current_exe(image.start)?;
    Some(Box::new(symbols))
}

#[cfg(not(any(unix, windows)))]
fn own_symbols(_identity: &ExeIdentity) -> Option<Box<dyn Symbolize>> {
    None
}

/// The stack counter name of `record`, whose link-time addresses are this process's
/// minus `bias`, named by `symbols` and finished by the rule the collector shares
/// (`stack_name::finish_crash_stack`).
pub(crate) fn named_name(record: &Record, bias: usize, symbols: &dyn Symbolize) -> String {
    let named: Vec<Option<String>> = record
        .frames
        .iter()
        .map(|&frame| {
            let (addr, lookup) = match frame {
                Frame::Pc(link) => (link.wrapping_add(bias), link.wrapping_add(bias)),
                // The return address may be the first byte of the next function.
                Frame::Ret(link) => (
                    link.wrapping_add(bias),
                    link.wrapping_add(bias).wrapping_sub(1),
                ),
                Frame::Outside => return None,
            };
            let (function, start) = symbols.function(lookup)?;
            Some(telemetry_counter::frame(
                &function,
                addr.wrapping_sub(start),
            ))
        })
        .collect();
    stack_name::finish_crash_stack(record.kind.counter_prefix(), &named)
}

/// The raw stack counter name of `record`, for the collector to name from uploaded
/// symbols: every recorded frame from the first, `<build-id>+0x<link-time address>`,
/// or `?+0x0` outside the executable. Without a build ID nothing can be named later:
/// `crash/no-frames`.
pub(crate) fn raw_name(record: &Record) -> String {
    let inside = |frame: &Frame| match *frame {
        Frame::Pc(addr) | Frame::Ret(addr) => Some(addr),
        Frame::Outside => None,
    };
    if record.build_id.is_empty() || record.frames.iter().all(|f| inside(f).is_none()) {
        return NO_FRAMES.to_owned();
    }
    let unknown = telemetry_counter::frame("?", 0);
    let frames: Vec<String> = record
        .frames
        .iter()
        .map(|f| match inside(f) {
            Some(addr) => format!("{}+{addr:#x}", record.build_id),
            None => unknown.clone(),
        })
        .collect();
    stack_name::encode(record.kind.counter_prefix(), &frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FatalSignal, Kind};
    use telemetry_internal::Program;

    #[test]
    fn demangles_without_hash() {
        assert_eq!(
            demangle(b"_ZN6mytool3run17h0123456789abcdefE"),
            "mytool::run"
        );
        assert_eq!(demangle(b"memcpy"), "memcpy");
    }

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

    const BUILD_ID: &str = "0123456789abcdef0123456789abcdef01234567";

    fn record(kind: Kind, frames: &[Frame]) -> Record {
        Record {
            kind,
            frames: frames.to_vec(),
            build_id: BUILD_ID.to_owned(),
            sentinel: 0,
            program: Program::new("mytool", "1.0.0"),
            toolchain: "1.95.0".to_owned(),
        }
    }

    /// Named as a process loaded 0x5000 above the link-time addresses would.
    fn name(kind: Kind, frames: &[Frame]) -> String {
        let linked: Vec<Frame> = frames
            .iter()
            .map(|f| match *f {
                Frame::Pc(a) => Frame::Pc(a - 0x5000),
                Frame::Ret(a) => Frame::Ret(a - 0x5000),
                Frame::Outside => Frame::Outside,
            })
            .collect();
        named_name(&record(kind, &linked), 0x5000, &TABLE)
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
        let r = record(Kind::Panic, &[Frame::Ret(0x13000)]);
        assert_eq!(named_name(&r, 0, &NoSymbols), NO_FRAMES);
    }

    #[test]
    fn raw_stacks_keep_every_frame_for_the_collector() {
        let r = record(
            Kind::Abort,
            &[Frame::Outside, Frame::Ret(0x1a2b), Frame::Pc(0x10)],
        );
        let name = raw_name(&r);
        assert_eq!(
            name,
            format!("crash/abort\n?+0x0\n{BUILD_ID}+0x1a2b\n{BUILD_ID}+0x10")
        );
        for line in name.lines().skip(2) {
            assert!(stack_name::is_raw_frame(line).is_some(), "{line}");
        }
        let deep = record(Kind::Panic, &[Frame::Ret(0x1000); 32]);
        assert_eq!(raw_name(&deep).lines().count(), 33);
        let mut anonymous = r.clone();
        anonymous.build_id.clear();
        assert_eq!(raw_name(&anonymous), NO_FRAMES);
        assert_eq!(raw_name(&record(Kind::Panic, &[Frame::Outside])), NO_FRAMES);
    }
}
