//! What the unelevated-mode enforcement tests share (windows_cases.rs): running palisade with a
//! profile of its own, a command line in `cmd`, a script in PowerShell, and refusing to pass
//! under Wine. Never run on real Windows from this repository's Linux machine: the Windows
//! workflow (.github/workflows/windows.yml) runs them.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the lock that serialises the tests, or `None` (after saying so loudly) under Wine,
/// which accepts every call and enforces no token or ACL.
pub fn on_real_windows(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    if let Some(v) = palisade::__private::wine_version() {
        let _ = writeln!(
            std::io::stderr(),
            "NOT RUN under Wine: enforcement needs real Windows (see .github/workflows/windows.yml): {test} (Wine {v})"
        );
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\n")
}

/// A profile and application-data folder of their own for palisade: the machine's real
/// secrets folders would make the unelevated mode refuse to run.
pub fn fake_home() -> &'static Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let d = tempfile::Builder::new().prefix("palisade-home-").tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("AppData").join("Roaming")).unwrap();
        d
    })
    .path()
}

pub fn palisade() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.env("USERPROFILE", fake_home()).env("APPDATA", fake_home().join("AppData").join("Roaming"));
    c
}

/// `palisade run --workspace ws --network on [extra] -- argv...` in `cwd`; palisade itself
/// must not have failed (a refusal would make every "denied" below pass for the wrong reason).
pub fn run_in(ws: &Path, cwd: &Path, extra: &[&str], argv: &[&str]) -> Output {
    let mut c = palisade();
    c.arg("run").arg("--workspace").arg(ws).args(["--network", "on"]).args(extra).arg("--").args(argv);
    let out = c.current_dir(cwd).stdin(Stdio::null()).output().unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("palisade:"), "palisade itself failed: {err}");
    out
}

/// `cmd /d /c <line>` in the sandbox, in the workspace.
pub fn cmd(ws: &Path, extra: &[&str], line: &str) -> Output {
    run_in(ws, ws, extra, &["cmd", "/d", "/c", line])
}

/// A PowerShell script in the sandbox, in the workspace, passed as `-EncodedCommand` (base64
/// of UTF-16LE): on a command line Windows PowerShell would drop its double quotes.
pub fn powershell(ws: &Path, extra: &[&str], script: &str) -> Output {
    let encoded = encoded_command(script);
    run_in(ws, ws, extra, &["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand", &encoded])
}

