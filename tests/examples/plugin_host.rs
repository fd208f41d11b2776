//! A host that loads the `plugin` example as a shared library (`dlopen` on Unix,
//! `LoadLibraryW` on Windows) and calls its `plugin_start`.
//!
//! `PLUGIN_PATH` names the library. It prints `loaded` once the library is loaded,
//! then `started child: true|false` after the call. With `PLUGIN_HOST_AS_CHILD=1` it
//! first makes itself look exactly like a real telemetry child (the variables and, on
//! Unix, the token pipe at fd 3 that only a parent could give), as a copy of the host
//! that telemetry re-executed would: a plugin's constructor must still do nothing.

#![allow(clippy::print_stdout)]

use std::ffi::c_void;

type PluginStart = extern "C" fn() -> i32;

fn main() {
    let path = std::env::var_os("PLUGIN_PATH").expect("PLUGIN_PATH");
    if std::env::var_os("PLUGIN_HOST_AS_CHILD").is_some() {
        pose_as_a_telemetry_child();
    }
    let start = load(&path);
    println!("loaded");
    println!("started child: {}", start() != 0);
}

#[cfg(unix)]
fn load(path: &std::ffi::OsStr) -> PluginStart {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_bytes()).expect("no NUL in the path");
    // SAFETY: dlopen takes a C string that outlives the call; loading runs the
    // library's constructors, which is what this program tests.
    let library = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!library.is_null(), "dlopen failed");
    // SAFETY: a handle dlopen returned and a C string literal.
    let symbol = unsafe { libc::dlsym(library, c"plugin_start".as_ptr()) };
    assert!(!symbol.is_null(), "no plugin_start");
    // SAFETY: `plugin_start` is an `extern "C" fn() -> i32` (the `plugin` example),
    // and the library is never unloaded.
    unsafe { std::mem::transmute::<*mut c_void, PluginStart>(symbol) }
}

#[cfg(windows)]
fn load(path: &std::ffi::OsStr) -> PluginStart {
    use std::os::windows::ffi::OsStrExt;
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn LoadLibraryW(name: *const u16) -> *mut c_void;
        fn GetProcAddress(module: *mut c_void, name: *const u8) -> *mut c_void;
    }
    let wide: Vec<u16> = path.encode_wide().chain([0]).collect();
    // SAFETY: a NUL-terminated wide string that outlives the call; loading runs the
    // library's constructors (under the loader lock), which is what this program
    // tests.
    let library = unsafe { LoadLibraryW(wide.as_ptr()) };
    assert!(!library.is_null(), "LoadLibraryW failed");
    // SAFETY: a module LoadLibraryW returned and a NUL-terminated name.
    let symbol = unsafe { GetProcAddress(library, c"plugin_start".as_ptr().cast()) };
    assert!(!symbol.is_null(), "no plugin_start");
    // SAFETY: as on Unix.
    unsafe { std::mem::transmute::<*mut c_void, PluginStart>(symbol) }
}

/// `TELEMETRY_CHILD=1` and the plan's variables, and on Unix a pipe at fd 3 whose
/// identity is in `TELEMETRY_CHILD_TOKEN`: everything the facade checks before it
/// takes a process for its child. (On Windows the test passes the child's argument.)
fn pose_as_a_telemetry_child() {
    let dir = std::env::var_os("PLUGIN_TELEMETRY_DIR").expect("PLUGIN_TELEMETRY_DIR");
    #[cfg(unix)]
    let token = {
        let mut fds = [-1; 2];
        // SAFETY: pipe writes two descriptors into `fds`; dup2 and fstat take
        // descriptors this program just made and a local to write into.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            assert_eq!(libc::dup2(fds[1], 3), 3);
            let mut st: libc::stat = std::mem::zeroed();
            assert_eq!(libc::fstat(3, &mut st), 0);
            format!("{}:{}", st.st_dev, st.st_ino)
        }
    };
    #[cfg(not(unix))]
    let token = String::new();
    for (name, value) in [
        ("TELEMETRY_CHILD", std::ffi::OsString::from("1")),
        ("TELEMETRY_CHILD_TOKEN", token.into()),
        ("TELEMETRY_CHILD_DIR", dir),
        ("TELEMETRY_CHILD_PROGRAM", "telemetry-tests".into()),
        ("TELEMETRY_CHILD_VERSION", "0.1.0".into()),
    ] {
        // SAFETY: `main` has started no thread yet.
        unsafe { std::env::set_var(name, value) };
    }
}
