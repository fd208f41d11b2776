//! Naming code addresses in the child's own executable on macOS: the Mach-O symbol
//! table (`LC_SYMTAB`).
//!
//! As with ELF on Linux (`symbols.rs`), a frame is named `function+0xoffset` from the
//! start of its function. Mach-O symbols have no size: a function ends where the next
//! symbol of its section begins, or at the section's end. Only defined, non-debugging
//! symbols (`N_SECT`, no `N_STAB` bits) in sections of machine instructions count; the
//! leading underscore every C-level name carries on Apple platforms is dropped before
//! demangling. A universal ("fat") file is read at the slice of this process's
//! architecture. A stripped executable (`strip = "symbols"`) keeps only the few symbols
//! dyld needs, so most frames are unnamed: `crash/no-frames`.
//!
//! Where the executable is loaded (ASLR's slide) is found without asking dyld: the
//! child looks up one function of its own, [`crate::record::sentinel`], in the table and
//! compares with its address at run time.
//!
//! The parser reads bytes at offsets through a callback, so it is tested on every
//! platform with an object file built for `x86_64-apple-darwin` (`testdata/macho/`).

#![cfg_attr(feature = "fuzzing", allow(dead_code))]

use std::io;

use crate::little_endian::{read_table, u32_at, u64_at};
use crate::naming::Symbolize;

const MH_MAGIC_64: u32 = 0xfeed_facf;
const FAT_MAGIC: u32 = 0xcafe_babe;
const LC_SEGMENT_64: u32 = 0x19;
const LC_SYMTAB: u32 = 0x2;
const N_STAB: u8 = 0xe0;
const N_TYPE: u8 = 0x0e;
const N_SECT: u8 = 0x0e;
/// `S_ATTR_PURE_INSTRUCTIONS` and `S_ATTR_SOME_INSTRUCTIONS`.
const SECTION_CODE: u32 = 0x8000_0000 | 0x0000_0400;
const CPU_TYPE_X86_64: u32 = 0x0100_0007;
const CPU_TYPE_ARM64: u32 = 0x0100_000c;

/// One function: link-time start and end, demangled name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Func {
    start: u64,
    end: u64,
    name: String,
}

/// The functions of a Mach-O file, and how far it was slid at load time.
pub(crate) struct MachSymbols {
    funcs: Vec<Func>,
    /// Runtime address minus link-time address.
    slide: usize,
}