/// What `powershell -EncodedCommand` takes: the script in UTF-16LE, in base64.
pub fn encoded_command(script: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The same command line run here, outside any sandbox (setting up and checking).
pub fn host_cmd(line: &str) -> Output {
    let out = Command::new("cmd").args(["/d", "/c", line]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "`{line}` failed outside the sandbox: {}{}", text(&out.stdout), text(&out.stderr));
    out
}

pub fn must_not_exist(p: &Path, what: &str) {
    if p.exists() {
        let _ = std::fs::remove_file(p);
        panic!("{what}: {} was written from inside the sandbox", p.display());
    }
}

pub fn must_be(p: &Path, content: &str, what: &str) {
    let now = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{what}: {} is gone: {e}", p.display()));
    assert_eq!(now, content, "{what}: {} was changed from inside the sandbox", p.display());
}

/// A suffix unlikely to exist already (the clock's nanoseconds).
pub fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

pub fn system_root() -> PathBuf {
    PathBuf::from(std::env::var_os("SystemRoot").unwrap_or_else(|| "C:\\Windows".into()))
}

/// PowerShell that defines `probe <name> <pid>`, which prints `probe <name> <inject> <dup>
/// <terminate>`: `granted` or `denied:<error>` for `OpenProcess` with `PROCESS_VM_OPERATION|
/// VM_WRITE|CREATE_THREAD` (code injection), with `PROCESS_DUP_HANDLE` (handle theft) and with
/// `PROCESS_TERMINATE` (an execute right of processes: reported, not asserted).
pub const OPEN_PROCESS_PROBE: &str = r#"
Add-Type -TypeDefinition @'
using System;
using System.Runtime.InteropServices;
public static class PalisadeOpenProbe {
    [DllImport("kernel32.dll", SetLastError = true)]
    static extern IntPtr OpenProcess(uint access, bool inherit, int pid);
    [DllImport("kernel32.dll")]
    static extern bool CloseHandle(IntPtr h);
    public static string Open(int pid, uint access) {
        IntPtr h = OpenProcess(access, false, pid);
        if (h == IntPtr.Zero) { return "denied:" + Marshal.GetLastWin32Error(); }
        CloseHandle(h);
        return "granted";
    }
}
'@
function probe($name, $id) {
    $r = @(0x2A, 0x40, 0x1) | ForEach-Object { [PalisadeOpenProbe]::Open([int]$id, [uint32]$_) }
    Write-Output ("probe {0} {1}" -f $name, ($r -join ' '))
}
"#;

/// The `probe <name> ...` line of `out`, without the prefix (`""` when missing).
pub fn probe_result(out: &str, name: &str) -> String {
    let prefix = format!("probe {name} ");
    out.lines().find_map(|l| l.trim().strip_prefix(&prefix)).unwrap_or("").to_string()
}

/// `palisade run --workspace ws --network on -- argv...` left running in the background.
pub fn run_in_background(ws: &Path, argv: &[&str]) -> std::process::Child {
    let mut c = palisade();
    c.arg("run").arg("--workspace").arg(ws).args(["--network", "on", "--"]).args(argv);
    c.current_dir(ws).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// The content of `p` once it exists and is not empty (panics after `limit`).
pub fn wait_for_file(p: &Path, limit: std::time::Duration) -> String {
    let start = std::time::Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if !s.trim().is_empty() {
                return s;
            }
        }
        assert!(start.elapsed() < limit, "{} did not appear within {limit:?}", p.display());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// PowerShell that defines `[PalisadeConsoleProbe]::Inject()` (writes the key `x` into the
/// input of the console the process is attached to, through `CONIN$`) and `::Attach(pid)`
/// (leaves its console, attaches to that of `pid`, `u32::MAX` for its parent, and injects).
pub const CONSOLE_INJECTION_PROBE: &str = r#"
Add-Type -TypeDefinition @'
using System;
using System.Runtime.InteropServices;
public static class PalisadeConsoleProbe {
    [StructLayout(LayoutKind.Explicit, Size = 20)]
    struct KeyRecord {
        [FieldOffset(0)] public ushort EventType;
        [FieldOffset(4)] public int KeyDown;
        [FieldOffset(8)] public ushort RepeatCount;
        [FieldOffset(10)] public ushort VirtualKeyCode;
        [FieldOffset(12)] public ushort VirtualScanCode;
        [FieldOffset(14)] public ushort UnicodeChar;
        [FieldOffset(16)] public uint ControlKeyState;
    }
    [DllImport("kernel32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
    static extern IntPtr CreateFileW(string name, uint access, uint share, IntPtr sa, uint disposition, uint flags, IntPtr template);
    [DllImport("kernel32.dll", SetLastError = true)]
    static extern bool WriteConsoleInputW(IntPtr h, KeyRecord[] records, uint n, out uint written);
    [DllImport("kernel32.dll")]
    static extern bool CloseHandle(IntPtr h);
    [DllImport("kernel32.dll", SetLastError = true)]
    static extern bool FreeConsole();
    [DllImport("kernel32.dll", SetLastError = true)]
    static extern bool AttachConsole(uint pid);
    public static string Inject() {
        IntPtr h = CreateFileW("CONIN$", 0xC0000000, 3, IntPtr.Zero, 3, 0, IntPtr.Zero);
        if (h == new IntPtr(-1)) { return "conin-denied:" + Marshal.GetLastWin32Error(); }
        KeyRecord[] keys = new KeyRecord[2];
        for (int i = 0; i < 2; i++) {
            keys[i].EventType = 1; keys[i].KeyDown = 1 - i; keys[i].RepeatCount = 1;
            keys[i].VirtualKeyCode = 0x58; keys[i].UnicodeChar = 0x78;
        }
        uint written;
        bool ok = WriteConsoleInputW(h, keys, 2, out written);
        int err = Marshal.GetLastWin32Error();
        CloseHandle(h);
        return ok ? "written:" + written : "write-failed:" + err;
    }
    public static string Attach(uint pid) {
        FreeConsole();
        if (!AttachConsole(pid)) { return "attach-denied:" + Marshal.GetLastWin32Error(); }
        return "attached-" + Inject();
    }
}
'@
"#;

/// This test process's console input (a console is made if it has none), emptied first.
pub fn own_console_input() -> std::os::windows::io::OwnedHandle {
    use std::os::windows::io::FromRawHandle;
    use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING};
    use windows_sys::Win32::System::Console::{AllocConsole, FlushConsoleInputBuffer};
    let name: Vec<u16> = "CONIN$\0".encode_utf16().collect();
    let open = || {
        // SAFETY: `name` is NUL-terminated; no other pointer is passed.
        unsafe {
            CreateFileW(
                name.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                std::ptr::null(),
                OPEN_EXISTING,
                0,
                std::ptr::null_mut(),
            )
        }
    };
    let mut h = open();
    if h == INVALID_HANDLE_VALUE {
        // SAFETY: no memory is involved.
        unsafe { AllocConsole() };
        h = open();
    }
    assert!(h != INVALID_HANDLE_VALUE, "the test process has no console input: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh console input handle owned by nobody else.
    let h = unsafe { std::os::windows::io::OwnedHandle::from_raw_handle(h as _) };
    // SAFETY: a console input handle of this process.
    unsafe { FlushConsoleInputBuffer(std::os::windows::io::AsRawHandle::as_raw_handle(&h) as _) };
    h
}

/// How many input events wait in a console input buffer.
pub fn pending_console_input(h: &std::os::windows::io::OwnedHandle) -> u32 {
    use windows_sys::Win32::System::Console::GetNumberOfConsoleInputEvents;
    let mut n = 0u32;
    // SAFETY: a console input handle of this process; `n` is written on success.
    let ok = unsafe { GetNumberOfConsoleInputEvents(std::os::windows::io::AsRawHandle::as_raw_handle(h) as _, &mut n) };
    assert!(ok != 0, "GetNumberOfConsoleInputEvents: {}", std::io::Error::last_os_error());
    n
}

/// Runs palisade with `args` in a pseudo console of this test's (as if from a terminal) and
/// plays `steps`: wait until the output after the previous step shows the text, then type the
/// bytes (each wait at most `step_limit`). Returns palisade's exit code and all its output.
pub fn palisade_in_pseudo_console(
    args: &[&str],
    cwd: &Path,
    steps: &[(&str, &[u8])],
    step_limit: std::time::Duration,
) -> (u32, String) {
    use palisade::__private::runner::{process, PseudoConsole, TtySize};
    use std::ffi::OsString;
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    let (pc, mut input, mut output) = PseudoConsole::new(TtySize { cols: 120, rows: 30 }).expect("CreatePseudoConsole");
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let own = palisade_win32::token::open_own().unwrap();
    let spec = palisade_win32::token::TokenSpec {
        write_restricted: false,
        restricting: &[],
        deny_only: &[],
        default_dacl: &[],
    };
    let token = palisade_win32::token::restricted(&own, &spec).unwrap();
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    env.push(("USERPROFILE".into(), fake_home().into()));
    env.push(("APPDATA".into(), fake_home().join("AppData").join("Roaming").into()));
    let exe = process::Launch::Image(PathBuf::from(env!("CARGO_BIN_EXE_palisade")));
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let spawned = process::create_suspended(process::CreateSpec {
        token: &token,
        command: process::command_line(&exe, &args).unwrap(),
        env_block: &process::environment_block(&env).unwrap(),
        cwd,
        stdio: &[None, None, None],
        new_process_group: false,
        pseudo_console: Some(pc.handle()),
        own_hidden_console: false,
    })
    .unwrap();
    process::resume(&spawned.thread).unwrap();
    let mut from = 0;
    for (want, typed) in steps {
        let start = std::time::Instant::now();
        loop {
            let now = seen.lock().unwrap().clone();
            if let Some(at) = now[from..].find(want) {
                from += at + want.len();
                break;
            }
            if start.elapsed() > step_limit {
                let _ = process::terminate(&spawned.process, 1);
                panic!("`{want}` did not appear within {step_limit:?}; output so far:\n{now}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::io::Write::write_all(&mut input, typed).unwrap();
    }
    let ended = process::wait(&spawned.process, Some(step_limit.as_millis() as u32)).unwrap();
    if !ended {
        let _ = process::terminate(&spawned.process, 1);
    }
    let code = process::exit_code(&spawned.process).unwrap();
    drop(pc);
    let _ = reader.join();
    let all = seen.lock().unwrap().clone();
    assert!(ended, "palisade did not end; output:\n{all}");
    (code, all)
}
