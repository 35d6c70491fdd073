//! `palisade-runner`: runs as a sandbox account (started by the CLI with
//! `CreateProcessWithLogonW`), takes one `Spawn` request over the CLI's pipe and starts the
//! command under a write-restricted token in a kill-on-close job object, relaying its standard
//! streams (pipes, or a pseudo console when asked for a terminal) as protocol messages.
//!
//! Before an offline command starts, the runner proves the network fence as its own account
//! (`fence_probe`): a connect to an outside address and one to the CLI's loopback listener must
//! both be blocked, or the command is not started (`Error` of kind `fence-open`).
//!
//! Exit codes (see `runner_seam::runner_exit`): 0 once it reported `Exit` or `Error` over the
//! pipe; 2 bad command line; 3 version mismatch on the command line; 4 pipe unusable.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpStream};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::OwnedHandle;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_windows_elevated::fence_probe::{self, classify, ConnectResult, OUTSIDE_PROBE, OUTSIDE_PROBE_V6};
use palisade_windows_elevated::protocol::{
    data_chunks, Conversation, ErrorKind, FrameReader, Message, ProbeOutcome, Sender, SpawnRequest, Stream,
    MAX_ERROR_MESSAGE,
};
use palisade_windows_elevated::runner_seam::{
    check_account_network, command_default_dacl, command_environment, command_sid, parse_runner_args, restricting_sids,
    runner_exit, temp_folder_name, temp_folder_sddl, TERMINATED_EXIT, TERMINATE_GRACE_MS,
};
use palisade_windows_elevated::runner_seam::{is_temp_folder_name, TEMP_LOCK_NAME};
use palisade_windows_elevated::Sid as PlanSid;
use palisade_windows_elevated::SETUP_VERSION;
use palisade_windows_plan::ace::AceKind;
use windows_sys::Win32::System::Console::{AttachConsole, FreeConsole, GenerateConsoleCtrlEvent, CTRL_BREAK_EVENT};

use palisade::__private::runner::{job, process, program_data_dir, Pipe, PseudoConsole};
use palisade::Error;
use palisade_win32::ffi::{self, check};
use palisade_win32::sid::{account_name, plan_sid, Sid};
use palisade_win32::{acl, token};

const TERMINATE_GRACE: Duration = Duration::from_millis(TERMINATE_GRACE_MS);
/// How long a probe connect that is under way is watched. Only an unblocked connect waits
/// (a WFP block fails the call itself), and under way already means "not blocked"; the wait
/// only lets a loopback connect complete so that the CLI's listener sees it too.
const PROBE_WAIT: Duration = Duration::from_millis(1);

/// A failure reported to the CLI as an `Error` message.
struct Failure {
    kind: ErrorKind,
    message: String,
}

fn fail(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure { kind, message: message.into() }
}

/// `message` as the protocol takes it: one line, at most `MAX_ERROR_MESSAGE` bytes.
fn one_line(message: &str) -> String {
    let mut s: String = message.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
    s = s.replace('\0', " ");
    if s.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    if s.is_empty() {
        s.push('?');
    }
    s
}

/// The runner's side of the pipe: frames are written whole, and nothing after the last one.
struct Outbox {
    pipe: Arc<Pipe>,
    ended: Mutex<bool>,
}

impl Outbox {
    fn send(&self, m: &Message) -> io::Result<()> {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if *ended {
            return Ok(());
        }
        let frame = m.encode().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        self.pipe.write_all(&frame)
    }

    /// Sends the last message (`Exit` or `Error`) unless one was sent, and waits until the CLI
    /// has read it.
    fn finish(&self, m: &Message) {
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if *ended {
            return;
        }
        *ended = true;
        if let Ok(frame) = m.encode() {
            if self.pipe.write_all(&frame).is_ok() {
                let _ = self.pipe.flush();
            }
        }
    }

    /// Whether the last message was sent.
    fn is_ended(&self) -> bool {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, f: Failure) {
        self.finish(&Message::Error { kind: f.kind, message: one_line(&f.message) });
    }
}