impl MachSymbols {
    /// The functions of the running executable, with the slide found from the address
    /// of [`crate::record::sentinel`].
    #[cfg(target_os = "macos")]
    pub(crate) fn current_exe() -> Option<MachSymbols> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(std::env::current_exe().ok()?).ok()?;
        let read_at = |offset: u64, buf: &mut [u8]| file.read_exact_at(buf, offset);
        let arch = if cfg!(target_arch = "aarch64") {
            CPU_TYPE_ARM64
        } else {
            CPU_TYPE_X86_64
        };
        let mut symbols = MachSymbols::read(read_at, arch).ok().flatten()?;
        let linked = symbols
            .funcs
            .iter()
            .find(|f| f.name == "telemetry_crashmonitor::record::sentinel")?
            .start;
        symbols.slide = crate::record::sentinel().wrapping_sub(usize::try_from(linked).ok()?);
        Some(symbols)
    }

    /// Reads the functions of a 64-bit little-endian Mach-O file (or of its `arch`
    /// slice in a universal file) through `read_at(offset, buf)`. `Ok(None)` if it is no
    /// such file or names no function.
    pub(crate) fn read(
        read_at: impl Fn(u64, &mut [u8]) -> io::Result<()>,
        arch: u32,
    ) -> io::Result<Option<MachSymbols>> {
        let read_vec = |offset: u64, len: usize| read_table(&read_at, offset, len as u64);
        let mut base = 0u64;
        let first = read_vec(0, 8)?;
        if u32::from_be_bytes([first[0], first[1], first[2], first[3]]) == FAT_MAGIC {
            let count = u32::from_be_bytes([first[4], first[5], first[6], first[7]]) as usize;
            let archs = read_vec(8, count.min(64) * 20)?;
            let be =
                |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let Some(slice) = archs.chunks_exact(20).find(|a| be(a, 0) == arch) else {
                return Ok(None);
            };
            base = u64::from(be(slice, 8));
        }
        let header = read_vec(base, 32)?;
        if u32_at(&header, 0) != MH_MAGIC_64 {
            return Ok(None);
        }
        let commands = read_vec(base + 32, u32_at(&header, 20) as usize)?;
        let ncmds = u32_at(&header, 16);

        // Sections are numbered from 1 across all segments, in order.
        let mut sections: Vec<(u64, u64, bool)> = Vec::new(); // addr, end, code
        let mut symtab = None;
        for (kind, body) in load_commands(&commands, ncmds) {
            match kind {
                LC_SEGMENT_64 => {
                    let nsects = u32_at(body, 64) as usize;
                    for s in body
                        .get(72..)
                        .unwrap_or_default()
                        .chunks_exact(80)
                        .take(nsects)
                    {
                        let addr = u64_at(s, 32);
                        let end = addr.saturating_add(u64_at(s, 40));
                        sections.push((addr, end, u32_at(s, 64) & SECTION_CODE != 0));
                    }
                }
                LC_SYMTAB => {
                    symtab = Some((
                        u32_at(body, 8),
                        u32_at(body, 12),
                        u32_at(body, 16),
                        u32_at(body, 20),
                    ));
                }
                _ => {}
            }
        }
        let Some((symoff, nsyms, stroff, strsize)) = symtab else {
            return Ok(None);
        };
        let records = read_vec(
            base + u64::from(symoff),
            (nsyms as usize).saturating_mul(16),
        )?;
        let strings = read_vec(base + u64::from(stroff), strsize as usize)?;

        let mut funcs: Vec<(u8, Func)> = records
            .chunks_exact(16)
            .filter_map(|r| {
                let (kind, sect) = (r[4], r[5]);
                if kind & N_STAB != 0 || kind & N_TYPE != N_SECT || sect == 0 {
                    return None;
                }
                let &(_, end, code) = sections.get(usize::from(sect) - 1)?;
                if !code {
                    return None;
                }
                let rest = strings.get(u32_at(r, 0) as usize..)?;
                let raw = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
                // Apple prefixes C-level names with an underscore (`__ZN…`, `_main`).
                let raw = raw.strip_prefix(b"_").unwrap_or(raw);
                if raw.is_empty() || raw.starts_with(b"ltmp") || raw.starts_with(b"l_") {
                    return None; // assembler-local labels
                }
                let name = crate::naming::demangle(raw);
                Some((
                    sect,
                    Func {
                        start: u64_at(r, 8),
                        end,
                        name,
                    },
                ))
            })
            .collect();
        funcs.sort_by(|a, b| (a.1.start, &a.1.name).cmp(&(b.1.start, &b.1.name)));
        funcs.dedup_by_key(|f| f.1.start);
        // Each function ends where the next one of its section begins.
        for i in 1..funcs.len() {
            let (sect, start) = (funcs[i].0, funcs[i].1.start);
            if funcs[i - 1].0 == sect {
                funcs[i - 1].1.end = funcs[i - 1].1.end.min(start);
            }
        }
        let funcs: Vec<Func> = funcs.into_iter().map(|(_, f)| f).collect();
        Ok((!funcs.is_empty()).then_some(MachSymbols { funcs, slide: 0 }))
    }
}

/// The load commands in `commands` (what follows the header), as (kind, whole
/// command); stops at the first that does not fit.
fn load_commands(commands: &[u8], ncmds: u32) -> impl Iterator<Item = (u32, &[u8])> {
    let mut at = 0usize;
    (0..ncmds).map_while(move |_| {
        let cmd = commands.get(at..at.checked_add(8)?)?;
        let size = u32_at(cmd, 4) as usize;
        let body = commands.get(at..at.checked_add(size)?)?;
        if size < 8 {
            return None;
        }
        at += size;
        Some((u32_at(cmd, 0), body))
    })
}

/// The link-time address range an image occupies once loaded, from its header and
/// load commands (`image` starts at the `mach_header_64`): from the lowest to the end
/// of the highest segment that is mapped with some access. `__PAGEZERO`, mapped with
/// none, is left out. `None` if `image` is not a 64-bit Mach-O header.
pub(crate) fn loaded_extent(image: &[u8]) -> Option<(u64, u64)> {
    if image.len() < 32 || u32_at(image, 0) != MH_MAGIC_64 {
        return None;
    }
    let commands = image.get(32..32usize.checked_add(u32_at(image, 20) as usize)?)?;
    let (lo, hi) = load_commands(commands, u32_at(image, 16))
        .filter(|&(kind, body)| kind == LC_SEGMENT_64 && body.len() >= 72)
        // initprot (offset 60) 0: a guard region, not part of the image.
        .filter(|&(_, body)| u32_at(body, 60) != 0 && u64_at(body, 32) != 0)
        .map(|(_, body)| {
            (
                u64_at(body, 24),
                u64_at(body, 24).saturating_add(u64_at(body, 32)),
            )
        })
        .fold((u64::MAX, 0), |(lo, hi), (start, end)| {
            (lo.min(start), hi.max(end))
        });
    (lo < hi).then_some((lo, hi))
}

