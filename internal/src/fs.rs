//! Careful file access for a directory that other processes, other users' mistakes or an
//! attacker may have touched (invariant 7 of ARCHITECTURE.md).
//!
//! Every open here:
//! - never follows a symbolic link at the last component (`O_NOFOLLOW`), so a link
//!   planted in the telemetry directory is an error, never a write through it;
//! - never blocks on a FIFO or device (`O_NONBLOCK`), and then requires a regular file;
//! - creates files `0600` and directories `0700` whatever the umask allows beyond that;
//! - reads at most a stated number of bytes.
//!
//! Errors are plain `io::Error`s whose kind says what was wrong ([`not_regular`] for a
//! FIFO, device, directory or link where a file should be).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The most any small control file (`mode`, `weekends`, `upload.token`) may hold. Real
/// ones hold a dozen bytes; a larger one is garbage and is never read whole.
pub const SMALL_FILE_LIMIT: u64 = 256;

/// The error for a path that exists but is not a regular file (or is a link).
pub fn not_regular(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not a regular file", path.display()),
    )
}

fn options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // std adds O_CLOEXEC itself.
        options
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .mode(0o600);
    }
    options
}

/// Opens with `options` and checks that what was opened is a regular file. A symbolic
/// link fails to open (`ELOOP`) and is reported as [`not_regular`] too.
fn open_regular(path: &Path, options: &OpenOptions) -> io::Result<File> {
    open_regular_with_metadata(path, options).map(|(file, _)| file)
}

/// [`open_regular`], with the metadata its check read (one `fstat` for both).
fn open_regular_with_metadata(
    path: &Path,
    options: &OpenOptions,
) -> io::Result<(File, fs::Metadata)> {
    let file = options.open(path).map_err(|err| {
        if is_link_error(&err) {
            not_regular(path)
        } else {
            err
        }
    })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(path));
    }
    Ok((file, meta))
}

fn is_link_error(err: &io::Error) -> bool {
    #[cfg(unix)]
    {
        err.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// The most a counter file may hold for any reader of whole files (`telemetry dump`,
/// `view`, `csv`): real ones are a few 16 KiB pages, Go's grow to about 1 MiB, and
/// the format's 32-bit offsets could in theory address 4 GiB, which no reader
/// should allocate because of a planted (say sparse) file.
pub const COUNTER_FILE_LIMIT: u64 = 64 << 20;

/// Reads a whole file of at most `limit` bytes; a larger file is an `InvalidData` error,
/// found from its size before anything is read (a 4 GiB sparse file costs nothing),
/// and never more than `limit + 1` bytes are read of one that grows meanwhile.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let (mut file, meta) = open_regular_with_metadata(path, options().read(true))?;
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        )
    };
    let len = meta.len();
    if len > limit {
        return Err(too_large());
    }
    // The size as found, plus one byte to notice a file that grew meanwhile. A file
    // that kept its size is read by one `read` that comes back short: end of file, as
    // a regular file's read comes back short only there. Anything else (a file that
    // grew, shrank or is read in pieces) is read on to end of file, within the bound.
    let len = usize::try_from(len).map_err(|_| too_large())?;
    let mut bytes = vec![0; len + 1];
    let mut filled = 0;
    loop {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled >= bytes.len() {
                    break;
                }
                if filled >= len {
                    bytes.truncate(filled);
                    return Ok(bytes);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    bytes.truncate(filled);
    if filled > len {
        let more = limit.saturating_add(1).saturating_sub(filled as u64);
        file.take(more).read_to_end(&mut bytes)?;
    }
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens an existing regular file for reading.
pub fn open_read(path: &Path) -> io::Result<File> {
    open_regular(path, options().read(true))
}

/// Opens a regular file for reading and writing, creating it (`0600`) if `create`.
pub fn open_read_write(path: &Path, create: bool) -> io::Result<File> {
    open_regular(path, options().read(true).write(true).create(create))
}

/// [`open_read_write`], with the metadata its check read (one `fstat` for both).
pub fn open_read_write_with_metadata(
    path: &Path,
    create: bool,
) -> io::Result<(File, fs::Metadata)> {
    open_regular_with_metadata(path, options().read(true).write(true).create(create))
}

/// Opens a regular file for appending, creating it (`0600`) if needed: logs.
pub fn open_append(path: &Path) -> io::Result<File> {
    open_regular(path, options().append(true).create(true))
}

/// Creates a new file (`0600`); fails if anything, a link included, has the name.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    open_regular(path, options().write(true).create_new(true))
}

/// Makes sure `path` is a directory of ours: creates it (and missing parents) `0700`,
/// and refuses a symbolic link, a non-directory or, on Unix, a directory owned by
/// another user (which could read our data or plant links in it).
pub fn ensure_private_dir(path: &Path) -> io::Result<()> {
    // One `lstat` on the common path, where the directory exists (every `start`).
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(path)?;
            fs::symlink_metadata(path)?
        }
        Err(err) => return Err(err),
    };
    check_private(path, &meta)
}

