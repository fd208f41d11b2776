//! Where the main executable is loaded, and whether an address belongs to it.
//!
//! The crash monitor uses the executable's extent to tell its frames from those of
//! shared libraries; the facade asks whether its own code is part of the executable
//! at all, or of a library or plugin some other program loaded (a `cdylib`), where
//! it must never re-execute the host.

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    target_pointer_width = "64"
))]
use std::ffi::{c_int, c_void};

/// Where the main executable is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MainImage {
    /// Runtime address minus link-time address.
    pub bias: usize,
    /// The lowest address of its loaded segments.
    pub start: usize,
    /// One past the highest address of its loaded segments.
    pub end: usize,
}

/// The main executable's load bias and extent, from the dynamic loader
/// (`dl_iterate_phdr`, whose first object is the program). Allocates nothing and
/// takes no lock but the loader's own, so it can run before `main`.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    target_pointer_width = "64"
))]
pub fn main_image() -> Option<MainImage> {
    with_main_program(|bias, headers| {
        let (mut start, mut end) = (usize::MAX, 0usize);
        for h in headers.iter().filter(|h| h.p_type == libc::PT_LOAD) {
            let lo = bias.wrapping_add(h.p_vaddr as usize);
            start = start.min(lo);
            end = end.max(lo.saturating_add(h.p_memsz as usize));
        }
        (start < end).then_some(MainImage { bias, start, end })
    })
}

/// `f` of the main program's load bias and program headers: the first object
/// `dl_iterate_phdr` reports is the program. The one walk of the loader's list that
/// [`main_image`] and [`exe_identity`] share; allocates nothing.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    target_pointer_width = "64"
))]
fn with_main_program<T, F>(f: F) -> Option<T>
where
    F: FnMut(usize, &[libc::Elf64_Phdr]) -> Option<T>,
{
    unsafe extern "C" fn first_object<T, F>(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> c_int
    where
        F: FnMut(usize, &[libc::Elf64_Phdr]) -> Option<T>,
    {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for the duration of the call,
        // whose `dlpi_phdr` points at `dlpi_phnum` program headers; `data` is the
        // `(F, Option<T>)` that `with_main_program` passed and keeps alive.
        unsafe {
            let info = &*info;
            let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum))
            };
            let (f, found) = &mut *data.cast::<(F, Option<T>)>();
            *found = f(info.dlpi_addr as usize, headers);
        }
        1 // The first object is the main program: stop.
    }
    let mut state: (F, Option<T>) = (f, None);
    // SAFETY: the callback only reads what the loader hands it and writes `state`,
    // which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(first_object::<T, F>), (&raw mut state).cast());
    }
    state.1
}

/// Whether `addr`, an address of code in this process, belongs to the main
/// executable (rather than to a shared library the program loaded); `None` where
/// that cannot be told.
///
/// - Linux, Android (64-bit): the executable's extent from [`main_image`].
/// - macOS: `dladdr`'s image header against dyld's image 0, the executable.
/// - Windows: `GetModuleHandleExW(FROM_ADDRESS)` against the process's module.
pub fn in_main_executable(addr: usize) -> Option<bool> {
    platform_in_main_executable(addr)
}

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    target_pointer_width = "64"
))]
fn platform_in_main_executable(addr: usize) -> Option<bool> {
    main_image().map(|image| (image.start..image.end).contains(&addr))
}

#[cfg(target_vendor = "apple")]
fn platform_in_main_executable(addr: usize) -> Option<bool> {
    use std::ffi::c_void;
    // libdyld's, in libSystem (the libc crate's declaration is deprecated).
    unsafe extern "C" {
        fn _dyld_get_image_header(image_index: u32) -> *const c_void;
    }
    // SAFETY: an all-zero Dl_info (null pointers) is a valid value to be overwritten.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only looks `addr` up in dyld's table and writes `info`, a valid
    // local; `_dyld_get_image_header(0)` reads dyld's table, where image 0 is the
    // executable of every running program.
    let (found, executable) = unsafe {
        (
            libc::dladdr(addr as *const c_void, &mut info),
            _dyld_get_image_header(0),
        )
    };
    if found == 0 || info.dli_fbase.is_null() || executable.is_null() {
        return None;
    }
    Some(info.dli_fbase.cast_const() == executable)
}

