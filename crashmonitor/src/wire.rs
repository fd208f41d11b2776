//! The pipe protocol between the parent and the child: a few lines of ASCII.
//!
//! ```text
//! sentinel 55d0c0a01230        parent, at install: where `sentinel()` lives in its address space
//! crash signal SIGSEGV         parent, on a crash: `panic`, `abort` or `signal <NAME>`
//! pc 55d0c0a0f3e1              the interrupted instruction itself (signals only)
//! ret 55d0c0a0b004             a return address: the call is the instruction before it
//! outside                      a frame outside the executable (libc, a plugin): no address
//! end                          the report is complete
//! ```
//!
//! At most [`MAX_FRAMES`] frame lines follow a `crash` line. The parent writes the
//! sentinel with one `write(2)` when it installs itself and at most one report, also with
//! one `write(2)`; both are far below `PIPE_BUF`, so neither is ever torn or interleaved.
//! Nothing but these fixed words and hex numbers ever crosses the pipe: no message, no
//! path, no text the program chose.
//!
//! Building a report ([`ReportBuf`]) must work inside a signal handler: it uses a fixed
//! buffer on the stack, never allocates and never panics. Parsing runs in the child and
//! may allocate.

/// The most frames a report carries, as Go's crash monitor keeps.
pub(crate) const MAX_FRAMES: usize = 16;

/// The longest input the child keeps; the rest is read and dropped. A well-formed input
/// is a sentinel plus at most a few reports: far less than this.
pub(crate) const MAX_INPUT: usize = 64 * 1024;

/// A fatal signal the parent reports by name. `SIGABRT` is reported as [`Kind::Abort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FatalSignal {
    Segv,
    Bus,
    Ill,
    Fpe,
}

impl FatalSignal {
    pub(crate) const ALL: [FatalSignal; 4] = [
        FatalSignal::Segv,
        FatalSignal::Bus,
        FatalSignal::Ill,
        FatalSignal::Fpe,
    ];

    /// The conventional name, as on the wire and in counter names.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FatalSignal::Segv => "SIGSEGV",
            FatalSignal::Bus => "SIGBUS",
            FatalSignal::Ill => "SIGILL",
            FatalSignal::Fpe => "SIGFPE",
        }
    }

    fn from_name(name: &str) -> Option<FatalSignal> {
        FatalSignal::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What killed (or was about to kill) the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A Rust panic, reported by the panic hook.
    Panic,
    /// `SIGABRT`: `abort()`, `std::process::abort`, an allocation failure, a double panic.
    Abort,
    /// Another fatal signal.
    Signal(FatalSignal),
}

impl Kind {
    /// The counter name prefix for this kind: `crash/panic`, `crash/abort`,
    /// `crash/signal:SIGSEGV`…
    pub(crate) fn counter_prefix(self) -> &'static str {
        match self {
            Kind::Panic => "crash/panic",
            Kind::Abort => "crash/abort",
            Kind::Signal(FatalSignal::Segv) => "crash/signal:SIGSEGV",
            Kind::Signal(FatalSignal::Bus) => "crash/signal:SIGBUS",
            Kind::Signal(FatalSignal::Ill) => "crash/signal:SIGILL",
            Kind::Signal(FatalSignal::Fpe) => "crash/signal:SIGFPE",
        }
    }
}

/// One frame of the crashing thread's stack, in the parent's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The address of the instruction that faulted: look it up as is.
    Pc(usize),
    /// A return address: the call instruction is the one before it.
    Ret(usize),
    /// A frame in code outside the executable, which the child cannot symbolize.
    Outside,
}

/// A crash report as the child reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) kind: Kind,
    pub(crate) frames: Vec<Frame>,
}

/// What the parent sent, as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// Nothing at all: the parent never installed the monitor, or died first.
    Empty,
    /// Only the sentinel: the parent exited without a crash.
    Clean,
    /// A sentinel and at least one report; the first report is the crash (later ones,
    /// say from a forked copy of the parent, are checked and ignored).
    Crash { sentinel: usize, report: Report },
}

/// Why an input is not what a parent writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    NotAscii,
    NoFinalNewline,
    NoSentinel,
    BadLine,
    TooManyFrames,
    Unterminated,
}

