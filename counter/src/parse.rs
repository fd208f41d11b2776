//! Reading a whole counter file: ours or one written by Go's x/telemetry.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;

use crate::layout::{self, HASH_OFFSET, HEADER_LEN_OFFSET, HEADER_PREFIX, NUM_HASH, PAGE_SIZE};
use crate::stack_name;

/// The contents of a counter file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterFile {
    /// Metadata: `TimeBegin`, `TimeEnd`, `Program`, `Version`, `Toolchain`, `OS`,
    /// `Arch` in our files; Go's files have `GoVersion`, `GOOS`, `GOARCH` instead.
    pub meta: BTreeMap<String, String>,
    /// Every counter's value by name. Stack counter names are decoded: each frame
    /// carries its full path, without Go's ditto marks. Only names that are UTF-8;
    /// the others are in [`CounterFile::non_utf8`].
    pub count: BTreeMap<String, u64>,
    /// Counters whose names are not UTF-8 (Go programs can write them), by their
    /// bytes, decoded like [`CounterFile::count`]'s. Kept apart so that distinct
    /// names stay distinct instead of merging under a lossy `\u{FFFD}` spelling; no
    /// upload config can approve one (its names are JSON strings).
    pub non_utf8: BTreeMap<Vec<u8>, u64>,
}

impl CounterFile {
    /// The value of the metadata key `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(String::as_str)
    }

    /// Counters that are not stack counters.
    pub fn counters(&self) -> impl Iterator<Item = (&str, u64)> {
        self.count
            .iter()
            .filter(|(name, _)| !stack_name::is_stack(name))
            .map(|(name, &n)| (name.as_str(), n))
    }

    /// Every counter, UTF-8 or not, by the bytes of its name, in byte order: the
    /// order of Go's `Count` map when its JSON encoder sorts the keys.
    pub fn counts_by_bytes(&self) -> Vec<(&[u8], u64)> {
        let mut all: Vec<(&[u8], u64)> = self
            .count
            .iter()
            .map(|(name, &n)| (name.as_bytes(), n))
            .chain(self.non_utf8.iter().map(|(name, &n)| (name.as_slice(), n)))
            .collect();
        all.sort_unstable();
        all
    }

    /// Stack counters: names of the form `prefix\nframe\nframe…`.
    pub fn stacks(&self) -> impl Iterator<Item = (&str, u64)> {
        self.count
            .iter()
            .filter(|(name, _)| stack_name::is_stack(name))
            .map(|(name, &n)| (name.as_str(), n))
    }
}

/// Why bytes are not a valid v1 counter file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the 16 KiB minimum.
    TooShort {
        /// The length found.
        len: usize,
    },
    /// Does not begin with `# telemetry/counter file v1\n`.
    BadHeader,
    /// The header length word is out of range.
    BadHeaderLength(u32),
    /// A metadata line is not `Key: value`.
    BadMetadata,
    /// A hash chain points outside the file, at an empty record, or in a cycle.
    CorruptChain {
        /// The offset of the bad pointer's target.
        offset: u32,
    },
    /// The allocation limit points past the end of the file: it was truncated.
    LimitPastEnd {
        /// The allocation limit.
        limit: u32,
        /// The file's length.
        len: usize,
    },
    /// Metadata lacks `TimeBegin` and the file name does not supply a date.
    MissingDates,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooShort { len } => write!(
                f,
                "not a counter file: {len} bytes, shorter than the {PAGE_SIZE}-byte minimum"
            ),
            ParseError::BadHeader => f.write_str("not a v1 counter file: wrong header"),
            ParseError::BadHeaderLength(n) => write!(f, "corrupt counter file: header length {n}"),
            ParseError::BadMetadata => f.write_str("corrupt counter file: malformed metadata"),
            ParseError::CorruptChain { offset } => {
                write!(f, "corrupt counter file: bad record at offset {offset:#x}")
            }
            ParseError::LimitPastEnd { limit, len } => write!(
                f,
                "truncated counter file: records end at {limit} but the file has {len} bytes"
            ),
            ParseError::MissingDates => {
                f.write_str("corrupt counter file: no TimeBegin and no date in the file name")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Why a counter file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be read.
    Io(io::Error),
    /// The file is not a valid counter file.
    Parse(ParseError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(err) => err.fmt(f),
            ReadError::Parse(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(err) => Some(err),
            ReadError::Parse(err) => Some(err),
        }
    }
}

/// Parses a v1 counter file, as Go's `counter.Parse` does, decoding stack names.
///
/// Every offset is bounds-checked and every chain is bounded, so no input can make it
/// panic, read out of bounds or loop (golang/go#68311).
pub fn parse(data: &[u8]) -> Result<CounterFile, ParseError> {
    parse_impl(data, None)
}

/// Reads and parses the counter file at `path`. Like Go, a file whose metadata lacks
/// `TimeBegin` takes its dates from a `…-YYYY-MM-DD.v1.count` file name.
pub fn read_file(path: impl AsRef<Path>) -> Result<CounterFile, ReadError> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(ReadError::Io)?;
    let name = path.file_name().and_then(|n| n.to_str());
    parse_impl(&data, name).map_err(ReadError::Parse)
}

