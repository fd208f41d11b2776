//! Reading a whole counter file: ours or one written by Go's x/telemetry.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;

use crate::layout::{self, HEADER_LEN_OFFSET, HEADER_PREFIX, NUM_HASH, PAGE_SIZE};
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
    /// The file is readable but some of its records are not: a hash chain leads to
    /// something that is not an intact record, or the file was cut short. What could
    /// be proven intact is in [`DamagedFile::intact`] (see [`DamagedFile`] for what is
    /// dropped).
    Damaged(Box<DamagedFile>),
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
            ParseError::Damaged(damaged) => damaged.fmt(f),
            ParseError::MissingDates => {
                f.write_str("corrupt counter file: no TimeBegin and no date in the file name")
            }
        }
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// For a damaged file, every count that could be proven intact (with the
    /// metadata); `None` for bytes that are not a counter file at all.
    pub fn intact(&self) -> Option<&CounterFile> {
        match self {
            ParseError::Damaged(damaged) => Some(&damaged.intact),
            _ => None,
        }
    }
}

/// A counter file with damaged records, and what survived.
///
/// A count is kept only when its record is reached from its hash-table slot through
/// records that are each proven intact: the record starts on a 32-byte boundary after
/// the hash table, lies wholly below both the allocation limit and the end of the
/// file, does not reach the end of its 16 KiB page, has a non-empty name that hashes
/// to the slot's chain, and its name has not been seen before. Every writer (Go's and
/// ours) places and links records that way, so no offset or length read from the file
/// is used before it is checked.
///
/// Dropped: the record a chain's bad pointer leads to and every record after it in
/// that chain (their only link runs through the bad record), and a repeated name
/// (a cycle, or a record linked twice) together with the rest of its chain. The other
/// chains, and the records of a cut chain before its bad pointer, are kept whole. Go's
/// parser rejects the whole file instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedFile {
    /// The metadata and every counter proven intact.
    pub intact: CounterFile,
    /// The first damage found.
    pub damage: Damage,
    /// How many of the 512 hash chains lost records.
    pub chains_cut: u32,
}

/// What is wrong with a [`DamagedFile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// A hash chain points at something that is not an intact record.
    BadRecord {
        /// The offset the bad pointer leads to.
        offset: u32,
    },
    /// The allocation limit points past the end of the file: it was truncated, and
    /// records that lay past the cut are gone.
    Truncated {
        /// The allocation limit.
        limit: u32,
        /// The file's length.
        len: usize,
    },
}

impl fmt::Display for DamagedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.damage {
            Damage::BadRecord { offset } => {
                write!(f, "corrupt counter file: bad record at offset {offset:#x}")?
            }
            Damage::Truncated { limit, len } => write!(
                f,
                "truncated counter file: records end at {limit} but the file has {len} bytes"
            )?,
        }
        let kept = self.intact.count.len() + self.intact.non_utf8.len();
        write!(
            f,
            " ({kept} counters intact; {} of {NUM_HASH} hash chains cut short)",
            self.chains_cut
        )
    }
}

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

impl ReadError {
    /// For a damaged file, every count that could be proven intact (see
    /// [`ParseError::intact`]).
    pub fn intact(&self) -> Option<&CounterFile> {
        match self {
            ReadError::Parse(err) => err.intact(),
            ReadError::Io(_) => None,
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
/// panic, read out of bounds or loop (golang/go#68311). A file whose records are
/// damaged is an error, [`ParseError::Damaged`], that still carries every count that
/// could be proven intact ([`ParseError::intact`]).
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

/// [`parse`] for bytes read from a file called `file_name` (its last component): like
/// [`read_file`], a file whose metadata lacks `TimeBegin` takes its dates from the name.
/// For callers that must read the file themselves (without following links, with a
/// bound).
pub fn parse_named(data: &[u8], file_name: Option<&str>) -> Result<CounterFile, ParseError> {
    parse_impl(data, file_name)
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

    // Records lie below the allocation limit (writers move it before writing) and,
    // in a file cut short, below its end. Go's parser reads what is left of a
    // truncated file as if it were whole; we keep what is provably there and say
    // the file is damaged.
    let records = Records {
        data,
        header_len,
        end: (limit as usize).min(data.len()),
    };
    let mut damage = (limit as usize > data.len()).then_some(Damage::Truncated {
        limit,
        len: data.len(),
    });
    let mut chains_cut = 0;
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
            let intact = records
                .intact(bucket, offset)
                .filter(|&(name, _, _)| steps <= max_records && raw_names.insert(name));
            let Some((name, value, next)) = intact else {
                // Everything from here on hangs off a record we cannot trust.
                damage.get_or_insert(Damage::BadRecord { offset });
                chains_cut += 1;
                break;
            };
            let name = stack_name::decode_bytes(name);
            let total = match String::from_utf8(name) {
                Ok(name) => file.count.entry(name).or_insert(0),
                Err(not_utf8) => file.non_utf8.entry(not_utf8.into_bytes()).or_insert(0),
            };
            *total = total.saturating_add(value);
            offset = next;
        }
    }
    match damage {
        None => Ok(file),
        Some(damage) => Err(ParseError::Damaged(Box::new(DamagedFile {
            intact: file,
            damage,
            chains_cut,
        }))),
    }
}

/// The record area of a file: where a writer may have placed a record.
struct Records<'a> {
    data: &'a [u8],
    header_len: u32,
    /// The end of the area: the allocation limit, or the end of a truncated file.
    end: usize,
}

