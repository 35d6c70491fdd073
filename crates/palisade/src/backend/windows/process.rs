//! Starting the command: finding the program (PATH + PATHEXT), building its command line and
//! environment block, its standard handles, and `CreateProcessAsUserW` with an explicit list of
//! the handles it inherits.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{
    DuplicateHandle, DUPLICATE_SAME_ACCESS, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
    WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING};
use windows_sys::Win32::System::Console::{
    GenerateConsoleCtrlEvent, GetConsoleProcessList, GetStdHandle, CTRL_BREAK_EVENT, HPCON, STD_ERROR_HANDLE,
    STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::SystemInformation::{GetSystemDirectoryW, GetWindowsDirectoryW};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, DeleteProcThreadAttributeList, GetCurrentProcess, GetExitCodeProcess,
    InitializeProcThreadAttributeList, ResumeThread, TerminateProcess, UpdateProcThreadAttribute, WaitForSingleObject,
    CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW, CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, EXTENDED_STARTUPINFO_PRESENT, INFINITE,
    PROCESS_INFORMATION, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE, STARTF_USESTDHANDLES, STARTUPINFOEXW,
};

use palisade_win32::ffi::{check, from_wide_buf, wide};
use crate::{Error, Stdio};

/// How the resolved program is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// An executable image, started directly.
    Image(PathBuf),
    /// A `.bat` or `.cmd` file, started through `cmd.exe /c`.
    Batch(PathBuf),
}

impl Launch {
    pub fn path(&self) -> &Path {
        match self {
            Launch::Image(p) | Launch::Batch(p) => p,
        }
    }
}

