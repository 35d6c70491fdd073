//! The CLI's side of a command in the elevated mode: checks that setup completed, starts
//! `palisade-runner` as the sandbox account over a fresh named pipe, sends the `Spawn` request
//! and presents the conversation as the library's `Child` (piped, inherited or null standard
//! streams relayed by threads; `signal` → `Terminate`; `kill` ends the runner, whose
//! kill-on-close job ends the command).
//!
//! The runner is started through a [`RunnerLauncher`]: in production `CreateProcessWithLogonW`
//! as `PalisadeOffline`/`PalisadeOnline`; for the plumbing tests (Wine stubs that call) a plain
//! `CreateProcessW` as the caller, reachable only through [`TestSeam`], a `#[doc(hidden)]`
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
//! With palisade's stdin, stdout and stderr consoles and all three inherited, the command runs
//! in a pseudo console (`terminal.rs`).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use palisade_windows_elevated::facts::{SandboxUser, GROUP_NAME};
use palisade_windows_elevated::password::{self, Password};
use palisade_windows_elevated::check_report::FenceProbe;
use palisade_windows_elevated::fence_probe;
use palisade_windows_elevated::protocol::{
    data_chunks, Conversation, ErrorKind, FrameReader, Message, ProbeOutcome, ProbeRequest, Sender, SpawnRequest, Stream,
};
use palisade_windows_elevated::runner_seam::{
    check_pipe_peer, command_ending, describe_runner_exit, pipe_sddl, start_runner, LaunchError, LaunchSpec,
    RunnerLauncher, RunnerProcess, TERMINATE_GRACE_MS,
};
use palisade_windows_elevated::setup_plan::{parse_marker, MARKER_FILE};
use palisade_windows_elevated::{WinPath, SETUP_VERSION};
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::Threading::{
    CreateProcessW, CreateProcessWithLogonW, CREATE_NO_WINDOW, CREATE_UNICODE_ENVIRONMENT, LOGON_WITH_PROFILE,
    PROCESS_INFORMATION, STARTUPINFOW,
};

use palisade_win32::ffi::{self, check, wide};
use palisade_win32::sid::{lookup_existing, plan_sid, Sid};

use super::pipe::{Connect, Pipe};
use super::terminal;
use super::{credentials, program_data_dir};
use crate::backend::windows::process;
use crate::error::Error;
use crate::spec::Stdio;
use crate::status::ExitStatus;

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
    last_fence: Mutex<Option<((ProbeOutcome, ProbeOutcome), bool)>>,
}

fn fence_refused(why: String) -> Error {
    Error::Unenforceable { what: "network = off".into(), why, fix: fence_probe::FIX.into() }
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

/// Refuses unless setup's marker says the current setup version completed.
fn check_marker(program_data: &Path) -> Result<(), Error> {
    let marker = program_data.join(MARKER_FILE);
    let text = match std::fs::read_to_string(&marker) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(unenforceable(format!("the elevated setup has not been completed on this machine ({} is missing)", marker.display()), RUN_SETUP))
        }
        Err(e) => return Err(unenforceable(format!("cannot read the setup marker {}: {e}", marker.display()), RUN_SETUP)),
    };
    match parse_marker(&text) {
        Some(v) if v == SETUP_VERSION => Ok(()),
        Some(v) => Err(unenforceable(
            format!("the elevated setup on this machine is version {v}, this palisade needs version {SETUP_VERSION}"),
            RUN_SETUP,
        )),
        None => Err(unenforceable(format!("the setup marker {} is not one palisade wrote", marker.display()), RUN_SETUP)),
    }
}

fn sid_text(s: &Sid) -> Result<palisade_windows_elevated::Sid, Error> {
    plan_sid(s).map_err(|e| Error::InvalidInput(e.to_string()))
}

