//! The parent side on Windows: the sentinel, the panic hook, and the exception filter.
//! The same as `parent.rs` on Unix but for the pipe's type (a handle, not a descriptor)
//! and the platform module it calls.

use std::os::windows::io::OwnedHandle;
use std::panic::PanicHookInfo;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::CrashMonitorError;
use crate::signal_windows as platform;
use crate::wire::{ReportBuf, sentinel};

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// The panic hook that was installed before ours; ours calls it after reporting.
static PREVIOUS_HOOK: OnceLock<Hook> = OnceLock::new();

pub(crate) fn install(pipe: OwnedHandle) -> Result<(), CrashMonitorError> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Err(CrashMonitorError::AlreadyInstalled);
    }
    if std::thread::panicking() {
        // std::panic::set_hook would panic.
        return Err(CrashMonitorError::Panicking);
    }
    platform::open_pipe(pipe, ReportBuf::sentinel(sentinel()).as_bytes())
        .map_err(CrashMonitorError::Pipe)?;
    let previous = std::panic::take_hook();
    let _ = PREVIOUS_HOOK.set(previous);
    std::panic::set_hook(Box::new(panic_hook));
    platform::install_handlers()
        .map_err(|(signal, source)| CrashMonitorError::Signal { signal, source })
}

/// Reports the panic, then hands it to the previous hook. The message and the payload
/// are never looked at.
#[inline(never)]
fn panic_hook(info: &PanicHookInfo<'_>) {
    platform::report_panic(panic_hook as fn(&PanicHookInfo<'_>) as usize);
    if let Some(previous) = PREVIOUS_HOOK.get() {
        previous(info);
    }
}
