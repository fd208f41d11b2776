//! The crash journal's layout and its one record format: written by a dying process
//! with plain atomic stores, read back (and distrusted) by the telemetry child.
//!
//! # The journal file, `local/crash.journal`
//! A fixed-size file of native-endian 64-bit words (it never leaves the machine):
//!
//! | bytes            | what                                                        |
//! |------------------|-------------------------------------------------------------|
//! | 0..8             | magic `rtcrash1`                                            |
//! | 8..16            | layout: slots, words per slot, format version               |
//! | 16..64           | zero                                                        |
//! | 64..192          | the 16 slots' state words: state (bits 0-7: free 0, writing 1, sealed 2, applying 3), pid (bits 32-63) |
//! | 192..16 576      | 16 slots of 128 words (1 KiB), one crash each               |
//! | 16 576..24 768   | the apply area: the one record being counted (see `journal`)|
//!
//! The state words sit together so that `start` learns whether crashes wait with one
//! `pread` of 192 bytes.
//!
//! # A slot
//! | word     | what                                                                 |
//! |----------|----------------------------------------------------------------------|
//! | 0        | zero                                                                 |
//! | 1        | CRC-32 (IEEE) of words 2..118, as bytes                              |
//! | 2        | kind (bits 0-7), frames (8-15), build ID length (16-23), identity length (24-39) |
//! | 3        | the link-time address of [`sentinel`]: the executable's identity when it has no build ID |
//! | 4..14    | the build ID, lowercase hex (at most 80 bytes)                       |
//! | 14..54   | the program: `name\nversion\ntoolchain` (at most 320 bytes)           |
//! | 54..118  | up to 32 frames, each a tag (1 pc, 2 return address, 0 outside) and a link-time address |
//!
//! A writer claims a free slot by a compare-and-swap of its state word (free →
//! writing, with its pid), fills words 2..118 with relaxed stores, stores the CRC, then
//! stores the state sealed with release ordering. Nothing else: no allocation, no
//! lock, no system call, so it runs in a signal handler or an exception filter. A
//! record that a reader cannot check (bad CRC, bad lengths, an unknown kind) is
//! malformed; nothing in it is ever part of a counter name but the fixed kind words
//! and the names of functions the reader finds itself.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use telemetry_internal::Program;

/// The most frames a record carries; naming cuts a stack to 16 after dropping the
/// panic machinery (`telemetry_counter::stack_name::finish_crash_stack`).
pub(crate) const MAX_FRAMES: usize = 32;
/// Slots in a journal: crashes that wait for a telemetry child at most.
pub(crate) const SLOTS: usize = 16;
/// Words per slot.
pub(crate) const SLOT_WORDS: usize = 128;
/// Where the slots' state words start, in words.
const STATE_BASE: usize = 8;
/// Words of the header (the state words included) before the first slot.
pub(crate) const HEADER_WORDS: usize = STATE_BASE + SLOTS;
/// The apply area's size in bytes.
pub(crate) const APPLY_BYTES: usize = 8192;
/// Where the apply area starts.
pub(crate) const APPLY_OFFSET: usize = (HEADER_WORDS + SLOTS * SLOT_WORDS) * 8;
/// The journal file's exact length.
pub(crate) const JOURNAL_LEN: usize = APPLY_OFFSET + APPLY_BYTES;
/// Bytes of the header and the slots.
pub(crate) const SLOTS_END: usize = APPLY_OFFSET;
/// Bytes of the header with the state words: what `start` reads to see if crashes
/// wait.
pub(crate) const HEADER_BYTES: usize = HEADER_WORDS * 8;

/// `rtcrash1`, the journal's first word.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"rtcrash1");
/// The second word: the layout, so that a journal of another layout is never read.
pub(crate) const LAYOUT: u64 = SLOTS as u64 | (SLOT_WORDS as u64) << 16 | 2 << 32;

/// Slot states (the low byte of word 0).
pub(crate) const FREE: u64 = 0;
pub(crate) const WRITING: u64 = 1;
pub(crate) const SEALED: u64 = 2;
pub(crate) const APPLYING: u64 = 3;

