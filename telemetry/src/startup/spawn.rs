//! Starting the telemetry child detached, on Unix: the token pipe that marks a real
//! child, and the double fork (see the parent module's docs) with everything it
//! prepares before forking.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use telemetry_internal::move_above_stdio;

use super::TOKEN_FD;

/// A pipe's identity: the device and inode of its two ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PipeId {
    dev: u64,
    ino: u64,
}

impl PipeId {
    /// `dev:ino`, for the child's environment.
    pub(crate) fn to_env(self) -> String {
        format!("{}:{}", self.dev, self.ino)
    }

    pub(crate) fn parse(text: &str) -> Option<PipeId> {
        let (dev, ino) = text.split_once(':')?;
        Some(PipeId {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
        })
    }
}

/// The identity of the pipe open as `fd`, or `None` if `fd` is not an open pipe.
fn pipe_id(fd: RawFd) -> Option<PipeId> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes only into `st`, which outlives the call; a descriptor
    // that is not open only makes it fail with EBADF.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    let is_fifo = (st.st_mode as u32 & libc::S_IFMT as u32) == libc::S_IFIFO as u32;
    #[allow(clippy::unnecessary_cast)]
    is_fifo.then_some(PipeId {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
    })
}

/// Whether fd 3 is the token pipe named `id`: only the parent that created it can
/// have put it there.
pub(crate) fn holds_token(id: PipeId) -> bool {
    pipe_id(TOKEN_FD) == Some(id)
}

/// A close-on-exec pipe, both ends above stdio: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: pipe2 writes two descriptors into `fds`, which has room for them.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    // macOS has no pipe2: another thread forking between pipe and fcntl can leak
    // the pipe into its child until that child execs.
    #[cfg(target_vendor = "apple")]
    // SAFETY: pipe writes two descriptors into `fds`, which has room for them.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors returned to us just now.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(target_vendor = "apple")]
    for fd in [&read, &write] {
        // SAFETY: fcntl on descriptors we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((move_above_stdio(read)?, move_above_stdio(write)?))
}

/// The identity of a pipe end we own.
pub(crate) fn id_of(fd: &OwnedFd) -> io::Result<PipeId> {
    pipe_id(fd.as_raw_fd()).ok_or_else(|| io::Error::other("not a pipe"))
}

/// Everything the detached child is started with, prepared before forking so that
/// the forked processes only call async-signal-safe functions.
pub(crate) struct Launch {
    /// The executable.
    pub(crate) exe: CString,
    /// `argv`, `argv[0]` included.
    pub(crate) args: Vec<CString>,
    /// The complete environment, `NAME=value`.
    pub(crate) env: Vec<CString>,
    /// The child's working directory (`/` if it cannot be entered).
    pub(crate) cwd: CString,
    /// Becomes the child's fd 0, 1, 2.
    pub(crate) stdio: [OwnedFd; 3],
    /// Becomes the child's fd 3: the write end of the token pipe.
    pub(crate) token: OwnedFd,
}

impl Launch {
    /// Converts a path or string for `execve`; `None` if it holds a NUL byte.
    pub(crate) fn c_string(bytes: impl AsRef<std::ffi::OsStr>) -> Option<CString> {
        CString::new(bytes.as_ref().as_bytes()).ok()
    }

    /// `NAME=value`, or `None` if either holds a NUL byte.
    pub(crate) fn env_entry(name: &OsString, value: &OsString) -> Option<CString> {
        let mut entry = name.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        CString::new(entry).ok()
    }
}

/// Opens `/dev/null` for reading and writing, above stdio.
pub(crate) fn dev_null() -> io::Result<OwnedFd> {
    let file = File::options()
        .read(true)
        .write(true)
        .open(Path::new("/dev/null"))?;
    move_above_stdio(OwnedFd::from(file))
}

/// Starts `launch` as a detached process (see the module docs) and returns its pid
/// and the read end of the token pipe, which reads end of file once it has exited.
/// `token_read` is that read end; the parent keeps it.
pub(crate) fn spawn_detached(launch: Launch, token_read: OwnedFd) -> io::Result<(u32, OwnedFd)> {
    spawn_detached_by(launch, token_read, start_intermediate)
}

