//! An interactive shell, or any command, on the caller's terminal runs as that terminal's
//! foreground job, as under `sh`: the tests drive palisade on a pseudo-terminal of their own,
//! under a "user's shell" that is its session leader (an interactive bash with job control, or a
//! plain `sh -c` script), type into the master side and read what the terminal shows.
//!
//! What each checks outside the sandbox: the exit status the user's shell sees, and the
//! terminal's foreground process group (tcgetpgrp on the master) while the command runs and
//! after palisade has ended.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A pseudo-terminal whose session leader is `leader` (the user's shell), and what it showed.
struct Term {
    master: OwnedFd,
    leader: Child,
    seen: String,
    /// How much of `seen` the expectations have consumed.
    pos: usize,
}

impl Term {
    /// Starts `argv` in a new session whose controlling terminal is a new pty, with the
    /// fixture's environment and `$PAL` (the palisade binary), `$WS` (the workspace).
    fn start(fx: &Fixture, argv: &[&str]) -> Term {
        let (mut m, mut sl) = (-1, -1);
        // SAFETY: openpty writes two descriptors; the name, termios and winsize may be null.
        let rc = unsafe { libc::openpty(&mut m, &mut sl, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(sl)) };
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
        }
        let io = || Stdio::from(slave.try_clone().unwrap());
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&fx.ws)
            .envs(fx.env())
            .env("PAL", BIN)
            .env("WS", &fx.ws)
            .env("PS1", "$ ")
            .env("TERM", "dumb")
            .env_remove("PROMPT_COMMAND")
            .stdin(io())
            .stdout(io())
            .stderr(io());
        // SAFETY: setsid and ioctl are async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let leader = cmd.spawn().expect("starting the user's shell on the pty");
        drop(slave);
        Term { master, leader, seen: String::new(), pos: 0 }
    }

    fn send(&mut self, text: &str) {
        let b = text.as_bytes();
        // SAFETY: writing from a valid buffer to a descriptor we own.
        let n = unsafe { libc::write(self.master.as_raw_fd(), b.as_ptr().cast(), b.len()) };
        assert_eq!(n, b.len() as isize, "writing to the pty: {}", std::io::Error::last_os_error());
    }

    fn read_more(&mut self) {
        let got = read_available(self.master.as_raw_fd());
        self.seen.push_str(&String::from_utf8_lossy(&got));
    }

    /// Waits until `needle` appears after what was consumed; consumes up to its end.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.read_more();
            if let Some(i) = self.seen[self.pos..].find(needle) {
                self.pos += i + needle.len();
                return;
            }
            assert!(Instant::now() < deadline, "the terminal never showed {needle:?}; it showed:\n{}", self.seen);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The terminal's foreground process group (asked on the master side).
    fn foreground(&self) -> i32 {
        // SAFETY: tcgetpgrp only reads the terminal's state.
        let g = unsafe { libc::tcgetpgrp(self.master.as_raw_fd()) };
        assert!(g > 0, "tcgetpgrp on the master: {}", std::io::Error::last_os_error());
        g
    }

    fn leader_pid(&self) -> i32 {
        self.leader.id() as i32
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.leader.kill();
        let _ = self.leader.wait();
    }
}

/// Waits until `check` holds, or fails with `what` and the terminal's transcript.
fn wait_until(term: &mut Term, what: &str, check: impl Fn(&Term) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check(term) {
        term.read_more();
        assert!(Instant::now() < deadline, "{what}; the terminal showed:\n{}", term.seen);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The process group of `pid`.
fn pgid(pid: i32) -> i32 {
    // SAFETY: getpgid has no memory effects.
    unsafe { libc::getpgid(pid) }
}

/// The state letter of /proc/<pid>/stat (R, S, T...).
fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()).unwrap_or('?')
}

