//! Inherited standard streams must not reach outside: the command may write to them, but not
//! change the file, device or terminal behind them (mode, times, extended attributes, length,
//! exclusive mode, line discipline). Every assertion is made from the host.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

/// Tries everything that changes a file through descriptor `fd` (argv[1]), after writing a line
/// to it. Errors are expected and ignored: only the outcome on the host counts.
const TAMPER: &str = r#"
import os, sys
fd = int(sys.argv[1])
os.write(fd, ("written-by-command-" + sys.argv[2] + "\n").encode())
for attempt in (lambda: os.fchmod(fd, 0o777), lambda: os.utime(fd, (0, 0)),
                lambda: os.setxattr(fd, "user.palisade", b"x"), lambda: os.ftruncate(fd, 0)):
    try:
        attempt()
    except OSError:
        pass
"#;

struct FileState {
    mode: u32,
    mtime: i64,
    xattrs: Vec<u8>,
}

fn xattrs(path: &std::path::Path) -> Vec<u8> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: buf is writable for its length; c is NUL-terminated.
    let n = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(n >= 0, "listxattr {}: {}", path.display(), std::io::Error::last_os_error());
    buf.truncate(n as usize);
    buf
}

fn state(path: &std::path::Path) -> FileState {
    let m = fs::metadata(path).unwrap();
    FileState { mode: m.mode() & 0o7777, mtime: m.mtime(), xattrs: xattrs(path) }
}

/// A log file outside the sandbox with a past mtime and some content; user xattrs must work
/// on its filesystem (else the xattr check would prove nothing).
fn outside_log(fx: &Fixture) -> std::path::PathBuf {
    fx.require_visible();
    let log = fx.outside.join("out.log");
    fs::write(&log, format!("previous-{}\n", fx.m)).unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o640)).unwrap();
    File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    let probe = fx.outside.join("xattr-probe");
    fs::write(&probe, "").unwrap();
    let c = CString::new(probe.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated strings and a one-byte value.
    let r = unsafe { libc::setxattr(c.as_ptr(), c"user.probe".as_ptr(), b"1".as_ptr().cast(), 1, 0) };
    assert_eq!(r, 0, "the scratch filesystem must support user xattrs: {}", std::io::Error::last_os_error());
    log
}

fn append(path: &std::path::Path) -> File {
    OpenOptions::new().append(true).open(path).unwrap()
}

fn assert_log_intact(fx: &Fixture, log: &std::path::Path, before: &FileState, what: &str, o: &std::process::Output) {
    let after = state(log);
    let content = fs::read_to_string(log).unwrap();
    assert_eq!(after.mode, before.mode, "ESCAPE: the command changed the mode of {what} outside: {}", show(o));
    // Appending moves the mtime forward; the command tried to set it to 1970.
    assert!(
        after.mtime >= before.mtime,
        "ESCAPE: the command set the mtime of {what} outside to {}: {}",
        after.mtime,
        show(o)
    );
    assert_eq!(after.xattrs, before.xattrs, "ESCAPE: the command set an xattr on {what} outside: {}", show(o));
    assert!(
        content.starts_with(&format!("previous-{}\n", fx.m)),
        "ESCAPE: the command truncated {what} outside: {content:?} {}",
        show(o)
    );
    assert!(
        content.contains(&format!("written-by-command-{}\n", fx.m)),
        "the command's line was not appended to {what}: {content:?} {}",
        show(o)
    );
}

#[test]
fn stdout_appended_to_a_file_cannot_be_changed() {
    let fx = Fixture::new();
    let log = outside_log(&fx);
    let before = state(&log);
    let py = require_tool("python3");
    let o = fx.run_cmd(&[], &[s(&py), "-c", TAMPER, "1", &fx.m]).stdout(append(&log)).output().unwrap();
    assert_eq!(ran(&o), 0, "{}", show(&o));
    assert_log_intact(&fx, &log, &before, "the stdout file", &o);
}

#[test]
fn stderr_appended_to_a_file_cannot_be_changed() {
    let fx = Fixture::new();
    let log = outside_log(&fx);
    let before = state(&log);
    let py = require_tool("python3");
    let o = fx.run_cmd(&[], &[s(&py), "-c", TAMPER, "2", &fx.m]).stderr(append(&log)).output().unwrap();
    assert_eq!(ran(&o), 0, "{}", show(&o));
    assert_log_intact(&fx, &log, &before, "the stderr file", &o);
}