const W_CHECK: usize = 1;
const W_SHAPE: usize = 2;
const W_SENTINEL: usize = 3;
const W_BUILD_ID: usize = 4;
const BUILD_ID_WORDS: usize = 10;
const W_IDENTITY: usize = W_BUILD_ID + BUILD_ID_WORDS;
const IDENTITY_WORDS: usize = 40;
const W_FRAMES: usize = W_IDENTITY + IDENTITY_WORDS;
const W_END: usize = W_FRAMES + 2 * MAX_FRAMES;
const _: () = assert!(W_END <= SLOT_WORDS);

/// The longest build ID, in hex digits.
pub(crate) const MAX_BUILD_ID: usize = BUILD_ID_WORDS * 8;
/// The longest `name\nversion\ntoolchain`.
pub(crate) const MAX_IDENTITY: usize = IDENTITY_WORDS * 8;

/// A fatal signal, reported by name. `SIGABRT` is [`Kind::Abort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FatalSignal {
    Segv,
    Bus,
    Ill,
    Fpe,
}

impl FatalSignal {
    /// The conventional name, as in counter names (Unix names the signal a handler
    /// could not be installed for with it).
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            FatalSignal::Segv => "SIGSEGV",
            FatalSignal::Bus => "SIGBUS",
            FatalSignal::Ill => "SIGILL",
            FatalSignal::Fpe => "SIGFPE",
        }
    }
}

/// What killed (or was about to kill) the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A Rust panic, reported by the panic hook.
    Panic,
    /// `SIGABRT`: `abort()`, `std::process::abort`, an allocation failure.
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

    fn code(self) -> u64 {
        match self {
            Kind::Panic => 1,
            Kind::Abort => 2,
            Kind::Signal(FatalSignal::Segv) => 3,
            Kind::Signal(FatalSignal::Bus) => 4,
            Kind::Signal(FatalSignal::Ill) => 5,
            Kind::Signal(FatalSignal::Fpe) => 6,
        }
    }

    fn from_code(code: u64) -> Option<Kind> {
        Some(match code {
            1 => Kind::Panic,
            2 => Kind::Abort,
            3 => Kind::Signal(FatalSignal::Segv),
            4 => Kind::Signal(FatalSignal::Bus),
            5 => Kind::Signal(FatalSignal::Ill),
            6 => Kind::Signal(FatalSignal::Fpe),
            _ => return None,
        })
    }
}

/// One frame of the crashing thread's stack: in the crashing process's addresses
/// while it is recorded, link-time addresses in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The address of the instruction that faulted: look it up as is.
    Pc(usize),
    /// A return address: the call instruction is the one before it.
    Ret(usize),
    /// A frame in code outside the executable.
    Outside,
}

impl Frame {
    fn encode(self, bias: usize) -> (u64, u64) {
        match self {
            Frame::Outside => (0, 0),
            Frame::Pc(addr) => (1, addr.wrapping_sub(bias) as u64),
            Frame::Ret(addr) => (2, addr.wrapping_sub(bias) as u64),
        }
    }

    fn decode(tag: u64, addr: u64) -> Option<Frame> {
        let addr = usize::try_from(addr).ok()?;
        match tag {
            0 if addr == 0 => Some(Frame::Outside),
            1 => Some(Frame::Pc(addr)),
            2 => Some(Frame::Ret(addr)),
            _ => None,
        }
    }
}

/// A function of this crate whose address is stable within one executable: with no
/// build ID, the record's identity is its link-time address.
#[inline(never)]
pub(crate) fn sentinel() -> usize {
    sentinel as fn() -> usize as usize
}

/// What every record of this process carries beside its crash, prepared when crash
/// reporting is installed: words 3..54 of a slot, the lengths for word 2, and the
/// executable's bias. Atomics, so that a signal handler may read them.
struct Prepared {
    shape: AtomicU64,
    bias: AtomicUsize,
    words: [AtomicU64; W_FRAMES - W_SENTINEL],
}

static PREPARED: Prepared = Prepared {
    shape: AtomicU64::new(0),
    bias: AtomicUsize::new(0),
    words: [const { AtomicU64::new(0) }; W_FRAMES - W_SENTINEL],
};

/// Why the program cannot be written into a record.
#[derive(Debug)]
pub(crate) struct TooLong;