/// An interactive shell inside, run by a script (no job control of its own, so nobody but
/// palisade gives the terminal back): commands run, Ctrl-C ends a `sleep` and not the shell,
/// a background job is listed, `exit 3` is the status palisade ends with, and the terminal's
/// foreground group is the script's again afterwards.
fn interactive_shell_inside(fx: &Fixture, command: &str) {
    let m = sleep_marker();
    let script = format!("{command}; echo \"R$?X\"; exec sleep 60");
    let mut t = Term::start(fx, &["sh", "-c", &script]);
    let script_group = t.leader_pid();
    t.send("echo \"in-$((40+2))\"\n");
    t.expect("in-42");
    t.send(&format!("sleep {m}\n"));
    wait_until(&mut t, "the sleep inside never started", |_| !pids_with(&m.to_string()).is_empty());
    assert_ne!(t.foreground(), script_group, "the shell inside did not get the terminal: {}", t.seen);
    t.send("\x03");
    wait_until(&mut t, "Ctrl-C did not end the sleep", |_| pids_with(&m.to_string()).is_empty());
    t.send("echo \"after-$?-ok\"\n");
    t.expect("after-130-ok");
    t.send(&format!("sleep {} &\n", m + 1));
    t.send("jobs\n");
    t.expect("Running");
    t.send("kill %1; exit 3\n");
    t.expect("R3X");
    assert_eq!(
        t.foreground(),
        script_group,
        "after palisade ended, the terminal's foreground group is not the script's again: {}",
        t.seen
    );
    assert!(survivors(&(m + 1).to_string()).is_empty(), "a process of the sandbox outlived palisade");
}

#[test]
fn interactive_dash_inside_runs_jobs_and_exits_with_its_status() {
    let fx = Fixture::new();
    require_tool("dash");
    interactive_shell_inside(&fx, "\"$PAL\" run --workspace \"$WS\" -- dash -i");
}

#[test]
fn interactive_bash_as_the_drop_in_sh_runs_jobs_and_exits_with_its_status() {
    let fx = Fixture::new();
    let bash = require_tool("bash");
    // `palisade sh` with no arguments: the inner shell reads commands from the terminal.
    let command = format!("PALISADE_SH_FLAGS=\"--workspace $WS\" PALISADE_SH_SHELL={} \"$PAL\" sh", bash.display());
    interactive_shell_inside(&fx, &command);
}

/// Under an interactive bash (the user's shell): while the command runs, the sandbox's own
/// group has the terminal (not palisade's); Ctrl-Z stops palisade as a job, the user's shell
/// gets the terminal, `fg` gives it back to the sandbox and continues the command; Ctrl-C then
/// ends it with 130, and the user's shell has its terminal.
#[test]
fn ctrl_z_stops_palisade_like_a_job_and_fg_continues_the_command() {
    let fx = Fixture::new();
    let bash = require_tool("bash");
    let m = sleep_marker();
    let mut t = Term::start(&fx, &[bash.to_str().unwrap(), "--norc", "--noprofile", "-i"]);
    let shell = t.leader_pid();
    t.send("echo \"up-$((1+1))\"\n");
    t.expect("up-2");
    t.send(&format!("\"$PAL\" run --workspace \"$WS\" -- sleep {m}\n"));
    let sleep = m.to_string();
    wait_until(&mut t, "the command never started", |_| pids_with(&sleep).len() >= 3);
    let sleeper = pids_with(&sleep).into_iter().find(|p| starts(*p, "sleep\0")).expect("the sleep process");
    let palisade = child_of(shell, &sleep);
    wait_until(&mut t, "the sandbox never got the terminal", |t| t.foreground() == pgid(sleeper));
    assert_ne!(t.foreground(), pgid(palisade), "the command runs in palisade's own group: {}", t.seen);

    t.send("\x1a");
    t.expect("Stopped");
    assert_eq!(t.foreground(), shell, "the user's shell did not get the terminal back at Ctrl-Z: {}", t.seen);
    assert_eq!(state(palisade), 'T', "palisade is not stopped as a job: {}", t.seen);
    assert_eq!(state(sleeper), 'T', "the command is not stopped: {}", t.seen);

    t.send("fg\n");
    wait_until(&mut t, "fg did not continue the command", |_| state(sleeper) != 'T');
    wait_until(&mut t, "fg did not give the terminal to the sandbox", |t| t.foreground() == pgid(sleeper));
    assert_ne!(state(palisade), 'T', "fg did not continue palisade: {}", t.seen);
    t.send("\x03");
    t.send("echo \"R$?X\"\n");
    t.expect("R130X");
    assert_eq!(t.foreground(), shell, "the user's shell does not have its terminal: {}", t.seen);
    assert!(survivors(&sleep).is_empty(), "the command outlived Ctrl-C");
}

/// Whether the command line of `pid` starts with `prefix`.
fn starts(pid: i32, prefix: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(prefix.as_bytes()))
}

/// The process matching `needle` whose parent is `parent` (palisade, under the user's shell).
fn child_of(parent: i32, needle: &str) -> i32 {
    let ppid = |pid: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<i32>().ok())
    };
    pids_with(needle).into_iter().find(|p| ppid(*p) == Some(parent)).expect("palisade under the user's shell")
}