impl Elevated {
    /// Checks setup, picks the account for the policy's network setting and loads its password.
    pub fn new(network: bool, seam: Option<&TestSeam>) -> Result<Elevated, Error> {
        let user = SandboxUser::for_network(network);
        let program_data = match seam {
            Some(s) => s.program_data.clone(),
            None => program_data_dir().map_err(|e| unenforceable(format!("finding %ProgramData%: {e}"), RUN_SETUP))?,
        };
        check_marker(&program_data)?;
        if let Some(s) = seam {
            // The runner runs as the caller, the pipe's peer. The roots' second grant goes to a
            // fresh synthetic SID rather than to the caller, whose own access its denies would
            // otherwise cut (temporary workspaces could not be deleted).
            let own = palisade_win32::token::open_own().map_err(|e| Error::Io { context: "reading this process's token".into(), source: e })?;
            let me = sid_text(&own.user)?;
            let group = match &s.group_sid {
                Some(g) => palisade_windows_elevated::Sid::parse(g).map_err(|e| Error::InvalidInput(e.to_string()))?,
                None => {
                    let random = ffi::random16().map_err(|e| Error::Io { context: "making a test group SID".into(), source: e })?;
                    palisade_windows_plan::sid::Sid::synthetic(palisade_windows_plan::sid::SyntheticKind::WriteRoot, random)
                }
            };
            return Ok(Elevated {
                user,
                runner: s.runner.clone(),
                launcher: Launcher::Plain,
                pipe_owner: me,
                account_group: group,
                last_fence: Mutex::new(None),
            });
        }
        let account = lookup_existing(user.account_name())
            .map_err(|e| unenforceable(format!("the sandbox account {} is missing: {e}", user.account_name()), RUN_SETUP))?;
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
        })
    }

    /// The fence probe the request carries: enforcing for every offline command; report-only
    /// for the test seam's runner, which runs as the caller and is asked for network; none for
    /// an online command.
    fn probe_for(&self, port: u16) -> Option<ProbeRequest> {
        match (&self.launcher, self.user.network()) {
            (_, false) => Some(ProbeRequest { loopback_port: port, enforce: true }),
            (Launcher::Plain, true) => Some(ProbeRequest { loopback_port: port, enforce: false }),
            (Launcher::Logon { .. }, true) => None,
        }
    }

    /// The last spawn's probe as `palisade check` reports it.
    pub fn last_fence_probe(&self, failure: Option<String>) -> FenceProbe {
        let seen = *self.last_fence.lock().unwrap_or_else(|e| e.into_inner());
        fence_probe::for_check(seen.map(|s| s.0), seen.is_some_and(|s| s.1), failure)
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

    /// Starts the command through a new runner.
    pub fn spawn(&self, spec: &crate::spec::CommandSpec, cwd: &Path, capability_sids: Vec<palisade_windows_elevated::Sid>, keep_processes: bool) -> Result<RunnerChild, Error> {
        let text = |what: &str, s: &std::ffi::OsStr| -> Result<String, Error> {
            s.to_str().map(str::to_string).ok_or_else(|| Error::InvalidInput(format!("{what} {s:?} is not valid Unicode")))
        };
        let mut env = Vec::new();
        for (k, v) in &spec.env {
            env.push((text("environment variable", k)?, text("the value of", v)?));
        }
        // The fence probe's loopback listener: a port nothing else uses, not a proxy port.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| Error::Io { context: "listening for the network fence probe".into(), source: e })?;
        let port = listener.local_addr().map_err(|e| Error::Io { context: "the fence probe's listener".into(), source: e })?.port();
        let probe = self.probe_for(port);
        *self.last_fence.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let console = terminal::console_for([spec.stdin, spec.stdout, spec.stderr]);
        let request = SpawnRequest {
            version: SETUP_VERSION,
            program: text("program", &spec.program)?,
            args: spec.args.iter().map(|a| text("argument", a)).collect::<Result<_, _>>()?,
            env,
            cwd: text("working directory", cwd.as_os_str())?,
            tty: console.as_ref().map(terminal::Console::size),
            network: self.user.network(),
            keep_processes,
            private_desktop: false,
            capability_sids,
            fence_probe: probe,
        };
        let first = Message::Spawn(request).encode().map_err(|e| Error::InvalidInput(e.to_string()))?;

        let random = ffi::random16().map_err(|e| Error::Io { context: "naming the runner's pipe".into(), source: e })?;
        let runner_path = WinPath::parse(&self.runner.to_string_lossy())
            .map_err(|e| Error::InvalidInput(format!("the runner's path {}: {e}", self.runner.display())))?;
        // The pipe exists before the runner starts, so nobody else can take its name.
        let pipe_name = palisade_windows_elevated::runner_seam::pipe_name(&random);
        let pipe = Pipe::create_server(&pipe_name, &pipe_sddl(&self.pipe_owner)).map_err(|e| Error::Setup {
            step: "create the runner's pipe",
            detail: format!(" {pipe_name}"),
            source: e,
        })?;
        let (_, mut runner) = match &self.launcher {
            Launcher::Logon { password } => {
                start_runner(&mut LogonLauncher, &runner_path, self.user.network(), password, &random, SETUP_VERSION)
            }
            Launcher::Plain => {
                // The plain launcher takes no password; `start_runner` wants one all the same.
                let mut noise = vec![0u8; password::RANDOM_BYTES];
                ffi::random_bytes(&mut noise).map_err(|e| Error::Io { context: "generating a placeholder password".into(), source: e })?;
                let unused = password::generate(&noise, "").map_err(|e| Error::InvalidInput(e.to_string()))?;
                start_runner(&mut PlainLauncher, &runner_path, self.user.network(), &unused, &random, SETUP_VERSION)
            }
        }
        .map_err(|e| Error::Unenforceable {
            what: "[windows] mode = \"elevated\"".into(),
            why: e.to_string(),
            fix: "see `palisade check`".into(),
        })?;
        let started = |step: &'static str, e: io::Error| Error::Setup { step, detail: String::new(), source: e };
        match pipe.wait_for_client(&runner.process, CONNECT_LIMIT) {
            Ok(Connect::Connected) => {}
            Ok(Connect::ProcessEnded) => {
                let code = process::exit_code(&runner.process).unwrap_or(u32::MAX);
                return Err(Error::Io { context: "starting palisade-runner".into(), source: io::Error::other(describe_runner_exit(code)) });
            }
            Ok(Connect::TimedOut) => {
                let _ = runner.kill();
                return Err(started("connect to palisade-runner", io::Error::new(io::ErrorKind::TimedOut, format!("it did not connect within {} s", CONNECT_LIMIT.as_secs()))));
            }
            Err(e) => {
                let _ = runner.kill();
                return Err(started("connect to palisade-runner", e));
            }
        }
        let peer = pipe.client_pid().map_err(|e| started("identify the runner's pipe client", e))?;
        if let Err(e) = check_pipe_peer(runner.pid, peer) {
            let _ = runner.kill();
            return Err(Error::Io { context: "connecting to palisade-runner".into(), source: io::Error::other(e.to_string()) });
        }
        pipe.write_all(&first).map_err(|e| started("send the command to palisade-runner", e))?;

        // Until `Started` (or the error that replaces it).
        let pipe = Arc::new(pipe);
        let mut reader = FrameReader::from(Sender::Runner);
        let mut conversation = Conversation::cli();
        let record_fence = |report: (ProbeOutcome, ProbeOutcome)| {
            let accepted = listener_accepted(&listener);
            *self.last_fence.lock().unwrap_or_else(|e| e.into_inner()) = Some((report, accepted));
            accepted
        };
        let mut fence_report = None;
        let pid = match receive_after_fence_report(&pipe, &mut reader, &mut conversation, &mut fence_report) {
            Ok(Some(Message::Started { pid })) => pid,
            Ok(Some(Message::Error { kind, message })) => {
                let _ = runner.wait_briefly();
                if let Some(r) = fence_report {
                    record_fence(r);
                }
                return Err(match (kind, kind.exit_status()) {
                    (ErrorKind::FenceOpen, _) => fence_refused(message),
                    (_, 127) => Error::NotFound(message),
                    (_, 126) => Error::NotExecutable(message),
                    _ => Error::Io { context: format!("palisade-runner ({})", kind.name()), source: io::Error::other(message) },
                });
            }
            Ok(_) => {
                let _ = runner.kill();
                let code = process::exit_code(&runner.process).unwrap_or(u32::MAX);
                return Err(Error::Io { context: "starting the command through palisade-runner".into(), source: io::Error::other(describe_runner_exit(code)) });
            }
            Err(e) => {
                let _ = runner.kill();
                return Err(Error::Io { context: "talking to palisade-runner".into(), source: e });
            }
        };

        // The runner started the command: its report must have come first, and, for an
        // enforcing probe, have proved the fence (the runner checked that too) with nothing
        // arriving at the listener.
        if let Some(p) = probe {
            let checked = match fence_report {
                None => Err("palisade-runner started the command without reporting its fence probe".to_string()),
                Some(r) => {
                    let accepted = record_fence(r);
                    fence_probe::verdict(r.0, r.1, accepted).map_err(|why| fence_probe::refusal(&why))
                }
            };
            if let (true, Err(why)) = (p.enforce, checked) {
                // Ending the runner ends the command through its kill-on-close job; with
                // keep_processes the job is not kill-on-close, so the runner ends it first.
                if keep_processes {
                    if let Ok(frame) = Message::Terminate.encode() {
                        let _ = pipe.write_all(&frame);
                        let _ = runner.wait_briefly();
                    }
                }
                let _ = runner.kill();
                return Err(fence_refused(why));
            }
        }

        let outbox = Arc::new(Outbox { pipe: pipe.clone(), lock: Mutex::new(()) });
        let sides = stdin_side(spec.stdin).map_err(|e| started("set up the command's stdin", e)).and_then(|i| {
            let o = output_side(spec.stdout, Stream::Stdout).map_err(|e| started("set up the command's stdout", e))?;
            let e = output_side(spec.stderr, Stream::Stderr).map_err(|e| started("set up the command's stderr", e))?;
            Ok((i, o, e))
        });
        let ((stdin, stdin_source), (stdout, out_sink), (stderr, err_sink)) = match sides {
            Ok(s) => s,
            Err(e) => {
                // The command runs already: end it with its runner.
                let _ = runner.kill();
                return Err(e);
            }
        };
        let terminal = match console {
            Some(c) => {
                let out = outbox.clone();
                match terminal::Session::start(c, Arc::new(move |m: &Message| out.send(m))) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        let _ = runner.kill();
                        return Err(started("put the console in raw mode for the command's terminal", e));
                    }
                }
            }
            None => {
                relay_stdin(stdin_source, outbox.clone());
                None
            }
        };
        let outcome: Arc<Shared> = Arc::new((Mutex::new(None), Condvar::new()));
        {
            let outcome = outcome.clone();
            std::thread::spawn(move || {
                let end = relay_output(&pipe, reader, conversation, out_sink, err_sink);
                let (lock, cv) = &*outcome;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
                cv.notify_all();
            });
        }
        Ok(RunnerChild {
            runner,
            pid,
            outbox,
            outcome,
            killed_by: AtomicI32::new(0),
            keep_processes,
            terminal,
            status: None,
            stdin,
            stdout,
            stderr,
        })
    }
}