impl Symbolize for MachSymbols {
    fn function(&self, addr: usize) -> Option<(String, usize)> {
        let link = addr.wrapping_sub(self.slide) as u64;
        let after = self.funcs.partition_point(|f| f.start <= link);
        let func = self.funcs.get(after.checked_sub(1)?)?;
        if link >= func.end {
            return None;
        }
        let start = usize::try_from(func.start).ok()?.wrapping_add(self.slide);
        Some((func.name.clone(), start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::little_endian::read_from;

    /// `testdata/macho/tiny.o`: `tiny.rs` compiled for x86_64-apple-darwin (`build.sh`).
    const TINY: &[u8] = include_bytes!("../testdata/macho/tiny.o");

    fn tiny() -> MachSymbols {
        MachSymbols::read(read_from(TINY), CPU_TYPE_X86_64)
            .unwrap()
            .expect("functions in tiny.o")
    }

    #[test]
    fn names_rust_and_c_functions() {
        let symbols = tiny();
        let names: Vec<&str> = symbols.funcs.iter().map(|f| f.name.as_str()).collect();
        // v0 mangling: an inherent method demangles as `<Type>::method`.
        for want in ["tiny::helper", "<tiny::Thing>::crash_here", "tiny_entry"] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        let helper = symbols
            .funcs
            .iter()
            .find(|f| f.name == "tiny::helper")
            .unwrap();
        assert!(helper.end > helper.start);
        let start = helper.start as usize;
        assert_eq!(
            symbols.function(start),
            Some(("tiny::helper".into(), start))
        );
        assert_eq!(
            symbols.function(helper.end as usize - 1),
            Some(("tiny::helper".into(), start))
        );
    }

    #[test]
    fn slide_moves_every_name() {
        let mut symbols = tiny();
        let helper = symbols
            .funcs
            .iter()
            .find(|f| f.name == "tiny::helper")
            .unwrap()
            .start as usize;
        symbols.slide = 0x1000_0000;
        assert_eq!(
            symbols.function(helper + 0x1000_0001),
            Some(("tiny::helper".into(), helper + 0x1000_0000))
        );
        assert_eq!(symbols.function(helper + 1), None);
    }

    #[test]
    fn loaded_extent_covers_every_function() {
        let (lo, hi) = loaded_extent(TINY).expect("tiny.o has a segment");
        let funcs = tiny().funcs;
        assert!(
            funcs.iter().all(|f| lo <= f.start && f.end <= hi),
            "{lo:#x}..{hi:#x} {funcs:?}"
        );
        // A guard segment (no access, like `__PAGEZERO`) is not part of the image.
        let mut guarded = TINY[..32].to_vec();
        let mut pagezero = vec![0u8; 72];
        pagezero[..4].copy_from_slice(&LC_SEGMENT_64.to_le_bytes());
        pagezero[4..8].copy_from_slice(&72u32.to_le_bytes());
        pagezero[32..40].copy_from_slice(&(1u64 << 32).to_le_bytes()); // vmsize 4 GiB
        let commands_len = u32_at(TINY, 20) as usize;
        guarded.extend_from_slice(&pagezero);
        guarded.extend_from_slice(&TINY[32..32 + commands_len]);
        guarded[16..20].copy_from_slice(&(u32_at(TINY, 16) + 1).to_le_bytes());
        guarded[20..24].copy_from_slice(&((commands_len + 72) as u32).to_le_bytes());
        assert_eq!(loaded_extent(&guarded), Some((lo, hi)));
        assert_eq!(loaded_extent(&TINY[..31]), None);
        assert_eq!(
            loaded_extent(b"\x7fELF and more bytes than a header has"),
            None
        );
    }

    #[test]
    fn fat_file_is_read_at_its_slice() {
        // A universal header with one x86_64 slice at offset 4096, then tiny.o.
        let mut fat = vec![0u8; 4096];
        fat[..8].copy_from_slice(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 1]);
        fat[8..12].copy_from_slice(&CPU_TYPE_X86_64.to_be_bytes());
        fat[16..20].copy_from_slice(&4096u32.to_be_bytes());
        fat[20..24].copy_from_slice(&(TINY.len() as u32).to_be_bytes());
        fat.extend_from_slice(TINY);
        let fat: &'static [u8] = fat.leak();
        let symbols = MachSymbols::read(read_from(fat), CPU_TYPE_X86_64)
            .unwrap()
            .unwrap();
        assert_eq!(symbols.funcs, tiny().funcs);
        assert!(
            MachSymbols::read(read_from(fat), CPU_TYPE_ARM64)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn not_macho_is_none_and_truncated_is_no_panic() {
        assert!(
            MachSymbols::read(read_from(&[0u8; 64]), CPU_TYPE_X86_64)
                .unwrap()
                .is_none()
        );
        for len in [8, 40, 100, 500, TINY.len() - 1] {
            let cut: &'static [u8] = TINY[..len].to_vec().leak();
            let _ = MachSymbols::read(read_from(cut), CPU_TYPE_X86_64);
        }
    }
}