/// Started in the background of an interactive bash, palisade never takes the terminal: the
/// shell inside reading it stops the job ("Stopped (tty input)"), the user's shell keeps the
/// terminal, and `fg` lets the shell inside run and exit with its status. Then, palisade killed
/// by SIGKILL: nothing of the sandbox survives and the user's shell has its terminal.
#[test]
fn in_the_background_palisade_leaves_the_terminal_to_the_foreground_job() {
    let fx = Fixture::new();
    let bash = require_tool("bash");
    require_tool("dash");
    let mut t = Term::start(&fx, &[bash.to_str().unwrap(), "--norc", "--noprofile", "-i"]);
    let shell = t.leader_pid();
    t.send("echo \"up-$((1+1))\"\n");
    t.expect("up-2");
    t.send("\"$PAL\" run --workspace \"$WS\" -- dash -i &\n");
    // `jobs -l` names the signal (`jobs` says only "Stopped").
    let deadline = Instant::now() + Duration::from_secs(20);
    while !t.seen[t.pos..].contains("Stopped") {
        assert!(Instant::now() < deadline, "the background job never stopped: {}", t.seen);
        t.send("jobs -l\n");
        std::thread::sleep(Duration::from_millis(300));
        t.read_more();
    }
    assert!(t.seen.contains("tty input"), "the job did not stop for terminal input: {}", t.seen);
    assert_eq!(t.foreground(), shell, "palisade in the background took the terminal: {}", t.seen);

    t.send("fg\n");
    t.send("echo \"in-$((40+2))\"\n");
    t.expect("in-42");
    assert_ne!(t.foreground(), shell, "after fg the shell inside does not have the terminal: {}", t.seen);
    t.send("exit 3\n");
    t.send("echo \"R$?X\"\n");
    t.expect("R3X");
    assert_eq!(t.foreground(), shell, "the user's shell does not have its terminal: {}", t.seen);

    // Killed: the user's shell takes the terminal back itself, and nothing inside survives.
    let m = sleep_marker();
    t.send(&format!("\"$PAL\" run --workspace \"$WS\" -- dash -c 'sleep {} & exec sleep {m}'\n", m + 1));
    let sleep = m.to_string();
    wait_until(&mut t, "the command never started", |_| {
        !pids_with(&(m + 1).to_string()).is_empty() && pids_with(&sleep).iter().any(|p| starts(*p, "sleep\0"))
    });
    let palisade = child_of(shell, &sleep);
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(palisade, libc::SIGKILL) };
    t.send("echo \"after-$((5+5))\"\n");
    t.expect("after-10");
    assert_eq!(t.foreground(), shell, "the user's shell did not get its terminal back: {}", t.seen);
    for needle in [sleep, (m + 1).to_string()] {
        assert!(survivors(&needle).is_empty(), "a sandboxed process outlived palisade killed by SIGKILL");
    }
}

/// With `--keep-processes` a process may outlive palisade (no pid namespace ends it): it must
/// not be able to make itself the terminal's foreground group afterwards, where it would read
/// what the user types next (a password) and the user's shell would lose its terminal.
#[test]
fn a_process_left_running_cannot_take_the_terminal_afterwards() {
    let fx = Fixture::new();
    let py = require_tool("python3");
    let report = fx.ws.join(format!("leftover-{}.txt", marker()));
    let leftover = format!(
        r#"
import os, signal, sys, time
if os.fork(): sys.exit(0)
os.setpgid(0, 0)
for s in (signal.SIGTTOU, signal.SIGTTIN, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)
time.sleep(1)
try:
    fd = os.open('/dev/tty', os.O_RDWR)
    os.tcsetpgrp(fd, os.getpgrp()); r = 'took'
except OSError as e:
    r = 'refused-%d' % e.errno
open('{}', 'w').write(r)
"#,
        report.display()
    );
    std::fs::write(fx.ws.join("leftover.py"), leftover).unwrap();
    let script = format!(
        "\"$PAL\" run --keep-processes --workspace \"$WS\" -- {} leftover.py; echo \"R$?X\"; exec sleep 60",
        py.display()
    );
    let mut t = Term::start(&fx, &["sh", "-c", &script]);
    let leader = t.leader_pid();
    t.expect("R0X");
    wait_until(&mut t, "the leftover never reported", |_| {
        std::fs::read_to_string(&report).is_ok_and(|r| !r.is_empty())
    });
    let got = std::fs::read_to_string(&report).unwrap();
    assert_eq!(t.foreground(), leader, "ESCAPE: a process left running took the terminal ({got}): {}", t.seen);
    assert_eq!(got, "refused-1", "tcsetpgrp from a leftover was not refused with EPERM");
}