/// [`spawn_detached`], with the intermediate started by `start` (tests choose the
/// fallback).
pub(super) fn spawn_detached_by(
    launch: Launch,
    token_read: OwnedFd,
    start: fn(&Exec) -> io::Result<libc::pid_t>,
) -> io::Result<(u32, OwnedFd)> {
    let mut argv: Vec<*const libc::c_char> = launch.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = launch.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let plan = Exec {
        exe: launch.exe.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: launch.cwd.as_ptr(),
        stdio: [
            launch.stdio[0].as_raw_fd(),
            launch.stdio[1].as_raw_fd(),
            launch.stdio[2].as_raw_fd(),
        ],
        token: launch.token.as_raw_fd(),
        max_fd: max_fd(),
    };
    // No signal may run one of the program's handlers in the processes we fork
    // (the intermediate shares the program's memory on Linux): block them all
    // until the intermediate is gone. The child unblocks them before `execve`.
    let old_mask = block_all_signals();
    let intermediate = start(&plan);
    restore_signals(&old_mask);
    let intermediate = intermediate?;
    // The parent: the child's ends are the child's now. (`plan` pointed into
    // `launch`, `argv` and `envp`, which the intermediate no longer uses.)
    drop(launch);
    // The intermediate writes the child's pid and exits; if it could not fork, it
    // exits without writing and, with no write end left, the read sees end of file.
    let mut token = File::from(token_read);
    let mut pid = [0u8; 4];
    let read = read_full(&mut token, &mut pid);
    reap(intermediate);
    read?;
    let pid = i32::from_ne_bytes(pid);
    Ok((u32::try_from(pid).unwrap_or(0), OwnedFd::from(token)))
}