fn parse_impl(data: &[u8], file_name: Option<&str>) -> Result<CounterFile, ParseError> {
    if data.len() < PAGE_SIZE as usize {
        return Err(ParseError::TooShort { len: data.len() });
    }
    if !data.starts_with(HEADER_PREFIX) {
        return Err(ParseError::BadHeader);
    }
    let header_len = load32(data, HEADER_LEN_OFFSET as u32).ok_or(ParseError::BadHeader)?;
    if header_len < HEADER_LEN_OFFSET as u32 + 4 || header_len > PAGE_SIZE {
        return Err(ParseError::BadHeaderLength(header_len));
    }
    let limit = load32(data, header_len).ok_or(ParseError::BadHeaderLength(header_len))?;
    if limit as usize > data.len() {
        // Go's parser reads what is left; a truncated file is better reported than
        // half counted.
        return Err(ParseError::LimitPastEnd {
            limit,
            len: data.len(),
        });
    }
    let meta = &data[HEADER_LEN_OFFSET + 4..header_len as usize];
    let meta = meta.split(|&b| b == 0).next().unwrap_or_default();
    let mut file = CounterFile::default();
    for line in String::from_utf8_lossy(meta).split('\n') {
        if line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once(": ").ok_or(ParseError::BadMetadata)?;
        file.meta.insert(key.to_owned(), value.to_owned());
    }
    if !file.meta.contains_key("TimeBegin") {
        infer_dates(&mut file, file_name)?;
    }

    // A chain can hold at most one record per 32 bytes of file; a longer walk is a
    // cycle. Go detected cycles only through duplicate names, which costs a map; we
    // do both, so a cycle of distinct-looking records is also caught.
    let max_records = data.len() / layout::RECORD_UNIT as usize;
    let mut raw_names = std::collections::HashSet::new();
    for bucket in 0..NUM_HASH {
        let mut offset = load32(data, layout::bucket_offset(header_len, bucket))
            .ok_or(ParseError::BadHeaderLength(header_len))?;
        let mut steps = 0;
        while offset != 0 {
            steps += 1;
            let (name, value, next) = record(data, header_len, offset)
                .filter(|_| steps <= max_records)
                .ok_or(ParseError::CorruptChain { offset })?;
            if !raw_names.insert(name) {
                return Err(ParseError::CorruptChain { offset });
            }
            let name = stack_name::decode_bytes(name);
            let total = match String::from_utf8(name) {
                Ok(name) => file.count.entry(name).or_insert(0),
                Err(not_utf8) => file.non_utf8.entry(not_utf8.into_bytes()).or_insert(0),
            };
            *total = total.saturating_add(value);
            offset = next;
        }
    }
    Ok(file)
}

/// The record at `offset`: name, value and next offset, or `None` if it does not fit.
fn record(data: &[u8], header_len: u32, offset: u32) -> Option<(&[u8], u64, u32)> {
    if offset < header_len + HASH_OFFSET {
        return None;
    }
    let start = offset as usize;
    let name_len = (load32(data, offset.checked_add(8)?)? & !layout::NAME_LEN_MARK) as usize;
    let name = data.get(start + 16..start + 16 + name_len)?;
    if name.is_empty() {
        return None;
    }
    let value = u64::from_le_bytes(data.get(start..start + 8)?.try_into().ok()?);
    let next = load32(data, offset + 12)?;
    Some((name, value, next))
}

fn load32(data: &[u8], offset: u32) -> Option<u32> {
    let start = offset as usize;
    Some(u32::from_le_bytes(
        data.get(start..start + 4)?.try_into().ok()?,
    ))
}