impl<'a> Records<'a> {
    /// The record at `offset` in the chain of `bucket` (name, value and next offset)
    /// if it is one a writer could have linked there (see [`DamagedFile`]); the
    /// bytes are other processes' writing, so nothing in them is trusted unchecked.
    fn intact(&self, bucket: u32, offset: u32) -> Option<(&'a [u8], u64, u32)> {
        if offset < layout::table_end(self.header_len) || offset % layout::RECORD_UNIT != 0 {
            return None;
        }
        let start = offset as usize;
        let name_len =
            (load32(self.data, offset.checked_add(8)?)? & !layout::NAME_LEN_MARK) as usize;
        let name_end = start.checked_add(16)?.checked_add(name_len)?;
        let page = PAGE_SIZE as usize;
        if name_len == 0 || name_end > self.end || name_end / page != start / page {
            return None;
        }
        let name = self.data.get(start + 16..name_end)?;
        if layout::bucket(name) != bucket {
            return None;
        }
        let value = u64::from_le_bytes(self.data.get(start..start + 8)?.try_into().ok()?);
        let next = load32(self.data, offset + 12)?;
        Some((name, value, next))
    }
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

    /// Appends a record for `name` as a writer would: placed at the allocation limit,
    /// then linked at the head of its bucket's chain. Returns its offset.
    fn add_record(data: &mut Vec<u8>, name: &[u8], value: u64) -> usize {
        let h = header_len(data);
        let limit = u32::from_le_bytes(data[h as usize..h as usize + 4].try_into().unwrap());
        let (start, end) = layout::place(h, limit, name.len()).unwrap();
        let (start, end) = (start as usize, end as usize);
        if data.len() < end {
            data.resize(end.next_multiple_of(PAGE_SIZE as usize), 0);
        }
        let head = layout::bucket_offset(h, layout::bucket(name)) as usize;
        let old_head = u32::from_le_bytes(data[head..head + 4].try_into().unwrap());
        data[start..start + 8].copy_from_slice(&value.to_le_bytes());
        put32(data, start + 8, name.len() as u32 | layout::NAME_LEN_MARK);
        put32(data, start + 12, old_head);
        data[start + 16..start + 16 + name.len()].copy_from_slice(name);
        put32(data, h as usize, end as u32);
        put32(data, head, start as u32);
        start
    }

    fn header_len(data: &[u8]) -> u32 {
        u32::from_le_bytes(data[28..32].try_into().unwrap())
    }

    fn damaged(result: Result<CounterFile, ParseError>) -> DamagedFile {
        match result {
            Err(ParseError::Damaged(damaged)) => *damaged,
            other => panic!("not damaged: {other:?}"),
        }
    }

    /// Names `a0`…: `n` names whose records all fall in one hash chain, so that a
    /// test can damage the middle of a chain.
    fn names_in_one_chain(n: usize) -> Vec<Vec<u8>> {
        let bucket = layout::bucket(b"a0");
        (0..)
            .map(|i| format!("a{i}").into_bytes())
            .filter(|name| layout::bucket(name) == bucket)
            .take(n)
            .collect()
    }

    #[test]
    fn records_are_read_from_their_chains() {
        let mut data = minimal("TimeBegin: x\n\n");
        add_record(&mut data, b"a", 3);
        add_record(&mut data, b"b", 4);
        let f = parse(&data).unwrap();
        assert_eq!(f.count, [("a".into(), 3), ("b".into(), 4)].into());
    }

