//! Naming code addresses in the child's own executable on Windows: the PE file's COFF
//! symbol table, or its `.pdata` function table when there is none.
//!
//! A frame is named `function+0xoffset` from the start of the function, as from ELF
//! symbols on Linux (`symbols.rs`). Executables linked by GNU `ld` (the `*-windows-gnu`
//! targets) keep a COFF symbol table unless stripped: 18-byte records after the
//! sections, names of more than eight bytes in the string table that follows them.
//! COFF symbols have no size, so a function ends where the next one in its section
//! begins. Function symbols are those of type `0x20` (`DTYPE_FUNCTION`); a table that
//! marks none is read as "every external or static symbol in a code section".
//!
//! **MSVC builds** keep their symbols in a separate PDB file, which is not read: the
//! executable itself has no names. What every x86_64 and aarch64 executable does carry
//! is `.pdata`, the table of function starts the system unwinder uses. So without a
//! symbol table each frame is named by its function's address relative to the image,
//! `rva:0x1a2b0+0x1c`: still only code, never data, and the vendor — who has the PDB
//! of the build named by the counter file's program and version — can name it. An
//! executable with neither (32-bit, packed) names no frames: `crash/no-frames`.
//!
//! The parser reads the file at offsets through a callback, so it runs on any bytes
//! (the tests read a committed mingw executable on every platform).

use std::io;

use crate::little_endian::{read_table, u16_at, u32_at};
use crate::naming::Symbolize;

/// `IMAGE_SCN_CNT_CODE` and `IMAGE_SCN_MEM_EXECUTE`.
const SCN_CODE: u32 = 0x0000_0020;
const SCN_EXECUTE: u32 = 0x2000_0000;
const SYMBOL_SIZE: usize = 18;
const TYPE_FUNCTION: u16 = 0x20;
const CLASS_EXTERNAL: u8 = 2;
const CLASS_STATIC: u8 = 3;
const MACHINE_AMD64: u16 = 0x8664;
const MACHINE_ARM64: u16 = 0xAA64;

/// One function: its address relative to the image, its end, and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Func {
    rva: u32,
    end: u32,
    /// Empty for functions known only from `.pdata`.
    name: String,
}

/// The functions of a PE executable, and where it is loaded.
pub(crate) struct PeSymbols {
    funcs: Vec<Func>,
    /// Where the image is loaded in this process: RVAs count from here.
    base: usize,
}

#[derive(Clone, Copy)]
struct Section {
    rva: u32,
    size: u32,
    file_offset: u32,
    file_size: u32,
    characteristics: u32,
}

impl Section {
    fn is_code(&self) -> bool {
        self.characteristics & (SCN_CODE | SCN_EXECUTE) != 0
    }
}

