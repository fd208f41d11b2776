//! Little-endian integers at an offset of an executable's bytes, and bounded reads of
//! its tables, shared by the readers of its symbol table (ELF, PE, Mach-O). A read past
//! the end gives 0: the readers bound their tables and counts themselves, and a zero
//! there only ends a walk early.

// Each format uses the widths it needs, and only one format is read per platform.
#![allow(dead_code)]

/// Tables larger than this are not read (the largest Rust executables have a few
/// hundred thousand symbols of 16 to 24 bytes).
const MAX_TABLE: u64 = 256 << 20;

/// The `len` bytes at `offset`, read through `read_at(offset, buf)`. A table claiming
/// more than [`MAX_TABLE`] is an `InvalidData` error, before anything is allocated; one
/// that runs past the end of the file fails on its last byte, read first, so a lying
/// header costs one small read, not a buffer of the size it claims.
pub(crate) fn read_table(
    read_at: impl Fn(u64, &mut [u8]) -> std::io::Result<()>,
    offset: u64,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    if len > MAX_TABLE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "table too large",
        ));
    }
    if let Some(last) = len.checked_sub(1) {
        let at = offset
            .checked_add(last)
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        read_at(at, &mut [0u8; 1])?;
    }
    let mut buf = vec![0u8; len as usize];
    read_at(offset, &mut buf)?;
    Ok(buf)
}

fn bytes_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut value = [0u8; N];
    if let Some(slice) = at.checked_add(N).and_then(|end| bytes.get(at..end)) {
        value.copy_from_slice(slice);
    }
    value
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes_at(bytes, at))
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes_at(bytes, at))
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes_at(bytes, at))
}

/// For tests and fuzzing of the readers: `read_at(offset, buf)` over the bytes of a
/// file in memory, failing as a file would past its end.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn read_from(bytes: &[u8]) -> impl Fn(u64, &mut [u8]) -> std::io::Result<()> + '_ {
    move |offset, buf| {
        let at = usize::try_from(offset).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        let src = bytes
            .get(at..at.saturating_add(buf.len()))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_zero_past_the_end() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u16_at(&bytes, 0), 0x0201);
        assert_eq!(u32_at(&bytes, 1), 0x0504_0302);
        assert_eq!(u64_at(&bytes, 1), 0x0908_0706_0504_0302);
        assert_eq!(u64_at(&bytes, 2), 0);
        assert_eq!(u32_at(&bytes, usize::MAX), 0);
    }

    #[test]
    fn a_table_past_the_end_fails_before_its_buffer_is_allocated() {
        let file = [7u8; 100];
        let largest = std::cell::Cell::new(0);
        let read_at = |offset: u64, buf: &mut [u8]| {
            largest.set(largest.get().max(buf.len()));
            read_from(&file)(offset, buf)
        };
        // A lying header: a table of 200 MiB (under the bound) in a file of 100 bytes.
        let err = read_table(read_at, 10, 200 << 20).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(largest.get(), 1, "only its last byte was read");
        assert_eq!(read_table(read_at, 90, 10).unwrap(), [7u8; 10]);
        assert!(read_table(read_at, 91, 10).is_err());
        assert!(read_table(read_at, u64::MAX, 2).is_err());
        assert_eq!(read_table(read_at, 100, 0).unwrap(), []);
    }
}