#[cfg(windows)]
fn platform_in_main_executable(addr: usize) -> Option<bool> {
    use std::ffi::c_void;
    /// The module is found from an address within it, and not pinned or counted.
    const FROM_ADDRESS: u32 = 0x4;
    const UNCHANGED_REFCOUNT: u32 = 0x2;
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn GetModuleHandleW(name: *const u16) -> *mut c_void;
        fn GetModuleHandleExW(flags: u32, name: *const c_void, module: *mut *mut c_void) -> i32;
    }
    let mut module: *mut c_void = std::ptr::null_mut();
    // SAFETY: with FROM_ADDRESS the "name" is an address that is only looked up;
    // UNCHANGED_REFCOUNT takes no reference to release; `module` is a valid local. A
    // null name asks for the executable's module, which needs no release either.
    let (found, executable) = unsafe {
        (
            GetModuleHandleExW(
                FROM_ADDRESS | UNCHANGED_REFCOUNT,
                addr as *const c_void,
                &mut module,
            ),
            GetModuleHandleW(std::ptr::null()),
        )
    };
    if found == 0 || module.is_null() || executable.is_null() {
        return None;
    }
    Some(module == executable)
}

#[cfg(not(any(
    all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "64"
    ),
    target_vendor = "apple",
    windows
)))]
fn platform_in_main_executable(_addr: usize) -> Option<bool> {
    None
}

/// How the main executable names itself for the crash journal: its build ID and the
/// difference between its runtime and link-time addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExeIdentity {
    /// The build ID in lowercase hex, if the executable has one: the ELF
    /// `NT_GNU_BUILD_ID` note's bytes, the Mach-O `LC_UUID`'s 16 bytes, or the PE
    /// CodeView `RSDS` record's GUID (Data1, Data2, Data3 as big-endian hex, then
    /// Data4's 8 bytes) followed by its age in hex without padding.
    pub build_id: Option<String>,
    /// Runtime address minus link-time address (ELF: the load bias; Mach-O: the
    /// slide; PE: the module's base minus the header's `ImageBase`).
    pub bias: usize,
}

/// The main executable's identity, read from its image in memory (no file is
/// opened): where it is loaded and the build ID its linker wrote.
pub fn exe_identity() -> Option<ExeIdentity> {
    platform_exe_identity()
}

/// Lowercase hex of `bytes`. By table, not `write!`: `start` spells the build ID on
/// every run with crash reporting, and the formatting machinery cost it twenty times
/// the instructions.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// `NT_GNU_BUILD_ID`'s bytes in a segment of ELF notes (`Elf_Nhdr` records: name size,
/// descriptor size, type, then the name and descriptor, each padded to 4 bytes).
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android", test)),
    allow(dead_code)
)]
fn gnu_build_id(notes: &[u8]) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(notes.get(at..at + 4)?.try_into().ok()?))
    };
    let pad = |n: usize| n.checked_add(3).map(|n| n & !3);
    let mut at = 0usize;
    while at.checked_add(12)? <= notes.len() {
        let (name_size, desc_size, kind) =
            (word(at)? as usize, word(at + 4)? as usize, word(at + 8)?);
        let name_at = at + 12;
        let desc_at = name_at.checked_add(pad(name_size)?)?;
        let next = desc_at.checked_add(pad(desc_size)?)?;
        let name = notes.get(name_at..name_at.checked_add(name_size)?)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return notes.get(desc_at..desc_at.checked_add(desc_size)?);
        }
        at = next;
    }
    None
}

