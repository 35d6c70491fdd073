//! The CLI's side of a command in the elevated mode: checks that setup completed, starts
//! `palisade-runner` as the sandbox account over a fresh named pipe, sends the `Spawn` request
//! and presents the conversation as the library's `Child` (piped, inherited or null standard
//! streams relayed by threads; `signal` → `Terminate`; `kill` ends the runner, whose
//! kill-on-close job ends the command).
//!
//! The runner is started through a [`RunnerLauncher`]: in production `CreateProcessWithLogonW`
//! as `PalisadeOffline`/`PalisadeOnline`/`PalisadeProxied`; for the plumbing tests (Wine stubs
//! that call) a plain `CreateProcessW` as the caller, reachable only through [`TestSeam`], a `#[doc(hidden)]`
//! library entry that takes the runner's path and the setup folder from the test — nothing a
//! sandboxed command could set (no environment variable, no configuration key).
//!
//! Every offline command's request carries an enforcing fence probe: the CLI listens on a
//! loopback port of its own for the runner's probe connect, the runner refuses to start the
//! command unless its connects were blocked, and the CLI checks the runner's report and that
//! its listener accepted nothing. With the test seam the runner runs as the caller, whose
//! connects nothing fences, and is asked for network: its probe is report-only there. A
//! request without network cannot be report-only (the protocol refuses it), so nothing here
//! can turn the refusal off for an offline command.
//!
//! `network = allow` runs as `PalisadeProxied`: the request names the sandbox's proxy port
//! (`network.rs`), the runner's probe must find it reachable and everything else blocked
//! (`fence_probe::proxied_verdict`), and the command's environment points its tools at the
//! proxy with the command's own secret (`network::CommandRoute`). With the test seam it runs like an online command (report
//! only, no proxy port), the proxy variables set.
//!
//! With palisade's stdin, stdout and stderr consoles and all three inherited, the command runs
//! in the runner's pseudo console; palisade's console is relayed to it by `backend/windows/terminal.rs`.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use palisade_windows_elevated::check_report::FenceProbe;
use palisade_windows_elevated::facts::{SandboxUser, GROUP_NAME};
use palisade_windows_elevated::fence_probe;
use palisade_windows_elevated::password::{self, Password};
use palisade_windows_elevated::protocol::{
    data_chunks, Conversation, ErrorKind, FrameReader, Message, ProbeOutcome, ProbeRequest, Sender, SpawnRequest,
    Stream, TtySize,
};
use palisade_windows_elevated::runner_seam::{
    check_pipe_peer, command_ending, describe_runner_exit, pipe_sddl, start_runner, LaunchError, LaunchSpec,
    RunnerLauncher, RunnerProcess, TERMINATE_GRACE_MS,
};
use palisade_windows_elevated::setup_plan::{parse_marker_contents, MARKER_FILE};
use palisade_windows_elevated::{WinPath, SETUP_VERSION};
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::Threading::{
    CreateProcessW, CreateProcessWithLogonW, CREATE_NO_WINDOW, CREATE_UNICODE_ENVIRONMENT, LOGON_WITH_PROFILE,
    PROCESS_INFORMATION, STARTUPINFOW,
};

use palisade_win32::ffi::{self, check, wide};
use palisade_win32::sid::{lookup_existing, plan_sid, Sid};

use super::network::{CommandRoute, SandboxProxy};
use super::pipe::{Connect, Pipe};
use super::{credentials, program_data_dir};
use crate::backend::windows::process;
use crate::backend::windows::terminal;
use crate::error::Error;
use crate::spec::Stdio;
use crate::status::ExitStatus;

mod launch;
mod spawn;

use launch::{LogonLauncher, PlainLauncher};
use spawn::{End, Outbox, Shared};

/// How long the runner may take to connect (a logon with profile can be slow the first time).
const CONNECT_LIMIT: Duration = Duration::from_secs(60);
const SIGKILL: i32 = 9;
const GRACEFUL: &[i32] = &[1, 2, 3, 15, 21];

/// The test-only way in: run the runner at `runner` with a plain `CreateProcessW` as the calling
/// user, and read the setup marker from `program_data` (instead of `%ProgramData%\Palisade`).
/// Nothing is enforced this way; it exists so the pipe, protocol and relays can be tested where
/// `CreateProcessWithLogonW` cannot run (Wine).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct TestSeam {
    pub program_data: PathBuf,
    pub runner: PathBuf,
    /// Stands in for `PalisadeSandboxUsers` in the roots' grants; `None`: a fresh synthetic SID.
    pub group_sid: Option<String>,
}

