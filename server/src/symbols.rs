//! Symbols of a build, read from its unstripped executable or split debug file, and
//! the compact function table that names raw crash frames from them.
//!
//! A tool that cannot name its own frames (a build made with `strip = true`) records
//! each one as `<build-id>+0x<addr>`, the frame's link-time address in the module with
//! that build ID. The vendor uploads the build's symbols with `telemetry-server
//! symbols add`, which keeps, per build ID, only what naming needs: every function's
//! link-time start, end and demangled name, sorted by start ([`FunctionTable`]).
//!
//! The table is made from the *symbol table* (ELF `.symtab`, Mach-O `LC_SYMTAB`, PE's
//! COFF symbols), not from DWARF, and with the same rules as the tool's crash monitor
//! reads its own executable: a frame named here and the same frame named by an
//! unstripped build on the user's machine are the same function with the same offset,
//! byte for byte.
//!
//! | format | functions | end of a function | build ID |
//! |--------|-----------|-------------------|----------|
//! | ELF (`.debug` files too) | `STT_FUNC`, defined, start and size not 0; of equal starts the one whose name comes last in `.strtab` | start + size | `NT_GNU_BUILD_ID` note |
//! | Mach-O (a dSYM's DWARF file too; each slice of a universal file) | `N_SECT`, not `N_STAB`, in a section of instructions, no `ltmp`/`l_` labels, leading `_` dropped; of equal starts the first by name | the next function of its section, or the section's end | `LC_UUID` |
//! | PE (GNU builds) | COFF external or static symbols in code sections (only `DTYPE_FUNCTION` ones if any is typed), no `.`/`$` labels; of equal starts the first by name | the next function, or the section's end | CodeView `RSDS` GUID and age |
//!
//! Names are demangled as the tool does (`rustc_demangle`, `{:#}`: no hash); the
//! spelling of a frame, `telemetry_counter::stack_name::frame`, is applied when a
//! frame is named, so that it is always the tool's current spelling.
//!
//! **The stored table** is text, one function a line after a header, sorted by start:
//!
//! ```text
//! telemetry-symbols v1
//! 2109e0 10 <stacktool::Parser>::run
//! 2109f0 1c stacktool::parse::input
//! ```
//!
//! (start and length in hex, then the name). Text, because a maintainer can read it
//! with `cat` and `grep`; sorted, because loading is then one pass with no sort, and a
//! lookup one binary search; and small, because nothing but what naming needs is kept
//! (a 20 MB debug build gives a table of about a tenth of that).

use std::fmt::Write as _;

use object::read::elf::{FileHeader, Sym as _};
use object::read::macho::{MachHeader, Nlist as _};
use object::read::pe::ImageNtHeaders;
use object::{Endianness, FileKind, Object as _};

/// The first line of a stored function table.
pub(crate) const TABLE_HEADER: &str = "telemetry-symbols v1";

/// The most functions a table may hold (a large Rust binary has a few hundred
/// thousand), so that a hostile or broken table cannot make a loader allocate without
/// end.
const MAX_FUNCTIONS: usize = 8 << 20;

/// Why a file gave no symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SymbolFileProblem {
    /// Not an ELF, Mach-O or PE file this reader understands (with the parser's reason).
    NotAnExecutable(String),
    /// The file has no build ID (ELF: link with `-Wl,--build-id`; PE: a CodeView
    /// record, which GNU `ld` writes with `--build-id` too), so no frame can refer to it.
    NoBuildId,
    /// The file has a build ID but names no function: it was stripped.
    NoSymbols,
}

impl std::fmt::Display for SymbolFileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SymbolFileProblem::NotAnExecutable(reason) => write!(
                f,
                "not an ELF, Mach-O or PE executable or debug file ({})",
                reason.replace('\n', " ")
            ),
            SymbolFileProblem::NoBuildId => f.write_str(
                "it has no build ID (no ELF NT_GNU_BUILD_ID note, Mach-O LC_UUID or PE \
                 CodeView record), so no crash frame can refer to it; link with \
                 -Wl,--build-id",
            ),
            SymbolFileProblem::NoSymbols => f.write_str(
                "it has no function symbols (stripped?); give the unstripped executable \
                 or its split debug file",
            ),
        }
    }
}