/// Parses everything the parent wrote. Strict: any line that our parent would not
/// write makes the whole input malformed.
pub(crate) fn parse(data: &[u8]) -> Result<Input, Malformed> {
    if data.is_empty() {
        return Ok(Input::Empty);
    }
    let text = std::str::from_utf8(data).map_err(|_| Malformed::NotAscii)?;
    if !text.is_ascii() {
        return Err(Malformed::NotAscii);
    }
    let body = text.strip_suffix('\n').ok_or(Malformed::NoFinalNewline)?;
    let mut lines = body.split('\n');
    let sentinel = lines
        .next()
        .and_then(|l| l.strip_prefix("sentinel "))
        .and_then(parse_hex)
        .filter(|&s| s != 0)
        .ok_or(Malformed::NoSentinel)?;
    let mut first: Option<Report> = None;
    while let Some(line) = lines.next() {
        let kind = parse_kind(line).ok_or(Malformed::BadLine)?;
        let mut frames = Vec::new();
        loop {
            let line = lines.next().ok_or(Malformed::Unterminated)?;
            if line == "end" {
                break;
            }
            if frames.len() == MAX_FRAMES {
                return Err(Malformed::TooManyFrames);
            }
            frames.push(parse_frame(line).ok_or(Malformed::BadLine)?);
        }
        first.get_or_insert(Report { kind, frames });
    }
    Ok(match first {
        Some(report) => Input::Crash { sentinel, report },
        None => Input::Clean,
    })
}

fn parse_kind(line: &str) -> Option<Kind> {
    match line.strip_prefix("crash ")? {
        "panic" => Some(Kind::Panic),
        "abort" => Some(Kind::Abort),
        other => FatalSignal::from_name(other.strip_prefix("signal ")?).map(Kind::Signal),
    }
}

fn parse_frame(line: &str) -> Option<Frame> {
    if line == "outside" {
        return Some(Frame::Outside);
    }
    let (tag, hex) = line.split_once(' ')?;
    let addr = parse_hex(hex)?;
    match tag {
        "pc" => Some(Frame::Pc(addr)),
        "ret" => Some(Frame::Ret(addr)),
        _ => None,
    }
}

/// Lowercase hex without a prefix, as [`ReportBuf`] writes it; 1 to 16 digits.
fn parse_hex(s: &str) -> Option<usize> {
    let ok = !s.is_empty()
        && s.len() <= 2 * std::mem::size_of::<usize>()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        usize::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// Room for the longest line set the parent writes: a sentinel, or a `crash` line,
/// [`MAX_FRAMES`] frame lines and `end`.
const REPORT_CAP: usize = 512;

/// A report or sentinel line built in a fixed buffer: async-signal-safe (no allocation,
/// no locks, no panics; a line that would not fit is dropped, which cannot happen with
/// [`REPORT_CAP`] and at most [`MAX_FRAMES`] frames).
pub(crate) struct ReportBuf {
    bytes: [u8; REPORT_CAP],
    len: usize,
    frames: usize,
}

impl ReportBuf {
    /// The line the parent writes first: the address of [`sentinel`] in its process.
    pub(crate) fn sentinel(addr: usize) -> ReportBuf {
        let mut buf = ReportBuf::empty();
        buf.put(b"sentinel ");
        buf.put_hex(addr);
        buf.put(b"\n");
        buf
    }

    /// A report of `kind`; frames follow with [`ReportBuf::push`], then [`ReportBuf::finish`].
    pub(crate) fn crash(kind: Kind) -> ReportBuf {
        let mut buf = ReportBuf::empty();
        buf.put(b"crash ");
        match kind {
            Kind::Panic => buf.put(b"panic"),
            Kind::Abort => buf.put(b"abort"),
            Kind::Signal(signal) => {
                buf.put(b"signal ");
                buf.put(signal.name().as_bytes());
            }
        }
        buf.put(b"\n");
        buf
    }

    fn empty() -> ReportBuf {
        ReportBuf {
            bytes: [0; REPORT_CAP],
            len: 0,
            frames: 0,
        }
    }

    /// Appends a frame line; returns false (and appends nothing) once [`MAX_FRAMES`]
    /// are in.
    pub(crate) fn push(&mut self, frame: Frame) -> bool {
        if self.frames >= MAX_FRAMES {
            return false;
        }
        self.frames += 1;
        match frame {
            Frame::Pc(addr) => {
                self.put(b"pc ");
                self.put_hex(addr);
            }
            Frame::Ret(addr) => {
                self.put(b"ret ");
                self.put_hex(addr);
            }
            Frame::Outside => self.put(b"outside"),
        }
        self.put(b"\n");
        true
    }

    /// Ends the report with the `end` line.
    pub(crate) fn finish(&mut self) {
        self.put(b"end\n");
    }

    /// The bytes built so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    fn put(&mut self, data: &[u8]) {
        let end = self.len.saturating_add(data.len());
        if let Some(dst) = self.bytes.get_mut(self.len..end) {
            dst.copy_from_slice(data);
            self.len = end;
        }
    }

    fn put_hex(&mut self, value: usize) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
        let mut start = digits.len();
        let mut rest = value;
        loop {
            start -= 1;
            if let Some(d) = digits.get_mut(start) {
                *d = DIGITS[rest % 16];
            }
            rest /= 16;
            if rest == 0 || start == 0 {
                break;
            }
        }
        if let Some(hex) = digits.get(start..) {
            self.put(hex);
        }
    }
}