/// Like [`receive`], but keeps a `FenceReport` in `report` and returns what follows it.
fn receive_after_fence_report(
    pipe: &Pipe,
    reader: &mut FrameReader,
    conv: &mut Conversation,
    report: &mut Option<(ProbeOutcome, ProbeOutcome)>,
) -> io::Result<Option<Message>> {
    loop {
        match receive(pipe, reader, conv)? {
            Some(Message::FenceReport { outside, loopback }) => *report = Some((outside, loopback)),
            other => return Ok(other),
        }
    }
}

/// Reads the next message: `Ok(None)` at the end of the stream.
fn receive(pipe: &Pipe, reader: &mut FrameReader, conv: &mut Conversation) -> io::Result<Option<Message>> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        if let Some(m) = reader.next_message().map_err(|e| bad(e.to_string()))? {
            conv.receive(&m).map_err(|e| bad(e.to_string()))?;
            return Ok(Some(m));
        }
        let n = pipe.read(&mut buf)?;
        if n == 0 {
            reader.finish().map_err(|e| bad(e.to_string()))?;
            return Ok(None);
        }
        reader.push(&buf[..n]);
    }
}

/// How the conversation ended.
enum End {
    Exit(u32),
    Failed(String),
}

type Shared = (Mutex<Option<End>>, Condvar);