/// The symbols of one module: a build ID and its functions.
#[derive(Debug, Clone)]
pub struct ModuleSymbols {
    /// The build ID, spelled as raw frames spell it (lowercase hex).
    pub build_id: String,
    /// `elf`, `macho` or `pe`.
    pub format: &'static str,
    /// The machine (`x86_64`, `aarch64`, …), as `object` names it.
    pub arch: String,
    /// The functions.
    pub table: FunctionTable,
}

/// Functions sorted by link-time start: start, end (exclusive) and demangled name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionTable {
    starts: Vec<u64>,
    ends: Vec<u64>,
    /// Byte ranges of `names`.
    spans: Vec<(u32, u32)>,
    names: String,
}

/// One function before the table is built.
struct Func {
    start: u64,
    end: u64,
    name: String,
}

impl FunctionTable {
    /// Builds a table from functions already reduced to one per start (sorted here).
    fn from_functions(mut funcs: Vec<Func>) -> FunctionTable {
        funcs.sort_by_key(|f| f.start);
        let mut table = FunctionTable::default();
        for f in funcs {
            // A name the stored form cannot hold (a line break in a symbol name, which
            // no compiler writes) would also break the counter name: left out.
            if f.name.is_empty() || f.name.contains(['\n', '\r']) || f.end <= f.start {
                continue;
            }
            table.push(f.start, f.end, &f.name);
        }
        table
    }

    fn push(&mut self, start: u64, end: u64, name: &str) {
        let from = self.names.len() as u32;
        self.names.push_str(name);
        self.starts.push(start);
        self.ends.push(end);
        self.spans.push((from, self.names.len() as u32));
    }

    /// How many functions it holds.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The function containing link-time address `addr`: its demangled name and start.
    pub fn function(&self, addr: u64) -> Option<(&str, u64)> {
        let index = self.starts.partition_point(|&s| s <= addr).checked_sub(1)?;
        if addr >= self.ends[index] {
            return None;
        }
        let (from, to) = self.spans[index];
        Some((&self.names[from as usize..to as usize], self.starts[index]))
    }

    /// The stored form (see the module documentation).
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.names.len() + self.len() * 16 + 32);
        text.push_str(TABLE_HEADER);
        text.push('\n');
        for i in 0..self.len() {
            let (from, to) = self.spans[i];
            let _ = writeln!(
                text,
                "{:x} {:x} {}",
                self.starts[i],
                self.ends[i] - self.starts[i],
                &self.names[from as usize..to as usize]
            );
        }
        text
    }

    /// Reads the stored form back; `Err` with a one-line reason if it is not one
    /// (wrong header, a line that does not parse, starts not increasing, overlong).
    pub fn from_text(text: &str) -> Result<FunctionTable, String> {
        let mut lines = text.split('\n');
        if lines.next() != Some(TABLE_HEADER) {
            return Err(format!("does not start with {TABLE_HEADER:?}"));
        }
        let mut table = FunctionTable::default();
        for (n, line) in lines.enumerate() {
            if line.is_empty() {
                continue;
            }
            let bad = || format!("line {} is not `START LENGTH NAME`", n + 2);
            let mut parts = line.splitn(3, ' ');
            let start = parts.next().and_then(|s| u64::from_str_radix(s, 16).ok());
            let len = parts.next().and_then(|s| u64::from_str_radix(s, 16).ok());
            let (Some(start), Some(len), Some(name)) = (start, len, parts.next()) else {
                return Err(bad());
            };
            let end = start.checked_add(len).filter(|_| len > 0).ok_or_else(bad)?;
            if table.starts.last().is_some_and(|&last| last >= start) || name.is_empty() {
                return Err(format!("line {} is out of order or unnamed", n + 2));
            }
            if table.len() >= MAX_FUNCTIONS || table.names.len() + name.len() > u32::MAX as usize {
                return Err("too many functions".to_owned());
            }
            table.push(start, end, name);
        }
        Ok(table)
    }
}

