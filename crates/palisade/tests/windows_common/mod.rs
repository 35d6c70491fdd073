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