enum Launcher {
    Logon { password: Password },
    Plain,
}

/// A fence report's outcomes: the outside connects, the loopback ones, the proxy port's.
type FenceOutcomes = (ProbeOutcome, ProbeOutcome, Option<ProbeOutcome>);

/// What every command of an elevated sandbox shares.
pub struct Elevated {
    pub user: SandboxUser,
    runner: PathBuf,
    launcher: Launcher,
    /// Who may open the pipe: the sandbox account (the calling user with the test seam).
    pub(crate) pipe_owner: palisade_windows_elevated::Sid,
    /// Granted each writable root besides its write SID (see `grants::account_desired`).
    pub account_group: palisade_windows_elevated::Sid,
    /// The last spawn's fence report and whether the CLI's listener accepted a connection
    /// (for `palisade check --probe` and the plumbing tests).
    last_fence: Mutex<Option<(FenceOutcomes, bool)>>,
    /// The proxy ports setup opened for `PalisadeProxied` (the marker's).
    pub proxy_ports: Vec<u16>,
    /// `network = allow`: the sandbox's proxy ([`Elevated::set_proxy`]), shared with the
    /// routes of its running commands.
    proxy: Option<Arc<SandboxProxy>>,
}

/// The fence's refusal, naming the policy's network setting.
fn fence_refused(user: SandboxUser, why: String) -> Error {
    let what = if user == SandboxUser::Proxied { "network = allow" } else { "network = off" };
    Error::Unenforceable { what: what.into(), why, fix: fence_probe::FIX.into() }
}

/// Whether the fence probe's loopback listener accepted a connection. Anything but "nothing
/// waiting" counts as one (fail closed).
fn listener_accepted(l: &TcpListener) -> bool {
    !matches!(l.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

fn unenforceable(why: String, fix: &str) -> Error {
    Error::Unenforceable { what: "[windows] mode = \"elevated\"".into(), why, fix: fix.into() }
}

const RUN_SETUP: &str = "run `palisade setup --elevated` (once, as an administrator), or remove `mode = \"elevated\"` from the [windows] section of your config";

/// Refuses unless setup's marker says the current setup version completed; the proxy ports it
/// lists.
fn check_marker(program_data: &Path) -> Result<Vec<u16>, Error> {
    let marker = program_data.join(MARKER_FILE);
    let text = match std::fs::read_to_string(&marker) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(unenforceable(
                format!("the elevated setup has not been completed on this machine ({} is missing)", marker.display()),
                RUN_SETUP,
            ))
        }
        Err(e) => {
            return Err(unenforceable(format!("cannot read the setup marker {}: {e}", marker.display()), RUN_SETUP))
        }
    };
    match parse_marker_contents(&text).map(|m| (m.version, m.proxy_ports)) {
        Some((v, ports)) if v == SETUP_VERSION => Ok(ports),
        Some((v, _)) => Err(unenforceable(
            format!("the elevated setup on this machine is version {v}, this palisade needs version {SETUP_VERSION}"),
            RUN_SETUP,
        )),
        None => {
            Err(unenforceable(format!("the setup marker {} is not one palisade wrote", marker.display()), RUN_SETUP))
        }
    }
}

fn sid_text(s: &Sid) -> Result<palisade_windows_elevated::Sid, Error> {
    plan_sid(s).map_err(|e| Error::InvalidInput(e.to_string()))
}

