//! How the runner process is started: as a sandbox account with `CreateProcessWithLogonW`
//! ([`LogonLauncher`]), or as the caller for the plumbing tests ([`PlainLauncher`]).

use super::*;

fn launched(pi: PROCESS_INFORMATION) -> LaunchedRunner {
    // SAFETY: fresh handles from a successful process creation, owned by nobody else.
    let (process, thread) =
        unsafe { (OwnedHandle::from_raw_handle(pi.hProcess as _), OwnedHandle::from_raw_handle(pi.hThread as _)) };
    drop(thread);
    LaunchedRunner { process, pid: pi.dwProcessId }
}

/// A NUL-terminated UTF-16 string for the process creation calls.
type Wide = Vec<u16>;

/// The runner's path, command line and folder (its working directory: the account may read it).
fn runner_call(spec: &LaunchSpec) -> Result<(Wide, Wide, Wide), LaunchError> {
    let path = PathBuf::from(spec.runner.as_str());
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("C:\\"));
    let as_wide = |s: &std::ffi::OsStr| wide(s).map_err(|e| LaunchError::Other(e.to_string()));
    let line = as_wide(OsString::from(spec.command_line()).as_os_str())?;
    Ok((as_wide(path.as_os_str())?, line, as_wide(dir.as_os_str())?))
}

/// `CreateProcessWithLogonW` as the sandbox account, with its profile loaded.
pub(super) struct LogonLauncher;

impl RunnerLauncher for LogonLauncher {
    type Process = LaunchedRunner;
    fn launch(&mut self, spec: &LaunchSpec, password: &Password) -> Result<LaunchedRunner, LaunchError> {
        let (app, mut line, dir) = runner_call(spec)?;
        let user = wide(spec.user.account_name()).map_err(|e| LaunchError::Other(e.to_string()))?;
        let domain = wide(".").map_err(|e| LaunchError::Other(e.to_string()))?;
        let mut secret: Vec<u16> = password.expose().encode_utf16().chain(std::iter::once(0)).collect();
        // SAFETY: an all-zero STARTUPINFOW with its size set is valid.
        let mut si: STARTUPINFOW = unsafe { std::mem::zeroed() };
        si.cb = std::mem::size_of::<STARTUPINFOW>() as u32;
        // SAFETY: an all-zero PROCESS_INFORMATION is valid output space.
        let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: every string is NUL-terminated and alive for the call; the command line is
        // mutable as the API requires; a null environment gives the account its own.
        let ok = unsafe {
            CreateProcessWithLogonW(
                user.as_ptr(),
                domain.as_ptr(),
                secret.as_ptr(),
                LOGON_WITH_PROFILE,
                app.as_ptr(),
                line.as_mut_ptr(),
                CREATE_NO_WINDOW | CREATE_UNICODE_ENVIRONMENT,
                std::ptr::null(),
                dir.as_ptr(),
                &si,
                &mut pi,
            )
        };
        let err = io::Error::last_os_error();
        secret.iter_mut().for_each(|c| *c = 0);
        if ok == 0 {
            return Err(LaunchError::from_win32(err.raw_os_error().unwrap_or(0) as u32, &err.to_string()));
        }
        Ok(launched(pi))
    }
}

/// Tests only (see [`TestSeam`]): a plain process start as the caller.
pub(super) struct PlainLauncher;

impl RunnerLauncher for PlainLauncher {
    type Process = LaunchedRunner;
    fn launch(&mut self, spec: &LaunchSpec, _password: &Password) -> Result<LaunchedRunner, LaunchError> {
        let (app, mut line, dir) = runner_call(spec)?;
        // SAFETY: an all-zero STARTUPINFOW with its size set is valid.
        let mut si: STARTUPINFOW = unsafe { std::mem::zeroed() };
        si.cb = std::mem::size_of::<STARTUPINFOW>() as u32;
        // SAFETY: an all-zero PROCESS_INFORMATION is valid output space.
        let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: as above; no handles are inherited.
        let ok = unsafe {
            CreateProcessW(
                app.as_ptr(),
                line.as_mut_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                0,
                CREATE_NO_WINDOW,
                std::ptr::null(),
                dir.as_ptr(),
                &si,
                &mut pi,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            return Err(LaunchError::Other(format!("CreateProcessW failed: {e}")));
        }
        Ok(launched(pi))
    }
}
