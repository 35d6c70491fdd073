//! Giving ownership back to the user after an elevated command (the decisions are
//! `palisade_windows_elevated::ownership`'s; this is the thin Windows side).
//!
//! [`Watch::start`] opens each writable root and issues its first `ReadDirectoryChangesW`
//! (recursive, file and directory names) before the command starts, then one thread per root
//! keeps a read pending and feeds what arrives to the root's `Tracker`; the cost does not grow
//! with the size of the workspace. [`Pass::finish`], once the command ended, stops the threads
//! (draining what the file system buffered), and for each name the plan lists opens the object
//! itself (`FILE_FLAG_OPEN_REPARSE_POINT`), checks it is still inside the root, and makes the
//! user its owner if a sandbox SID owns it; directories are walked without following reparse
//! points.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use palisade_windows_elevated::ownership::{
    inside_root, is_sandbox_owner, parse_notifications, verbatim_path, FixPlan, Report, Tracker, WalkReason,
};
use palisade_windows_elevated::WinPath;
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_INVALID_NAME, ERROR_IO_PENDING, ERROR_NOTIFY_ENUM_DIR,
    ERROR_PATH_NOT_FOUND, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SetSecurityInfo, SE_FILE_OBJECT};
use windows_sys::Win32::Security::{OWNER_SECURITY_INFORMATION, PSID};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, GetFileInformationByHandle, ReadDirectoryChangesW, BY_HANDLE_FILE_INFORMATION,
    FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OVERLAPPED,
    FILE_LIST_DIRECTORY, FILE_NOTIFY_CHANGE_DIR_NAME, FILE_NOTIFY_CHANGE_FILE_NAME, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE, OPEN_EXISTING, READ_CONTROL, WRITE_OWNER,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, ResetEvent, SetEvent, WaitForMultipleObjects, WaitForSingleObject, INFINITE,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

use palisade_win32::ffi::{check, wide, LocalMem};
use palisade_win32::object::{final_path, open_unfollowed};
use palisade_win32::sid::Sid;

/// The notification buffer per root. Changes that arrive while the thread handles a batch are
/// kept by the file system in a buffer of the same size; past it, the root is walked.
const BUFFER_BYTES: usize = 256 * 1024;

/// The last pass's report, for the plumbing tests (`palisade::__private`).
pub static LAST_REPORT: Mutex<Option<Report>> = Mutex::new(None);

fn event() -> io::Result<OwnedHandle> {
    // SAFETY: a manual-reset, initially clear, unnamed event; the handle is owned from here.
    let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle owned by nobody else.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as _) })
}

fn raw(h: &OwnedHandle) -> HANDLE {
    h.as_raw_handle() as HANDLE
}

/// One root's directory handle with a read that may be in flight.
struct RootReader {
    dir: OwnedHandle,
    done: OwnedHandle,
    /// Boxed: the kernel writes to it and to `buf` until the read completes.
    ov: Box<OVERLAPPED>,
    buf: Vec<u64>,
    in_flight: bool,
}

// SAFETY: the OVERLAPPED's raw event handle is only used by the thread that owns the reader
// (and by the kernel); the handles themselves may be used from any thread.
unsafe impl Send for RootReader {}