/// The runner's entry point; returns its exit code.
pub fn main() -> i32 {
    let args: Result<Vec<String>, OsString> = std::env::args_os().skip(1).map(|a| a.into_string()).collect();
    let Ok(args) = args else {
        let _ = writeln!(io::stderr(), "palisade-runner: an argument is not valid Unicode");
        return runner_exit::USAGE;
    };
    let parsed = match parse_runner_args(&args, SETUP_VERSION) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(io::stderr(), "palisade-runner: {e}");
            return e.exit_code();
        }
    };
    // The token handle the command's token is made from is opened first: once the runner is
    // protected, not even the runner could open it again with these rights.
    let own = token::open_own();
    // Before anything else runs in this process, and before the command exists.
    let hardened = crate::harden::harden_self();
    let pipe = match Pipe::open_client(&parsed.pipe_name) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            let _ = writeln!(io::stderr(), "palisade-runner: cannot open {}: {e}", parsed.pipe_name);
            return runner_exit::PIPE;
        }
    };
    // Leave the console made for the runner at its start (by then it could not protect it, and
    // its host is a process of the account): with no client left, it ends. The command gets a
    // hidden console of its own. From here on everything is reported over the pipe.
    // SAFETY: no memory is involved; failing (no console) changes nothing.
    unsafe { FreeConsole() };
    let out = Arc::new(Outbox { pipe: pipe.clone(), ended: Mutex::new(false) });
    if let Err(e) = hardened {
        out.fail(fail(ErrorKind::Internal, format!("the runner could not protect itself from the command: {e}")));
        return 0;
    }
    let own = match own {
        Ok(t) => t,
        Err(e) => {
            out.fail(fail(ErrorKind::Token, format!("reading the runner's token: {e}")));
            return 0;
        }
    };
    let mut reader = FrameReader::from(Sender::Cli);
    let mut conversation = Conversation::runner();
    let request = match next_message(&pipe, &mut reader, &mut conversation) {
        Ok(Some(Message::Spawn(req))) => req,
        Ok(Some(_)) => {
            // `Conversation::runner` lets nothing but `Spawn` through first; kept total.
            out.fail(fail(ErrorKind::Protocol, "the first message was not spawn"));
            return 0;
        }
        Ok(None) => return runner_exit::PIPE,
        Err(f) => {
            out.fail(f);
            return 0;
        }
    };
    match run(request, &own, pipe, out.clone(), reader, conversation) {
        Ok(code) => out.finish(&Message::Exit { code }),
        Err(f) => out.fail(f),
    }
    0
}

/// The next message from the CLI: `Ok(None)` at the end of the stream, a protocol failure for
/// malformed frames and messages out of order.
fn next_message(pipe: &Pipe, reader: &mut FrameReader, conv: &mut Conversation) -> Result<Option<Message>, Failure> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.next_message() {
            Ok(Some(m)) => {
                conv.receive(&m).map_err(|e| fail(ErrorKind::Protocol, e.to_string()))?;
                return Ok(Some(m));
            }
            Ok(None) => {}
            Err(e) => return Err(fail(ErrorKind::Protocol, e.to_string())),
        }
        let n = pipe.read(&mut buf).map_err(|e| fail(ErrorKind::Internal, format!("reading the pipe: {e}")))?;
        if n == 0 {
            return match reader.finish() {
                Ok(()) => Ok(None),
                Err(e) => Err(fail(ErrorKind::Protocol, e.to_string())),
            };
        }
        reader.push(&buf[..n]);
    }
}

fn error_kind(e: &Error) -> ErrorKind {
    match e {
        Error::NotFound(_) => ErrorKind::NotFound,
        Error::NotExecutable(_) => ErrorKind::NotExecutable,
        Error::InvalidInput(_) => ErrorKind::BadRequest,
        _ => ErrorKind::Spawn,
    }
}

/// Who the command is (`palisade_windows_plan::command_identity`): the runner's account, and a
/// fresh command SID that only this command's token carries.
struct Identity {
    account: PlanSid,
    command: PlanSid,
}

fn identity(own: &token::OwnToken) -> Result<Identity, Failure> {
    let account = plan_sid(&own.user).map_err(|e| fail(ErrorKind::Token, format!("the runner's SID: {e}")))?;
    let random = ffi::random16().map_err(|e| fail(ErrorKind::Internal, format!("random command SID: {e}")))?;
    Ok(Identity { account, command: command_sid(random) })
}