/// A function whose address both processes take: the difference between the parent's
/// and the child's value is the difference between their load addresses (they run the
/// same executable), which relocates the parent's addresses into the child's.
#[inline(never)]
pub(crate) fn sentinel() -> usize {
    sentinel as fn() -> usize as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: Kind, frames: &[Frame]) -> Vec<u8> {
        let mut out = ReportBuf::sentinel(0x5000).as_bytes().to_vec();
        let mut buf = ReportBuf::crash(kind);
        for &f in frames {
            buf.push(f);
        }
        buf.finish();
        out.extend_from_slice(buf.as_bytes());
        out
    }

    #[test]
    fn writes_the_documented_lines() {
        let bytes = report(
            Kind::Signal(FatalSignal::Segv),
            &[Frame::Pc(0x55d0c0a0f3e1), Frame::Ret(0x10), Frame::Outside],
        );
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "sentinel 5000\ncrash signal SIGSEGV\npc 55d0c0a0f3e1\nret 10\noutside\nend\n"
        );
        assert_eq!(ReportBuf::sentinel(0).as_bytes(), b"sentinel 0\n");
        assert_eq!(
            ReportBuf::sentinel(usize::MAX).as_bytes(),
            b"sentinel ffffffffffffffff\n"
        );
    }

    #[test]
    fn round_trips_every_kind() {
        let frames = [Frame::Ret(0xabc), Frame::Outside, Frame::Pc(1)];
        let kinds = [Kind::Panic, Kind::Abort]
            .into_iter()
            .chain(FatalSignal::ALL.map(Kind::Signal));
        for kind in kinds {
            let parsed = parse(&report(kind, &frames)).unwrap();
            let want = Report {
                kind,
                frames: frames.to_vec(),
            };
            assert_eq!(
                parsed,
                Input::Crash {
                    sentinel: 0x5000,
                    report: want
                }
            );
        }
    }

    #[test]
    fn caps_frames_at_sixteen() {
        let mut buf = ReportBuf::crash(Kind::Panic);
        for i in 0..100 {
            assert_eq!(buf.push(Frame::Ret(usize::MAX - i)), i < MAX_FRAMES);
        }
        buf.finish();
        let text = std::str::from_utf8(buf.as_bytes()).unwrap();
        assert_eq!(text.lines().count(), MAX_FRAMES + 2);
        assert!(text.ends_with("\nend\n"), "{text}");
    }

    #[test]
    fn sentinel_alone_is_clean_and_nothing_is_empty() {
        assert_eq!(parse(b"sentinel 1f\n"), Ok(Input::Clean));
        assert_eq!(parse(b""), Ok(Input::Empty));
    }

    #[test]
    fn first_report_wins() {
        let input = b"sentinel 10\ncrash panic\nret 20\nend\ncrash abort\nend\n";
        let Ok(Input::Crash { report, .. }) = parse(input) else {
            panic!("not a crash")
        };
        assert_eq!(
            report,
            Report {
                kind: Kind::Panic,
                frames: vec![Frame::Ret(0x20)]
            }
        );
    }

    #[test]
    fn rejects_what_a_parent_never_writes() {
        let cases: &[(&[u8], Malformed)] = &[
            (b"hello\nworld\n", Malformed::NoSentinel),
            (b"sentinel 0\n", Malformed::NoSentinel),
            (b"sentinel 0x10\n", Malformed::NoSentinel),
            (b"sentinel 10", Malformed::NoFinalNewline),
            (
                b"sentinel 10\ncrash panic\nret 1\n",
                Malformed::Unterminated,
            ),
            (
                b"sentinel 10\ncrash signal SIGKILL\nend\n",
                Malformed::BadLine,
            ),
            (
                b"sentinel 10\ncrash panic: my secret\nend\n",
                Malformed::BadLine,
            ),
            (
                b"sentinel 10\ncrash panic\nret XYZ\nend\n",
                Malformed::BadLine,
            ),
            (
                b"sentinel 10\ncrash panic\nret 11111111111111111\nend\n",
                Malformed::BadLine,
            ),
            (
                b"sentinel 10\ncrash panic\nend\ngarbage\n",
                Malformed::BadLine,
            ),
            (b"sentinel 10\n\xff\n", Malformed::NotAscii),
            (b"sentinel 10\n\xc3\xa9\n", Malformed::NotAscii),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse(input),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut long = b"sentinel 10\ncrash panic\n".to_vec();
        for _ in 0..=MAX_FRAMES {
            long.extend_from_slice(b"ret 1\n");
        }
        long.extend_from_slice(b"end\n");
        assert_eq!(parse(&long), Err(Malformed::TooManyFrames));
    }

    #[test]
    fn prefixes() {
        assert_eq!(Kind::Panic.counter_prefix(), "crash/panic");
        assert_eq!(Kind::Abort.counter_prefix(), "crash/abort");
        for s in FatalSignal::ALL {
            assert_eq!(
                Kind::Signal(s).counter_prefix(),
                format!("crash/signal:{}", s.name())
            );
        }
    }
}