/// The demangled name without the trailing hash, as the tool's crash monitor spells
/// names from every symbol table; C names come back as they are.
pub(crate) fn demangle(mangled: &[u8]) -> String {
    let text = String::from_utf8_lossy(mangled);
    format!("{:#}", rustc_demangle::demangle(&text))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The symbols of every module in `data`: one for an ELF or PE file or a thin
/// Mach-O file, one per slice of a universal Mach-O file.
pub fn read_symbol_file(data: &[u8]) -> Result<Vec<ModuleSymbols>, SymbolFileProblem> {
    let not = |err: object::Error| SymbolFileProblem::NotAnExecutable(err.to_string());
    let kind = FileKind::parse(data).map_err(not)?;
    match kind {
        FileKind::MachOFat32 => {
            let fat = object::read::macho::MachOFatFile32::parse(data).map_err(not)?;
            fat_slices(data, fat.arches())
        }
        FileKind::MachOFat64 => {
            let fat = object::read::macho::MachOFatFile64::parse(data).map_err(not)?;
            fat_slices(data, fat.arches())
        }
        _ => read_module(data, kind).map(|m| vec![m]),
    }
}

fn fat_slices<A: object::read::macho::FatArch>(
    data: &[u8],
    arches: &[A],
) -> Result<Vec<ModuleSymbols>, SymbolFileProblem> {
    let not = |err: object::Error| SymbolFileProblem::NotAnExecutable(err.to_string());
    let mut modules = Vec::new();
    let mut last_problem = SymbolFileProblem::NoSymbols;
    for arch in arches {
        let slice = arch.data(data).map_err(not)?;
        let kind = FileKind::parse(slice).map_err(not)?;
        match read_module(slice, kind) {
            Ok(module) => modules.push(module),
            Err(problem) => last_problem = problem,
        }
    }
    if modules.is_empty() {
        return Err(last_problem);
    }
    Ok(modules)
}

fn read_module(data: &[u8], kind: FileKind) -> Result<ModuleSymbols, SymbolFileProblem> {
    let not = |err: object::Error| SymbolFileProblem::NotAnExecutable(err.to_string());
    let file = object::File::parse(data).map_err(not)?;
    let arch = format!("{:?}", file.architecture()).to_lowercase();
    let (format, build_id, funcs) = match kind {
        FileKind::Elf32 => {
            let id = file.build_id().map_err(not)?.map(hex);
            (
                "elf",
                id,
                elf_functions::<object::elf::FileHeader32<Endianness>>(data)?,
            )
        }
        FileKind::Elf64 => {
            let id = file.build_id().map_err(not)?.map(hex);
            (
                "elf",
                id,
                elf_functions::<object::elf::FileHeader64<Endianness>>(data)?,
            )
        }
        FileKind::MachO32 => {
            let id = file.mach_uuid().map_err(not)?.map(|u| hex(&u));
            (
                "macho",
                id,
                macho_functions::<object::macho::MachHeader32<Endianness>>(data)?,
            )
        }
        FileKind::MachO64 => {
            let id = file.mach_uuid().map_err(not)?.map(|u| hex(&u));
            (
                "macho",
                id,
                macho_functions::<object::macho::MachHeader64<Endianness>>(data)?,
            )
        }
        FileKind::Pe32 | FileKind::Pe64 => {
            let id = file
                .pdb_info()
                .map_err(not)?
                .map(|cv| pe_build_id(&cv.guid(), cv.age()));
            let funcs = if kind == FileKind::Pe64 {
                pe_functions::<object::pe::ImageNtHeaders64>(data)?
            } else {
                pe_functions::<object::pe::ImageNtHeaders32>(data)?
            };
            ("pe", id, funcs)
        }
        other => {
            return Err(SymbolFileProblem::NotAnExecutable(format!(
                "a {other:?} file"
            )));
        }
    };
    let build_id = build_id
        .filter(|id| !id.is_empty())
        .ok_or(SymbolFileProblem::NoBuildId)?;
    let table = FunctionTable::from_functions(funcs);
    if table.is_empty() {
        return Err(SymbolFileProblem::NoSymbols);
    }
    Ok(ModuleSymbols {
        build_id,
        format,
        arch,
        table,
    })
}

/// A CodeView GUID and age as Breakpad and symbol servers write a PE's debug
/// identifier: `Data1` (u32), `Data2` and `Data3` (u16) as big-endian hex, the eight
/// bytes of `Data4`, then the age in hex without padding; lowercase.
pub(crate) fn pe_build_id(guid: &[u8; 16], age: u32) -> String {
    let data1 = u32::from_le_bytes([guid[0], guid[1], guid[2], guid[3]]);
    let data2 = u16::from_le_bytes([guid[4], guid[5]]);
    let data3 = u16::from_le_bytes([guid[6], guid[7]]);
    format!(
        "{data1:08x}{data2:04x}{data3:04x}{}{age:x}",
        hex(&guid[8..])
    )
}

fn elf_functions<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
) -> Result<Vec<Func>, SymbolFileProblem> {
    let not = |err: object::Error| SymbolFileProblem::NotAnExecutable(err.to_string());
    let header = H::parse(data).map_err(not)?;
    let endian = header.endian().map_err(not)?;
    let sections = header.sections(endian, data).map_err(not)?;
    // Only `.symtab`: a file with no more than `.dynsym` is stripped, and a table
    // made from it would name almost nothing.
    let symbols = sections
        .symbols(endian, data, object::elf::SHT_SYMTAB)
        .map_err(not)?;
    // Of several symbols at one start, the tool's lookup finds the one whose name
    // comes last in the string table.
    let mut chosen: std::collections::HashMap<u64, (u32, Func)> = Default::default();
    for sym in symbols.symbols() {
        let start: u64 = sym.st_value(endian).into();
        let size: u64 = sym.st_size(endian).into();
        if sym.st_type() != object::elf::STT_FUNC
            || sym.st_shndx(endian) == 0
            || start == 0
            || size == 0
        {
            continue;
        }
        let name_at = sym.st_name(endian);
        if chosen.get(&start).is_some_and(|(at, _)| *at > name_at) {
            continue;
        }
        let Ok(name) = symbols.symbol_name(endian, sym) else {
            continue;
        };
        let name = demangle(name);
        let end = start.saturating_add(size);
        chosen.insert(start, (name_at, Func { start, end, name }));
    }
    Ok(chosen.into_values().map(|(_, f)| f).collect())
}