/// `>> f 2>&1`: one open file description for both; the relay keeps the order of interleaved
/// writes, the exit status and every byte, and the file cannot be changed through either.
#[test]
fn stdout_and_stderr_into_one_file_keep_their_order() {
    let fx = Fixture::new();
    let log = outside_log(&fx);
    let before = state(&log);
    let py = require_tool("python3");
    let script = format!(
        "{TAMPER}\nfor i in range(300):\n    os.write(1 + i % 2, ('line-%d\\n' % i).encode())\nos.write(2, b'x' * 200000 + b'\\n')\nsys.exit(3)\n"
    );
    let f = append(&log);
    let o = fx
        .run_cmd(&[], &[s(&py), "-c", &script, "2", &fx.m])
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .output()
        .unwrap();
    assert_eq!(ran(&o), 3, "the exit status changed: {}", show(&o));
    assert_log_intact(&fx, &log, &before, "the shared output file", &o);
    let content = fs::read_to_string(&log).unwrap();
    let expected: String = (0..300).map(|i| format!("line-{i}\n")).collect::<String>() + &"x".repeat(200000) + "\n";
    assert!(
        content.ends_with(&expected),
        "interleaved stdout/stderr lost their order or bytes (len {})",
        content.len()
    );
}

/// A closed reader: the command gets EPIPE/SIGPIPE as it would without the relay, and palisade
/// neither hangs nor dies of SIGPIPE itself. (stdout is a FIFO in the outside folder: a host
/// inode, so it is relayed.)
#[test]
fn relay_to_a_closed_reader_ends_cleanly() {
    let fx = Fixture::new();
    fx.require_visible();
    let fifo = fx.outside.join("fifo");
    let c = CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let mut f = File::open(&fifo).unwrap();
            let mut buf = [0u8; 6];
            f.read_exact(&mut buf).unwrap();
            buf
        }
    });
    let w = OpenOptions::new().write(true).open(&fifo).unwrap();
    let before = fs::metadata(&fifo).unwrap().mode() & 0o7777;
    let o = fx
        .run_cmd(
            &[],
            &["sh", "-c", "chmod 777 /proc/self/fd/1; echo first; while echo more; do :; done; echo done >&2"],
        )
        .stdout(w)
        .output()
        .unwrap();
    assert_eq!(&reader.join().unwrap(), b"first\n");
    // Killed by SIGPIPE (sh's echo) or told EPIPE: either way it saw the reader go away.
    assert!(
        ran(&o) == 128 + libc::SIGPIPE || stderr(&o).contains("done"),
        "the command did not see its reader go away: {}",
        show(&o)
    );
    assert_eq!(
        fs::metadata(&fifo).unwrap().mode() & 0o7777,
        before,
        "ESCAPE: the command changed the FIFO's mode: {}",
        show(&o)
    );
}

/// stdin and stdout from /dev/null: as root (uid 0 inside owns the host's /dev/null), fchmod
/// on the descriptor would change the host's /dev/null for everyone.
#[test]
fn dev_null_as_stdio_cannot_be_changed() {
    let fx = Fixture::new();
    let before = fs::metadata("/dev/null").unwrap();
    let o = fx
        .run_cmd(
            &[],
            &[
                "sh",
                "-c",
                "chmod 777 /proc/self/fd/0; chmod 777 /proc/self/fd/1; touch -d 2001-01-01 /proc/self/fd/0; echo x",
            ],
        )
        .stdin(File::open("/dev/null").unwrap())
        .stdout(OpenOptions::new().write(true).open("/dev/null").unwrap())
        .output()
        .unwrap();
    let after = fs::metadata("/dev/null").unwrap();
    if after.mode() != before.mode() {
        let _ = fs::set_permissions("/dev/null", fs::Permissions::from_mode(before.mode() & 0o7777));
    }
    assert_eq!(
        after.mode(),
        before.mode(),
        "ESCAPE: the command changed the host's /dev/null mode (put back): {}",
        show(&o)
    );
    assert_eq!(after.mtime(), before.mtime(), "ESCAPE: the command changed the host's /dev/null times: {}", show(&o));
    assert_eq!(ran(&o), 0, "{}", show(&o));
}

/// A pseudo-terminal of the test's, as every standard stream of the command.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    path: std::path::PathBuf,
}

