//! The recording side: the journal mapped, the panic hook, and the signal handlers.

use std::panic::PanicHookInfo;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use telemetry_internal::{Dir, Program};

use crate::{CrashMonitorError, journal, record};

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// The panic hook that was installed before ours; ours calls it after reporting.
static PREVIOUS_HOOK: OnceLock<Hook> = OnceLock::new();

/// Installs crash recording into `dir`'s journal for `program`; whether crashes wait
/// in the journal.
pub(crate) fn install(dir: &Dir, program: &Program) -> Result<bool, CrashMonitorError> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Err(CrashMonitorError::AlreadyInstalled);
    }
    if std::thread::panicking() {
        // std::panic::set_hook would panic.
        return Err(CrashMonitorError::Panicking);
    }
    let identity = telemetry_internal::image::exe_identity();
    record::prepare(
        identity.as_ref().and_then(|i| i.build_id.as_deref()),
        identity.as_ref().map_or(0, |i| i.bias),
        program,
        telemetry_internal::toolchain(),
    )
    .map_err(|_| {
        CrashMonitorError::Journal(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the program's name, version or toolchain is too long for a crash record",
        ))
    })?;
    let opened = journal::open_for_recording(dir).map_err(CrashMonitorError::Journal)?;
    crate::platform::map_journal(&opened.file).map_err(CrashMonitorError::Journal)?;
    let previous = std::panic::take_hook();
    let _ = PREVIOUS_HOOK.set(previous);
    std::panic::set_hook(Box::new(panic_hook));
    crate::platform::install_handlers()
        .map_err(|(signal, source)| CrashMonitorError::Signal { signal, source })?;
    Ok(opened.pending)
}

/// Keeps the panic's frames (they are written if the panic ends the process), then
/// hands it to the previous hook, which prints the message as the program would have.
/// Keeping first means a previous hook that exits or aborts cannot lose the report.
/// The message and the payload are never looked at.
#[inline(never)]
fn panic_hook(info: &PanicHookInfo<'_>) {
    crate::platform::report_panic(panic_hook as fn(&PanicHookInfo<'_>) as usize);
    if let Some(previous) = PREVIOUS_HOOK.get() {
        previous(info);
    }
}
