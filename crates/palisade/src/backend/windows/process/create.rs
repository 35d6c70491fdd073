//! The command's standard handles and its creation: `CreateProcessAsUserW` suspended, with an
//! explicit list of inherited handles, and the calls on the process once it exists.

use super::*;

/// A handle made inheritable for one `CreateProcess` call.
fn inheritable_copy(h: HANDLE) -> io::Result<OwnedHandle> {
    let mut dup: HANDLE = std::ptr::null_mut();
    // SAFETY: `h` is a valid handle of this process; the copy is a new handle we own.
    check(unsafe {
        DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &mut dup, 0, 1, DUPLICATE_SAME_ACCESS)
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
    let mut set = StdioSet { child: [None, None, None], parent: [None, None, None] };
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
                let (r, w) = unsafe { (OwnedHandle::from_raw_handle(r as _), OwnedHandle::from_raw_handle(w as _)) };
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
        let mut list = AttributeList { buf: vec![0u64; size.div_ceil(8)] };
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
    let CreateSpec { token, mut command, env_block, cwd, stdio, new_process_group, pseudo_console, own_hidden_console } =
        spec;
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
    let (process, thread) =
        unsafe { (OwnedHandle::from_raw_handle(pi.hProcess as _), OwnedHandle::from_raw_handle(pi.hThread as _)) };
    Ok(Spawned { process, thread, pid: pi.dwProcessId })
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