fn openpty() -> Pty {
    // SAFETY: plain libc calls on a descriptor we own; ptsname_r writes into buf.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = OwnedFd::from_raw_fd(m);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut buf = [0 as libc::c_char; 64];
        assert_eq!(libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()), 0);
        let path = std::ffi::CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_string();
        let slave = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(&path).unwrap();
        Pty { master, slave: slave.into(), path: path.into() }
    }
}

use std::os::unix::fs::OpenOptionsExt;

fn ioctl_int(fd: &impl AsRawFd, req: libc::c_ulong) -> i32 {
    let mut v: libc::c_int = -1;
    // SAFETY: the request writes one int into v.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut v) };
    assert_eq!(r, 0, "ioctl 0x{req:x}: {}", std::io::Error::last_os_error());
    v
}

const TIOCGEXCL: libc::c_ulong = 0x8004_5440;
const TIOCGETD: libc::c_ulong = 0x5424;

/// chmod 666 on the terminal, TIOCEXCL (later opens of /dev/tty fail: sudo and ssh prompts
/// break) and TIOCSETD (output vanishes): none outlives the command; raw mode still works.
#[test]
fn terminal_as_stdio_cannot_be_changed() {
    let fx = Fixture::new();
    let pty = openpty();
    let before = fs::metadata(&pty.path).unwrap();
    let py = require_tool("python3");
    let script = r#"
import os, fcntl, termios, struct, tty, sys
res = []
for fd in (0, 1, 2):
    try:
        os.fchmod(fd, 0o666); res.append("chmod%d-ok" % fd)
    except OSError as e:
        res.append("chmod%d-%d" % (fd, e.errno))
try:
    fcntl.ioctl(0, termios.TIOCEXCL); res.append("excl-ok")
except OSError as e:
    res.append("excl-%d" % e.errno)
try:
    fcntl.ioctl(1, termios.TIOCSETD, struct.pack("i", 27)); res.append("setd-ok")
except OSError as e:
    res.append("setd-%d" % e.errno)
old = termios.tcgetattr(0)
tty.setraw(0)
termios.tcsetattr(0, termios.TCSANOW, old)
res.append("raw-ok")
res.append("tty=" + os.ttyname(0))
sys.stderr.write(" ".join(res) + "\n")
"#;
    let io = || Stdio::from(pty.slave.try_clone().unwrap());
    let o = fx.run_cmd(&[], &[s(&py), "-c", script]).stdin(io()).stdout(io()).stderr(io()).output().unwrap();
    // The output is far below the pty's buffer: it is all there once the command has ended
    // (unless a changed line discipline swallowed it).
    let seen = String::from_utf8_lossy(&read_available(pty.master.as_raw_fd())).to_string();
    let after = fs::metadata(&pty.path).unwrap();
    assert_eq!(after.mode(), before.mode(), "ESCAPE: the command changed the terminal's mode: {seen} {}", show(&o));
    assert_eq!(
        (after.uid(), after.gid()),
        (before.uid(), before.gid()),
        "ESCAPE: the command changed the terminal's owner: {seen}"
    );
    assert_eq!(ioctl_int(&pty.slave, TIOCGEXCL), 0, "ESCAPE: the command left the terminal in exclusive mode: {seen}");
    assert_eq!(
        ioctl_int(&pty.slave, TIOCGETD),
        0,
        "ESCAPE: the command changed the terminal's line discipline: {seen}"
    );
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&pty.path)
        .expect("opening the terminal again");
    assert_eq!(ran(&o), 0, "{seen} {}", show(&o));
    assert!(
        seen.contains("raw-ok") && seen.contains("tty=/dev/console"),
        "the terminal did not work as one inside: {seen}"
    );
    eprintln!("inside: {seen}");
}