impl PeSymbols {
    /// The functions of the running executable, loaded at `base`.
    #[cfg(windows)]
    pub(crate) fn current_exe(base: usize) -> Option<PeSymbols> {
        use std::os::windows::fs::FileExt;
        let file = std::fs::File::open(std::env::current_exe().ok()?).ok()?;
        let read_at = |offset: u64, buf: &mut [u8]| -> io::Result<()> {
            let mut done = 0;
            while done < buf.len() {
                let n = file.seek_read(&mut buf[done..], offset + done as u64)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        };
        PeSymbols::read(read_at, base).ok().flatten()
    }

    /// Reads the functions of a 64-bit PE file through `read_at(offset, buf)`, which
    /// fills `buf` from `offset` or fails; `Ok(None)` if it is not such a file or names
    /// no function at all.
    pub(crate) fn read(
        read_at: impl Fn(u64, &mut [u8]) -> io::Result<()>,
        base: usize,
    ) -> io::Result<Option<PeSymbols>> {
        let read_vec = |offset: u64, len: usize| read_table(&read_at, offset, len as u64);
        let dos = read_vec(0, 64)?;
        if dos.get(..2) != Some(b"MZ") {
            return Ok(None);
        }
        let pe = u64::from(u32_at(&dos, 0x3c));
        let head = read_vec(pe, 24)?;
        if head.get(..4) != Some(b"PE\0\0") {
            return Ok(None);
        }
        let machine = u16_at(&head, 4);
        let sections = usize::from(u16_at(&head, 6));
        let symbol_table = u64::from(u32_at(&head, 12));
        let symbols = u32_at(&head, 16) as usize;
        let optional_size = usize::from(u16_at(&head, 20));
        let optional = read_vec(pe + 24, optional_size)?;
        if u16_at(&optional, 0) != 0x20b {
            return Ok(None); // not PE32+: 32-bit executables are not named
        }
        let table = read_vec(pe + 24 + optional_size as u64, sections * 40)?;
        let sections: Vec<Section> = table
            .chunks_exact(40)
            .map(|s| Section {
                size: u32_at(s, 8),
                rva: u32_at(s, 12),
                file_size: u32_at(s, 16),
                file_offset: u32_at(s, 20),
                characteristics: u32_at(s, 36),
            })
            .collect();

        let mut funcs = if symbol_table != 0 && symbols != 0 {
            let records = read_vec(symbol_table, symbols.saturating_mul(SYMBOL_SIZE))?;
            let strings_at = symbol_table + records.len() as u64;
            let strings_len = read_vec(strings_at, 4).map_or(0, |b| u32_at(&b, 0) as usize);
            let strings = read_vec(strings_at, strings_len.max(4)).unwrap_or_default();
            coff_functions(&records, &strings, &sections)
        } else {
            Vec::new()
        };
        if funcs.is_empty() {
            funcs = pdata_functions(&optional, machine, &sections, &read_vec)?;
        }
        if funcs.is_empty() {
            return Ok(None);
        }
        Ok(Some(PeSymbols { funcs, base }))
    }
}

/// Functions from the COFF symbol table, sorted, each ending where the next begins.
fn coff_functions(records: &[u8], strings: &[u8], sections: &[Section]) -> Vec<Func> {
    struct Sym<'a> {
        section: usize,
        value: u32,
        typ: u16,
        name: &'a [u8],
    }
    let mut syms = Vec::new();
    let mut i = 0;
    while let Some(r) = records.get(i * SYMBOL_SIZE..(i + 1) * SYMBOL_SIZE) {
        i += 1 + usize::from(r[17]); // skip auxiliary records
        let class = r[16];
        let section = i16::from_le_bytes([r[12], r[13]]);
        if !(class == CLASS_EXTERNAL || class == CLASS_STATIC) || section <= 0 {
            continue;
        }
        let name = if r[..4] == [0, 0, 0, 0] {
            let at = u32_at(r, 4) as usize;
            let rest = strings.get(at..).unwrap_or_default();
            &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
        } else {
            let short = &r[..8];
            &short[..short.iter().position(|&b| b == 0).unwrap_or(8)]
        };
        if name.is_empty() || name.starts_with(b".") || name.starts_with(b"$") {
            continue; // section symbols and compiler labels
        }
        syms.push(Sym {
            section: section as usize - 1,
            value: u32_at(r, 8),
            typ: u16_at(r, 14),
            name,
        });
    }
    let typed = syms.iter().any(|s| s.typ & 0xf0 == TYPE_FUNCTION);
    let mut funcs: Vec<Func> = syms
        .iter()
        .filter(|s| !typed || s.typ & 0xf0 == TYPE_FUNCTION)
        .filter_map(|s| {
            let section = sections.get(s.section).filter(|sec| sec.is_code())?;
            let rva = section.rva.checked_add(s.value)?;
            Some(Func {
                rva,
                end: section.rva.saturating_add(section.size),
                name: crate::naming::demangle(s.name),
            })
        })
        .collect();
    funcs.sort_by(|a, b| (a.rva, &a.name).cmp(&(b.rva, &b.name)));
    funcs.dedup_by_key(|f| f.rva);
    let starts: Vec<u32> = funcs.iter().map(|f| f.rva).collect();
    for (f, next) in funcs.iter_mut().zip(starts.iter().skip(1)) {
        f.end = f.end.min(*next);
    }
    funcs
}