/// The value of an environment variable in `env`, whose names Windows compares without case.
pub fn env_get<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsString> {
    env.iter()
        .find(|(k, _)| k.to_string_lossy().eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn system_dir(windows: bool) -> Option<PathBuf> {
    let mut buf = [0u16; 512];
    // SAFETY: the buffer's length is passed; the call writes at most that many characters.
    let n = unsafe {
        if windows {
            GetWindowsDirectoryW(buf.as_mut_ptr(), buf.len() as u32)
        } else {
            GetSystemDirectoryW(buf.as_mut_ptr(), buf.len() as u32)
        }
    };
    if n == 0 || n as usize >= buf.len() {
        return None;
    }
    Some(PathBuf::from(from_wide_buf(&buf[..n as usize])))
}

/// `%SystemRoot%\System32\cmd.exe`.
pub fn cmd_exe() -> PathBuf {
    system_dir(false)
        .unwrap_or_else(|| PathBuf::from(r"C:\Windows\System32"))
        .join("cmd.exe")
}

/// The extensions tried after a program name, from `PATHEXT` (lowercase, with the dot).
fn path_exts(env: &[(OsString, OsString)]) -> Vec<String> {
    let raw = env_get(env, "PATHEXT")
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut exts: Vec<String> = raw
        .split(';')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| e.len() > 1 && e.starts_with('.') && !e.contains(['\\', '/']))
        .collect();
    if exts.is_empty() {
        exts = [".com", ".exe", ".bat", ".cmd"].iter().map(|s| s.to_string()).collect();
    }
    exts
}

fn has_separator(s: &OsStr) -> bool {
    let w: Vec<u16> = s.encode_wide().collect();
    w.iter().any(|&c| c == b'\\' as u16 || c == b'/' as u16) || (w.len() >= 2 && w[1] == b':' as u16)
}

/// What is at a candidate path.
enum Found {
    Launch(Launch),
    Directory(PathBuf),
}

fn classify(p: &Path) -> Option<Found> {
    let meta = std::fs::metadata(p).ok()?;
    if meta.is_dir() {
        return Some(Found::Directory(p.to_path_buf()));
    }
    let ext = p
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    Some(Found::Launch(if ext == "bat" || ext == "cmd" {
        Launch::Batch(p.to_path_buf())
    } else {
        Launch::Image(p.to_path_buf())
    }))
}

/// The candidates for one base path: the name itself if it has an extension, then the name with
/// each `PATHEXT` extension appended, then the bare name without an extension (a directory, or a
/// file Windows may not be able to run: 126 rather than 127).
fn candidates(base: &Path, exts: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if base.extension().is_some() {
        out.push(base.to_path_buf());
    }
    for e in exts {
        let mut s = base.as_os_str().to_os_string();
        s.push(e);
        out.push(PathBuf::from(s));
    }
    if base.extension().is_none() {
        out.push(base.to_path_buf());
    }
    out
}

/// Finds the program as `cmd.exe` would, but only in the command's `PATH` and the system
/// folders (never the current directory, which the command may write): a name with a
/// separator is taken relative to `cwd`; a name without an extension gets each of `PATHEXT`'s.
/// Not found is [`Error::NotFound`] (exit 127); only a directory by that name is
/// [`Error::NotExecutable`] (126).
pub fn resolve_program(program: &OsStr, env: &[(OsString, OsString)], cwd: &Path) -> Result<Launch, Error> {
    if program.is_empty() {
        return Err(Error::NotFound("(empty program name)".into()));
    }
    let exts = path_exts(env);
    let name = Path::new(program);
    let mut directory = None;
    let mut try_base = |base: &Path| -> Option<Launch> {
        for c in candidates(base, &exts) {
            match classify(&c) {
                Some(Found::Launch(l)) => return Some(l),
                Some(Found::Directory(d)) => {
                    directory.get_or_insert(d);
                }
                None => {}
            }
        }
        None
    };
    if has_separator(program) {
        let base = if name.is_absolute() {
            name.to_path_buf()
        } else {
            cwd.join(name)
        };
        let base = super::state::plain_path(&base);
        if let Some(l) = try_base(&base) {
            return Ok(l);
        }
    } else {
        let mut dirs: Vec<PathBuf> = env_get(env, "PATH")
            .map(|p| {
                p.to_string_lossy()
                    .split(';')
                    .map(|d| d.trim().trim_matches('"'))
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .filter(|d| d.is_absolute())
                    .collect()
            })
            .unwrap_or_default();
        dirs.extend(system_dir(false));
        dirs.extend(system_dir(true));
        for dir in dirs {
            if let Some(l) = try_base(&dir.join(name)) {
                return Ok(l);
            }
        }
    }
    match directory {
        Some(d) => Err(Error::NotExecutable(format!("{}: is a directory", d.display()))),
        None => Err(Error::NotFound(name.display().to_string())),
    }
}

/// Appends `arg` to a command line so that `CommandLineToArgvW` and the C runtime read it back
/// unchanged: quoted when it is empty or has blanks or quotes, with the backslashes before a
/// quote doubled.
pub fn push_arg(cmd: &mut Vec<u16>, arg: &OsStr) {
    let w: Vec<u16> = arg.encode_wide().collect();
    if !cmd.is_empty() {
        cmd.push(b' ' as u16);
    }
    let needs_quotes = w.is_empty()
        || w.iter()
            .any(|&c| c == b' ' as u16 || c == b'\t' as u16 || c == b'"' as u16 || c == b'\n' as u16);
    if !needs_quotes {
        cmd.extend_from_slice(&w);
        return;
    }
    cmd.push(b'"' as u16);
    let mut backslashes = 0usize;
    for &c in &w {
        if c == b'\\' as u16 {
            backslashes += 1;
            continue;
        }
        if c == b'"' as u16 {
            // Backslashes before a quote are doubled, and the quote itself escaped.
            cmd.extend(std::iter::repeat_n(b'\\' as u16, backslashes * 2 + 1));
        } else {
            cmd.extend(std::iter::repeat_n(b'\\' as u16, backslashes));
        }
        backslashes = 0;
        cmd.push(c);
    }
    // Trailing backslashes are doubled so that the closing quote stays a quote.
    cmd.extend(std::iter::repeat_n(b'\\' as u16, backslashes * 2));
    cmd.push(b'"' as u16);
}

/// Appends `arg` as it is (for cmd.exe after /c), quoted only when it has blanks and no quotes.
fn push_verbatim(cmd: &mut Vec<u16>, arg: &OsStr) {
    let w: Vec<u16> = arg.encode_wide().collect();
    cmd.push(b' ' as u16);
    let blank = w.is_empty() || w.iter().any(|&c| c == b' ' as u16 || c == b'\t' as u16);
    let quoted = w.contains(&(b'"' as u16));
    if blank && !quoted {
        cmd.push(b'"' as u16);
        cmd.extend_from_slice(&w);
        cmd.push(b'"' as u16);
    } else {
        cmd.extend_from_slice(&w);
    }
}

/// The program to start and its NUL-terminated command line.
pub struct CommandLine {
    pub application: Vec<u16>,
    pub line: Vec<u16>,
}

/// Characters that `cmd.exe` treats specially outside quotes.
const CMD_SPECIAL: &[u16] = &[
    b' ' as u16,
    b'\t' as u16,
    b'&' as u16,
    b'|' as u16,
    b'<' as u16,
    b'>' as u16,
    b'^' as u16,
    b'(' as u16,
    b')' as u16,
    b',' as u16,
    b';' as u16,
    b'=' as u16,
    b'!' as u16,
];

pub fn command_line(launch: &Launch, args: &[OsString]) -> Result<CommandLine, Error> {
    let invalid = |e: io::Error| Error::InvalidInput(e.to_string());
    match launch {
        Launch::Image(p) => {
            let mut line = Vec::new();
            push_arg(&mut line, p.as_os_str());
            // cmd.exe does not parse its command line like the C runtime: what follows /c (or
            // /k) is taken as typed, so it is passed on unescaped (quoted only when it has
            // blanks and no quotes of its own), as a user would type it.
            let is_cmd = p.file_stem().is_some_and(|s| s.eq_ignore_ascii_case("cmd"));
            let mut verbatim = false;
            for a in args {
                if a.encode_wide().any(|c| c == 0) {
                    return Err(Error::InvalidInput(format!("argument {a:?} contains a NUL character")));
                }
                if verbatim {
                    push_verbatim(&mut line, a);
                } else {
                    push_arg(&mut line, a);
                }
                if is_cmd && (a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k")) {
                    verbatim = true;
                }
            }
            line.push(0);
            Ok(CommandLine {
                application: wide(p).map_err(invalid)?,
                line,
            })
        }
        Launch::Batch(p) => {
            // cmd.exe re-parses the line: `%` expands even inside quotes, and a `"` cannot be
            // escaped, so such arguments cannot be passed to a batch file as they are.
            let mut inner: Vec<u16> = Vec::new();
            inner.push(b'"' as u16);
            inner.extend(p.as_os_str().encode_wide());
            inner.push(b'"' as u16);
            for a in args {
                let w: Vec<u16> = a.encode_wide().collect();
                if let Some(bad) = w.iter().find(|&&c| {
                    c == b'"' as u16 || c == b'%' as u16 || c == b'\r' as u16 || c == b'\n' as u16 || c == 0
                }) {
                    let shown = char::from_u32(*bad as u32)
                        .map(|c| format!("{c:?}"))
                        .unwrap_or_default();
                    return Err(Error::InvalidInput(format!(
                        "argument {a:?} cannot be passed to the batch file {} unchanged (it contains {shown}); run it through `cmd /c` yourself",
                        p.display()
                    )));
                }
                inner.push(b' ' as u16);
                if w.is_empty() || w.iter().any(|c| CMD_SPECIAL.contains(c)) {
                    inner.push(b'"' as u16);
                    inner.extend_from_slice(&w);
                    inner.push(b'"' as u16);
                } else {
                    inner.extend_from_slice(&w);
                }
            }
            let cmd = cmd_exe();
            let mut line: Vec<u16> = Vec::new();
            push_arg(&mut line, cmd.as_os_str());
            // /d: no AutoRun commands from the registry; /e:on /v:off: the usual defaults,
            // whatever the registry says; /s /c "...": run the rest verbatim.
            line.extend(OsStr::new(" /e:on /v:off /d /s /c \"").encode_wide());
            line.extend_from_slice(&inner);
            line.push(b'"' as u16);
            line.push(0);
            Ok(CommandLine {
                application: wide(&cmd).map_err(invalid)?,
                line,
            })
        }
    }
}

/// The environment block: `NAME=value` strings, sorted by name without regard to case (as
/// Windows expects), the first of several names that differ only in case kept.
pub fn environment_block(env: &[(OsString, OsString)]) -> Result<Vec<u16>, Error> {
    let mut vars: Vec<(Vec<u16>, Vec<u16>)> = Vec::new();
    for (k, v) in env {
        let kw: Vec<u16> = k.encode_wide().collect();
        let vw: Vec<u16> = v.encode_wide().collect();
        // `=C:`-style names (per-drive current directories) start with `=`; no other `=`.
        if kw.is_empty() || kw[1..].contains(&(b'=' as u16)) || kw.contains(&0) || vw.contains(&0) {
            return Err(Error::InvalidInput(format!(
                "environment variable {k:?} cannot be passed on Windows"
            )));
        }
        let upper = k.to_string_lossy().to_uppercase();
        if vars
            .iter()
            .any(|(ek, _)| String::from_utf16_lossy(ek).to_uppercase() == upper)
        {
            continue;
        }
        vars.push((kw, vw));
    }
    vars.sort_by_key(|(k, _)| String::from_utf16_lossy(k).to_uppercase());
    let mut block = Vec::new();
    for (k, v) in vars {
        block.extend_from_slice(&k);
        block.push(b'=' as u16);
        block.extend_from_slice(&v);
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    Ok(block)
}

/// A handle made inheritable for one `CreateProcess` call.
fn inheritable_copy(h: HANDLE) -> io::Result<OwnedHandle> {
    let mut dup: HANDLE = std::ptr::null_mut();
    // SAFETY: `h` is a valid handle of this process; the copy is a new handle we own.
    check(unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            h,
            GetCurrentProcess(),
            &mut dup,
            0,
            1,
            DUPLICATE_SAME_ACCESS,
        )
    })?;
    // SAFETY: `dup` is a fresh handle owned by nobody else.
    Ok(unsafe { OwnedHandle::from_raw_handle(dup as _) })
}