/// `tcflow(TCOOFF)` suspends a terminal's output until someone resumes it (Ctrl-Q does not):
/// left so, the user's shell would block on its next write after palisade returned. Refused;
/// what is written to the terminal afterwards still comes through (read on the master side).
#[test]
fn terminal_output_cannot_be_left_suspended() {
    let fx = Fixture::new();
    let pty = openpty();
    let py = require_tool("python3");
    let script = r#"
import sys, termios
try:
    termios.tcflow(1, termios.TCOOFF); sys.stderr.write("tcooff-ok\n")
except (OSError, termios.error) as e:
    sys.stderr.write("tcooff-%d\n" % e.args[0])
"#;
    let io = || Stdio::from(pty.slave.try_clone().unwrap());
    let o = fx.run_cmd(&[], &[s(&py), "-c", script]).stdin(io()).stdout(io()).stderr(io()).output().unwrap();
    let inside = String::from_utf8_lossy(&read_available(pty.master.as_raw_fd())).to_string();
    // As the user's shell would, after the command: write to the terminal.
    let mut out = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&pty.path)
        .expect("opening the terminal again");
    let _ = std::io::Write::write_all(&mut out, b"after-the-command\n");
    std::thread::sleep(Duration::from_millis(200));
    let after = String::from_utf8_lossy(&read_available(pty.master.as_raw_fd())).to_string();
    // SAFETY: tcflow only changes the terminal's flow state (cleanup for a failed run).
    unsafe { libc::tcflow(pty.slave.as_raw_fd(), libc::TCOON) };
    assert!(
        after.contains("after-the-command"),
        "ESCAPE: the command left the terminal's output suspended (inside: {inside:?}) {}",
        show(&o)
    );
    assert!(inside.contains("tcooff-1"), "tcflow(TCOOFF) was not refused with EPERM: {inside:?} {}", show(&o));
}

/// A terminal that is not the one shown at /dev/console (stderr on a second pty) reaches the
/// command as it is; a mode the command changes on it is put back when it ends, and palisade
/// says so.
#[test]
fn second_terminal_mode_is_put_back() {
    let fx = Fixture::new();
    let (a, b) = (openpty(), openpty());
    let before = fs::metadata(&b.path).unwrap();
    let o = fx
        .run_cmd(&[], &["sh", "-c", "chmod 666 /proc/self/fd/2; echo done"])
        .stdin(Stdio::from(a.slave.try_clone().unwrap()))
        .stdout(Stdio::from(a.slave.try_clone().unwrap()))
        .stderr(Stdio::from(b.slave.try_clone().unwrap()))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&read_available(b.master.as_raw_fd())).to_string();
    let after = fs::metadata(&b.path).unwrap();
    assert_eq!(after.mode(), before.mode(), "ESCAPE: the second terminal's mode stayed changed: {said} {}", show(&o));
    assert!(said.contains("put back"), "palisade did not report putting the terminal back: {said:?}");
    assert_eq!(ran(&o), 0, "{}", show(&o));
}

/// stdin from a file outside (`< input.txt`): the command reads all of it but cannot change it.
#[test]
fn stdin_from_a_file_cannot_be_changed() {
    let fx = Fixture::new();
    let log = outside_log(&fx);
    let big: String = (0..50_000).map(|i| format!("in-{i}\n")).collect();
    fs::write(&log, &big).unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o640)).unwrap();
    let before = state(&log);
    let o = fx
        .run_cmd(&[], &["sh", "-c", "chmod 777 /proc/self/fd/0; touch -d 2001-01-01 /proc/self/fd/0; wc -l"])
        .stdin(File::open(&log).unwrap())
        .output()
        .unwrap();
    let after = state(&log);
    assert_eq!(after.mode, before.mode, "ESCAPE: the command changed the mode of its stdin file outside: {}", show(&o));
    assert_eq!(
        after.mtime,
        before.mtime,
        "ESCAPE: the command changed the mtime of its stdin file outside: {}",
        show(&o)
    );
    assert_eq!(fs::read_to_string(&log).unwrap(), big);
    assert_eq!(stdout(&o).trim(), "50000", "the command did not read all of its stdin: {}", show(&o));
}

/// A shell loop reading a list and running palisade per line: a run that does not read its
/// stdin must not consume the list (a relay would read the file ahead and end the loop after
/// the first line), and a run that does read it starts at the loop's position.
#[test]
fn a_read_loop_over_a_file_sees_every_line() {
    let fx = Fixture::new();
    let list = outside_log(&fx);
    fs::write(&list, "one\ntwo\nthree\n").unwrap();
    let script = format!(
        "while read l; do \"$0\" run --workspace \"$1\" -- true; echo \"got $l\"; done < '{}'; \
         read first < '{}'; {{ read a; \"$0\" run --workspace \"$1\" -- sh -c 'read b; echo \"inside $b\"'; }} < '{}'",
        list.display(),
        list.display(),
        list.display()
    );
    let o =
        std::process::Command::new("bash").arg("-c").arg(&script).arg(BIN).arg(&fx.ws).envs(fx.env()).output().unwrap();
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with("got ")).collect::<Vec<_>>(),
        ["got one", "got two", "got three"],
        "the loop lost lines: {}",
        show(&o)
    );
    assert!(stdout(&o).contains("inside two"), "the command did not start at the caller's position: {}", show(&o));
}
