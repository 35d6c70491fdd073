//! palisade's console while a command runs in a pseudo console (ConPTY), shared by both modes:
//! the elevated mode's runner makes the pseudo console in its own process and palisade relays
//! over the runner's pipe ([`super::elevated`]); the unelevated mode makes it here
//! ([`PseudoConsole`]) and relays directly ([`super::unelevated`]).
//!
//! When palisade's standard input, output and error are consoles and the command inherits all
//! three (`palisade_windows_elevated::terminal::wants_terminal`), the command gets a pseudo
//! console of the window's size instead of palisade's console: it never holds a handle to the
//! user's console (whose input it could otherwise fill with `WriteConsoleInputW`, keystrokes
//! the user's shell would run after palisade exits). While the command runs, the console is raw
//! (no line editing, echo or Ctrl+C handling: Ctrl+C reaches the command as byte 0x03, which
//! its pseudo console turns into the command's Ctrl+C) with VT input and output; the typed
//! text goes to a [`TerminalSink`] and so does the window's size when it changes.
//! [`Session::end`] (also on drop) puts the modes back, whatever way the command ended.
//!
//! Resizes are found by polling the window's size every [`RESIZE_POLL`]: window-size events
//! come only through `ReadConsoleInputW`, whose key records would then have to be turned back
//! into the text `ReadConsoleW` hands over ready-made (VT sequences included), and a resize a
//! fraction of a second late is invisible in practice.

