//! Little-endian integers at an offset of an executable's bytes, shared by the readers
//! of its symbol table (ELF, PE, Mach-O). A read past the end gives 0: the readers
//! bound their tables and counts themselves, and a zero there only ends a walk early.

// Each format uses the widths it needs, and only one format is read per platform.
#![allow(dead_code)]

fn le<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut value = [0u8; N];
    if let Some(slice) = at.checked_add(N).and_then(|end| bytes.get(at..end)) {
        value.copy_from_slice(slice);
    }
    value
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(le(bytes, at))
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(le(bytes, at))
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(le(bytes, at))
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
}