fn macho_functions<M: MachHeader<Endian = Endianness>>(
    data: &[u8],
) -> Result<Vec<Func>, SymbolFileProblem> {
    const SECTION_CODE: u32 =
        object::macho::S_ATTR_PURE_INSTRUCTIONS | object::macho::S_ATTR_SOME_INSTRUCTIONS;
    let not = |err: object::Error| SymbolFileProblem::NotAnExecutable(err.to_string());
    let header = M::parse(data, 0).map_err(not)?;
    let endian = header.endian().map_err(not)?;
    let mut commands = header.load_commands(endian, data, 0).map_err(not)?;
    // Sections are numbered from 1 across all segments, in order: (start, end, code).
    let mut sections: Vec<(u64, u64, bool)> = Vec::new();
    let mut symtab = None;
    while let Some(command) = commands.next().map_err(not)? {
        use object::read::macho::{Section as _, Segment as _};
        if let Some((segment, section_data)) = M::Segment::from_command(command).map_err(not)? {
            for section in segment.sections(endian, section_data).map_err(not)? {
                let addr: u64 = section.addr(endian).into();
                let size: u64 = section.size(endian).into();
                let code = section.flags(endian) & SECTION_CODE != 0;
                sections.push((addr, addr.saturating_add(size), code));
            }
        } else if let Some(command) = command.symtab().map_err(not)? {
            symtab = Some(command);
        }
    }
    let Some(symtab) = symtab else {
        return Ok(Vec::new());
    };
    let table = symtab.symbols::<M, _>(endian, data).map_err(not)?;
    let mut funcs: Vec<(u8, Func)> = Vec::new();
    for nlist in table.iter() {
        let (kind, sect) = (nlist.n_type(), nlist.n_sect());
        if kind & object::macho::N_STAB != 0
            || kind & object::macho::N_TYPE != object::macho::N_SECT
            || sect == 0
        {
            continue;
        }
        let Some(&(_, end, true)) = sections.get(usize::from(sect) - 1) else {
            continue;
        };
        let Ok(raw) = nlist.name(endian, table.strings()) else {
            continue;
        };
        // Apple prefixes C-level names with an underscore (`__ZN…`, `_main`).
        let raw = raw.strip_prefix(b"_").unwrap_or(raw);
        if raw.is_empty() || raw.starts_with(b"ltmp") || raw.starts_with(b"l_") {
            continue; // assembler-local labels
        }
        let start: u64 = nlist.n_value(endian).into();
        funcs.push((
            sect,
            Func {
                start,
                end,
                name: demangle(raw),
            },
        ));
    }
    funcs.sort_by(|a, b| (a.1.start, &a.1.name).cmp(&(b.1.start, &b.1.name)));
    funcs.dedup_by_key(|f| f.1.start);
    // Each function ends where the next one of its section begins.
    for i in 1..funcs.len() {
        let (sect, start) = (funcs[i].0, funcs[i].1.start);
        if funcs[i - 1].0 == sect {
            funcs[i - 1].1.end = funcs[i - 1].1.end.min(start);
        }
    }
    Ok(funcs.into_iter().map(|(_, f)| f).collect())
}