/// The command's standard handles (inheritable copies) and Palisade's ends of the pipes.
pub struct StdioSet {
    pub child: [Option<OwnedHandle>; 3],
    pub parent: [Option<File>; 3],
}

fn null_device(input: bool) -> io::Result<OwnedHandle> {
    let name = wide("NUL")?;
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: std::ptr::null_mut(),
        bInheritHandle: 1,
    };
    let access = if input { GENERIC_READ } else { GENERIC_WRITE };
    // SAFETY: `name` is NUL-terminated and `sa` alive for the call.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            &sa,
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle owned by nobody else.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as _) })
}

pub fn stdio(specs: [Stdio; 3]) -> io::Result<StdioSet> {
    let mut set = StdioSet {
        child: [None, None, None],
        parent: [None, None, None],
    };
    let std_ids = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE];
    for (i, spec) in specs.iter().enumerate() {
        let input = i == 0;
        match spec {
            Stdio::Inherit => {
                // SAFETY: GetStdHandle has no preconditions; the handle is not ours to close.
                let h = unsafe { GetStdHandle(std_ids[i]) };
                if !h.is_null() && h != INVALID_HANDLE_VALUE {
                    // A handle that cannot be duplicated (a closed stream) is left out.
                    set.child[i] = inheritable_copy(h).ok();
                }
            }
            Stdio::Null => set.child[i] = Some(null_device(input)?),
            Stdio::Piped => {
                let (mut r, mut w): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
                // SAFETY: both handles are written on success; neither is inheritable.
                check(unsafe { CreatePipe(&mut r, &mut w, std::ptr::null(), 0) })?;
                // SAFETY: fresh handles owned by nobody else.
                let (r, w) = unsafe {
                    (
                        OwnedHandle::from_raw_handle(r as _),
                        OwnedHandle::from_raw_handle(w as _),
                    )
                };
                let (mine, theirs) = if input { (w, r) } else { (r, w) };
                set.child[i] = Some(inheritable_copy(theirs.as_raw_handle() as HANDLE)?);
                set.parent[i] = Some(File::from(mine));
            }
        }
    }
    Ok(set)
}