fn win32_sid(s: &PlanSid) -> Result<Sid, Failure> {
    Sid::parse(s.as_str()).map_err(|e| fail(ErrorKind::Token, format!("the SID {s}: {e}")))
}

/// The restricted token for the command: write-restricted to its command SID, Everyone,
/// RESTRICTED, the logon session and the request's capability SIDs (not the account: issue 15);
/// no privileges but SeChangeNotifyPrivilege; a default DACL for the command SID, the account
/// (the runner) and SYSTEM.
fn command_token(req: &SpawnRequest, own: &token::OwnToken, id: &Identity) -> Result<OwnedHandle, Failure> {
    let account = account_name(&own.user)
        .map_err(|e| fail(ErrorKind::Token, format!("looking up the runner's account name: {e}")))?;
    let proxy_port = req.fence_probe.and_then(|p| p.proxy_port);
    check_account_network(&account, req.network, proxy_port).map_err(|m| fail(ErrorKind::BadRequest, m))?;
    let logon = own.logon.as_ref().and_then(|s| plan_sid(s).ok());
    let sids: Vec<Sid> = restricting_sids(&id.command, logon.as_ref(), &req.capability_sids)
        .map_err(|e| fail(ErrorKind::BadRequest, e.to_string()))?
        .iter()
        .map(win32_sid)
        .collect::<Result<_, _>>()?;
    // The command's own objects (its process, threads, pipes), not the runner's closed default
    // DACL, which the restricted token would otherwise inherit.
    let dacl_plan = command_default_dacl(&id.command, &id.account);
    let dacl_sids: Vec<Sid> = dacl_plan.iter().map(|a| win32_sid(&a.trustee)).collect::<Result<_, _>>()?;
    let dacl: Vec<acl::NewAce<'_>> = dacl_plan
        .iter()
        .zip(&dacl_sids)
        .map(|(a, sid)| acl::NewAce { sid, allow: a.kind == AceKind::Allow, mask: a.mask, flags: a.flags })
        .collect();
    let spec = token::TokenSpec { write_restricted: true, restricting: &sids, deny_only: &[], default_dacl: &dacl };
    let tok =
        token::restricted(own, &spec).map_err(|e| fail(ErrorKind::Token, format!("CreateRestrictedToken: {e}")))?;
    // Wine accepts the call but makes no restricted token; real Windows must have made one.
    if ffi::wine_version().is_none() && !token::is_restricted(&tok) {
        return Err(fail(ErrorKind::Token, "Windows made the command's token without its restricting SIDs"));
    }
    Ok(tok)
}

/// The command's private temporary folder in the account's temporary folder, writable through
/// its command SID only (`command_identity::temp_folder_sddl`). Its path is held before the
/// folder is made; it is removed when this value is dropped, only if this runner made it
/// (creating fails if the name exists) and only if no process may outlive the command
/// (`keep_processes` keeps it for them).
struct CommandTemp {
    path: PathBuf,
    made: bool,
    keep: bool,
    /// The folder's lock (`TEMP_LOCK_NAME`), held while the command may run.
    lock: Option<File>,
}

impl CommandTemp {
    fn create(id: &Identity, keep: bool) -> Result<CommandTemp, Failure> {
        let random = ffi::random16().map_err(|e| fail(ErrorKind::Internal, format!("random folder name: {e}")))?;
        let temp_dir = std::env::temp_dir();
        sweep_stale_temp_folders(&temp_dir);
        let mut t = CommandTemp { path: temp_dir.join(temp_folder_name(&random)), made: false, keep, lock: None };
        acl::create_directory(&t.path, &temp_folder_sddl(&id.command, &id.account)).map_err(|e| {
            fail(ErrorKind::Internal, format!("creating the temporary folder {}: {e}", t.path.display()))
        })?;
        t.made = true;
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .share_mode(0)
            .open(t.path.join(TEMP_LOCK_NAME))
            .map_err(|e| {
                fail(ErrorKind::Internal, format!("locking the temporary folder {}: {e}", t.path.display()))
            })?;
        t.lock = Some(lock);
        Ok(t)
    }
}

