//! Naming code addresses in the child's own executable: the ELF symbol table.
//!
//! A frame is named `function+0xoffset`, where the offset is from the function's first
//! instruction. Neither `dladdr` (it sees only the dynamic symbol table, which holds
//! almost none of a Rust executable's functions) nor `backtrace::Symbol::addr` (the
//! address looked up, not the function's start) gives that start, so we read the
//! symbol table (`.symtab`, else `.dynsym`) of the running executable ourselves: every
//! `STT_FUNC` symbol with its value and size. The symbol containing an address is its
//! outermost (non-inlined) function, the same function `StackCounter` names, so crash
//! frames and stack counters name code alike.
//!
//! Only 64-bit little-endian ELF is read; elsewhere, or in a stripped executable, no
//! frame has a name and crashes count as `crash/no-frames`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::little_endian::{read_table, u16_at, u32_at, u64_at};
use crate::naming::Symbolize;

/// One function symbol: its link-time address, size and name offset in `strtab`.
#[derive(Clone, Copy, Debug)]
struct Func {
    start: u64,
    size: u64,
    name: u32,
}

/// The function symbols of an ELF file, and where that file is loaded.
pub(crate) struct ElfSymbols {
    funcs: Vec<Func>,
    strtab: Vec<u8>,
    /// Runtime address minus link-time address (zero for a non-PIE executable).
    bias: usize,
}

const SHT_SYMTAB: u32 = 2;
const STT_FUNC: u8 = 2;

impl ElfSymbols {
    /// The symbols of the running executable, loaded at `bias`.
    pub(crate) fn current_exe(bias: usize) -> Option<ElfSymbols> {
        // /proc/self/exe opens the running file even after it was replaced or deleted
        // (an upgrade while the program ran), where its path would no longer lead.
        let file = File::open("/proc/self/exe")
            .or_else(|_| std::env::current_exe().and_then(File::open))
            .ok()?;
        ElfSymbols::read(&file, bias).ok().flatten()
    }

    /// Reads the function symbols of an ELF file; `Ok(None)` if it is not 64-bit
    /// little-endian ELF or has no symbol table.
    fn read(file: &File, bias: usize) -> io::Result<Option<ElfSymbols>> {
        ElfSymbols::read_with(|offset, buf| file.read_exact_at(buf, offset), bias)
    }

    /// [`ElfSymbols::read`] through `read_at(offset, buf)`, which fills `buf` from
    /// `offset` or fails.
    pub(crate) fn read_with(
        read_at: impl Fn(u64, &mut [u8]) -> io::Result<()>,
        bias: usize,
    ) -> io::Result<Option<ElfSymbols>> {
        let mut ehdr = [0u8; 64];
        read_at(0, &mut ehdr)?;
        // Magic, ELFCLASS64, ELFDATA2LSB.
        if ehdr[..4] != *b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
            return Ok(None);
        }
        let shoff = u64_at(&ehdr, 0x28);
        let shentsize = u64::from(u16_at(&ehdr, 0x3a));
        let shnum = u64::from(u16_at(&ehdr, 0x3c));
        if shentsize < 64 || shnum == 0 {
            return Ok(None);
        }
        let shdrs = read_table(&read_at, shoff, shentsize * shnum)?;
        let section = |i: u64| -> Option<&[u8]> {
            let at = usize::try_from(i.checked_mul(shentsize)?).ok()?;
            shdrs.get(at..at.checked_add(64)?)
        };
        let find = |kind: u32| {
            (0..shnum)
                .filter_map(section)
                .find(|s| u32_at(s, 4) == kind)
        };
        // Only the full symbol table: a stripped executable's dynamic symbols name a
        // handful of exported functions, and would give most frames a wrong name;
        // without it the stack is counted raw, for the collector.
        let Some(symtab) = find(SHT_SYMTAB) else {
            return Ok(None);
        };
        let Some(strsec) = section(u64::from(u32_at(symtab, 40))) else {
            return Ok(None);
        };
        let read_section = |s: &[u8]| read_table(&read_at, u64_at(s, 24), u64_at(s, 32));
        let symbols = read_section(symtab)?;
        let strtab = read_section(strsec)?;
        let mut funcs: Vec<Func> = symbols
            .chunks_exact(24)
            .filter(|sym| sym[4] & 0xf == STT_FUNC && u16_at(sym, 6) != 0)
            .map(|sym| Func {
                start: u64_at(sym, 8),
                size: u64_at(sym, 16),
                name: u32_at(sym, 0),
            })
            .filter(|f| f.start != 0 && f.size != 0)
            .collect();
        funcs.sort_by_key(|f| (f.start, f.name));
        Ok(Some(ElfSymbols {
            funcs,
            strtab,
            bias,
        }))
    }

    fn name(&self, func: &Func) -> Option<&[u8]> {
        let rest = self.strtab.get(func.name as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        rest.get(..end).filter(|n| !n.is_empty())
    }
}

impl Symbolize for ElfSymbols {
    fn function(&self, addr: usize) -> Option<(String, usize)> {
        let link = addr.checked_sub(self.bias)? as u64;
        let after = self.funcs.partition_point(|f| f.start <= link);
        let func = self.funcs.get(after.checked_sub(1)?)?;
        if link - func.start >= func.size {
            return None;
        }
        let name = crate::naming::demangle(self.name(func)?);
        let start = usize::try_from(func.start).ok()?.checked_add(self.bias)?;
        Some((name, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn known_function(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(31).rotate_left(7)
    }

    fn own_symbols() -> ElfSymbols {
        let bias = telemetry_internal::image::main_image()
            .expect("exe image")
            .bias;
        ElfSymbols::current_exe(bias).expect("own symbol table")
    }

    #[test]
    fn names_own_functions_from_their_start() {
        let symbols = own_symbols();
        let addr = known_function as fn(u64) -> u64 as usize;
        assert_eq!(known_function(1), 31u64.rotate_left(7));
        let (name, start) = symbols
            .function(addr + 1)
            .expect("known_function is in .symtab");
        assert_eq!(
            name,
            "telemetry_crashmonitor::symbols::tests::known_function"
        );
        assert_eq!(start, addr);
        let (name, _) = symbols
            .function(crate::record::sentinel())
            .expect("sentinel");
        assert_eq!(name, "telemetry_crashmonitor::record::sentinel");
    }

    #[test]
    fn nothing_outside_the_executable() {
        let symbols = own_symbols();
        assert_eq!(symbols.function(0), None);
        assert_eq!(symbols.function(usize::MAX), None);
    }

    #[test]
    fn not_elf_is_none() {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &[0u8; 128]).unwrap();
        assert!(ElfSymbols::read(&file, 0).unwrap().is_none());
    }

    /// A header claiming 65 535 section headers of 65 535 bytes each is refused before
    /// anything is allocated (believing it would allocate 4 GiB before a read could fail).
    #[test]
    fn lying_section_header_count_is_refused_unallocated() {
        let mut header = [0u8; 64];
        header[..6].copy_from_slice(b"\x7fELF\x02\x01");
        header[0x28..0x30].copy_from_slice(&64u64.to_le_bytes());
        header[0x3a..0x3c].copy_from_slice(&u16::MAX.to_le_bytes());
        header[0x3c..0x3e].copy_from_slice(&u16::MAX.to_le_bytes());
        let header: &'static [u8] = Box::leak(Box::new(header));
        let err = ElfSymbols::read_with(crate::little_endian::read_from(header), 0)
            .err()
            .expect("a table over the bound is an error");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