/// Whole frames to the runner, from any thread.
struct Outbox {
    pipe: Arc<Pipe>,
    lock: Mutex<()>,
}

impl Outbox {
    fn send(&self, m: &Message) -> io::Result<()> {
        let frame = m.encode().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.pipe.write_all(&frame)
    }
}

/// Where one of the command's output streams goes.
enum Sink {
    Pipe(File),
    Inherit(Stream),
    Null,
}

impl Sink {
    fn write(&mut self, data: &[u8]) {
        let _ = match self {
            Sink::Pipe(f) => f.write_all(data),
            Sink::Inherit(Stream::Stdout) => {
                let mut o = io::stdout().lock();
                o.write_all(data).and_then(|_| o.flush())
            }
            Sink::Inherit(Stream::Stderr) => io::stderr().lock().write_all(data),
            Sink::Null => Ok(()),
        };
    }
}

fn anonymous_pipe() -> io::Result<(File, File)> {
    let (mut r, mut w): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: both handles are written on success; neither is inheritable.
    check(unsafe { CreatePipe(&mut r, &mut w, std::ptr::null(), 0) })?;
    // SAFETY: fresh handles owned by nobody else.
    Ok(unsafe { (File::from_raw_handle(r as _), File::from_raw_handle(w as _)) })
}