impl Elevated {
    /// Checks setup and loads the password of `user`, the account for the policy's network
    /// setting (`PalisadeProxied` for `network = allow`, which then needs [`Elevated::set_proxy`]).
    pub fn new(user: SandboxUser, seam: Option<&TestSeam>) -> Result<Elevated, Error> {
        let program_data = match seam {
            Some(s) => s.program_data.clone(),
            None => program_data_dir().map_err(|e| unenforceable(format!("finding %ProgramData%: {e}"), RUN_SETUP))?,
        };
        let proxy_ports = check_marker(&program_data)?;
        if let Some(s) = seam {
            // The runner runs as the caller, the pipe's peer. The roots' second grant goes to a
            // fresh synthetic SID rather than to the caller, whose own access its denies would
            // otherwise cut (temporary workspaces could not be deleted).
            let own = palisade_win32::token::open_own()
                .map_err(|e| Error::Io { context: "reading this process's token".into(), source: e })?;
            let me = sid_text(&own.user)?;
            let group = match &s.group_sid {
                Some(g) => palisade_windows_elevated::Sid::parse(g).map_err(|e| Error::InvalidInput(e.to_string()))?,
                None => {
                    let random = ffi::random16()
                        .map_err(|e| Error::Io { context: "making a test group SID".into(), source: e })?;
                    palisade_windows_plan::sid::Sid::synthetic(
                        palisade_windows_plan::sid::SyntheticKind::WriteRoot,
                        random,
                    )
                }
            };
            return Ok(Elevated {
                user,
                runner: s.runner.clone(),
                launcher: Launcher::Plain,
                pipe_owner: me,
                account_group: group,
                last_fence: Mutex::new(None),
                proxy_ports,
                proxy: None,
            });
        }
        let account = lookup_existing(user.account_name()).map_err(|e| {
            unenforceable(format!("the sandbox account {} is missing: {e}", user.account_name()), RUN_SETUP)
        })?;
        let group = lookup_existing(GROUP_NAME)
            .map_err(|e| unenforceable(format!("the sandbox group {GROUP_NAME} is missing: {e}"), RUN_SETUP))?;
        let password = credentials::load(user).map_err(|e| {
            unenforceable(format!("the password of {} cannot be used: {e}", user.account_name()), RUN_SETUP)
        })?;
        Ok(Elevated {
            user,
            runner: program_data.join("bin").join("palisade-runner.exe"),
            launcher: Launcher::Logon { password },
            pipe_owner: sid_text(&account)?,
            account_group: sid_text(&group)?,
            last_fence: Mutex::new(None),
            proxy_ports,
            proxy: None,
        })
    }

    /// `network = allow`: the proxy every command of this sandbox goes through.
    pub fn set_proxy(&mut self, proxy: SandboxProxy) {
        self.proxy = Some(Arc::new(proxy));
    }

    /// Whether the request says "network": an online command's, and with the test seam (whose
    /// runner runs as the caller, unfenced) a proxied command's too.
    fn request_network(&self) -> bool {
        self.user.network() || (matches!(self.launcher, Launcher::Plain) && self.user == SandboxUser::Proxied)
    }

    /// The fence probe the request carries: enforcing for every offline command, and for every
    /// proxied one with the proxy's port; report-only for the test seam's runner, which runs as
    /// the caller and is asked for network; none for an online command.
    fn probe_for(&self, port: u16) -> Result<Option<ProbeRequest>, Error> {
        let probe = |enforce, proxy_port| Some(ProbeRequest { loopback_port: port, enforce, proxy_port });
        Ok(match (&self.launcher, self.user) {
            (Launcher::Plain, SandboxUser::Online | SandboxUser::Proxied) => probe(false, None),
            (_, SandboxUser::Offline) => probe(true, None),
            (Launcher::Logon { .. }, SandboxUser::Proxied) => match &self.proxy {
                Some(p) => probe(true, Some(p.port())),
                None => return Err(fence_refused(self.user, "the sandbox has no network proxy".into())),
            },
            (Launcher::Logon { .. }, SandboxUser::Online) => None,
        })
    }

    /// The last spawn's probe as `palisade check` reports it.
    pub fn last_fence_probe(&self, failure: Option<String>) -> FenceProbe {
        let seen = *self.last_fence.lock().unwrap_or_else(|e| e.into_inner());
        let accepted = seen.is_some_and(|s| s.1);
        match self.user {
            SandboxUser::Proxied => fence_probe::for_check_proxied(seen.map(|s| s.0), accepted, failure),
            _ => fence_probe::for_check(seen.map(|((o, l, _), _)| (o, l)), accepted, failure),
        }
    }

    /// `palisade check --probe`: runs `cmd.exe /c exit 0` through a runner of this account, whose
    /// fence probe is the point (the command starts only if the probe proved the fence).
    pub fn probe_fence(&self) -> FenceProbe {
        let system = match std::env::var_os("SystemRoot").map(PathBuf::from).filter(|p| p.is_absolute()) {
            Some(root) => root.join("System32"),
            None => return self.last_fence_probe(Some("%SystemRoot% is not set".into())),
        };
        let spec = crate::spec::CommandSpec {
            program: system.join("cmd.exe").into_os_string(),
            args: ["/d", "/c", "exit 0"].map(OsString::from).to_vec(),
            env: vec![("SystemRoot".into(), system.parent().unwrap_or(&system).as_os_str().to_owned())],
            cwd: system.clone(),
            stdin: Stdio::Null,
            stdout: Stdio::Null,
            stderr: Stdio::Null,
            kill_on_parent_death: true,
            job_control: false,
        };
        let failure = match self.spawn(&spec, &system, vec![], false) {
            Ok(mut child) => match child.wait() {
                Ok(_) => None,
                Err(e) => Some(format!("waiting for the probe's command: {e}")),
            },
            Err(e) => Some(e.to_string()),
        };
        self.last_fence_probe(failure)
    }
}

