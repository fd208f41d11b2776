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
    unsafe extern "C" fn first_object(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for the duration of the call,
        // whose `dlpi_phdr` points at `dlpi_phnum` program headers; `data` is the
        // `Option<MainImage>` that `main_image` passed and keeps alive.
        unsafe {
            let info = &*info;
            let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum))
            };
            let bias = info.dlpi_addr as usize;
            let (mut start, mut end) = (usize::MAX, 0usize);
            for h in headers.iter().filter(|h| h.p_type == libc::PT_LOAD) {
                let lo = bias.wrapping_add(h.p_vaddr as usize);
                start = start.min(lo);
                end = end.max(lo.saturating_add(h.p_memsz as usize));
            }
            if start < end {
                *data.cast::<Option<MainImage>>() = Some(MainImage { bias, start, end });
            }
        }
        1 // The first object is the main program: stop.
    }
    let mut image: Option<MainImage> = None;
    // SAFETY: the callback only reads what the loader hands it and writes `image`,
    // which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(first_object), (&raw mut image).cast());
    }
    image
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