    /// A bad pointer costs only what hangs off it: the rest of that chain. Every
    /// other chain, and the records of the cut chain before the bad pointer, are kept
    /// and the file is reported damaged; the message still names the offset.
    #[test]
    fn a_bad_pointer_costs_only_the_rest_of_its_chain() {
        let chain = names_in_one_chain(3);
        let mut data = minimal("TimeBegin: x\n\n");
        add_record(&mut data, b"other", 7);
        let oldest = add_record(&mut data, &chain[0], 1);
        let middle = add_record(&mut data, &chain[1], 2);
        add_record(&mut data, &chain[2], 3); // the head: chain[2] -> chain[1] -> chain[0]
        let whole = parse(&data).unwrap();
        assert_eq!(whole.count.len(), 4);

        let wild = |target: u32| {
            let mut bad = data.clone();
            put32(&mut bad, middle + 12, target);
            damaged(parse(&bad))
        };
        let kept = |d: &DamagedFile| d.intact.count.keys().cloned().collect::<Vec<_>>();
        // The head and the middle stay; the oldest hangs off the bad pointer.
        let mut expect: Vec<String> = [&chain[2], &chain[1], &b"other".to_vec()]
            .iter()
            .map(|n| String::from_utf8(n.to_vec()).unwrap())
            .collect();
        expect.sort();
        let h = header_len(&data);
        for target in [
            1 << 30,                     // past the end of the file
            8,                           // inside the header
            layout::bucket_offset(h, 3), // inside the hash table
            oldest as u32 + 8,           // misaligned
            oldest as u32 + 32 * 64,     // past the allocation limit
            middle as u32,               // a cycle
        ] {
            let d = wild(target);
            assert_eq!(
                d.damage,
                Damage::BadRecord { offset: target },
                "{target:#x}"
            );
            assert_eq!(d.chains_cut, 1);
            assert_eq!(kept(&d), expect, "{target:#x}");
            assert_eq!(d.intact.meta("TimeBegin"), Some("x"));
            let message = ParseError::Damaged(Box::new(d)).to_string();
            assert!(
                message.starts_with(&format!(
                    "corrupt counter file: bad record at offset {target:#x}"
                )),
                "{message}"
            );
        }

        // The record itself damaged: an empty name, a name past the limit, a name
        // that belongs to another chain.
        let mut empty = data.clone();
        put32(&mut empty, middle + 8, layout::NAME_LEN_MARK);
        let mut long = data.clone();
        put32(&mut long, middle + 8, 0x00ff_ffff);
        let mut renamed = data.clone();
        renamed[middle + 16] = b'z';
        for (what, bad) in [("empty", empty), ("long", long), ("renamed", renamed)] {
            let d = damaged(parse(&bad));
            assert_eq!(
                d.damage,
                Damage::BadRecord {
                    offset: middle as u32
                },
                "{what}"
            );
            assert_eq!(d.intact.count.len(), 2, "{what}: {:?}", d.intact.count);
            assert_eq!(d.intact.count["other"], 7, "{what}");
        }
        // Through the public error too.
        let mut bad = data.clone();
        put32(&mut bad, middle + 8, layout::NAME_LEN_MARK);
        assert_eq!(parse(&bad).unwrap_err().intact().unwrap().count["other"], 7);
    }

    /// A head in the header, past the end, or one of two heads leading to one record:
    /// each chain is judged on its own.
    #[test]
    fn bad_heads_and_records_linked_twice() {
        let mut data = minimal("TimeBegin: x\n\n");
        let a = add_record(&mut data, b"a", 1);
        add_record(&mut data, b"b", 2);
        let h = header_len(&data);
        let mut into_header = data.clone();
        put32(&mut into_header, layout::bucket_offset(h, 0) as usize, 8);
        let mut past_end = data.clone();
        put32(&mut past_end, layout::bucket_offset(h, 0) as usize, 1 << 30);
        let mut twice = data.clone();
        // Another bucket's head leads to `a`, whose name does not belong there.
        let other = (layout::bucket(b"a") + 1) % NUM_HASH;
        put32(
            &mut twice,
            layout::bucket_offset(h, other) as usize,
            a as u32,
        );
        for bad in [into_header, past_end, twice] {
            let d = damaged(parse(&bad));
            assert_eq!(d.chains_cut, 1);
            assert_eq!(d.intact.count, [("a".into(), 1), ("b".into(), 2)].into());
        }
    }

    /// A file cut short: the records before the cut are kept, and the file is
    /// reported truncated.
    #[test]
    fn a_truncated_file_keeps_what_precedes_the_cut() {
        let mut data = minimal("TimeBegin: x\n\n");
        add_record(&mut data, b"early", 5);
        let long = vec![b'x'; 4000];
        for i in 0..8u8 {
            let mut name = long.clone();
            name.push(b'0' + i);
            add_record(&mut data, &name, 1);
        }
        let len = data.len();
        assert!(len > 2 * PAGE_SIZE as usize, "{len}");
        let h = header_len(&data) as usize;
        let limit = u32::from_le_bytes(data[h..h + 4].try_into().unwrap());
        data.truncate(PAGE_SIZE as usize);
        let d = damaged(parse(&data));
        assert_eq!(
            d.damage,
            Damage::Truncated {
                limit,
                len: PAGE_SIZE as usize
            }
        );
        assert_eq!(d.intact.count["early"], 5);
        assert!(d.intact.count.len() < 9, "{:?}", d.intact.count.keys());
        let message = ParseError::Damaged(Box::new(d)).to_string();
        assert!(
            message.starts_with("truncated counter file: records end at"),
            "{message}"
        );
    }

    /// Go programs can write names that are not UTF-8. Each stays its own counter
    /// (they were merged, summed, under one lossy `"\u{FFFD}"`), and a real U+FFFD is
    /// not confused with a bad byte.
    #[test]
    fn names_that_are_not_utf8_stay_distinct() {
        let mut data = minimal("TimeBegin: x\n\n");
        let names: [&[u8]; 5] = [
            b"go/\xff",
            b"go/\xfe",
            b"go/\xef\xbf\xbd",
            b"go/\xe2\x82",
            b"go/stack\nexample.com/p.f\n\".\xff",
        ];
        for (i, name) in names.iter().enumerate() {
            add_record(&mut data, name, i as u64 + 1);
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
