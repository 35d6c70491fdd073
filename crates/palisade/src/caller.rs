//! What a program that runs sandboxed commands (such as the `palisade` CLI) needs from its own
//! process and user: standard streams it can rely on, and the user's home directory when the
//! environment does not say.

use std::path::PathBuf;

/// Opens each standard stream the caller closed (`2>&-`) on `/dev/null` (Unix; elsewhere does
/// nothing). Call it first thing in `main`: otherwise the next file the program opens (a lock,
/// a record) gets that number, and the program's own messages, or a command's inherited
/// stdio, land in it.
pub fn fill_closed_stdio() {
    #[cfg(unix)]
    for fd in 0..3 {
        if !is_open(fd) {
            open_dev_null();
        }
    }
}

#[cfg(unix)]
fn is_open(fd: libc::c_int) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Takes a descriptor this program's caller passed open for writing (`palisade run
/// --status-fd 3`), marked close-on-exec so that no command started afterwards inherits it.
/// Refused (with why) if it is a standard stream, not open, or open read-only. Unix only; call
/// it once per descriptor, early, before this process opens files of its own.
#[cfg(unix)]
pub fn take_passed_fd(fd: i32) -> std::io::Result<std::fs::File> {
    use std::io::{Error, ErrorKind};
    use std::os::fd::FromRawFd;
    if (0..3).contains(&fd) {
        return Err(Error::new(ErrorKind::InvalidInput, "it is a standard stream, which the command writes too"));
    }
    if fd < 0 || !is_open(fd) {
        return Err(Error::new(ErrorKind::NotFound, "it is not open (the caller must pass it open, e.g. `3>file`)"));
    }
    // SAFETY: F_GETFL and F_SETFD only query or set flags of a descriptor checked open above.
    let access = unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_ACCMODE;
    if access == libc::O_RDONLY {
        return Err(Error::new(ErrorKind::PermissionDenied, "it is open read-only"));
    }
    // SAFETY: as above.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    if flags == -1 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == -1 {
        return Err(Error::last_os_error());
    }
    // SAFETY: the descriptor is open and was inherited: nothing else in this process owns it,
    // and the caller takes it once.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Windows' form of [`take_passed_fd`]: `value` is the number of a handle the caller made
/// inheritable and passed (Windows has no descriptor numbers a shell hands on). Refused (with
/// why) if it is a standard stream's handle, not open, or not a file, pipe or character device.
/// Made non-inheritable, so that no command started afterwards inherits it. Whether it is open
/// for writing only shows when the record is written (a warning then). Call it once per value.
#[cfg(windows)]
pub fn take_passed_handle(value: usize) -> std::io::Result<std::fs::File> {
    use std::io::{Error, ErrorKind};
    use std::os::windows::io::FromRawHandle;
    use windows_sys::Win32::Foundation::{GetHandleInformation, SetHandleInformation, HANDLE, HANDLE_FLAG_INHERIT};
    use windows_sys::Win32::Storage::FileSystem::{GetFileType, FILE_TYPE_CHAR, FILE_TYPE_DISK, FILE_TYPE_PIPE};
    use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE};
    let handle = value as HANDLE;
    for std in [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE] {
        // SAFETY: GetStdHandle only reads this process's parameters.
        if value != 0 && unsafe { GetStdHandle(std) } == handle {
            return Err(Error::new(ErrorKind::InvalidInput, "it is a standard stream, which the command writes too"));
        }
    }
    let mut flags = 0u32;
    // SAFETY: GetHandleInformation only queries the handle table; an unknown value fails.
    if value == 0 || unsafe { GetHandleInformation(handle, &mut flags) } == 0 {
        return Err(Error::new(
            ErrorKind::NotFound,
            "it is not an open handle of this process (the caller must pass an inheritable handle's value)",
        ));
    }
    // SAFETY: the handle is open (checked above); GetFileType only queries it.
    let kind = unsafe { GetFileType(handle) };
    if ![FILE_TYPE_DISK, FILE_TYPE_PIPE, FILE_TYPE_CHAR].contains(&kind) {
        return Err(Error::new(ErrorKind::InvalidInput, "it is not a file, pipe or character device"));
    }
    // SAFETY: as above; clears only the inherit flag.
    if unsafe { SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0) } == 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: the handle is open and was inherited: nothing else in this process owns it, and
    // the caller takes it once.
    Ok(unsafe { std::fs::File::from_raw_handle(handle) })
}