/// `LC_UUID`'s 16 bytes among the load commands that follow a 64-bit Mach-O header.
#[cfg_attr(not(any(target_vendor = "apple", test)), allow(dead_code))]
fn macho_uuid(image: &[u8]) -> Option<&[u8]> {
    const LC_UUID: u32 = 0x1b;
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(image.get(at..at + 4)?.try_into().ok()?))
    };
    let count = word(16)? as usize;
    let mut at = 32; // after mach_header_64
    for _ in 0..count {
        let (cmd, size) = (word(at)?, word(at + 4)? as usize);
        if cmd == LC_UUID {
            return image.get(at + 8..at + 24);
        }
        if size < 8 {
            return None;
        }
        at = at.checked_add(size)?;
    }
    None
}

/// The PE image's `ImageBase` and CodeView debug identifier (Breakpad's spelling),
/// from its headers as loaded: `read(rva, len)` returns the bytes at that offset from
/// the module's base.
#[cfg_attr(not(any(windows, test)), allow(dead_code))]
fn pe_identity<'a>(
    read: impl Fn(usize, usize) -> Option<&'a [u8]>,
) -> Option<(u64, Option<String>)> {
    let u16_at =
        |at: usize| -> Option<u16> { Some(u16::from_le_bytes(read(at, 2)?.try_into().ok()?)) };
    let u32_at =
        |at: usize| -> Option<u32> { Some(u32::from_le_bytes(read(at, 4)?.try_into().ok()?)) };
    let u64_at =
        |at: usize| -> Option<u64> { Some(u64::from_le_bytes(read(at, 8)?.try_into().ok()?)) };
    let pe = u32_at(0x3c)? as usize;
    if read(pe, 4)? != b"PE\0\0" {
        return None;
    }
    let optional = pe + 24;
    let (image_base, directories) = match u16_at(optional)? {
        0x20b => (u64_at(optional + 24)?, optional + 112),
        0x10b => (u64::from(u32_at(optional + 28)?), optional + 96),
        _ => return None,
    };
    let debug_rva = u32_at(directories + 6 * 8)? as usize;
    let debug_size = u32_at(directories + 6 * 8 + 4)? as usize;
    let mut build_id = None;
    for entry in (0..debug_size / 28).map(|i| debug_rva + i * 28) {
        const CODEVIEW: u32 = 2;
        if u32_at(entry + 12)? != CODEVIEW {
            continue;
        }
        let data = u32_at(entry + 20)? as usize;
        if data == 0 || read(data, 4)? != b"RSDS" {
            continue;
        }
        let guid = read(data + 4, 16)?;
        let age = u32_at(data + 20)?;
        let mut id = String::new();
        id.push_str(&format!(
            "{:08x}",
            u32::from_le_bytes(guid[0..4].try_into().ok()?)
        ));
        id.push_str(&format!(
            "{:04x}",
            u16::from_le_bytes(guid[4..6].try_into().ok()?)
        ));
        id.push_str(&format!(
            "{:04x}",
            u16::from_le_bytes(guid[6..8].try_into().ok()?)
        ));
        id.push_str(&hex(&guid[8..16]));
        id.push_str(&format!("{age:x}"));
        build_id = Some(id);
        break;
    }
    Some((image_base, build_id))
}

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    target_pointer_width = "64"
))]
fn platform_exe_identity() -> Option<ExeIdentity> {
    with_main_program(|bias, headers| {
        let build_id = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_NOTE && h.p_memsz > 0)
            .find_map(|h| {
                // SAFETY: a `PT_NOTE` segment is mapped (it lies within a loaded
                // segment) at the bias plus its address, for its memory size, as long
                // as the program runs.
                let notes = unsafe {
                    std::slice::from_raw_parts(
                        bias.wrapping_add(h.p_vaddr as usize) as *const u8,
                        h.p_memsz as usize,
                    )
                };
                gnu_build_id(notes).map(hex)
            });
        Some(ExeIdentity { build_id, bias })
    })
}

