//! The job object that holds a command and everything it starts.
//!
//! Processes a job's members create are in the job too (breaking away is not allowed), so
//! terminating the job ends the whole tree. With `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, closing
//! the last handle to the job (Palisade exiting, even by a crash) does the same.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, IsProcessInJob, JobObjectBasicAccountingInformation,
    JobObjectBasicUIRestrictions, JobObjectExtendedLimitInformation, QueryInformationJobObject,
    SetInformationJobObject, TerminateJobObject, JOBOBJECT_BASIC_ACCOUNTING_INFORMATION,
    JOBOBJECT_BASIC_UI_RESTRICTIONS, JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, JOB_OBJECT_UILIMIT_DESKTOP, JOB_OBJECT_UILIMIT_DISPLAYSETTINGS,
    JOB_OBJECT_UILIMIT_EXITWINDOWS, JOB_OBJECT_UILIMIT_GLOBALATOMS, JOB_OBJECT_UILIMIT_HANDLES,
    JOB_OBJECT_UILIMIT_READCLIPBOARD, JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS, JOB_OBJECT_UILIMIT_WRITECLIPBOARD,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use palisade_win32::ffi::check;

/// The user-interface limits every sandboxed command gets: no use of windows and other USER
/// handles of processes outside the job, no clipboard, no global atoms, no new desktops, no
/// changing display or system settings, no logging off.
pub const UI_LIMITS: u32 = JOB_OBJECT_UILIMIT_HANDLES
    | JOB_OBJECT_UILIMIT_READCLIPBOARD
    | JOB_OBJECT_UILIMIT_WRITECLIPBOARD
    | JOB_OBJECT_UILIMIT_GLOBALATOMS
    | JOB_OBJECT_UILIMIT_DESKTOP
    | JOB_OBJECT_UILIMIT_DISPLAYSETTINGS
    | JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS
    | JOB_OBJECT_UILIMIT_EXITWINDOWS;

pub struct Job {
    handle: OwnedHandle,
}

/// What a new job enforces.
pub struct JobSpec {
    /// End every process in the job when its last handle closes.
    pub kill_on_close: bool,
    pub ui_limits: u32,
}

impl Job {
    pub fn new(spec: &JobSpec) -> io::Result<Job> {
        // SAFETY: an anonymous job with the default security descriptor.
        let h = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if h.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `h` is a fresh handle owned by nobody else.
        let job = Job { handle: unsafe { OwnedHandle::from_raw_handle(h as _) } };

        // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is a valid "no limits" value.
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
        if spec.kill_on_close {
            limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        }
        // SAFETY: `limits` is the structure this information class expects, alive for the call.
        check(unsafe {
            SetInformationJobObject(
                job.raw(),
                JobObjectExtendedLimitInformation,
                (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                std::mem::size_of_val(&limits) as u32,
            )
        })?;
        if spec.ui_limits != 0 {
            let ui = JOBOBJECT_BASIC_UI_RESTRICTIONS { UIRestrictionsClass: spec.ui_limits };
            // SAFETY: as above.
            check(unsafe {
                SetInformationJobObject(
                    job.raw(),
                    JobObjectBasicUIRestrictions,
                    (&ui as *const JOBOBJECT_BASIC_UI_RESTRICTIONS).cast(),
                    std::mem::size_of_val(&ui) as u32,
                )
            })?;
        }
        Ok(job)
    }

    fn raw(&self) -> HANDLE {
        self.handle.as_raw_handle() as HANDLE
    }

    pub fn assign(&self, process: &OwnedHandle) -> io::Result<()> {
        // SAFETY: both handles are valid.
        check(unsafe { AssignProcessToJobObject(self.raw(), process.as_raw_handle() as HANDLE) })
    }

    /// Ends every process in the job with `exit_code`.
    pub fn terminate(&self, exit_code: u32) -> io::Result<()> {
        // SAFETY: a valid job handle.
        check(unsafe { TerminateJobObject(self.raw(), exit_code) })
    }

    /// How many processes are still running in the job.
    pub fn active_processes(&self) -> io::Result<u32> {
        // SAFETY: an all-zero accounting structure is valid; the call fills it.
        let mut info: JOBOBJECT_BASIC_ACCOUNTING_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is the structure this information class expects.
        check(unsafe {
            QueryInformationJobObject(
                self.raw(),
                JobObjectBasicAccountingInformation,
                (&mut info as *mut JOBOBJECT_BASIC_ACCOUNTING_INFORMATION).cast(),
                std::mem::size_of_val(&info) as u32,
                std::ptr::null_mut(),
            )
        })?;
        Ok(info.ActiveProcesses)
    }

    /// Terminates the job and waits (at most `limit`) until no process is left in it, so that
    /// files they held open can be removed. Returns whether the job is empty.
    pub fn terminate_and_drain(&self, exit_code: u32, limit: Duration) -> bool {
        if self.active_processes().map(|n| n == 0).unwrap_or(false) {
            return true;
        }
        let _ = self.terminate(exit_code);
        let start = Instant::now();
        loop {
            match self.active_processes() {
                Ok(0) => return true,
                Ok(_) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(5)),
                _ => return false,
            }
        }
    }
}

/// Whether this process runs in a job already (nested jobs work since Windows 8).
pub fn current_process_in_job() -> io::Result<bool> {
    let mut result = 0;
    // SAFETY: the pseudo-handle of this process; a null job handle asks about any job.
    check(unsafe { IsProcessInJob(GetCurrentProcess(), std::ptr::null_mut(), &mut result) })?;
    Ok(result != 0)
}