/// Functions from the exception directory (`.pdata`): starts and ends, no names.
fn pdata_functions(
    optional: &[u8],
    machine: u16,
    sections: &[Section],
    read_vec: &impl Fn(u64, usize) -> io::Result<Vec<u8>>,
) -> io::Result<Vec<Func>> {
    // PE32+: NumberOfRvaAndSizes at 108, data directories from 112; the exception
    // directory is the fourth.
    if u32_at(optional, 108) < 4 {
        return Ok(Vec::new());
    }
    let (rva, size) = (u32_at(optional, 136), u32_at(optional, 140));
    let Some(section) = sections
        .iter()
        .find(|s| rva >= s.rva && rva - s.rva < s.file_size.max(s.size))
    else {
        return Ok(Vec::new());
    };
    let offset = u64::from(section.file_offset) + u64::from(rva - section.rva);
    let table = read_vec(offset, size as usize)?;
    let mut funcs: Vec<Func> = match machine {
        // RUNTIME_FUNCTION: begin, end, unwind info.
        MACHINE_AMD64 => table
            .chunks_exact(12)
            .map(|e| Func {
                rva: u32_at(e, 0),
                end: u32_at(e, 4),
                name: String::new(),
            })
            .collect(),
        // ARM64_RUNTIME_FUNCTION: begin, then packed unwind data whose bits 2..13 are
        // the function's length in 4-byte units when bits 0..1 are non-zero.
        MACHINE_ARM64 => table
            .chunks_exact(8)
            .map(|e| {
                let (begin, data) = (u32_at(e, 0), u32_at(e, 4));
                let length = if data & 3 != 0 {
                    (data >> 2) & 0x7ff
                } else {
                    0
                };
                Func {
                    rva: begin,
                    end: begin.saturating_add(length * 4),
                    name: String::new(),
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    funcs.retain(|f| f.rva != 0);
    funcs.sort_by_key(|f| f.rva);
    // An arm64 entry with unwind data elsewhere does not say its length: it ends where
    // the next begins.
    let starts: Vec<u32> = funcs.iter().map(|f| f.rva).collect();
    for (f, next) in funcs.iter_mut().zip(starts.iter().skip(1)) {
        if f.end <= f.rva {
            f.end = *next;
        }
    }
    Ok(funcs)
}

impl Symbolize for PeSymbols {
    fn function(&self, addr: usize) -> Option<(String, usize)> {
        let rva = u32::try_from(addr.checked_sub(self.base)?).ok()?;
        let after = self.funcs.partition_point(|f| f.rva <= rva);
        let func = self.funcs.get(after.checked_sub(1)?)?;
        if rva >= func.end {
            return None;
        }
        let name = if func.name.is_empty() {
            format!("rva:{:#x}", func.rva)
        } else {
            func.name.clone()
        };
        Some((name, self.base.checked_add(func.rva as usize)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::little_endian::read_from;

    /// `testdata/pe/tiny.exe`, built from `tiny.c` by mingw-w64 (see `build.sh` there).
    const TINY: &[u8] = include_bytes!("../testdata/pe/tiny.exe");

    #[test]
    fn names_functions_of_a_gnu_executable() {
        let base = 0x1_4000_0000;
        let symbols = PeSymbols::read(read_from(TINY), base).unwrap().unwrap();
        let names: Vec<&str> = symbols.funcs.iter().map(|f| f.name.as_str()).collect();
        for want in ["start", "crash_here", "helper"] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        let helper = symbols.funcs.iter().find(|f| f.name == "helper").unwrap();
        let at = base + helper.rva as usize;
        assert_eq!(symbols.function(at + 2), Some(("helper".into(), at)));
        assert_eq!(symbols.function(at), Some(("helper".into(), at)));
        assert_eq!(symbols.function(base), None, "headers are no function");
        assert_eq!(symbols.function(0), None);
    }

    #[test]
    fn without_symbols_frames_are_named_by_pdata() {
        // The same executable with its symbol table pointer and count zeroed, as an
        // MSVC build without a PDB looks to us.
        let mut stripped = TINY.to_vec();
        let pe = u32_at(&stripped, 0x3c) as usize;
        stripped[pe + 12..pe + 20].fill(0);
        let stripped: &'static [u8] = stripped.leak();
        let base = 0x1_4000_0000;
        let symbols = PeSymbols::read(read_from(stripped), base).unwrap().unwrap();
        let named = PeSymbols::read(read_from(TINY), base).unwrap().unwrap();
        let helper = named.funcs.iter().find(|f| f.name == "helper").unwrap();
        let at = base + helper.rva as usize;
        assert_eq!(
            symbols.function(at + 2),
            Some((format!("rva:{:#x}", helper.rva), at))
        );
    }

    #[test]
    fn not_pe_is_none() {
        assert!(
            PeSymbols::read(read_from(&[0u8; 256]), 0)
                .unwrap()
                .is_none()
        );
        let mut elf = [0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        let elf: &'static [u8] = elf.to_vec().leak();
        assert!(PeSymbols::read(read_from(elf), 0).unwrap().is_none());
        assert!(PeSymbols::read(read_from(b"MZ"), 0).is_err(), "too short");
    }

    #[test]
    fn truncated_is_an_error_not_a_panic() {
        for len in [64, 100, 200, 400, 1000, TINY.len() - 1] {
            let cut: &'static [u8] = TINY[..len].to_vec().leak();
            let _ = PeSymbols::read(read_from(cut), 0);
        }
    }

    #[cfg(windows)]
    #[test]
    fn names_own_functions() {
        let image = crate::signal_windows::exe_image().expect("exe image");
        let symbols = PeSymbols::current_exe(image.start).expect("own symbols");
        let addr = crate::record::sentinel();
        let (name, start) = symbols.function(addr).expect("sentinel is named");
        assert_eq!(name, "telemetry_crashmonitor::record::sentinel");
        assert_eq!(start, addr);
    }
}