/// Opens `/dev/null` read-write on the lowest free descriptor, for the rest of the process.
#[cfg(unix)]
fn open_dev_null() {
    // SAFETY: open on a constant C string; the descriptor is meant to live for the whole
    // process, so nothing owns or closes it.
    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
}

/// The current user's home directory from the user database (`getpwuid_r` on Unix), if it is
/// absolute; `None` elsewhere. For callers whose `$HOME` is unset, empty or relative (harnesses
/// often clear the environment), so that `~/.ssh` and the other default deny-read entries still
/// name the user's real secrets instead of silently nothing.
pub fn home_from_user_database() -> Option<PathBuf> {
    #[cfg(unix)]
    {
        passwd_home().filter(|p| p.is_absolute())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(unix)]
fn passwd_home() -> Option<PathBuf> {
    passwd_entry().map(|(_, dir)| PathBuf::from(dir))
}

/// The effective user's name and home directory from the user database.
#[cfg(unix)]
fn passwd_entry() -> Option<(std::ffi::OsString, std::ffi::OsString)> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 16384];
    // SAFETY: passwd is plain data filled by getpwuid_r; the strings it points to live in buf,
    // which outlives their use below.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::geteuid(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut found);
        if rc != 0 || found.is_null() || pwd.pw_dir.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let text =
            |p: *const libc::c_char| std::ffi::OsStr::from_bytes(std::ffi::CStr::from_ptr(p).to_bytes()).to_owned();
        Some((text(pwd.pw_name), text(pwd.pw_dir)))
    }
}

/// Who runs this process, for the audit log: the user's name and numeric id, from the system
/// (the user database on Unix, the process token on Windows), never from the environment.
pub fn current_user() -> (Option<String>, Option<u32>) {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        (passwd_entry().map(|(name, _)| name.to_string_lossy().into_owned()), Some(uid))
    }
    #[cfg(windows)]
    {
        let name = palisade_win32::token::open_own().and_then(|t| palisade_win32::sid::account_name(&t.user));
        (name.ok(), None)
    }
    #[cfg(not(any(unix, windows)))]
    {
        (None, None)
    }
}

/// The audit log's default place: `palisade\audit.jsonl` under the LocalAppData known folder on
/// Windows (asked of the system, not `%LOCALAPPDATA%`); elsewhere `None` (the configuration's
/// default, from `$XDG_STATE_HOME` or `~/.local/state`, applies).
pub fn audit_log_default() -> Option<PathBuf> {
    #[cfg(windows)]
    {
        use windows_sys::Win32::UI::Shell::FOLDERID_LocalAppData;
        palisade_win32::system::known_folder_path(&FOLDERID_LocalAppData)
            .map(|d| d.join("palisade").join("audit.jsonl"))
    }
    #[cfg(not(windows))]
    {
        None
    }
}

/// Where the administrator's managed file is. On Windows: `managed.toml` in `palisade` under the
/// ProgramData known folder, asked of the system and never taken from the environment (which
/// the user, or an agent, controls: `%ProgramData%` pointing elsewhere would sidestep the
/// administrator's bounds); if the system cannot say, `C:\ProgramData`. Elsewhere:
/// [`palisade_policy::config::DEFAULT_MANAGED_CONFIG`].
pub fn managed_config_path() -> PathBuf {
    #[cfg(windows)]
    {
        use windows_sys::Win32::UI::Shell::FOLDERID_ProgramData;
        let base = palisade_win32::system::known_folder_path(&FOLDERID_ProgramData)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
        base.join("palisade").join("managed.toml")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from(palisade_policy::config::DEFAULT_MANAGED_CONFIG)
    }
}
