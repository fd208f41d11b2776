//! The facade's one platform module: everything `unsafe` in `telemetry` is here, and all
//! of it is about processes starting.
//!
//! - **The constructor.** A function the platform's loader runs before `main` in every
//!   program that links the facade. In a real telemetry child it does the child's work
//!   and exits, so the child never reaches `main`, and a `main` that parses its
//!   arguments first (clap with a required subcommand rejects `** telemetry **`) cannot
//!   lose it. In any other process it costs one environment lookup. In a library
//!   (a `cdylib` another program loads) it does nothing: see [`in_main_executable`].
//! - **Starting the child detached** (Unix): a double fork. The host starts an
//!   intermediate process, which forks the child and exits at once; the host reaps the
//!   intermediate, so the child is re-parented to init (or the nearest subreaper) and
//!   is never the host's to wait for or reap. On Linux the intermediate is a
//!   `vfork`-like clone that shares the host's memory (as `posix_spawn` does), so the
//!   host pays for one fork, and never for the child's `execve`. Between fork and
//!   `execve` only async-signal-safe calls run, on values prepared before, with every
//!   signal blocked until the child has reset the host's handlers. Where that clone
//!   is refused, the fallback forks with a raw system call on Linux (`raw_fork`):
//!   glibc's `fork` runs the program's atfork handlers.
//! - **Recognising a real child.** The parent hands the child a pipe as fd 3 and puts
//!   the pipe's identity (device and inode) in the child's environment. Only the
//!   process that created that pipe can arrange for fd 3 to be it, so a stray
//!   `TELEMETRY_CHILD=1` in a user's environment never turns their tool into a child.
//!   The same pipe tells the parent, for [`StartResult::wait`](crate::StartResult::wait),
//!   when the child has exited: the child holds the only write end.
//!
//! Platforms: the constructor is an `.init_array` entry on Linux, Android and the BSDs,
//! a `__mod_init_func` entry on macOS and iOS, and a `.CRT$XCU` entry on Windows. The
//! double fork is Unix-only; Windows starts the child with `DETACHED_PROCESS` (Windows
//! has no zombies and no reaping) through `std::process::Command`.
//!
//! The constructor is here; the token pipe and the double fork are in `spawn`, a
//! submodule and so part of this one `unsafe` module.
#![allow(unsafe_code)]

/// The constructor's entry in the platform's list of functions run before `main`.
/// `#[used]` keeps it in the binary; [`keep_constructor_linked`] makes sure the object file holding it is
/// linked whenever `start` or `maybe_child` is.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
))]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;

#[cfg(target_vendor = "apple")]
#[used]
#[unsafe(link_section = "__DATA,__mod_init_func")]
static CONSTRUCTOR: extern "C" fn() = constructor;

#[cfg(windows)]
#[used]
#[unsafe(link_section = ".CRT$XCU")]
static CONSTRUCTOR: extern "C" fn() = constructor;

/// Refers to the constructor's entry from code every tool links (`start`), so that no
/// linker drops the object file that holds it as unreferenced.
#[inline]
pub(crate) fn keep_constructor_linked() {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly",
        target_vendor = "apple",
        windows,
    ))]
    std::hint::black_box(&CONSTRUCTOR);
}

/// Runs before `main`, or, when the facade is part of a library, when that library
/// is loaded. Must never unwind (it is called from C) and must never print: in
/// anything but a real telemetry child it only looks at one environment variable.
///
/// In a library or plugin (a `cdylib` loaded with `dlopen` or `LoadLibrary`, a Python
/// extension) it does nothing, even in a process that looks like a real child: the
/// process is the host's, and the loader may be running us with other threads alive
/// (where `set_var` is unsound) or under Windows' loader lock (where the child's
/// threads could not start).
#[cfg_attr(not(any(unix, windows)), allow(dead_code))]
extern "C" fn constructor() {
    let _ = std::panic::catch_unwind(|| {
        if crate::child::verified() && in_main_executable() {
            become_child();
            crate::child::main();
        }
    });
}

/// Whether the facade is part of the program's own executable, rather than of a
/// library some other program loaded: the constructor's address against the
/// executable's image. Where that cannot be told, taken as yes.
pub(crate) fn in_main_executable() -> bool {
    let own = constructor as extern "C" fn() as usize;
    telemetry_internal::image::in_main_executable(own).unwrap_or(true)
}

/// What a real child changes in its own process before running: only safe here, while
/// the process has one thread (the constructor runs before `main`, and the program's
/// own code, which could start threads, never runs in the child).
fn become_child() {
    // Anything the child starts must not take itself for a child again.
    // SAFETY: before `main`, in a process whose `main` never runs: no other thread
    // exists to read or write the environment concurrently.
    unsafe { std::env::set_var(crate::child::CHILD_ENV, "2") };
    #[cfg(unix)]
    {
        // std ignores SIGPIPE in `main`'s prologue, which the child never reaches; a
        // server closing the connection must not kill the upload.
        // SAFETY: setting a signal's disposition to SIG_IGN has no memory effects.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        // The token pipe stays open until the child exits (that is how the parent's
        // `wait` sees it end), but nothing the child starts may inherit it.
        // SAFETY: fcntl on a descriptor number; an unused number only fails with EBADF.
        unsafe { libc::fcntl(TOKEN_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// The descriptor number the parent gives the token pipe in the child.
#[cfg(unix)]
pub(crate) const TOKEN_FD: i32 = 3;

#[cfg(unix)]
mod spawn;

#[cfg(unix)]
pub(crate) use self::spawn::*;