/// A process created suspended.
pub struct Spawned {
    pub process: OwnedHandle,
    pub thread: OwnedHandle,
    pub pid: u32,
}

/// A `PROC_THREAD_ATTRIBUTE_LIST`, deleted on drop.
struct AttributeList {
    buf: Vec<u64>,
}

impl AttributeList {
    fn new(count: u32) -> io::Result<AttributeList> {
        let mut size: usize = 0;
        // SAFETY: a size query with a null list, as documented.
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), count, 0, &mut size) };
        if size == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut list = AttributeList {
            buf: vec![0u64; size.div_ceil(8)],
        };
        // SAFETY: the buffer holds `size` bytes.
        check(unsafe { InitializeProcThreadAttributeList(list.ptr(), count, 0, &mut size) })?;
        Ok(list)
    }

    fn ptr(&mut self) -> *mut std::ffi::c_void {
        self.buf.as_mut_ptr().cast()
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        // SAFETY: the list was initialised in `new`.
        unsafe { DeleteProcThreadAttributeList(self.ptr()) };
    }
}

/// Everything `CreateProcessAsUserW` needs.
pub struct CreateSpec<'a> {
    pub token: &'a OwnedHandle,
    pub command: CommandLine,
    pub env_block: &'a [u16],
    pub cwd: &'a Path,
    pub stdio: &'a [Option<OwnedHandle>; 3],
    /// A new console process group, so that Ctrl+Break can be sent to the command alone.
    pub new_process_group: bool,
    /// Attach the command to this pseudo console (`CreatePseudoConsole`) instead of `stdio`,
    /// which must then be empty.
    pub pseudo_console: Option<HPCON>,
    /// Give the command a console of its own without a window (`CREATE_NO_WINDOW`) instead of
    /// sharing this process's.
    pub own_hidden_console: bool,
}

