//! Where the executable is loaded: its extent, which tells the executable's frames
//! from those of shared libraries (`outside`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The executable's mapped address range; addresses outside it are `outside` frames.
static EXE_START: AtomicUsize = AtomicUsize::new(0);
static EXE_END: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Where the executable is loaded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExeImage {
    /// The lowest and one past the highest address of its loaded segments.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// The main executable's load address and extent, from the dynamic loader.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    target_pointer_width = "64"
))]
pub(crate) fn exe_image() -> Option<ExeImage> {
    telemetry_internal::image::main_image().map(|image| ExeImage {
        start: image.start,
        end: image.end,
    })
}

/// The main executable's extent, from its load commands as dyld maps them.
#[cfg(target_os = "macos")]
pub(crate) fn exe_image() -> Option<ExeImage> {
    let (image, bias) = telemetry_internal::image::main_macho_image()?;
    let (start, end) = crate::macho::loaded_extent(image)?;
    Some(ExeImage {
        start: bias.wrapping_add(usize::try_from(start).ok()?),
        end: bias.wrapping_add(usize::try_from(end).ok()?),
    })
}

/// Elsewhere the executable's extent is unknown: every address counts as inside, and
/// the child names no frames.
#[cfg(not(any(
    all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "64"
    ),
    target_os = "macos"
)))]
pub(crate) fn exe_image() -> Option<ExeImage> {
    None
}

/// Records the executable's extent for [`inside`].
pub(super) fn record_extent() {
    if let Some(image) = exe_image() {
        EXE_START.store(image.start, Ordering::SeqCst);
        EXE_END.store(image.end, Ordering::SeqCst);
    }
}

/// Whether `addr` lies in the executable (everything does before [`record_extent`]).
pub(super) fn inside(addr: usize) -> bool {
    (EXE_START.load(Ordering::Relaxed)..EXE_END.load(Ordering::Relaxed)).contains(&addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_image_contains_own_code() {
        let image = exe_image().expect("linux has dl_iterate_phdr");
        let code = crate::record::sentinel();
        assert!(
            (image.start..image.end).contains(&code),
            "{image:?} {code:#x}"
        );
    }
}