fn output_side(s: Stdio, stream: Stream) -> io::Result<(Option<File>, Sink)> {
    Ok(match s {
        Stdio::Piped => {
            let (r, w) = anonymous_pipe()?;
            (Some(r), Sink::Pipe(w))
        }
        Stdio::Inherit => (None, Sink::Inherit(stream)),
        Stdio::Null => (None, Sink::Null),
    })
}

/// Where the command's stdin comes from.
enum Source {
    Pipe(File),
    Inherit,
    Null,
}

fn stdin_side(s: Stdio) -> io::Result<(Option<File>, Source)> {
    Ok(match s {
        Stdio::Piped => {
            let (r, w) = anonymous_pipe()?;
            (Some(w), Source::Pipe(r))
        }
        Stdio::Inherit => (None, Source::Inherit),
        Stdio::Null => (None, Source::Null),
    })
}

/// Relays stdin as `StdinData` and, at its end, `StdinClose`.
fn relay_stdin(source: Source, out: Arc<Outbox>) {
    let mut from: Box<dyn Read + Send> = match source {
        Source::Null => {
            let _ = out.send(&Message::StdinClose);
            return;
        }
        Source::Pipe(f) => Box::new(f),
        Source::Inherit => Box::new(io::stdin()),
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if data_chunks(None, &buf[..n]).iter().any(|m| out.send(m).is_err()) {
                        return;
                    }
                }
            }
        }
        let _ = out.send(&Message::StdinClose);
    });
}

/// Passes the runner's messages on until the last one; the sinks close when it returns.
fn relay_output(pipe: &Pipe, mut reader: FrameReader, mut conv: Conversation, mut out: Sink, mut err: Sink) -> End {
    loop {
        match receive(pipe, &mut reader, &mut conv) {
            Ok(Some(Message::Output { stream: Stream::Stdout, data })) => out.write(&data),
            Ok(Some(Message::Output { stream: Stream::Stderr, data })) => err.write(&data),
            Ok(Some(Message::Exit { code })) => return End::Exit(code),
            Ok(Some(Message::Error { kind, message })) => {
                return End::Failed(format!("palisade-runner ({}): {message}", kind.name()))
            }
            Ok(Some(_)) => {}
            Ok(None) => return End::Failed("palisade-runner ended without reporting how the command ended".into()),
            Err(e) => return End::Failed(format!("palisade-runner: {e}")),
        }
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
        self.status = Some(st);
        Ok(st)
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

fn launched(pi: PROCESS_INFORMATION) -> LaunchedRunner {
    // SAFETY: fresh handles from a successful process creation, owned by nobody else.
    let (process, thread) = unsafe {
        (OwnedHandle::from_raw_handle(pi.hProcess as _), OwnedHandle::from_raw_handle(pi.hThread as _))
    };
    drop(thread);
    LaunchedRunner { process, pid: pi.dwProcessId }
}

/// The runner's command line and its folder (its working directory: the account may read it).
fn runner_call(spec: &LaunchSpec) -> Result<(Vec<u16>, Vec<u16>, Vec<u16>), LaunchError> {
    let path = PathBuf::from(spec.runner.as_str());
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("C:\\"));
    let as_wide = |s: &std::ffi::OsStr| wide(s).map_err(|e| LaunchError::Other(e.to_string()));
    let line = as_wide(OsString::from(spec.command_line()).as_os_str())?;
    Ok((as_wide(path.as_os_str())?, line, as_wide(dir.as_os_str())?))
}

/// `CreateProcessWithLogonW` as the sandbox account, with its profile loaded.
struct LogonLauncher;

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
struct PlainLauncher;

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
