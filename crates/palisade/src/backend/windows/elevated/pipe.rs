//! The named pipe between the CLI (server) and `palisade-runner` (client), with overlapped I/O.
//!
//! Both sides read and write the pipe from different threads at once (output flows while stdin
//! is relayed). Synchronous I/O on one file object is serialised by the system — a blocked read
//! would hold every write — so the pipe is opened for overlapped I/O and each call waits on its
//! own event.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_IO_PENDING, ERROR_NO_DATA, ERROR_PIPE_CONNECTED, ERROR_PIPE_NOT_CONNECTED, HANDLE,
    INVALID_HANDLE_VALUE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FlushFileBuffers, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED,
    OPEN_EXISTING, PIPE_ACCESS_DUPLEX, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientProcessId, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{CreateEventW, WaitForMultipleObjects};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

use palisade_win32::ffi::{check, wide, LocalMem};

use palisade_windows_elevated::runner_seam::PIPE_CLIENT_ACCESS as CLIENT_ACCESS;
const BUFFER: u32 = 64 * 1024;

/// One end of the pipe.
pub struct Pipe {
    handle: OwnedHandle,
}

/// How waiting for the runner to connect ended.
pub enum Connect {
    Connected,
    /// The process watched while waiting ended first.
    ProcessEnded,
    TimedOut,
}

fn event() -> io::Result<OwnedHandle> {
    // SAFETY: an anonymous manual-reset event with default security.
    let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle owned by nobody else.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as _) })
}

fn is_end_of_pipe(e: &io::Error) -> bool {
    matches!(e.raw_os_error().map(|c| c as u32), Some(ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED | ERROR_NO_DATA))
}

impl Pipe {
    fn raw(&self) -> HANDLE {
        self.handle.as_raw_handle() as HANDLE
    }