/// The main executable's Mach-O header with its load commands, and its slide, from
/// dyld: image 0 is the executable, and its header and load commands stay mapped
/// (they open its `__TEXT` segment). The one reader of dyld's table: the crash
/// monitor takes the executable's extent from it, [`exe_identity`] its UUID.
#[cfg(target_vendor = "apple")]
pub fn main_macho_image() -> Option<(&'static [u8], usize)> {
    use std::ffi::c_void;
    /// More load-command bytes than any linker writes: a header claiming more is not read.
    const MAX_COMMANDS: usize = 1 << 20;
    // libdyld's, in libSystem; the libc crate's declarations are deprecated in favour
    // of a crate we need for nothing else.
    unsafe extern "C" {
        fn _dyld_get_image_header(image_index: u32) -> *const c_void;
        fn _dyld_get_image_vmaddr_slide(image_index: u32) -> isize;
    }
    // SAFETY: both calls only read dyld's table of loaded images; index 0 always
    // exists in a running program.
    let (header, slide) = unsafe {
        (
            _dyld_get_image_header(0).cast::<u8>(),
            _dyld_get_image_vmaddr_slide(0),
        )
    };
    if header.is_null() {
        return None;
    }
    // SAFETY: `header` points at a mapped `mach_header_64` (32 bytes), whose
    // `sizeofcmds` (at 20) counts the load-command bytes mapped right after it; the
    // executable stays mapped for the life of the process, hence `'static`.
    let image = unsafe {
        let commands = std::ptr::read_unaligned(header.add(20).cast::<u32>()) as usize;
        if commands > MAX_COMMANDS {
            return None;
        }
        std::slice::from_raw_parts(header, 32 + commands)
    };
    Some((image, slide as usize))
}

#[cfg(target_vendor = "apple")]
fn platform_exe_identity() -> Option<ExeIdentity> {
    let (image, bias) = main_macho_image()?;
    Some(ExeIdentity {
        build_id: macho_uuid(image).map(hex),
        bias,
    })
}

#[cfg(windows)]
fn platform_exe_identity() -> Option<ExeIdentity> {
    use std::ffi::c_void;
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn GetModuleHandleW(name: *const u16) -> *mut c_void;
    }
    // SAFETY: a null name asks for the executable's module, which needs no release.
    let base = unsafe { GetModuleHandleW(std::ptr::null()) } as usize;
    if base == 0 {
        return None;
    }
    /// The headers and the debug directory lie within the image's first megabytes;
    /// nothing beyond is read.
    const MAX_RVA: usize = 64 << 20;
    // The image's size, from the optional header, bounds every read.
    let read = |rva: usize, len: usize| -> Option<&'static [u8]> {
        let end = rva.checked_add(len)?;
        if end > MAX_RVA || end > image_size(base)? {
            return None;
        }
        // SAFETY: `base` is the executable's module, mapped for its whole
        // `SizeOfImage`, which `end` does not exceed; it stays mapped for the life of
        // the process.
        Some(unsafe { std::slice::from_raw_parts((base + rva) as *const u8, len) })
    };
    let (image_base, build_id) = pe_identity(read)?;
    Some(ExeIdentity {
        build_id,
        bias: base.wrapping_sub(image_base as usize),
    })
}

/// `SizeOfImage` of the module loaded at `base`.
#[cfg(windows)]
fn image_size(base: usize) -> Option<usize> {
    // SAFETY: a loaded module begins with its DOS header, whose `e_lfanew` (at 0x3c)
    // points within the first page at the PE headers; `SizeOfImage` is at 56 in the
    // optional header, which follows the signature and the 20-byte COFF header.
    unsafe {
        let pe = std::ptr::read_unaligned((base + 0x3c) as *const u32) as usize;
        if pe > 4096 - 24 - 60 {
            return None;
        }
        Some(std::ptr::read_unaligned((base + pe + 24 + 56) as *const u32) as usize)
    }
}