impl RootReader {
    fn open(root: &WinPath) -> io::Result<RootReader> {
        let path = wide(verbatim_path(root, &[]))?;
        // SAFETY: a NUL-terminated path; sharing everything so that the command's own renames
        // and deletes are not disturbed.
        let h = unsafe {
            CreateFileW(
                path.as_ptr(),
                FILE_LIST_DIRECTORY,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh handle owned by nobody else.
        let dir = unsafe { OwnedHandle::from_raw_handle(h as _) };
        let done = event()?;
        let ov = Box::new(OVERLAPPED { hEvent: raw(&done), ..Default::default() });
        Ok(RootReader { dir, done, ov, buf: vec![0u64; BUFFER_BYTES / 8], in_flight: false })
    }

    /// Issues the next read. `Ok(false)`: the notifications overflowed at once.
    fn issue(&mut self) -> io::Result<bool> {
        // SAFETY: our own event.
        check(unsafe { ResetEvent(raw(&self.done)) })?;
        *self.ov = OVERLAPPED { hEvent: raw(&self.done), ..Default::default() };
        // SAFETY: the buffer and the OVERLAPPED are heap allocations that stay in place and
        // alive until the read completes (`Drop` waits for it); the length is the buffer's.
        let ok = unsafe {
            ReadDirectoryChangesW(
                raw(&self.dir),
                self.buf.as_mut_ptr().cast(),
                BUFFER_BYTES as u32,
                1,
                FILE_NOTIFY_CHANGE_FILE_NAME | FILE_NOTIFY_CHANGE_DIR_NAME,
                std::ptr::null_mut(),
                &mut *self.ov,
                None,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error().map(|c| c as u32) {
                Some(ERROR_NOTIFY_ENUM_DIR) => Ok(false),
                Some(ERROR_IO_PENDING) => {
                    self.in_flight = true;
                    Ok(true)
                }
                _ => Err(e),
            };
        }
        self.in_flight = true;
        Ok(true)
    }

    /// Waits for the read in flight: the bytes it returned (0: overflow), or `None` if it was
    /// cancelled.
    fn complete(&mut self) -> io::Result<Option<usize>> {
        let mut n: u32 = 0;
        // SAFETY: the OVERLAPPED of the read in flight; waiting keeps it alive until done.
        let ok = unsafe { GetOverlappedResult(raw(&self.dir), &*self.ov, &mut n, 1) };
        self.in_flight = false;
        if ok == 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error().map(|c| c as u32) {
                Some(ERROR_NOTIFY_ENUM_DIR) => Ok(Some(0)),
                Some(windows_sys::Win32::Foundation::ERROR_OPERATION_ABORTED) => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(n as usize))
    }

    fn cancel(&mut self) {
        if self.in_flight {
            // SAFETY: cancels only this handle's read; completion is awaited by the caller.
            unsafe { CancelIoEx(raw(&self.dir), &*self.ov) };
        }
    }

    fn bytes(&self, n: usize) -> &[u8] {
        // SAFETY: `buf` holds BUFFER_BYTES initialized bytes, and `n` came from the read.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), n.min(BUFFER_BYTES)) }
    }
}

impl Drop for RootReader {
    fn drop(&mut self) {
        if self.in_flight {
            self.cancel();
            let _ = self.complete();
        }
    }
}

/// Takes a completed read into the tracker (0 bytes: the buffer overflowed).
fn take(reader: &RootReader, n: usize, tracker: &mut Tracker) {
    if n == 0 {
        tracker.give_up(WalkReason::Overflow);
        return;
    }
    match parse_notifications(reader.bytes(n)) {
        Ok(list) => list.iter().for_each(|x| tracker.record(x)),
        Err(_) => tracker.give_up(WalkReason::Unreadable),
    }
}

/// The watching thread of one root: until `stop` is set, then until nothing buffered is left.
fn watch(mut reader: RootReader, mut tracker: Tracker, stop: Arc<OwnedHandle>) -> Tracker {
    let mut stopping = false;
    loop {
        if !reader.in_flight && !tracker.gave_up() {
            match reader.issue() {
                Ok(true) => {}
                Ok(false) => tracker.give_up(WalkReason::Overflow),
                Err(_) => tracker.give_up(WalkReason::Unreadable),
            }
        }
        if !reader.in_flight {
            // The root is walked anyway: nothing more to learn.
            if !stopping {
                // SAFETY: our own event handle.
                unsafe { WaitForSingleObject(raw(&stop), INFINITE) };
            }
            return tracker;
        }
        if !stopping {
            let handles = [raw(&reader.done), raw(&stop)];
            // SAFETY: two valid handles, alive for the call.
            let r = unsafe { WaitForMultipleObjects(2, handles.as_ptr(), 0, INFINITE) };
            stopping = r != WAIT_OBJECT_0;
        }
        // Stopping: a read that finds buffered changes completes at once; one still waiting
        // means nothing is left.
        // SAFETY: our own event handle.
        if stopping && unsafe { WaitForSingleObject(raw(&reader.done), 0) } != WAIT_OBJECT_0 {
            reader.cancel();
        }
        match reader.complete() {
            Ok(Some(n)) => take(&reader, n, &mut tracker),
            Ok(None) => return tracker,
            Err(_) => tracker.give_up(WalkReason::Unreadable),
        }
    }
}

/// The watchers of a command's writable roots.
pub struct Watch {
    stop: Arc<OwnedHandle>,
    threads: Vec<(WinPath, JoinHandle<Tracker>)>,
    /// Roots that could not be watched: walked whole afterwards.
    unwatched: Vec<WinPath>,
}

impl Watch {
    /// Starts watching `roots` (canonical). The first read of each root is issued before this
    /// returns, so nothing the command does afterwards is missed.
    pub fn start(roots: &[WinPath]) -> io::Result<Watch> {
        let stop = Arc::new(event()?);
        let mut w = Watch { stop, threads: Vec::new(), unwatched: Vec::new() };
        for root in roots {
            let started = RootReader::open(root).and_then(|mut r| match r.issue()? {
                true => Ok(r),
                false => Err(io::Error::other("overflow")),
            });
            let Ok(reader) = started else {
                w.unwatched.push(root.clone());
                continue;
            };
            let stop = w.stop.clone();
            let tracker = Tracker::new(root.clone());
            let spawned = std::thread::Builder::new()
                .name("palisade-ownership".into())
                .spawn(move || watch(reader, tracker, stop));
            match spawned {
                Ok(t) => w.threads.push((root.clone(), t)),
                Err(_) => w.unwatched.push(root.clone()),
            }
        }
        Ok(w)
    }

    /// Stops watching and returns each root's plan.
    pub fn finish(mut self) -> Vec<FixPlan> {
        self.stop_threads()
    }

    fn stop_threads(&mut self) -> Vec<FixPlan> {
        // SAFETY: our own event.
        unsafe { SetEvent(raw(&self.stop)) };
        let mut plans = Vec::new();
        for (root, t) in self.threads.drain(..) {
            let plan = t.join().map(Tracker::finish).unwrap_or_else(|_| {
                let mut t = Tracker::new(root);
                t.give_up(WalkReason::Unreadable);
                t.finish()
            });
            plans.push(plan);
        }
        for root in self.unwatched.drain(..) {
            let mut t = Tracker::new(root);
            t.give_up(WalkReason::Unreadable);
            plans.push(t.finish());
        }
        plans
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_threads();
        }
    }
}

/// Whose files are given back to whom.
pub struct Owners {
    /// The sandbox accounts and their group.
    pub sandbox: Vec<palisade_windows_elevated::Sid>,
    /// The real user.
    pub user: Sid,
}

/// A command's watch and what to do with it when the command ended.
pub struct Pass {
    pub watch: Watch,
    pub owners: Owners,
}

impl Pass {
    /// Gives back what the command created (see the module documentation) and prints the
    /// warning line if something could not be given back; never fails.
    pub fn finish(self) -> Report {
        let plans = self.watch.finish();
        let report = give_back(&plans, &self.owners);
        if let Some(line) = report.warning() {
            eprintln!("{line}");
        }
        if std::env::var_os("PALISADE_DEBUG").is_some_and(|v| !v.is_empty()) {
            for line in report.debug_lines() {
                eprintln!("{line}");
            }
        }
        *LAST_REPORT.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        report
    }
}

/// Carries out the plans.
pub fn give_back(plans: &[FixPlan], owners: &Owners) -> Report {
    let mut report = Report::default();
    for plan in plans {
        if let Some(why) = plan.walk_root {
            report.walked.push((plan.root.clone(), why));
            walk_children(PathBuf::from(verbatim_path(&plan.root, &[])), &plan.root, owners, &mut report);
            continue;
        }
        for rel in &plan.paths {
            let path = PathBuf::from(verbatim_path(&plan.root, rel));
            if let Some(true) = fix(&path, &plan.root, owners, &mut report) {
                walk_children(path, &plan.root, owners, &mut report);
            }
        }
    }
    report
}

/// Everything beneath `dir`, depth first, not entering reparse points.
fn walk_children(dir: PathBuf, root: &WinPath, owners: &Owners, report: &mut Report) {
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                report.failures.push((d.display().to_string(), format!("listing it: {e}")));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Some(true) = fix(&path, root, owners, report) {
                stack.push(path);
            }
        }
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error().map(|c| c as u32), Some(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND | ERROR_INVALID_NAME))
}