fn pe_functions<Pe: ImageNtHeaders>(data: &[u8]) -> Result<Vec<Func>, SymbolFileProblem> {
    use object::pe::{
        IMAGE_SCN_CNT_CODE, IMAGE_SCN_MEM_EXECUTE, IMAGE_SYM_CLASS_EXTERNAL,
        IMAGE_SYM_CLASS_STATIC, IMAGE_SYM_DTYPE_FUNCTION,
    };
    use object::read::coff::{CoffHeader as _, ImageSymbol as _};
    use object::read::pe::ImageOptionalHeader as _;
    let not = |err: object::Error| SymbolFileProblem::NotAnExecutable(err.to_string());
    let file = object::read::pe::PeFile::<Pe>::parse(data).map_err(not)?;
    let image_base = file.nt_headers().optional_header().image_base();
    let sections: Vec<(u64, u64, bool)> = file
        .section_table()
        .iter()
        .map(|s| {
            let rva = u64::from(s.virtual_address.get(object::LittleEndian));
            let size = u64::from(s.virtual_size.get(object::LittleEndian));
            let flags = s.characteristics.get(object::LittleEndian);
            (
                rva,
                rva + size,
                flags & (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE) != 0,
            )
        })
        .collect();
    let header = file.nt_headers().file_header();
    if header.pointer_to_symbol_table() == 0 || header.number_of_symbols() == 0 {
        return Ok(Vec::new());
    }
    let symbols = header.symbols(data).map_err(not)?;
    struct Candidate {
        section: usize,
        value: u32,
        function: bool,
        name: String,
    }
    let mut candidates = Vec::new();
    for (_, sym) in symbols.iter() {
        let class = sym.storage_class();
        let section = sym.section_number();
        if !(class == IMAGE_SYM_CLASS_EXTERNAL || class == IMAGE_SYM_CLASS_STATIC) || section <= 0 {
            continue;
        }
        let Ok(name) = sym.name(symbols.strings()) else {
            continue;
        };
        if name.is_empty() || name.starts_with(b".") || name.starts_with(b"$") {
            continue; // section symbols and compiler labels
        }
        candidates.push(Candidate {
            section: section as usize - 1,
            value: sym.value(),
            function: sym.typ() & 0xf0 == IMAGE_SYM_DTYPE_FUNCTION << 4,
            name: demangle(name),
        });
    }
    let typed = candidates.iter().any(|c| c.function);
    let mut funcs: Vec<Func> = candidates
        .into_iter()
        .filter(|c| !typed || c.function)
        .filter_map(|c| {
            let &(rva, end, code) = sections.get(c.section)?;
            if !code {
                return None;
            }
            let start = rva.checked_add(u64::from(c.value))?;
            // RVAs of the tool's reader are 32-bit.
            u32::try_from(start).ok()?;
            Some(Func {
                start: image_base.wrapping_add(start),
                end: image_base.wrapping_add(end),
                name: c.name,
            })
        })
        .collect();
    funcs.sort_by(|a, b| (a.start, &a.name).cmp(&(b.start, &b.name)));
    funcs.dedup_by_key(|f| f.start);
    let starts: Vec<u64> = funcs.iter().map(|f| f.start).collect();
    for (f, next) in funcs.iter_mut().zip(starts.iter().skip(1)) {
        f.end = f.end.min(*next);
    }
    Ok(funcs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(funcs: &[(u64, u64, &str)]) -> FunctionTable {
        FunctionTable::from_functions(
            funcs
                .iter()
                .map(|&(start, end, name)| Func {
                    start,
                    end,
                    name: name.to_owned(),
                })
                .collect(),
        )
    }

    #[test]
    fn looks_up_the_containing_function() {
        let t = table(&[(0x2000, 0x2010, "b"), (0x1000, 0x1100, "a")]);
        assert_eq!(t.function(0x1000), Some(("a", 0x1000)));
        assert_eq!(t.function(0x10ff), Some(("a", 0x1000)));
        assert_eq!(t.function(0x1100), None, "past its end");
        assert_eq!(t.function(0x0fff), None);
        assert_eq!(t.function(0x200f), Some(("b", 0x2000)));
        assert_eq!(t.function(u64::MAX), None);
    }

    #[test]
    fn the_stored_form_round_trips_and_is_checked() {
        let t = table(&[(0x10, 0x20, "<a::B>::c"), (0x2109f0, 0x210a0c, "x y")]);
        let text = t.to_text();
        assert_eq!(
            text,
            "telemetry-symbols v1\n10 10 <a::B>::c\n2109f0 1c x y\n"
        );
        assert_eq!(FunctionTable::from_text(&text), Ok(t));
        for bad in [
            "",
            "telemetry-symbols v2\n",
            "telemetry-symbols v1\n10 0 a\n",
            "telemetry-symbols v1\n10 1 a\n10 1 b\n",
            "telemetry-symbols v1\n10 1\n",
            "telemetry-symbols v1\nzz 1 a\n",
            "telemetry-symbols v1\nffffffffffffffff 2 a\n",
        ] {
            assert!(FunctionTable::from_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_with_line_breaks_are_left_out() {
        let t = table(&[(0x10, 0x20, "a\nb"), (0x20, 0x30, "c")]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn pe_build_ids_are_spelled_as_symbol_servers_spell_them() {
        let guid = [
            0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        assert_eq!(
            pe_build_id(&guid, 0x1a),
            "123456789abcdef001020304050607081a"
        );
    }

    #[test]
    fn demangles_as_the_tool_does() {
        assert_eq!(
            demangle(b"_ZN6mytool3run17h0123456789abcdefE"),
            "mytool::run"
        );
        assert_eq!(demangle(b"memcpy"), "memcpy");
    }

    #[test]
    fn files_that_are_not_executables_are_a_typed_error() {
        assert!(matches!(
            read_symbol_file(b"hello"),
            Err(SymbolFileProblem::NotAnExecutable(_))
        ));
    }

    /// The GNU-built PE of the crash monitor's tests has COFF symbols but no CodeView
    /// record: no build ID.
    #[test]
    fn a_pe_without_codeview_has_no_build_id() {
        let tiny = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crashmonitor/testdata/pe/tiny.exe"
        ))
        .unwrap();
        assert_eq!(
            read_symbol_file(&tiny).unwrap_err(),
            SymbolFileProblem::NoBuildId
        );
        let funcs = pe_functions::<object::pe::ImageNtHeaders64>(&tiny).unwrap();
        let names: Vec<&str> = funcs.iter().map(|f| f.name.as_str()).collect();
        for want in ["start", "crash_here", "helper"] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
    }

    /// A GNU-linked PE with a CodeView record (`testdata/pe/build.sh`): its build ID
    /// is the GUID and age `objdump -p` shows (`signature 3a989f51…005b age 1`), its
    /// functions are at `ImageBase` + RVA, each ending where the next begins.
    #[test]
    fn a_pe_with_codeview_is_read_at_its_link_time_addresses() {
        let exe = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/pe/codeview.exe"
        ))
        .unwrap();
        let modules = read_symbol_file(&exe).unwrap();
        assert_eq!(modules.len(), 1);
        let module = &modules[0];
        assert_eq!(module.build_id, "3a989f5177ec2cf1f51985b35628005b1");
        assert_eq!((module.format, module.arch.as_str()), ("pe", "x86_64"));
        assert_eq!(
            module.table.to_text(),
            "telemetry-symbols v1\n140001000 5 helper\n140001005 16 crash_here\n14000101b 35 start\n"
        );
        assert_eq!(
            module.table.function(0x1_4000_1010),
            Some(("crash_here", 0x1_4000_1005))
        );
    }

    /// The crash monitor's Mach-O object (no `LC_UUID`): its functions are read as the
    /// tool reads them, the v0 inherent method included.
    #[test]
    fn macho_functions_are_read_as_the_tool_reads_them() {
        let tiny = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crashmonitor/testdata/macho/tiny.o"
        ))
        .unwrap();
        assert_eq!(
            read_symbol_file(&tiny).unwrap_err(),
            SymbolFileProblem::NoBuildId
        );
        let funcs = macho_functions::<object::macho::MachHeader64<Endianness>>(&tiny).unwrap();
        let names: Vec<&str> = funcs.iter().map(|f| f.name.as_str()).collect();
        for want in ["tiny::helper", "<tiny::Thing>::crash_here", "tiny_entry"] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
    }
}