/// A command running under a runner.
pub struct RunnerChild {
    runner: LaunchedRunner,
    pid: u32,
    outbox: Arc<Outbox>,
    outcome: Arc<Shared>,
    /// The signal `kill()` or `signal()` asked for, if any (0: none).
    killed_by: AtomicI32,
    keep_processes: bool,
    /// The console in raw mode while the command runs in a pseudo console; restored when the
    /// command's end is known (or on drop).
    terminal: Option<terminal::Session>,
    /// `network = allow`: the command's way through the proxy, finished when it ended.
    route: Option<CommandRoute>,
    network_records: Vec<crate::status::NetworkRecord>,
    status: Option<ExitStatus>,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

impl RunnerChild {
    /// The command's process id (in the runner's job).
    pub fn id(&self) -> u32 {
        self.pid
    }

    fn end_runner(&self) -> io::Result<()> {
        // The runner's job is kill-on-close: ending the runner ends the command's tree.
        match process::terminate(&self.runner.process, 128 + SIGKILL as u32) {
            // Already gone (it exits right after its last message): nothing to end.
            Err(_) if process::wait(&self.runner.process, Some(0)).unwrap_or(false) => Ok(()),
            r => r,
        }
    }

    pub fn signal(&self, sig: i32) -> io::Result<()> {
        // Nothing left to signal once the runner reported the end.
        if self.status.is_some() || self.outcome.0.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Ok(());
        }
        match sig {
            0 => Ok(()),
            SIGKILL => {
                self.killed_by.store(SIGKILL, Ordering::SeqCst);
                if self.keep_processes {
                    // The runner's job does not end its processes when the runner ends: let the
                    // runner end the job (Terminate) before ending the runner.
                    if self.outbox.send(&Message::Terminate).is_ok() {
                        let (lock, cv) = &*self.outcome;
                        let g = lock.lock().unwrap_or_else(|e| e.into_inner());
                        let limit = Duration::from_millis(TERMINATE_GRACE_MS + 2000);
                        let _ = cv.wait_timeout_while(g, limit, |o| o.is_none());
                    }
                }
                self.end_runner()
            }
            s if GRACEFUL.contains(&s) => {
                self.killed_by.store(s, Ordering::SeqCst);
                // Ctrl+Break to the command, its job ended after a grace period (the runner).
                self.outbox.send(&Message::Terminate).or_else(|_| self.end_runner())
            }
            s => Err(io::Error::new(io::ErrorKind::Unsupported, format!("signal {s} has no Windows equivalent"))),
        }
    }

    pub fn kill(&mut self) -> io::Result<()> {
        self.signal(SIGKILL)
    }

    fn finish(&mut self, end: &End) -> io::Result<ExitStatus> {
        if let Some(t) = &self.terminal {
            t.end();
        }
        let killed = self.killed_by.load(Ordering::SeqCst);
        let ending = match end {
            End::Exit(code) => command_ending(Some(*code), "", killed),
            End::Failed(m) => command_ending(None, m, killed),
        };
        let (code, signal) = ending.map_err(io::Error::other)?;
        let st = ExitStatus { code, signal };
        let _ = self.runner.wait_briefly();
        if let Some(mut route) = self.route.take() {
            self.network_records = route.finish();
        }
        self.status = Some(st);
        Ok(st)
    }

    /// The command's connections through the proxy, once it ended.
    pub fn network_records(&self) -> &[crate::status::NetworkRecord] {
        &self.network_records
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        drop(self.stdin.take());
        let outcome = self.outcome.clone();
        let (lock, cv) = &*outcome;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        while g.is_none() {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        let end = g.take().expect("checked above");
        drop(g);
        self.finish(&end)
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let end = self.outcome.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        match end {
            Some(e) => self.finish(&e).map(Some),
            None => Ok(None),
        }
    }
}

/// A runner process the CLI started.
pub struct LaunchedRunner {
    process: OwnedHandle,
    pid: u32,
}

impl LaunchedRunner {
    /// The runner exits right after its last message; give it a moment (its job's kill-on-close
    /// then ends anything left).
    fn wait_briefly(&mut self) -> io::Result<bool> {
        process::wait(&self.process, Some(5000))
    }
}

impl RunnerProcess for LaunchedRunner {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn kill(&mut self) -> io::Result<()> {
        process::terminate(&self.process, 128 + SIGKILL as u32)
    }
    fn wait(&mut self) -> io::Result<u32> {
        process::wait(&self.process, None)?;
        process::exit_code(&self.process)
    }
}