/// Prepares what every record of this process carries: the executable's build ID
/// (lowercase hex, or none) and `bias` (runtime minus link-time address), and the
/// program with its toolchain. Called once, before any record can be written.
pub(crate) fn prepare(
    build_id: Option<&str>,
    bias: usize,
    program: &Program,
    toolchain: &str,
) -> Result<(), TooLong> {
    let build_id = build_id.unwrap_or_default().as_bytes();
    let identity = format!("{}\n{}\n{toolchain}", program.name(), program.version());
    if build_id.len() > MAX_BUILD_ID || identity.len() > MAX_IDENTITY {
        return Err(TooLong);
    }
    let mut words = [0u64; W_FRAMES - W_SENTINEL];
    words[0] = sentinel().wrapping_sub(bias) as u64;
    put_bytes(
        &mut words[W_BUILD_ID - W_SENTINEL..W_IDENTITY - W_SENTINEL],
        build_id,
    );
    put_bytes(
        &mut words[W_IDENTITY - W_SENTINEL..W_FRAMES - W_SENTINEL],
        identity.as_bytes(),
    );
    for (slot, word) in PREPARED.words.iter().zip(words) {
        slot.store(word, Ordering::Relaxed);
    }
    PREPARED.bias.store(bias, Ordering::Relaxed);
    let shape = (build_id.len() as u64) << 16 | (identity.len() as u64) << 24;
    PREPARED.shape.store(shape, Ordering::Release);
    Ok(())
}

fn put_bytes(words: &mut [u64], bytes: &[u8]) {
    for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(buf);
    }
}

/// CRC-32 (IEEE, reflected: zlib's and `crc32fast`'s) a byte at a time, from a table
/// computed at compile time (read-only data, nothing to initialize, so the writer may
/// use it in a signal handler; eight times fewer steps than a bit at a time, which
/// the telemetry child pays for every slot it reads). Writer and readers share it,
/// so the check costs no dependency.
pub(crate) struct Crc(u32);

/// The CRC of each byte value, one bit at a time.
static CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

impl Crc {
    pub(crate) fn new() -> Crc {
        Crc(!0)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = CRC_TABLE[usize::from(self.0 as u8 ^ byte)] ^ (self.0 >> 8);
        }
    }

    fn word(&mut self, word: u64) {
        self.bytes(&word.to_ne_bytes());
    }

    pub(crate) fn finish(self) -> u32 {
        !self.0
    }
}

/// Writes a record of a crash of `kind` with `frames` (this process's addresses) by
/// process `pid` into the first free slot of `journal` (the mapped file's words).
/// Returns false if every slot is taken (the crash is lost) or the journal is not
/// one. Async-signal-safe: atomic loads and stores on memory that stays mapped.
pub(crate) fn write(journal: &[AtomicU64], pid: u32, kind: Kind, frames: &[Frame]) -> bool {
    let owner = u64::from(pid) << 32;
    let Some((state, slot)) = (0..SLOTS).find_map(|i| {
        let start = HEADER_WORDS + i * SLOT_WORDS;
        let slot = journal.get(start..start + SLOT_WORDS)?;
        let state = journal.get(STATE_BASE + i)?;
        state
            .compare_exchange(FREE, WRITING | owner, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some((state, slot))
    }) else {
        return false;
    };
    let frames = frames.get(..MAX_FRAMES).unwrap_or(frames);
    let bias = PREPARED.bias.load(Ordering::Relaxed);
    let mut crc = Crc::new();
    let mut put = |index: usize, word: u64| {
        slot[index].store(word, Ordering::Relaxed);
        crc.word(word);
    };
    put(
        W_SHAPE,
        PREPARED.shape.load(Ordering::Acquire) | kind.code() | (frames.len() as u64) << 8,
    );
    for (index, word) in (W_SENTINEL..W_FRAMES).zip(&PREPARED.words) {
        put(index, word.load(Ordering::Relaxed));
    }
    for i in 0..MAX_FRAMES {
        let (tag, addr) = frames.get(i).map_or((0, 0), |f| f.encode(bias));
        put(W_FRAMES + 2 * i, tag);
        put(W_FRAMES + 2 * i + 1, addr);
    }
    slot[W_CHECK].store(u64::from(crc.finish()), Ordering::Relaxed);
    state.store(SEALED | owner, Ordering::Release);
    true
}

/// A slot's state and the pid of the process that claimed it.
pub(crate) fn state_of(word: u64) -> (u64, u32) {
    (word & 0xff, (word >> 32) as u32)
}

/// A record as the reader found it, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) kind: Kind,
    /// Link-time addresses.
    pub(crate) frames: Vec<Frame>,
    /// Lowercase hex, or empty when the executable had none.
    pub(crate) build_id: String,
    /// The link-time address of [`sentinel`] in the crashed executable.
    pub(crate) sentinel: usize,
    pub(crate) program: Program,
    pub(crate) toolchain: String,
}