#[cfg(not(any(
    all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "64"
    ),
    target_vendor = "apple",
    windows
)))]
fn platform_exe_identity() -> Option<ExeIdentity> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn own_code_is_in_the_executable() {
        // A test binary links this crate statically: its code is the executable's.
        let own = own_code_is_in_the_executable as fn() as usize;
        if cfg!(any(target_os = "linux", target_vendor = "apple", windows)) {
            assert_eq!(in_main_executable(own), Some(true));
        }
    }

    #[test]
    fn libc_code_is_not() {
        // `strlen` comes from the C library, a shared library on these platforms.
        #[cfg(any(target_os = "linux", target_vendor = "apple"))]
        {
            let strlen = libc::strlen as *const () as usize;
            assert_eq!(in_main_executable(strlen), Some(false));
        }
    }
    /// Linux only: the GNU toolchain's linker writes a build ID by default, and the
    /// loader's view of the image (`main_image`) gives the bias to compare with.
    #[test]
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    fn own_build_id_is_the_linker_s() {
        let identity = exe_identity().expect("an identity on Linux");
        assert_eq!(identity.bias, main_image().expect("an image").bias);
        let id = identity
            .build_id
            .expect("the toolchain's linker writes a build ID");
        assert!(
            id.len() >= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }

    #[test]
    fn notes_are_parsed_by_their_sizes() {
        let mut notes = Vec::new();
        for (name, kind, desc) in [
            (&b"GNU\0"[..], 1u32, &[1u8, 2, 3, 4][..]),
            (&b"Go\0\0"[..], 3, &[9, 9][..]),
            (&b"GNU\0"[..], 3, &[0xab, 0xcd, 0xef][..]),
        ] {
            notes.extend_from_slice(&(name.len() as u32).to_ne_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
            notes.extend_from_slice(&kind.to_ne_bytes());
            notes.extend_from_slice(name);
            notes.extend_from_slice(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        }
        assert_eq!(gnu_build_id(&notes), Some(&[0xab, 0xcd, 0xef][..]));
        assert_eq!(gnu_build_id(&notes[..notes.len() - 8]), None);
        assert_eq!(gnu_build_id(&[0xff; 40]), None);
    }

    #[test]
    fn uuid_and_codeview_identifiers() {
        let mut macho = vec![0u8; 32];
        macho[16..20].copy_from_slice(&2u32.to_le_bytes());
        macho.extend_from_slice(&0x19u32.to_le_bytes()); // LC_SEGMENT_64, skipped
        macho.extend_from_slice(&16u32.to_le_bytes());
        macho.extend_from_slice(&[0; 8]);
        macho.extend_from_slice(&0x1bu32.to_le_bytes());
        macho.extend_from_slice(&24u32.to_le_bytes());
        macho.extend((0u8..16).collect::<Vec<_>>());
        assert_eq!(
            macho_uuid(&macho).map(hex).as_deref(),
            Some("000102030405060708090a0b0c0d0e0f")
        );

        // A PE32+ image: headers at 0x80, a debug directory at 0x400, RSDS at 0x500.
        let mut pe = vec![0u8; 0x600];
        pe[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        let optional = 0x80 + 24;
        pe[optional..optional + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        pe[optional + 24..optional + 32].copy_from_slice(&0x1_4000_0000u64.to_le_bytes());
        let debug = optional + 112 + 6 * 8;
        pe[debug..debug + 4].copy_from_slice(&0x400u32.to_le_bytes());
        pe[debug + 4..debug + 8].copy_from_slice(&28u32.to_le_bytes());
        pe[0x400 + 12..0x400 + 16].copy_from_slice(&2u32.to_le_bytes());
        pe[0x400 + 20..0x400 + 24].copy_from_slice(&0x500u32.to_le_bytes());
        pe[0x500..0x504].copy_from_slice(b"RSDS");
        pe[0x504..0x514].copy_from_slice(&[
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        pe[0x514..0x518].copy_from_slice(&0x1au32.to_le_bytes());
        let read = |at: usize, len: usize| pe.get(at..at.checked_add(len)?);
        assert_eq!(
            pe_identity(read),
            Some((
                0x1_4000_0000,
                Some("00112233445566778899aabbccddeeff1a".to_owned())
            ))
        );
    }
}