/// Removes the temporary folders of commands whose runner was killed before it could (their
/// lock opens: nobody holds it). A folder in use (its lock held), without a lock (kept for
/// `keep_processes` leftovers, or being made by another runner) or with another name is left
/// alone; so is one that cannot be removed now (a file still open): the next runner tries again.
fn sweep_stale_temp_folders(temp_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(temp_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink());
        if !is_dir || !name.to_str().is_some_and(is_temp_folder_name) {
            continue;
        }
        let dir = entry.path();
        let unheld = std::fs::OpenOptions::new().read(true).share_mode(0).open(dir.join(TEMP_LOCK_NAME));
        if let Ok(lock) = unheld {
            drop(lock);
            // As after a command: links and junctions inside are removed, not followed.
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

impl Drop for CommandTemp {
    fn drop(&mut self) {
        drop(self.lock.take());
        if !self.made {
            return;
        }
        if self.keep {
            // Kept for the command's leftovers: without its lock, no later sweep removes it.
            let _ = std::fs::remove_file(self.path.join(TEMP_LOCK_NAME));
        } else {
            // `remove_dir_all` does not follow links or junctions inside the folder; the
            // command may not rename or delete the folder itself, so this is the folder made.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `%ProgramData%\Palisade\sandbox.gitconfig` if setup wrote it.
fn sandbox_gitconfig() -> Option<String> {
    let p = program_data_dir().ok()?.join("sandbox.gitconfig");
    p.is_file().then(|| p.to_string_lossy().into_owned())
}

/// Sends Ctrl+Break to the command's process group in the command's own console, which the
/// runner joins for the moment (it has none of its own).
fn ctrl_break_in_its_console(pid: u32) -> io::Result<()> {
    // SAFETY: no memory is involved; the runner leaves the console again below.
    check(unsafe { AttachConsole(pid) })?;
    // SAFETY: as above; a group-targeted Ctrl+Break does not reach the runner (another group).
    let sent = check(unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid) });
    // SAFETY: as above.
    unsafe { FreeConsole() };
    sent
}

/// One non-blocking TCP connect as the runner's account, classified.
fn probe_connect(addr: SocketAddr) -> ProbeOutcome {
    let result = match TcpStream::connect_timeout(&addr, PROBE_WAIT) {
        // Closed at once: the probe only needs to know that it got through.
        Ok(_) => ConnectResult::Connected,
        Err(e) => match e.raw_os_error() {
            Some(code) => ConnectResult::Error(code),
            // The standard library's own "timed out": still under way when the wait ended.
            None if e.kind() == io::ErrorKind::TimedOut => ConnectResult::Pending,
            None => ConnectResult::Error(0),
        },
    };
    classify(result)
}

/// The fence probe (see `palisade_windows_elevated::fence_probe`): the outside address, then the
/// CLI's loopback listener, each over IPv4 and IPv6 (on `::1` nothing listens: a connect that
/// is not blocked is refused by the stack, which counts as getting through), each pair as one
/// outcome (`fence_probe::combine`).
fn probe_fence(loopback_port: u16, proxy_port: Option<u16>) -> (ProbeOutcome, ProbeOutcome, Option<ProbeOutcome>) {
    let (ip, port) = OUTSIDE_PROBE;
    let (ip6, port6) = OUTSIDE_PROBE_V6;
    let outside = fence_probe::combine(
        probe_connect(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        probe_connect(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip6), port6, 0, 0))),
    );
    let loopback = fence_probe::combine(
        probe_connect(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, loopback_port))),
        probe_connect(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, loopback_port, 0, 0))),
    );
    // network = allow: the proxy's port must be reachable (the connect is dropped at once; the
    // proxy records a client that sent nothing).
    let proxy = proxy_port.map(|p| probe_connect(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, p))));
    (outside, loopback, proxy)
}