    /// Creates the only instance of `name` (fails if the name exists: someone squats it),
    /// refusing remote clients, with the DACL `sddl`.
    pub fn create_server(name: &str, sddl: &str) -> io::Result<Pipe> {
        let sddl_w = wide(sddl)?;
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl_w` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor freed by
        // the guard after the pipe is created.
        check(unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl_w.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        })?;
        let _guard = LocalMem(sd);
        let sa = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: sd,
            bInheritHandle: 0,
        };
        let name_w = wide(name)?;
        // SAFETY: the name is NUL-terminated and `sa` (with its descriptor) alive for the call.
        let h = unsafe {
            CreateNamedPipeW(
                name_w.as_ptr(),
                PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE | FILE_FLAG_OVERLAPPED,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                1,
                BUFFER,
                BUFFER,
                0,
                &sa,
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh handle owned by nobody else.
        Ok(Pipe { handle: unsafe { OwnedHandle::from_raw_handle(h as _) } })
    }

    /// Opens the server's pipe as its client. The server may only identify this process, not
    /// act as it (`SECURITY_IDENTIFICATION`).
    pub fn open_client(name: &str) -> io::Result<Pipe> {
        let name_w = wide(name)?;
        // SAFETY: the name is NUL-terminated; no security attributes or template.
        let h = unsafe {
            CreateFileW(
                name_w.as_ptr(),
                CLIENT_ACCESS,
                0,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                std::ptr::null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh handle owned by nobody else.
        Ok(Pipe { handle: unsafe { OwnedHandle::from_raw_handle(h as _) } })
    }

    /// Waits until a client connects, `watch` (the runner process) ends, or `limit` passes.
    pub fn wait_for_client(&self, watch: &OwnedHandle, limit: Duration) -> io::Result<Connect> {
        let ev = event()?;
        // SAFETY: an all-zero OVERLAPPED is valid; the event is set below.
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        ov.hEvent = ev.as_raw_handle() as HANDLE;
        // SAFETY: `ov` stays in place until the operation completed or was cancelled below.
        if unsafe { ConnectNamedPipe(self.raw(), &mut ov) } != 0 {
            return Ok(Connect::Connected);
        }
        match io::Error::last_os_error().raw_os_error().map(|c| c as u32) {
            Some(ERROR_PIPE_CONNECTED) => return Ok(Connect::Connected),
            Some(ERROR_IO_PENDING) => {}
            _ => return Err(io::Error::last_os_error()),
        }
        let handles = [ov.hEvent, watch.as_raw_handle() as HANDLE];
        let ms = limit.as_millis().min(u32::MAX as u128 - 1) as u32;
        // SAFETY: both handles are valid for the call.
        let r = unsafe { WaitForMultipleObjects(2, handles.as_ptr(), 0, ms) };
        let outcome = match r {
            WAIT_OBJECT_0 => None,
            x if x == WAIT_OBJECT_0 + 1 => Some(Connect::ProcessEnded),
            WAIT_TIMEOUT => Some(Connect::TimedOut),
            _ => return Err(io::Error::last_os_error()),
        };
        if outcome.is_some() {
            // SAFETY: cancels our own pending operation on `ov`.
            unsafe { CancelIoEx(self.raw(), &ov) };
        }
        let mut n = 0u32;
        // SAFETY: waits for the operation on `ov` to finish (completed or cancelled), after
        // which `ov` may be dropped.
        let done = unsafe { GetOverlappedResult(self.raw(), &ov, &mut n, 1) };
        match outcome {
            None => check(done).map(|_| Connect::Connected),
            // A client that connected just as the wait ended still counts.
            Some(_) if done != 0 => Ok(Connect::Connected),
            Some(o) => Ok(o),
        }
    }

    /// The process id of the connected client.
    pub fn client_pid(&self) -> io::Result<u32> {
        let mut pid = 0u32;
        // SAFETY: a valid pipe handle; `pid` is written on success.
        check(unsafe { GetNamedPipeClientProcessId(self.raw(), &mut pid) })?;
        Ok(pid)
    }

    /// Runs one overlapped operation to completion and returns the bytes transferred.
    fn complete(&self, start: impl FnOnce(*mut OVERLAPPED) -> windows_sys::core::BOOL) -> io::Result<u32> {
        let ev = event()?;
        // SAFETY: an all-zero OVERLAPPED is valid; the event is set below.
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        ov.hEvent = ev.as_raw_handle() as HANDLE;
        if start(&mut ov) == 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(ERROR_IO_PENDING as i32) {
                return Err(e);
            }
        }
        let mut n = 0u32;
        // SAFETY: waits until the operation started on `ov` finished; `ov` outlives it.
        check(unsafe { GetOverlappedResult(self.raw(), &ov, &mut n, 1) })?;
        Ok(n)
    }

    /// Reads what is available (at least one byte); 0 at the end of the stream (the peer
    /// closed or disconnected).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(u32::MAX as usize) as u32;
        let ptr = buf.as_mut_ptr();
        // SAFETY: `buf` is writable for `len` bytes and outlives the operation (`complete`
        // waits for it).
        match self.complete(|ov| unsafe { ReadFile(self.raw(), ptr, len, std::ptr::null_mut(), ov) }) {
            Ok(n) => Ok(n as usize),
            Err(e) if is_end_of_pipe(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Writes all of `buf`.
    pub fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let len = buf.len().min(u32::MAX as usize) as u32;
            let ptr = buf.as_ptr();
            // SAFETY: `buf` is readable for `len` bytes and outlives the operation.
            let n = self.complete(|ov| unsafe { WriteFile(self.raw(), ptr, len, std::ptr::null_mut(), ov) })?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "the pipe took no bytes"));
            }
            buf = &buf[n as usize..];
        }
        Ok(())
    }

    /// Waits until the peer has read everything written.
    pub fn flush(&self) -> io::Result<()> {
        // SAFETY: a valid pipe handle.
        check(unsafe { FlushFileBuffers(self.raw()) })
    }
}
