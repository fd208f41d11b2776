//! The v1 counter file layout, shared byte for byte with Go's
//! `golang.org/x/telemetry/internal/counter/file.go`.
//!
//! ```text
//! offset              size        content
//! 0                   28          "# telemetry/counter file v1\n"
//! 28                  4           header length H (u32), a multiple of 32
//! 32                  H - 32      metadata "Key: value\n" lines, then "\n", then NULs
//! H                   4           allocation limit (u32): end of the last record
//! H + 4               4 * 512     hash table: offset of each chain's first record
//! H + 2052 …          32 * k      records, 32-byte aligned, never across a page:
//!                                   +0  u64  value
//!                                   +8  u32  name length | 0xff000000
//!                                   +12 u32  offset of the next record in the chain
//!                                   +16      name bytes
//! each 16 KiB page    last 4      never part of a record: written to extend the file
//! ```
//! Everything is little-endian. A file is at least 16 KiB and a whole number of pages.
//! An offset of 0 ends a chain. A record whose `next` is `0xffffffff` lost a race to
//! a record of the same name and is not in any chain.

/// The file's first bytes.
pub(crate) const HEADER_PREFIX: &[u8] = b"# telemetry/counter file v1\n";
/// Offset of the header length word.
pub(crate) const HEADER_LEN_OFFSET: usize = 28;
/// Records are aligned to, and sized in, this many bytes.
pub(crate) const RECORD_UNIT: u32 = 32;
/// Longest metadata text.
pub(crate) const MAX_META_LEN: usize = 512;
/// Hash table size.
pub(crate) const NUM_HASH: u32 = 512;
/// Longest counter name, in bytes.
pub const MAX_NAME_LEN: usize = 4 * 1024;
/// Offset of the allocation limit from the end of the header.
pub(crate) const LIMIT_OFFSET: u32 = 0;
/// Offset of the hash table from the end of the header.
pub(crate) const HASH_OFFSET: u32 = 4;
/// Records never cross a page boundary; a file grows a page at a time.
pub(crate) const PAGE_SIZE: u32 = 16 * 1024;
/// A file is never shorter than this.
pub(crate) const MIN_FILE_LEN: u32 = 16 * 1024;
/// Marks the high byte of a record's name-length word.
pub(crate) const NAME_LEN_MARK: u32 = 0xff00_0000;
/// A record that lost a race for its name, and is in no chain.
pub(crate) const DEAD_NEXT: u32 = u32::MAX;

/// Rounds `x` up to a multiple of `unit`, a power of two. `None` on overflow.
pub(crate) fn round_up(x: u32, unit: u32) -> Option<u32> {
    debug_assert!(unit.is_power_of_two());
    Some(x.checked_add(unit - 1)? & !(unit - 1))
}

/// The header for `meta`: prefix, length word, metadata, zero padding to 32 bytes.
pub(crate) fn header(meta: &str) -> Option<Vec<u8>> {
    if meta.len() > MAX_META_LEN {
        return None;
    }
    let len = (HEADER_LEN_OFFSET + 4 + meta.len()).next_multiple_of(RECORD_UNIT as usize);
    let mut header = vec![0; len];
    header[..HEADER_PREFIX.len()].copy_from_slice(HEADER_PREFIX);
    header[HEADER_LEN_OFFSET..HEADER_LEN_OFFSET + 4].copy_from_slice(&(len as u32).to_le_bytes());
    header[HEADER_LEN_OFFSET + 4..HEADER_LEN_OFFSET + 4 + meta.len()]
        .copy_from_slice(meta.as_bytes());
    Some(header)
}

/// The hash bucket of `name`: FNV-1a, folded, modulo the table size. A fixed part of
/// the format.
pub(crate) fn bucket(name: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in name {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    (h ^ (h >> 16)) % NUM_HASH
}

/// The end of the hash table: where the first record may go.
pub(crate) fn table_end(header_len: u32) -> u32 {
    header_len + HASH_OFFSET + 4 * NUM_HASH
}

/// Offset of the hash table slot for `bucket`.
pub(crate) fn bucket_offset(header_len: u32, bucket: u32) -> u32 {
    header_len + HASH_OFFSET + bucket * 4
}

/// Where a record for a name of `name_len` bytes goes when the allocation limit is
/// `limit`: `(start, end)`. A record that would reach a page boundary moves to the
/// next page, which keeps each page's last 4 bytes free. (Go bumps a record that
/// would end exactly on the boundary too; so must we, to place records identically.)
pub(crate) fn place(header_len: u32, limit: u32, name_len: usize) -> Option<(u32, u32)> {
    let limit = if limit == 0 {
        header_len + HASH_OFFSET + 4 * NUM_HASH
    } else {
        limit
    };
    let size = round_up(u32::try_from(16 + name_len).ok()?, RECORD_UNIT)?;
    let mut start = round_up(limit, RECORD_UNIT)?;
    if start / PAGE_SIZE != start.checked_add(size)? / PAGE_SIZE {
        start = round_up(limit, PAGE_SIZE)?;
    }
    Some((start, start.checked_add(size)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_records() {
        let h = header("A: b\n\n").unwrap();
        assert_eq!(h.len(), 64);
        assert!(h.starts_with(HEADER_PREFIX));
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 64);
        assert_eq!(&h[32..38], b"A: b\n\n");
        assert!(header(&"x".repeat(MAX_META_LEN + 1)).is_none());
    }

    #[test]
    fn placement_skips_page_ends() {
        // The first record goes right after the hash table.
        assert_eq!(place(224, 0, 13), Some((2304, 2336)));
        // A record that would end exactly at a page boundary moves to the next page.
        assert_eq!(
            place(224, PAGE_SIZE - 32, 1),
            Some((PAGE_SIZE, PAGE_SIZE + 32))
        );
        assert_eq!(
            place(224, PAGE_SIZE - 64, 1),
            Some((PAGE_SIZE - 64, PAGE_SIZE - 32))
        );
        assert_eq!(place(224, u32::MAX - 10, 1), None);
    }
}