/// Starts the process suspended, inheriting exactly the standard handles.
pub fn create_suspended(spec: CreateSpec<'_>) -> io::Result<Spawned> {
    let CreateSpec {
        token,
        mut command,
        env_block,
        cwd,
        stdio,
        new_process_group,
        pseudo_console,
        own_hidden_console,
    } = spec;
    let raw = |h: &Option<OwnedHandle>| h.as_ref().map_or(std::ptr::null_mut(), |h| h.as_raw_handle() as HANDLE);
    let handles: Vec<HANDLE> = stdio.iter().map(raw).filter(|h| !h.is_null()).collect();

    // SAFETY: an all-zero STARTUPINFOEXW is valid; the fields used are set below.
    let mut si: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    si.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
    if pseudo_console.is_none() {
        si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
        si.StartupInfo.hStdInput = raw(&stdio[0]);
        si.StartupInfo.hStdOutput = raw(&stdio[1]);
        si.StartupInfo.hStdError = raw(&stdio[2]);
    }

    let mut attrs = AttributeList::new(2)?;
    if let Some(pc) = pseudo_console {
        // SAFETY: the attribute's value is the pseudo console handle itself (not a pointer to
        // it), as documented for PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE; it outlives the call.
        check(unsafe {
            UpdateProcThreadAttribute(
                attrs.ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE as usize,
                pc as *const std::ffi::c_void,
                std::mem::size_of::<HPCON>(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        })?;
    }
    if !handles.is_empty() {
        // SAFETY: `handles` outlives the CreateProcessAsUserW call below (the list refers to it).
        check(unsafe {
            UpdateProcThreadAttribute(
                attrs.ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                handles.as_ptr().cast(),
                handles.len() * std::mem::size_of::<HANDLE>(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        })?;
    }
    si.lpAttributeList = attrs.ptr();

    let mut flags = CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT | EXTENDED_STARTUPINFO_PRESENT;
    if new_process_group {
        flags |= CREATE_NEW_PROCESS_GROUP;
    }
    if own_hidden_console && pseudo_console.is_none() {
        flags |= CREATE_NO_WINDOW;
    }
    let cwd_w = wide(cwd)?;
    // SAFETY: an all-zero PROCESS_INFORMATION is valid output space.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer is valid for the call: NUL-terminated application name, a mutable
    // NUL-terminated command line, a double-NUL-terminated UTF-16 environment block, the
    // startup information with an initialised attribute list whose handle array is alive.
    check(unsafe {
        CreateProcessAsUserW(
            token.as_raw_handle() as HANDLE,
            command.application.as_ptr(),
            command.line.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            if handles.is_empty() { 0 } else { 1 },
            flags,
            env_block.as_ptr().cast(),
            cwd_w.as_ptr(),
            &si.StartupInfo,
            &mut pi,
        )
    })?;
    drop(attrs);
    // SAFETY: fresh handles owned by nobody else.
    let (process, thread) = unsafe {
        (
            OwnedHandle::from_raw_handle(pi.hProcess as _),
            OwnedHandle::from_raw_handle(pi.hThread as _),
        )
    };
    Ok(Spawned {
        process,
        thread,
        pid: pi.dwProcessId,
    })
}

pub fn resume(thread: &OwnedHandle) -> io::Result<()> {
    // SAFETY: a valid thread handle.
    if unsafe { ResumeThread(thread.as_raw_handle() as HANDLE) } == u32::MAX {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn terminate(process: &OwnedHandle, code: u32) -> io::Result<()> {
    // SAFETY: a valid process handle.
    check(unsafe { TerminateProcess(process.as_raw_handle() as HANDLE, code) })
}

/// Waits for the process to end; `None` waits forever. Returns whether it has ended.
pub fn wait(process: &OwnedHandle, timeout_ms: Option<u32>) -> io::Result<bool> {
    // SAFETY: a valid process handle.
    match unsafe { WaitForSingleObject(process.as_raw_handle() as HANDLE, timeout_ms.unwrap_or(INFINITE)) } {
        WAIT_OBJECT_0 => Ok(true),
        WAIT_TIMEOUT => Ok(false),
        _ => Err(io::Error::last_os_error()),
    }
}

pub fn exit_code(process: &OwnedHandle) -> io::Result<u32> {
    let mut code = 0u32;
    // SAFETY: a valid process handle.
    check(unsafe { GetExitCodeProcess(process.as_raw_handle() as HANDLE, &mut code) })?;
    Ok(code)
}

/// Whether the process is attached to this process's console.
pub fn shares_console(pid: u32) -> bool {
    let mut pids = vec![0u32; 64];
    loop {
        // SAFETY: the buffer's length is passed.
        let n = unsafe { GetConsoleProcessList(pids.as_mut_ptr(), pids.len() as u32) } as usize;
        if n == 0 {
            return false;
        }
        if n <= pids.len() {
            return pids[..n].contains(&pid);
        }
        pids.resize(n, 0);
    }
}

/// Sends Ctrl+Break to the console process group the command leads.
pub fn ctrl_break(pid: u32) -> io::Result<()> {
    // SAFETY: no memory is involved.
    check(unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid) })
}

/// Maps a failed `CreateProcessAsUserW` to 127/126 or a setup error.
pub fn spawn_error(e: io::Error, launch: &Launch, cwd: &std::path::Path) -> Error {
    let name = launch.path().display().to_string();
    match e.raw_os_error().map(|c| c as u32) {
        Some(2 | 3) => Error::NotFound(name),
        // ERROR_DIRECTORY: the working directory is not a folder.
        Some(267) => Error::Setup {
            step: "change to the working directory",
            detail: format!(" {}", cwd.display()),
            source: e,
        },
        // Access denied, bad format, not a valid Win32 application, wrong machine type, etc.
        Some(5 | 11 | 191 | 192 | 193 | 216 | 1392) => Error::NotExecutable(format!("{name}: {e}")),
        _ => Error::Setup {
            step: "start the command with the restricted token",
            detail: format!(" ({name})"),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests;