use std::fs::File;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use palisade_win32::ffi::check;
pub use palisade_windows_elevated::protocol::TtySize;
use palisade_windows_elevated::terminal::{raw_input_mode, vt_output_mode, wants_terminal, window_size, Utf16ToUtf8};
use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::WriteFile;
use windows_sys::Win32::System::Console::{
    GetConsoleMode, GetConsoleScreenBufferInfo, GetStdHandle, ReadConsoleW, SetConsoleMode, CONSOLE_SCREEN_BUFFER_INFO,
    COORD, HPCON, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::IO::CancelSynchronousIo;

use crate::spec::Stdio;

/// How often the window's size is compared with the last one sent.
pub const RESIZE_POLL: Duration = Duration::from_millis(250);
/// The size asked for when the window's cannot be read.
const FALLBACK: TtySize = TtySize { cols: 80, rows: 25 };

/// Where the typed text and the window's size go: the runner's pipe (elevated mode) or the
/// pseudo console itself (unelevated mode).
pub trait TerminalSink: Send + Sync {
    /// Typed text, UTF-8 (VT sequences for special keys).
    fn typed(&self, utf8: &[u8]) -> io::Result<()>;
    /// The console cannot be read any more.
    fn input_ended(&self);
    fn resized(&self, size: TtySize) -> io::Result<()>;
}

/// A standard handle of this process, kept as an integer so that it may cross threads. Not
/// owned: the process's standard handles are never closed here.
#[derive(Clone, Copy)]
struct StdHandle(isize);

impl StdHandle {
    fn get(which: STD_HANDLE) -> Option<StdHandle> {
        // SAFETY: no memory is involved.
        let h = unsafe { GetStdHandle(which) };
        (!h.is_null() && h != INVALID_HANDLE_VALUE).then_some(StdHandle(h as isize))
    }
    fn raw(self) -> HANDLE {
        self.0 as HANDLE
    }
    /// The console mode, `None` when this is not a console.
    fn mode(self) -> Option<u32> {
        let mut mode = 0u32;
        // SAFETY: a handle of this process; `mode` is written on success.
        (unsafe { GetConsoleMode(self.raw(), &mut mode) } != 0).then_some(mode)
    }
    fn set_mode(self, mode: u32) -> io::Result<()> {
        // SAFETY: a console handle of this process.
        if unsafe { SetConsoleMode(self.raw(), mode) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// palisade's console, when the command is to run in a pseudo console.
pub struct Console {
    input: StdHandle,
    output: StdHandle,
    input_mode: u32,
    output_mode: u32,
}

/// The console, if the command with these standard streams gets a terminal.
pub fn console_for(stdio: [Stdio; 3]) -> Option<Console> {
    let handles = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE].map(StdHandle::get);
    let modes = handles.map(|h| h.and_then(StdHandle::mode));
    let inherited = stdio.map(|s| s == Stdio::Inherit);
    if !wants_terminal(inherited, modes.map(|m| m.is_some())) {
        return None;
    }
    Some(Console { input: handles[0]?, output: handles[1]?, input_mode: modes[0]?, output_mode: modes[1]? })
}

impl Console {
    /// The visible window's size.
    pub fn size(&self) -> TtySize {
        current_size(self.output).unwrap_or(FALLBACK)
    }
}

fn current_size(output: StdHandle) -> Option<TtySize> {
    // SAFETY: an all-zero CONSOLE_SCREEN_BUFFER_INFO is valid output space.
    let mut info: CONSOLE_SCREEN_BUFFER_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: a console output handle; `info` is written on success.
    if unsafe { GetConsoleScreenBufferInfo(output.raw(), &mut info) } == 0 {
        return None;
    }
    let w = info.srWindow;
    window_size(w.Left, w.Top, w.Right, w.Bottom)
}

/// Which of palisade's stdin, stdout and stderr are consoles.
pub fn std_consoles() -> [bool; 3] {
    [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE]
        .map(|w| StdHandle::get(w).and_then(StdHandle::mode).is_some())
}

/// Writes `data` as it is (`WriteFile`: the console reads it in its output code page, as it
/// would from a program writing to it directly) to palisade's stdout or stderr. Not through
/// `std::io::stdout`, which refuses bytes that are not UTF-8 when it is a console, and what a
/// program writes to a pipe often is not.
pub fn write_std_bytes(stdout: bool, mut data: &[u8]) -> io::Result<()> {
    let which = if stdout { STD_OUTPUT_HANDLE } else { STD_ERROR_HANDLE };
    let h = StdHandle::get(which).ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
    while !data.is_empty() {
        let mut n = 0u32;
        let len = data.len().min(u32::MAX as usize) as u32;
        // SAFETY: `data` is readable for `len` bytes; `n` is written on success.
        check(unsafe { WriteFile(h.raw(), data.as_ptr(), len, &mut n, std::ptr::null_mut()) })?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Reads palisade's console input on a thread of its own (in whatever mode the console is) and
/// passes the text to a sink, until [`ConsoleReader::stop`].
pub struct ConsoleReader {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl ConsoleReader {
    /// `None` when palisade's stdin is not a console.
    pub fn start(sink: Arc<dyn TerminalSink>) -> Option<ConsoleReader> {
        let input = StdHandle::get(STD_INPUT_HANDLE).filter(|h| h.mode().is_some())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_in = stop.clone();
        let thread = std::thread::spawn(move || relay_typed_text(input, &stop_in, &*sink));
        Some(ConsoleReader { stop, thread })
    }

    /// Ends the reading: the thread waits in `ReadConsoleW`, and must not take the next key
    /// typed for whatever runs after the command.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // SAFETY: the thread's handle stays valid while `JoinHandle` exists.
        unsafe { CancelSynchronousIo(self.thread.as_raw_handle() as HANDLE) };
    }
}

/// The console in raw mode with its relays; [`Session::end`] restores it.
pub struct Session {
    console: Console,
    stop: Arc<AtomicBool>,
    restored: Mutex<bool>,
    input: Option<ConsoleReader>,
}

impl Session {
    /// Puts the console in raw VT mode and starts relaying typed text and resizes to `sink`.
    pub fn start(console: Console, sink: Arc<dyn TerminalSink>) -> io::Result<Session> {
        console.input.set_mode(raw_input_mode(console.input_mode))?;
        if let Err(e) = console.output.set_mode(vt_output_mode(console.output_mode)) {
            let _ = console.input.set_mode(console.input_mode);
            return Err(e);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut session = Session { console, stop: stop.clone(), restored: Mutex::new(false), input: None };
        session.input = ConsoleReader::start(sink.clone());
        let (output, mut last) = (session.console.output, session.console.size());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(RESIZE_POLL);
                match current_size(output) {
                    Some(now) if now != last && !stop.load(Ordering::SeqCst) => {
                        last = now;
                        if sink.resized(now).is_err() {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        });
        Ok(session)
    }

    /// Stops the relays and puts the console's modes back; once, whoever calls first.
    pub fn end(&self) {
        let mut restored = self.restored.lock().unwrap_or_else(|e| e.into_inner());
        if *restored {
            return;
        }
        *restored = true;
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.console.input.set_mode(self.console.input_mode);
        let _ = self.console.output.set_mode(self.console.output_mode);
        if let Some(reader) = &self.input {
            reader.stop();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

/// Typed text (UTF-16 from `ReadConsoleW`, VT sequences for special keys) to `sink` as UTF-8,
/// until the console cannot be read any more.
fn relay_typed_text(input: StdHandle, stop: &AtomicBool, sink: &dyn TerminalSink) {
    let mut buf = vec![0u16; 4096];
    let mut utf8 = Utf16ToUtf8::default();
    loop {
        let mut n = 0u32;
        // SAFETY: `buf` is writable for its length in UTF-16 units; `n` is written on success.
        let ok =
            unsafe { ReadConsoleW(input.raw(), buf.as_mut_ptr().cast(), buf.len() as u32, &mut n, std::ptr::null()) };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if ok == 0 {
            break;
        }
        let bytes = utf8.push(&buf[..n as usize]);
        if !bytes.is_empty() && sink.typed(&bytes).is_err() {
            return;
        }
    }
    sink.input_ended();
}

/// The pseudo console functions, looked up when first needed rather than imported: Windows
/// before 10 1809 (Server 2016) has none, and an import would keep palisade from starting there
/// at all instead of falling back to a hidden console.
struct ConPty {
    create: CreateFn,
    resize: ResizeFn,
    close: CloseFn,
}

type Export = unsafe extern "system" fn() -> isize;
type CreateFn = unsafe extern "system" fn(COORD, HANDLE, HANDLE, u32, *mut HPCON) -> i32;
type ResizeFn = unsafe extern "system" fn(HPCON, COORD) -> i32;
type CloseFn = unsafe extern "system" fn(HPCON);

fn conpty() -> Option<&'static ConPty> {
    static CONPTY: std::sync::OnceLock<Option<ConPty>> = std::sync::OnceLock::new();
    CONPTY
        .get_or_init(|| {
            let name: Vec<u16> = "kernel32.dll\0".encode_utf16().collect();
            // SAFETY: kernel32 is loaded in every process; GetModuleHandleW takes no reference.
            let module = unsafe { GetModuleHandleW(name.as_ptr()) };
            if module.is_null() {
                return None;
            }
            // SAFETY: NUL-terminated ASCII names of a loaded module's exports.
            let (create, resize, close) = unsafe {
                (
                    GetProcAddress(module, c"CreatePseudoConsole".as_ptr().cast())?,
                    GetProcAddress(module, c"ResizePseudoConsole".as_ptr().cast())?,
                    GetProcAddress(module, c"ClosePseudoConsole".as_ptr().cast())?,
                )
            };
            // SAFETY: the exports have these documented signatures (HRESULT CreatePseudoConsole(
            // COORD, HANDLE, HANDLE, DWORD, HPCON*), HRESULT ResizePseudoConsole(HPCON, COORD),
            // void ClosePseudoConsole(HPCON)).
            unsafe {
                Some(ConPty {
                    create: std::mem::transmute::<Export, CreateFn>(create),
                    resize: std::mem::transmute::<Export, ResizeFn>(resize),
                    close: std::mem::transmute::<Export, CloseFn>(close),
                })
            }
        })
        .as_ref()
}

/// A pseudo console, closed on drop (which ends the console session of what runs in it).
pub struct PseudoConsole {
    handle: HPCON,
    api: &'static ConPty,
}

// SAFETY: a pseudo console handle may be used from any thread; its owners serialise calls on it
// (a mutex, or a single thread).
unsafe impl Send for PseudoConsole {}

impl PseudoConsole {
    /// A pseudo console of `size`, with the caller's ends of its input (write) and output (read)
    /// pipes.
    pub fn new(size: TtySize) -> io::Result<(PseudoConsole, File, File)> {
        let api = conpty().ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, "this Windows has no pseudo console (ConPTY, Windows 10 1809)")
        })?;
        let pipe = || -> io::Result<(OwnedHandle, OwnedHandle)> {
            let (mut r, mut w): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: both handles are written on success; neither is inheritable.
            check(unsafe { CreatePipe(&mut r, &mut w, std::ptr::null(), 0) })?;
            // SAFETY: fresh handles owned by nobody else.
            Ok(unsafe { (OwnedHandle::from_raw_handle(r as _), OwnedHandle::from_raw_handle(w as _)) })
        };
        let (in_read, in_write) = pipe()?;
        let (out_read, out_write) = pipe()?;
        let mut pc: HPCON = 0;
        // SAFETY: the pipe handles are valid; the pseudo console duplicates what it keeps, so
        // its ends may be closed afterwards.
        let hr = unsafe {
            (api.create)(
                coord(size),
                in_read.as_raw_handle() as HANDLE,
                out_write.as_raw_handle() as HANDLE,
                0,
                &mut pc,
            )
        };
        if hr < 0 {
            return Err(io::Error::other(format!("CreatePseudoConsole failed with HRESULT {:#x}", hr as u32)));
        }
        Ok((PseudoConsole { handle: pc, api }, File::from(in_write), File::from(out_read)))
    }

    /// The handle for `PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE`.
    pub fn handle(&self) -> HPCON {
        self.handle
    }

    pub fn resize(&self, size: TtySize) {
        // SAFETY: a live pseudo console handle.
        unsafe { (self.api.resize)(self.handle, coord(size)) };
    }
}

impl Drop for PseudoConsole {
    fn drop(&mut self) {
        // SAFETY: closed exactly once.
        unsafe { (self.api.close)(self.handle) };
    }
}

fn coord(size: TtySize) -> COORD {
    COORD { X: size.cols.min(i16::MAX as u16) as i16, Y: size.rows.min(i16::MAX as u16) as i16 }
}