fn infer_dates(file: &mut CounterFile, file_name: Option<&str>) -> Result<(), ParseError> {
    let day = file_name
        .and_then(|n| n.strip_suffix(".v1.count"))
        .and_then(|n| n.get(n.len().checked_sub(10)?..))
        .and_then(telemetry_internal::parse_date)
        .ok_or(ParseError::MissingDates)?;
    // Go assumes a one-day file here; so do we, so both parsers agree.
    let midnight = |d| format!("{}T00:00:00Z", telemetry_internal::format_date(d));
    file.meta.insert("TimeBegin".into(), midnight(day));
    let next = day.next_day().ok_or(ParseError::MissingDates)?;
    file.meta.insert("TimeEnd".into(), midnight(next));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(meta: &str) -> Vec<u8> {
        let mut data = layout::header(meta).unwrap();
        data.resize(PAGE_SIZE as usize, 0);
        data
    }

    fn put32(data: &mut [u8], offset: usize, v: u32) {
        data[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn empty_file() {
        let f = parse(&minimal("TimeBegin: x\nProgram: p\n\n")).unwrap();
        assert_eq!(f.meta("Program"), Some("p"));
        assert!(f.count.is_empty());
    }

    #[test]
    fn rejects_short_and_foreign() {
        assert_eq!(parse(b"hello"), Err(ParseError::TooShort { len: 5 }));
        assert_eq!(parse(&[b'x'; 16384]), Err(ParseError::BadHeader));
        let mut data = minimal("TimeBegin: x\n\n");
        put32(&mut data, 28, 20_000);
        assert_eq!(parse(&data), Err(ParseError::BadHeaderLength(20_000)));
        put32(&mut data, 28, 3);
        assert_eq!(parse(&data), Err(ParseError::BadHeaderLength(3)));
        let bad_meta = minimal("no colon here\n");
        assert_eq!(parse(&bad_meta), Err(ParseError::BadMetadata));
    }

    #[test]
    fn rejects_bad_pointers_and_cycles() {
        let data = minimal("TimeBegin: x\n\n");
        let h = u32::from_le_bytes(data[28..32].try_into().unwrap()) as usize;
        let rec = 4096usize;
        let mut with_record = data.clone();
        put32(&mut with_record, h + 4, rec as u32); // bucket 0 -> rec
        put32(&mut with_record, rec + 8, 1 | layout::NAME_LEN_MARK);
        with_record[rec + 16] = b'a';
        assert_eq!(parse(&with_record).unwrap().count["a"], 0);

        let mut past_end = with_record.clone();
        put32(&mut past_end, h + 4, 1 << 30);
        assert!(matches!(
            parse(&past_end),
            Err(ParseError::CorruptChain { .. })
        ));

        let mut into_header = with_record.clone();
        put32(&mut into_header, h + 4, 8);
        assert!(matches!(
            parse(&into_header),
            Err(ParseError::CorruptChain { .. })
        ));

        let mut cycle = with_record.clone();
        put32(&mut cycle, rec + 12, rec as u32);
        assert!(matches!(
            parse(&cycle),
            Err(ParseError::CorruptChain { .. })
        ));

        let mut empty_name = with_record.clone();
        put32(&mut empty_name, rec + 8, layout::NAME_LEN_MARK);
        assert!(matches!(
            parse(&empty_name),
            Err(ParseError::CorruptChain { .. })
        ));

        let mut name_past_end = with_record;
        put32(&mut name_past_end, rec + 8, 0x00ff_ffff);
        assert!(matches!(
            parse(&name_past_end),
            Err(ParseError::CorruptChain { .. })
        ));
    }

    /// Go programs can write names that are not UTF-8. Each stays its own counter
    /// (they were merged, summed, under one lossy `"\u{FFFD}"`), and a real U+FFFD is
    /// not confused with a bad byte.
    #[test]
    fn names_that_are_not_utf8_stay_distinct() {
        let mut data = minimal("TimeBegin: x\n\n");
        let h = u32::from_le_bytes(data[28..32].try_into().unwrap()) as usize;
        let names: [&[u8]; 5] = [
            b"go/\xff",
            b"go/\xfe",
            b"go/\xef\xbf\xbd",
            b"go/\xe2\x82",
            b"go/stack\nexample.com/p.f\n\".\xff",
        ];
        let mut off = 4096;
        for (i, name) in names.iter().enumerate() {
            // Every record in bucket 0, chained in order.
            let next = if i + 1 < names.len() { off + 64 } else { 0 };
            if i == 0 {
                put32(&mut data, h + 4, off as u32);
            }
            data[off..off + 8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            put32(
                &mut data,
                off + 8,
                name.len() as u32 | layout::NAME_LEN_MARK,
            );
            put32(&mut data, off + 12, next as u32);
            data[off + 16..off + 16 + name.len()].copy_from_slice(name);
            off += 64;
        }
        let f = parse(&data).unwrap();
        assert_eq!(f.count.len(), 1);
        assert_eq!(f.count["go/\u{fffd}"], 3);
        assert_eq!(f.non_utf8.len(), 4);
        assert_eq!(f.non_utf8[&b"go/\xff"[..]], 1);
        assert_eq!(f.non_utf8[&b"go/\xfe"[..]], 2);
        assert_eq!(f.non_utf8[&b"go/\xe2\x82"[..]], 4);
        // Ditto marks are expanded in bytes too.
        assert_eq!(
            f.non_utf8[&b"go/stack\nexample.com/p.f\nexample.com/p.\xff"[..]],
            5
        );
        let order: Vec<u64> = f.counts_by_bytes().iter().map(|&(_, n)| n).collect();
        assert_eq!(order, [5, 4, 3, 2, 1]);
    }

    #[test]
    fn dates_come_from_the_name_when_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp
            .path()
            .join("p@1-1.95.0-linux-x86_64-2026-11-20.v1.count");
        std::fs::write(&path, minimal("Program: p\n\n")).unwrap();
        let f = read_file(&path).unwrap();
        assert_eq!(f.meta("TimeBegin"), Some("2026-11-20T00:00:00Z"));
        assert_eq!(f.meta("TimeEnd"), Some("2026-11-21T00:00:00Z"));
        let nameless = tmp.path().join("x.v1.count");
        std::fs::write(&nameless, minimal("Program: p\n\n")).unwrap();
        assert!(matches!(
            read_file(&nameless),
            Err(ReadError::Parse(ParseError::MissingDates))
        ));
        assert_eq!(
            parse(&minimal("Program: p\n\n")),
            Err(ParseError::MissingDates)
        );
    }
}
