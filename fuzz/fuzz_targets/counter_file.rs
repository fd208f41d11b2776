//! The counter file parser, structure-aware: builds a valid v1 file (header,
//! metadata, hash table, records in their chains, the page-end rule) from the fuzzer's
//! bytes, then applies a few targeted lies — offsets past the end or inside the
//! header, cycles in a chain, a wrong limit or header length, names that cross a page,
//! truncation — so that deep states of the chain walk are reached instead of being
//! refused at the first word. The parser must return quickly, never panic, and what it
//! accepts must be self-consistent.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const PREFIX: &[u8] = b"# telemetry/counter file v1\n";
const NUM_HASH: u32 = 512;
const PAGE: u32 = 16 * 1024;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Extra metadata lines (`TimeBegin` is always written unless `drop_time_begin`).
    meta: Vec<(String, String)>,
    drop_time_begin: bool,
    records: Vec<(Vec<u8>, u64)>,
    /// Pages after the first (0-3).
    extra_pages: u8,
    lies: Vec<Lie>,
}

#[derive(Arbitrary, Debug)]
enum Lie {
    /// A chain head pointing anywhere.
    Head {
        bucket: u16,
        offset: u32,
    },
    /// A record's `next` pointing at another record (cycles) or anywhere.
    NextToRecord {
        from: u16,
        to: u16,
    },
    NextRaw {
        from: u16,
        offset: u32,
    },
    /// A record's name-length word.
    NameLen {
        record: u16,
        word: u32,
    },
    /// The allocation limit.
    Limit(u32),
    /// The header length word.
    HeaderLen(u32),
    /// One byte anywhere.
    Byte {
        at: u16,
        value: u8,
    },
    /// Cut the file short (or leave it ragged).
    Truncate(u16),
}

fn bucket(name: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in name {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    (h ^ (h >> 16)) % NUM_HASH
}

fn put(file: &mut [u8], at: usize, word: u32) {
    if let Some(slot) = file.get_mut(at..at + 4) {
        slot.copy_from_slice(&word.to_le_bytes());
    }
}

fn build(input: &Input) -> Vec<u8> {
    let mut meta = String::new();
    if !input.drop_time_begin {
        meta.push_str("TimeBegin: 2024-01-01T00:00:00Z\n");
    }
    for (k, v) in input.meta.iter().take(8) {
        meta.push_str(&format!("{k}: {v}\n"));
    }
    meta.push('\n');
    let meta = &meta.as_bytes()[..meta.len().min(600)];
    let header_len = (32 + meta.len()).next_multiple_of(32) as u32;
    let pages = 1 + u32::from(input.extra_pages % 4);
    let mut file = vec![0u8; (pages * PAGE) as usize];
    file[..PREFIX.len()].copy_from_slice(PREFIX);
    put(&mut file, 28, header_len);
    file[32..32 + meta.len()].copy_from_slice(meta);
    let table = header_len + 4;
    let mut next = table + 4 * NUM_HASH;
    let mut offsets = Vec::new();
    for (name, value) in input.records.iter().take(200) {
        let name = &name[..name.len().min(300)];
        let size = (16 + name.len() as u32).next_multiple_of(32);
        // Never across a page, never over a page's last word.
        if next / PAGE != (next + size + 4 - 1) / PAGE {
            next = (next / PAGE + 1) * PAGE;
        }
        let end = next + size;
        if end as usize > file.len() {
            break;
        }
        let at = next as usize;
        file[at..at + 8].copy_from_slice(&value.to_le_bytes());
        put(&mut file, at + 8, name.len() as u32 | 0xff00_0000);
        file[at + 16..at + 16 + name.len()].copy_from_slice(name);
        // Prepend to its chain.
        let head = (table + 4 * bucket(name)) as usize;
        let old = u32::from_le_bytes(file[head..head + 4].try_into().unwrap());
        put(&mut file, at + 12, old);
        put(&mut file, head, next);
        offsets.push(next);
        next = end;
    }
    put(&mut file, header_len as usize, next);
    let record = |i: u16| offsets.get(usize::from(i) % offsets.len().max(1)).copied();
    for lie in input.lies.iter().take(8) {
        match *lie {
            Lie::Head { bucket, offset } => put(
                &mut file,
                (table + 4 * (u32::from(bucket) % NUM_HASH)) as usize,
                offset,
            ),
            Lie::NextToRecord { from, to } => {
                if let (Some(from), Some(to)) = (record(from), record(to)) {
                    put(&mut file, from as usize + 12, to);
                }
            }
            Lie::NextRaw { from, offset } => {
                if let Some(from) = record(from) {
                    put(&mut file, from as usize + 12, offset);
                }
            }
            Lie::NameLen { record: r, word } => {
                if let Some(at) = record(r) {
                    put(&mut file, at as usize + 8, word);
                }
            }
            Lie::Limit(limit) => put(&mut file, header_len as usize, limit),
            Lie::HeaderLen(len) => put(&mut file, 28, len),
            Lie::Byte { at, value } => {
                let len = file.len().max(1);
                if let Some(byte) = file.get_mut(usize::from(at) % len) {
                    *byte = value;
                }
            }
            Lie::Truncate(len) => file.truncate(usize::from(len)),
        }
    }
    file
}

fuzz_target!(|input: Input| {
    let file = build(&input);
    if let Ok(parsed) = telemetry_counter::parse(&file) {
        assert!(parsed.meta.contains_key("TimeBegin"));
        let split = parsed.counters().count() + parsed.stacks().count();
        assert_eq!(split, parsed.count.len());
    }
});