/// Linux: the intermediate is a `vfork`-like clone (`CLONE_VM | CLONE_VFORK`, as
/// `posix_spawn` makes): no copy of the program's page tables, and this thread
/// sleeps until the intermediate has forked the child and exited, so one fork is
/// all the program pays for. It has no exit signal: the program gets no `SIGCHLD`
/// for it, and its own `wait()` or `waitpid(-1, ..)` never sees it.
///
/// Where that clone is refused (qemu-user emulates no clone without an exit
/// signal and says `EINVAL`; a seccomp policy may say `EPERM` or `ENOSYS`), the
/// intermediate is a plain fork, as elsewhere: the child still starts, and the
/// program sees one `SIGCHLD` more.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn start_intermediate(plan: &Exec) -> io::Result<libc::pid_t> {
    clone_intermediate(plan).or_else(|err| match err.raw_os_error() {
        Some(libc::EINVAL | libc::EPERM | libc::ENOSYS) => fork_intermediate(plan),
        _ => Err(err),
    })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn clone_intermediate(plan: &Exec) -> io::Result<libc::pid_t> {
    // The intermediate's stack: it runs in our memory, so not on this thread's.
    const STACK: usize = 64 * 1024;
    let mut stack = vec![0u8; STACK];
    // SAFETY: one past the end of the allocation is a valid pointer to form.
    let top = unsafe { stack.as_mut_ptr().add(STACK) };
    // Stacks grow down on every Linux architecture Rust supports; align the top.
    let top = (top as usize & !15) as *mut libc::c_void;
    // SAFETY: `intermediate` only reads `plan` (alive until we return, since
    // CLONE_VFORK suspends us until the intermediate exits) and calls
    // async-signal-safe functions; signals are blocked; its stack is `stack`.
    let pid = unsafe {
        libc::clone(
            intermediate,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK,
            (plan as *const Exec).cast_mut().cast(),
        )
    };
    drop(stack);
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// The intermediate's body, on Linux.
#[cfg(any(target_os = "linux", target_os = "android"))]
extern "C" fn intermediate(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Exec` the parent passed, alive while we run.
    let plan = unsafe { &*(arg as *const Exec) };
    // A raw fork (`raw_fork`): glibc's would also update thread bookkeeping that
    // lives in the memory we share with the parent.
    // SAFETY: see `raw_fork`; the child only calls `exec_child`.
    let child = unsafe { raw_fork() };
    if child == 0 {
        // SAFETY: a freshly forked child, with `plan`'s pointers valid in its copy.
        unsafe { exec_child(plan) }
    }
    report_and_exit(plan, child)
}

/// Elsewhere: the intermediate is a plain fork.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn start_intermediate(plan: &Exec) -> io::Result<libc::pid_t> {
    fork_intermediate(plan)
}

/// An intermediate that is a plain fork of the program.
pub(super) fn fork_intermediate(plan: &Exec) -> io::Result<libc::pid_t> {
    // SAFETY: see `raw_fork`. The forked intermediate only makes
    // async-signal-safe calls (`raw_fork`, write, _exit, and in the child those of
    // `exec_child`) on memory prepared before the fork.
    let pid = unsafe { raw_fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above.
        let child = unsafe { raw_fork() };
        if child == 0 {
            // SAFETY: a freshly forked child, with `plan`'s pointers valid.
            unsafe { exec_child(plan) }
        }
        report_and_exit(plan, child);
    }
    Ok(pid)
}

/// A fork that runs none of the program's code, usable in a forked child of a
/// multithreaded program.
///
/// Linux: the `clone` system call with only `SIGCHLD`, which is what `fork` is to
/// the kernel. glibc's `fork` is not async-signal-safe: it runs the `pthread_atfork`
/// handlers the program and its libraries registered (which may take locks
/// another thread held at the first fork) and resets its own bookkeeping. The
/// processes forked here need none of that: they only make the async-signal-safe
/// system calls of `report_and_exit` and `exec_child`, never allocate, never touch
/// a lock, and end in `execve` or `_exit`.
///
/// # Safety
/// The new process may only make async-signal-safe calls until it execs or exits.
#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe fn raw_fork() -> libc::pid_t {
    // SAFETY: clone with SIGCHLD and no other flag or pointer is fork; the
    // remaining arguments are unused.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    pid as libc::pid_t
}

/// Elsewhere (macOS, the BSDs) the C library's `fork`: POSIX.1-2008 lists it as
/// async-signal-safe, and these libraries implement it so (Apple's `sigaction(2)`
/// lists it). It still runs the program's `pthread_atfork` handlers, exactly as
/// any fork the program makes itself does; the processes forked here only make
/// the async-signal-safe calls of `report_and_exit` and `exec_child`.
///
/// # Safety
/// As on Linux.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
unsafe fn raw_fork() -> libc::pid_t {
    // SAFETY: fork has no memory preconditions; see above for why it may run in a
    // forked child.
    unsafe { libc::fork() }
}

/// The intermediate's last act: the child's pid to the parent, then `_exit`.
fn report_and_exit(plan: &Exec, child: libc::pid_t) -> ! {
    let pid = child.to_ne_bytes();
    // SAFETY: write and _exit are async-signal-safe; `pid` outlives the write.
    unsafe {
        if child > 0 {
            libc::write(plan.token, pid.as_ptr().cast(), pid.len());
        }
        libc::_exit(i32::from(child <= 0))
    }
}

fn block_all_signals() -> libc::sigset_t {
    // SAFETY: all-zero sigsets are valid; these calls only write into them.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: `old` is the mask `block_all_signals` saved.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => return Err(io::Error::other("the telemetry child was not started")),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Waits for the intermediate process. A host that ignores `SIGCHLD`, or reaps
/// every child itself, may have reaped it already (`ECHILD`): either way it is gone.
fn reap(pid: libc::pid_t) {
    // Linux: the intermediate is a "clone" child (no exit signal), which only
    // `__WALL` waits for.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::__WALL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only into `status`.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Everything the forked processes use, as raw pointers and numbers prepared
/// before forking.
pub(super) struct Exec {
    exe: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdio: [RawFd; 3],
    token: RawFd,
    /// The highest descriptor number to close where `close_range` is missing.
    max_fd: RawFd,
}

/// The soft limit on open files, capped: where `close_range` is missing, every
/// number up to it is closed one by one.
fn max_fd() -> RawFd {
    // SAFETY: an all-zero rlimit is valid; getrlimit writes only into it.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 {
        return 1024;
    }
    RawFd::try_from(limit.rlim_cur.min(65_536)).unwrap_or(1024)
}

/// The child, between fork and exec: a session of its own, the prepared stdio and
/// token pipe at 0-3, every other descriptor closed, the program's signal handlers
/// reset and every signal unblocked, then `execve`. Only async-signal-safe calls.
///
/// # Safety
/// Call only in a freshly forked process; `plan`'s pointers must be valid there.
unsafe fn exec_child(plan: &Exec) -> ! {
    // SAFETY: the caller guarantees a forked child; every call below is
    // async-signal-safe and works on descriptors and memory that are valid.
    unsafe {
        // The terminal's hangup and job-control signals are for the program.
        libc::setsid();
        // Every source is ≥ 3 (`move_above_stdio`), so these never overwrite one
        // another; dup2 clears close-on-exec on the copy.
        for (target, source) in plan.stdio.iter().enumerate() {
            libc::dup2(*source, target as RawFd);
        }
        if plan.token == TOKEN_FD {
            libc::fcntl(TOKEN_FD, libc::F_SETFD, 0);
        } else {
            libc::dup2(plan.token, TOKEN_FD);
        }
        close_from(TOKEN_FD + 1, plan.max_fd);
        if libc::chdir(plan.cwd) != 0 {
            libc::chdir(c"/".as_ptr());
        }
        // A signal must not run one of the program's handlers here; execve resets
        // handled signals to their default anyway, ignored ones stay ignored.
        for signal in 1..65 {
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut action) == 0
                && action.sa_sigaction != libc::SIG_IGN
                && action.sa_sigaction != libc::SIG_DFL
            {
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(plan.exe, plan.argv, plan.envp);
        libc::_exit(127);
    }
}

/// Closes every descriptor from `first` on: `close_range` where the kernel has it
/// (Linux 5.9+), else one `close` per number up to `max_fd`.
///
/// # Safety
/// Only in a process about to exec, which owns every descriptor it closes.
unsafe fn close_from(first: RawFd, max_fd: RawFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: close_range takes plain integers; the caller owns the descriptors.
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        ) == 0
        {
            return;
        }
    }
    for fd in first..=max_fd {
        // SAFETY: as above; closing an unused number fails harmlessly.
        unsafe { libc::close(fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

    /// The write end of a pipe the atfork handler below writes to; -1: none.
    static ATFORK_PIPE: AtomicI32 = AtomicI32::new(-1);
    /// The thread whose forks the handler reports (0: none): only this test's.
    static ATFORK_THREAD: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn note_fork_in_child() {
        // SAFETY: pthread_self reads the thread pointer; write takes a static byte.
        unsafe {
            let fd = ATFORK_PIPE.load(Ordering::SeqCst);
            if fd >= 0 && libc::pthread_self() as usize == ATFORK_THREAD.load(Ordering::SeqCst) {
                libc::write(fd, b"x".as_ptr().cast(), 1);
            }
        }
    }

    /// The fallback intermediate (a plain fork, where the kernel or an emulator
    /// refuses the clone without exit signal) runs none of the program's
    /// `pthread_atfork` handlers: it forks with a raw system call on Linux.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_fallback_fork_runs_no_atfork_handler() {
        use std::io::Read;
        let (mut notes, noted) = {
            let (read, write) = pipe().unwrap();
            (File::from(read), write)
        };
        ATFORK_PIPE.store(noted.as_raw_fd(), Ordering::SeqCst);
        // SAFETY: pthread_self has no preconditions; pthread_atfork registers a
        // function of the signature it calls (it stays registered: it reports only
        // forks of this thread while armed).
        unsafe {
            ATFORK_THREAD.store(libc::pthread_self() as usize, Ordering::SeqCst);
            libc::pthread_atfork(None, None, Some(note_fork_in_child));
        }
        let (token_read, token_write) = pipe().unwrap();
        let null = dev_null().unwrap();
        let launch = Launch {
            exe: Launch::c_string("/bin/sh").unwrap(),
            args: vec![
                Launch::c_string("sh").unwrap(),
                Launch::c_string("-c").unwrap(),
                Launch::c_string("exit 0").unwrap(),
            ],
            env: Vec::new(),
            cwd: Launch::c_string("/").unwrap(),
            stdio: [
                null.try_clone().unwrap(),
                null.try_clone().unwrap(),
                null.try_clone().unwrap(),
            ],
            token: token_write,
        };
        let (pid, token) = spawn_detached_by(launch, token_read, fork_intermediate).unwrap();
        assert!(pid > 0);
        // The child holds the token's only write end: end of file once it is gone.
        let mut rest = Vec::new();
        File::from(token).read_to_end(&mut rest).unwrap();
        ATFORK_THREAD.store(0, Ordering::SeqCst);
        ATFORK_PIPE.store(-1, Ordering::SeqCst);
        drop(noted);
        let mut ran = Vec::new();
        notes.read_to_end(&mut ran).unwrap();
        assert_eq!(ran, b"", "an atfork handler ran in a forked process");
    }

    #[test]
    fn pipe_ids_round_trip_and_garbage_is_no_id() {
        let (read, write) = pipe().unwrap();
        let id = id_of(&read).unwrap();
        assert_eq!(id_of(&write).unwrap(), id, "both ends are one pipe");
        assert_eq!(PipeId::parse(&id.to_env()), Some(id));
        for garbage in ["", "1", "1:", ":1", "a:b", "1:2:3", "-1:2"] {
            assert_eq!(PipeId::parse(garbage), None, "{garbage:?}");
        }
        assert!(read.as_raw_fd() > 2 && write.as_raw_fd() > 2);
        let (other, _) = pipe().unwrap();
        assert_ne!(id_of(&other).unwrap(), id);
    }
}