/// Copies what `from` yields to the CLI as `Output` messages of `stream` until it ends.
fn relay_output(mut from: File, stream: Stream, out: Arc<Outbox>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                for m in data_chunks(Some(stream), &buf[..n]) {
                    if out.send(&m).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Starts the command and relays until it ends; its exit code.
fn run(
    req: SpawnRequest,
    own: &token::OwnToken,
    pipe: Arc<Pipe>,
    out: Arc<Outbox>,
    mut reader: FrameReader,
    mut conversation: Conversation,
) -> Result<u32, Failure> {
    if req.version != SETUP_VERSION {
        return Err(fail(
            ErrorKind::VersionMismatch,
            format!("this runner belongs to setup version {SETUP_VERSION}, the request to {}; run `palisade setup --elevated` again", req.version),
        ));
    }
    if req.private_desktop {
        return Err(fail(ErrorKind::BadRequest, "a private desktop is not supported by this runner yet"));
    }
    // Checks the account against the request's network setting first.
    let id = identity(own)?;
    let token = command_token(&req, own, &id)?;
    if let Some(probe) = req.fence_probe {
        let (outside, loopback, proxy) = probe_fence(probe.loopback_port, probe.proxy_port);
        out.send(&Message::FenceReport { outside, loopback, proxy })
            .map_err(|e| fail(ErrorKind::Internal, format!("sending the fence report: {e}")))?;
        // With network = false the protocol only lets an enforcing probe through.
        if probe.enforce || !req.network {
            match probe.proxy_port {
                None => fence_probe::verdict(outside, loopback, false)
                    .map_err(|why| fail(ErrorKind::FenceOpen, fence_probe::refusal(&why)))?,
                Some(_) => fence_probe::proxied_verdict(outside, loopback, proxy, false)
                    .map_err(|why| fail(ErrorKind::FenceOpen, fence_probe::proxied_refusal(&why)))?,
            }
        }
    }
    let temp = CommandTemp::create(&id, req.keep_processes)?;
    let gitconfig = sandbox_gitconfig();
    let env: Vec<(OsString, OsString)> =
        command_environment(&req.env, &temp.path.to_string_lossy(), gitconfig.as_deref())
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
    let cwd = PathBuf::from(&req.cwd);
    let launch =
        process::resolve_program(req.program.as_ref(), &env, &cwd).map_err(|e| fail(error_kind(&e), e.to_string()))?;
    let args: Vec<OsString> = req.args.iter().map(OsString::from).collect();
    let command = process::command_line(&launch, &args).map_err(|e| fail(error_kind(&e), e.to_string()))?;
    let env_block = process::environment_block(&env).map_err(|e| fail(ErrorKind::BadRequest, e.to_string()))?;
    let job = Arc::new(
        job::Job::new(&job::JobSpec { kill_on_close: !req.keep_processes, ui_limits: job::UI_LIMITS })
            .map_err(|e| fail(ErrorKind::Job, format!("creating the job object: {e}")))?,
    );

    // Standard streams: a pseudo console, or one pipe each.
    let mut console = None;
    let mut outputs: Vec<(File, Stream)> = Vec::new();
    let (stdio, stdin_writer) = match req.tty {
        Some(size) => {
            let (pc, input, output) =
                PseudoConsole::new(size).map_err(|e| fail(ErrorKind::PseudoConsole, e.to_string()))?;
            console = Some(pc);
            outputs.push((output, Stream::Stdout));
            (None, Some(input))
        }
        None => {
            let set = process::stdio([palisade::Stdio::Piped, palisade::Stdio::Piped, palisade::Stdio::Piped])
                .map_err(|e| fail(ErrorKind::Spawn, format!("creating the command's pipes: {e}")))?;
            let [i, o, e] = set.parent;
            outputs.extend(o.map(|f| (f, Stream::Stdout)));
            outputs.extend(e.map(|f| (f, Stream::Stderr)));
            (Some(set.child), i)
        }
    };
    let no_handles: [Option<OwnedHandle>; 3] = [None, None, None];
    let spawned = process::create_suspended(process::CreateSpec {
        token: &token,
        command,
        env_block: &env_block,
        cwd: &cwd,
        stdio: stdio.as_ref().unwrap_or(&no_handles),
        new_process_group: true,
        pseudo_console: console.as_ref().map(PseudoConsole::handle),
        // The runner left its console (see `main`).
        own_hidden_console: true,
    })
    .map_err(|e| {
        let err = process::spawn_error(e, &launch, &cwd);
        fail(error_kind(&err), err.to_string())
    })?;
    drop(stdio);
    if let Err(e) = job.assign(&spawned.process) {
        let _ = process::terminate(&spawned.process, 1);
        return Err(fail(ErrorKind::Job, format!("putting the command in its job object: {e}")));
    }
    if let Err(e) = process::resume(&spawned.thread) {
        let _ = job.terminate(1);
        return Err(fail(ErrorKind::Spawn, format!("starting the command: {e}")));
    }
    drop(spawned.thread);
    let pid = spawned.pid;
    if out.send(&Message::Started { pid }).is_err() {
        let _ = job.terminate(1);
        return Err(fail(ErrorKind::Internal, "the pipe broke before the command started"));
    }

    // Output relays; `done_rx` hears when each ends.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let relays = outputs.len();
    for (file, stream) in outputs {
        let out = out.clone();
        let done = done_tx.clone();
        std::thread::spawn(move || {
            relay_output(file, stream, out);
            let _ = done.send(());
        });
    }
    drop(done_tx);

    // Stdin: written by its own thread, so a command that does not read its input never
    // holds up the messages behind it (Resize, Terminate).
    let (stdin_tx, stdin_rx) = mpsc::channel::<Option<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut w = stdin_writer;
        for chunk in stdin_rx {
            match (chunk, w.as_mut()) {
                (Some(data), Some(f)) => {
                    if f.write_all(&data).is_err() {
                        w = None;
                    }
                }
                (None, _) => w = None,
                (Some(_), None) => {}
            }
        }
    });

    // Requests from the CLI while the command runs.
    let console = Arc::new(Mutex::new(console));
    {
        let (job, out, console) = (job.clone(), out.clone(), console.clone());
        std::thread::spawn(move || loop {
            match next_message(&pipe, &mut reader, &mut conversation) {
                Ok(Some(Message::StdinData(d))) => {
                    let _ = stdin_tx.send(Some(d));
                }
                Ok(Some(Message::StdinClose)) => {
                    let _ = stdin_tx.send(None);
                }
                Ok(Some(Message::Resize(size))) => {
                    if let Some(pc) = console.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                        pc.resize(size);
                    }
                }
                Ok(Some(Message::Terminate)) => {
                    // Ctrl+Break to the command's process group first (Ctrl+C typed into a
                    // pseudo console, which the command reads as its input); the job after a
                    // grace period.
                    if console.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                        let _ = stdin_tx.send(Some(vec![0x03]));
                    } else {
                        let _ = ctrl_break_in_its_console(pid);
                    }
                    let job = job.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(TERMINATE_GRACE);
                        let _ = job.terminate(TERMINATED_EXIT);
                    });
                }
                Ok(Some(_)) => {}
                // The CLI closed its end after reading the last message: the main thread ends
                // the runner; nothing to stop (keep_processes' processes stay).
                Ok(None) if out.is_ended() => return,
                // The CLI is gone: nobody to report to, and nothing may outlive it unwatched.
                Ok(None) => {
                    let _ = job.terminate(1);
                    std::process::exit(runner_exit::PIPE);
                }
                Err(f) => {
                    let _ = job.terminate(1);
                    out.fail(f);
                    std::process::exit(0);
                }
            }
        });
    }

    process::wait(&spawned.process, None)
        .map_err(|e| fail(ErrorKind::Internal, format!("waiting for the command: {e}")))?;
    let code = process::exit_code(&spawned.process)
        .map_err(|e| fail(ErrorKind::Internal, format!("reading the command's exit code: {e}")))?;
    if !req.keep_processes {
        // What the command left behind ends with it, which also closes its output pipes.
        job.terminate_and_drain(1, Duration::from_secs(5));
    }
    // The pseudo console's output ends only when it is closed.
    drop(console.lock().unwrap_or_else(|e| e.into_inner()).take());
    // Let the relays pass on what is left; processes kept alive may hold the pipes open.
    let limit = if req.keep_processes { Duration::from_millis(500) } else { Duration::from_secs(5) };
    for _ in 0..relays {
        if done_rx.recv_timeout(limit).is_err() {
            break;
        }
    }
    // The temporary folder goes with `temp` (kept with keep_processes).
    drop(temp);
    Ok(code)
}