/// Why a sealed slot is not a record this code writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    Checksum,
    Shape,
    Text,
    Frame,
}

/// Reads one slot (its [`SLOT_WORDS`] words); strict: anything a writer of this
/// layout would not write makes it malformed.
pub(crate) fn parse(slot: &[u64]) -> Result<Record, Malformed> {
    let words = slot.get(..W_END).ok_or(Malformed::Shape)?;
    let mut crc = Crc::new();
    for &word in &words[W_SHAPE..W_END] {
        crc.word(word);
    }
    if u64::from(crc.finish()) != words[W_CHECK] {
        return Err(Malformed::Checksum);
    }
    let shape = words[W_SHAPE];
    let kind = Kind::from_code(shape & 0xff).ok_or(Malformed::Shape)?;
    let frame_count = ((shape >> 8) & 0xff) as usize;
    let build_id_len = ((shape >> 16) & 0xff) as usize;
    let identity_len = ((shape >> 24) & 0xffff) as usize;
    if shape >> 40 != 0
        || frame_count > MAX_FRAMES
        || build_id_len > MAX_BUILD_ID
        || identity_len > MAX_IDENTITY
    {
        return Err(Malformed::Shape);
    }
    let bytes = |range: std::ops::Range<usize>, len: usize| -> Result<String, Malformed> {
        let all: Vec<u8> = words[range].iter().flat_map(|w| w.to_ne_bytes()).collect();
        let (text, rest) = all.split_at(len);
        if rest.iter().any(|&b| b != 0) || !text.is_ascii() {
            return Err(Malformed::Text);
        }
        String::from_utf8(text.to_vec()).map_err(|_| Malformed::Text)
    };
    let build_id = bytes(W_BUILD_ID..W_IDENTITY, build_id_len)?;
    if !build_id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Malformed::Text);
    }
    let identity = bytes(W_IDENTITY..W_FRAMES, identity_len)?;
    let mut parts = identity.split('\n');
    let (Some(name), Some(version), Some(toolchain), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed::Text);
    };
    let program = Program::owned(name, version);
    if !program.is_valid() || toolchain.is_empty() || toolchain.len() > 64 {
        return Err(Malformed::Text);
    }
    let mut frames = Vec::with_capacity(frame_count);
    for i in 0..MAX_FRAMES {
        let (tag, addr) = (words[W_FRAMES + 2 * i], words[W_FRAMES + 2 * i + 1]);
        if i < frame_count {
            frames.push(Frame::decode(tag, addr).ok_or(Malformed::Frame)?);
        } else if tag != 0 || addr != 0 {
            return Err(Malformed::Frame);
        }
    }
    Ok(Record {
        kind,
        frames,
        build_id,
        sentinel: usize::try_from(words[W_SENTINEL]).map_err(|_| Malformed::Shape)?,
        program,
        toolchain: toolchain.to_owned(),
    })
}