fn owner_of(h: &OwnedHandle) -> io::Result<String> {
    let mut owner: PSID = std::ptr::null_mut();
    let mut sd = LocalMem::null();
    // SAFETY: a handle opened with READ_CONTROL; on success `sd` receives a LocalAlloc'd
    // descriptor (freed by `LocalMem`) that `owner` points into.
    let r = unsafe {
        GetSecurityInfo(
            raw(h),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut sd.0,
        )
    };
    palisade_win32::ffi::win32(r)?;
    // SAFETY: `owner` is null or points into the descriptor we hold.
    let sid = unsafe { Sid::copy_from(owner) }?;
    Ok(sid.to_string_form())
}

/// Examines one object and gives it back if a sandbox SID owns it. `Some(is a directory that
/// is no reparse point)` when it was examined, `None` when it is gone or was left alone.
fn fix(path: &std::path::Path, root: &WinPath, owners: &Owners, report: &mut Report) -> Option<bool> {
    let shown = || path.display().to_string();
    let h = match open_unfollowed(path, READ_CONTROL | WRITE_OWNER) {
        Ok(h) => h,
        Err(e) if is_missing(&e) => return None,
        Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) => {
            // Not ours to take (the user's own file in a folder without the ownership grant):
            // a failure only if the sandbox owns it.
            let sandbox_owned = open_unfollowed(path, READ_CONTROL)
                .and_then(|h| owner_of(&h))
                .map(|o| is_sandbox_owner(&o, &owners.sandbox));
            if !matches!(sandbox_owned, Ok(false)) {
                report.failures.push((shown(), format!("opening it to change its owner: {e}")));
            }
            return None;
        }
        Err(e) => {
            report.failures.push((shown(), format!("opening it: {e}")));
            return None;
        }
    };
    match final_path(&h) {
        Ok(p) if inside_root(&p, root) => {}
        Ok(p) => {
            report.failures.push((shown(), format!("it now leads outside the writable root (to {p}); left alone")));
            return None;
        }
        Err(e) => {
            report.failures.push((shown(), format!("reading its final path: {e}")));
            return None;
        }
    }
    // SAFETY: all-zero is a valid BY_HANDLE_FILE_INFORMATION to fill.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle and a correctly sized output structure.
    let plain_dir = unsafe { GetFileInformationByHandle(raw(&h), &mut info) } != 0
        && info.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)
            == FILE_ATTRIBUTE_DIRECTORY;
    let owner = match owner_of(&h) {
        Ok(o) => o,
        Err(e) => {
            report.failures.push((shown(), format!("reading its owner: {e}")));
            return None;
        }
    };
    report.examined += 1;
    if is_sandbox_owner(&owner, &owners.sandbox) {
        // SAFETY: a handle opened with WRITE_OWNER; the user's SID is valid and only read.
        let r = unsafe {
            SetSecurityInfo(
                raw(&h),
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION,
                owners.user.as_psid(),
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        match palisade_win32::ffi::win32(r) {
            Ok(()) => report.given_back += 1,
            Err(e) => report.failures.push((shown(), format!("making you its owner: {e}"))),
        }
    }
    Some(plain_dir)
}