/// Checks without creating: `path` is a real directory (not a link) owned by us.
pub fn check_private_dir(path: &Path) -> io::Result<()> {
    check_private(path, &fs::symlink_metadata(path)?)
}

fn check_private(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if meta.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link, not a directory: telemetry never follows links",
                path.display()
            ),
        ));
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", path.display()),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != crate::sys::effective_uid() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} belongs to another user", path.display()),
            ));
        }
    }
    Ok(())
}

/// Replaces `path` with `contents` so that readers see the old file or the new one,
/// never a partial one. The last of several writers wins. A link at `path` is replaced,
/// never written through.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let result = write_new(&tmp, contents).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `contents` only if it does not exist yet. Unlike writing with
/// `create_new`, no reader ever sees the file empty (Go's `weekends` file could be
/// read empty by a concurrent first run: golang/go#68390). Returns `false` if another
/// writer won the race (or anything, a link included, has the name). Reports are
/// created this way too, so that concurrent uploaders neither tear nor duplicate one
/// (golang/go#65970).
pub fn create_complete(path: &Path, contents: &[u8]) -> io::Result<bool> {
    let tmp = temp_sibling(path);
    if let Err(err) = write_new(&tmp, contents) {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    // A hard link publishes a complete file and fails if the name is taken.
    let linked = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // File systems without hard links: fall back to a rename, which is still
        // atomic but lets the last of two racing writers win.
        Err(_) if fs::symlink_metadata(path).is_err() => fs::rename(&tmp, path).map(|()| true),
        Err(err) => Err(err),
    };
    let _ = fs::remove_file(&tmp);
    linked
}

/// The marker in the names of temporary files: `<name>.tmp-<pid>-<random>`. A file with
/// it in its name is debris of an interrupted write once its writer is gone.
pub const TEMP_MARKER: &str = ".tmp-";

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        "{TEMP_MARKER}{}-{:x}",
        std::process::id(),
        crate::random_u64()
    ));
    path.with_file_name(name)
}

fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = create_new(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn links_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let link = tmp.path().join("link");
        symlink(&victim, &link).unwrap();
        assert_eq!(
            read_bounded(&link, 100).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(open_read_write(&link, true).is_err());
        assert!(open_append(&link).is_err());
        assert!(create_new(&link).is_err());
        assert!(!create_complete(&link, b"x").unwrap());
        write_atomic(&link, b"replaced").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&link).unwrap(), b"replaced");
        assert!(
            !fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn fifos_never_block_and_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            read_bounded(&fifo, 100).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(open_read_write(&fifo, false).is_err());
        assert!(open_append(&fifo).is_err());
        // A device is no regular file either, and /dev/zero is never read unbounded.
        assert!(read_bounded(Path::new("/dev/zero"), 100).is_err());
    }

    #[test]
    fn reads_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let big = tmp.path().join("big");
        fs::write(&big, vec![b'x'; 1000]).unwrap();
        assert_eq!(read_bounded(&big, 1000).unwrap().len(), 1000);
        assert_eq!(
            read_bounded(&big, 999).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    /// A file that holds more than its size said when it was opened (as one growing
    /// meanwhile, or a `/proc` file, whose size is 0) is read on, within the bound.
    #[cfg(target_os = "linux")]
    #[test]
    fn reads_past_the_size_found_within_the_bound() {
        let status = read_bounded(Path::new("/proc/self/status"), 64 * 1024).unwrap();
        assert!(String::from_utf8(status).unwrap().contains("\nPid:\t"));
        assert_eq!(
            read_bounded(Path::new("/proc/self/status"), 10)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidData
        );
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        fs::write(&empty, "").unwrap();
        assert_eq!(read_bounded(&empty, 10).unwrap(), b"");
    }

    #[test]
    fn private_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        // The umask is process-wide; rather than change it under other tests, check the
        // modes requested, which the umask can only narrow.
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir) & !0o700, 0);
        assert_eq!(mode(&tmp.path().join("a")) & !0o700, 0);
        let file = dir.join("f");
        write_atomic(&file, b"x").unwrap();
        assert_eq!(mode(&file) & !0o600, 0);
        drop(open_append(&dir.join("log")).unwrap());
        assert_eq!(mode(&dir.join("log")) & !0o600, 0);
    }

    #[test]
    fn private_dir_refuses_links_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        symlink(&real, &link).unwrap();
        assert!(ensure_private_dir(&link).is_err());
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(ensure_private_dir(&file).is_err());
        ensure_private_dir(&real).unwrap();
    }

    #[test]
    fn foreign_owner_is_refused() {
        if crate::sys::effective_uid() != 0 {
            // Only root can give a directory to someone else; CI runs as root.
            assert!(std::env::var_os("CI").is_none(), "CI must run this as root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("theirs");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    }
}