/// A journal's words from its bytes (native endian), as many whole words as there are.
pub(crate) fn words_of(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

/// Whether the header words say this is a journal of our layout.
pub(crate) fn header_ok(words: &[u64]) -> bool {
    words.first() == Some(&MAGIC) && words.get(1) == Some(&LAYOUT)
}

/// A new journal: the header, every slot free, an empty apply area.
pub(crate) fn empty_journal() -> Vec<u8> {
    let mut bytes = vec![0u8; JOURNAL_LEN];
    bytes[0..8].copy_from_slice(&MAGIC.to_ne_bytes());
    bytes[8..16].copy_from_slice(&LAYOUT.to_ne_bytes());
    bytes
}

/// Where slot `index`'s state word is, in bytes from the start of the file.
pub(crate) fn state_offset(index: usize) -> u64 {
    ((STATE_BASE + index) * 8) as u64
}

/// Where slot `index`'s record starts, in bytes from the start of the file.
pub(crate) fn slot_offset(index: usize) -> u64 {
    ((HEADER_WORDS + index * SLOT_WORDS) * 8) as u64
}

/// Slot `index`'s state word among a journal's `words` (0, free, if they end first).
pub(crate) fn state_in(words: &[u64], index: usize) -> u64 {
    words.get(STATE_BASE + index).copied().unwrap_or(FREE)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The prepared part is process-wide: tests that set it take turns.
    pub(crate) static PREPARED_BY_TEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn journal() -> Vec<AtomicU64> {
        words_of(&empty_journal())
            .into_iter()
            .map(AtomicU64::new)
            .collect()
    }

    fn slot(journal: &[AtomicU64], index: usize) -> Vec<u64> {
        let start = HEADER_WORDS + index * SLOT_WORDS;
        journal[start..start + SLOT_WORDS]
            .iter()
            .map(|w| w.load(Ordering::SeqCst))
            .collect()
    }

    #[test]
    fn the_crc_is_the_standard_crc_32() {
        let mut ours = Crc::new();
        let mut theirs = crc32fast::Hasher::new();
        for word in [0u64, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
            ours.word(word);
            theirs.update(&word.to_ne_bytes());
        }
        assert_eq!(ours.finish(), theirs.finalize());
        let mut check = Crc::new();
        check.bytes(b"123456789");
        assert_eq!(check.finish(), 0xcbf4_3926);
    }

    #[test]
    fn records_round_trip_and_fill_the_slots() {
        let _turn = PREPARED_BY_TEST.lock().unwrap_or_else(|e| e.into_inner());
        let program = Program::new("mytool", "1.2.3");
        prepare(
            Some("00112233445566778899aabbccddeeff01234567"),
            0x1000,
            &program,
            "1.95.0",
        )
        .expect("fits");
        let journal = journal();
        let frames = [Frame::Pc(0x5010), Frame::Outside, Frame::Ret(0x6020)];
        for i in 0..SLOTS {
            assert!(
                write(&journal, 40 + i as u32, Kind::Abort, &frames),
                "slot {i}"
            );
        }
        assert!(!write(&journal, 99, Kind::Abort, &frames), "full");
        let words = slot(&journal, 3);
        assert_eq!(
            state_of(journal[STATE_BASE + 3].load(Ordering::SeqCst)),
            (SEALED, 43)
        );
        let record = parse(&words).expect("a valid record");
        assert_eq!(record.kind, Kind::Abort);
        assert_eq!(
            record.frames,
            [Frame::Pc(0x4010), Frame::Outside, Frame::Ret(0x5020)]
        );
        assert_eq!(record.build_id, "00112233445566778899aabbccddeeff01234567");
        assert_eq!(record.program, program);
        assert_eq!(record.toolchain, "1.95.0");
        assert_eq!(record.sentinel, sentinel() - 0x1000);
    }

    #[test]
    fn any_flipped_bit_is_malformed() {
        let _turn = PREPARED_BY_TEST.lock().unwrap_or_else(|e| e.into_inner());
        prepare(None, 0, &Program::new("t", "1"), "dev").expect("fits");
        let journal = journal();
        assert!(write(
            &journal,
            1,
            Kind::Signal(FatalSignal::Bus),
            &[Frame::Ret(8)]
        ));
        let good = slot(&journal, 0);
        assert!(parse(&good).is_ok());
        for word in 1..W_END {
            let mut bad = good.clone();
            bad[word] ^= 1 << (word % 64);
            assert!(parse(&bad).is_err(), "word {word}");
        }
        assert!(parse(&good[..10]).is_err());
        assert!(parse(&[0; SLOT_WORDS]).is_err());
    }

    #[test]
    fn a_program_too_long_for_a_record_is_refused() {
        let _turn = PREPARED_BY_TEST.lock().unwrap_or_else(|e| e.into_inner());
        let long = "v".repeat(200);
        let program = Program::owned("x".repeat(128), long);
        assert!(prepare(None, 0, &program, "1.95.0").is_err());
        assert!(prepare(Some(&"a".repeat(82)), 0, &Program::new("t", "1"), "dev").is_err());
    }
}
