//! The seam where the CLI starts `palisade-runner` as a sandbox account.
//!
//! The real launcher calls `CreateProcessWithLogonW(account, ".", password, LOGON_WITH_PROFILE,
//! runner, command line, CREATE_NO_WINDOW | CREATE_UNICODE_ENVIRONMENT, ...)`; tests (and Wine,
//! where that call is a stub) replace it with a plain process start. Everything around the call
//! — the pipe's name and DACL, the command line, the check that the pipe's client is the process
//! started, the mapping of logon failures to advice — is here and tested.
//!
//! The CLI creates the pipe (server) before starting the runner: `FILE_FLAG_FIRST_PIPE_INSTANCE`
//! (fails if someone squats the name), one instance, `PIPE_REJECT_REMOTE_CLIENTS`, and the DACL
//! from [`pipe_sddl`]. The runner connects as the client; the CLI then compares
//! `GetNamedPipeClientProcessId` with the process id `CreateProcessWithLogonW` returned
//! ([`check_pipe_peer`]) before it sends anything. The sandboxed command runs as the same
//! account, but by then the only instance is taken and the peer check has passed.

use crate::facts::SandboxUser;
use crate::password::Password;
use crate::protocol::PROTOCOL_VERSION;
use crate::sid::Sid;
use crate::winpath::WinPath;

/// What to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchSpec {
    pub user: SandboxUser,
    pub runner: WinPath,
    pub pipe_name: String,
    pub setup_version: u32,
}

impl LaunchSpec {
    /// The runner's command line. It holds nothing secret: other processes can read it.
    pub fn command_line(&self) -> String {
        format!(
            "\"{}\" --pipe {} --protocol {} --setup-version {}",
            self.runner, self.pipe_name, PROTOCOL_VERSION, self.setup_version
        )
    }
}

/// A started runner.
pub trait RunnerProcess {
    fn pid(&self) -> u32;
    /// Ends the runner (and, through its kill-on-close job, the command).
    fn kill(&mut self) -> std::io::Result<()>;
    fn wait(&mut self) -> std::io::Result<u32>;
}

/// Starts the runner as a sandbox account.
pub trait RunnerLauncher {
    type Process: RunnerProcess;
    fn launch(&mut self, spec: &LaunchSpec, password: &Password) -> Result<Self::Process, LaunchError>;
}

/// Why the runner did not start, as the launcher reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// `ERROR_LOGON_FAILURE` (1326): wrong password.
    #[error("the sandbox account's password was refused")]
    LogonFailure,
    /// `ERROR_LOGON_TYPE_NOT_GRANTED` (1385): an interactive logon is denied to the account.
    #[error("the sandbox account may not log on interactively")]
    LogonTypeNotGranted,
    /// `ERROR_ACCOUNT_DISABLED` (1331) and the like.
    #[error("the sandbox account is disabled or locked out")]
    AccountDisabled,
    /// `ERROR_SERVICE_DISABLED` (1058): the Secondary Logon service is off.
    #[error("the Secondary Logon service (seclogon) is disabled")]
    SecondaryLogonDisabled,
    #[error("{0}")]
    Other(String),
}

impl LaunchError {
    /// Maps a Win32 error code from `CreateProcessWithLogonW`.
    pub fn from_win32(code: u32, message: &str) -> LaunchError {
        match code {
            1326 => LaunchError::LogonFailure,
            1385 => LaunchError::LogonTypeNotGranted,
            1331 | 1909 => LaunchError::AccountDisabled,
            1058 => LaunchError::SecondaryLogonDisabled,
            _ => LaunchError::Other(format!("CreateProcessWithLogonW failed ({code}): {message}")),
        }
    }

    /// What the user can do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            LaunchError::LogonFailure | LaunchError::AccountDisabled => "run `palisade setup --elevated` again",
            LaunchError::LogonTypeNotGranted => {
                "a policy denies the account local logon (\"Deny log on locally\"); remove it there or use the unelevated mode"
            }
            LaunchError::SecondaryLogonDisabled => "start the Secondary Logon service (seclogon) or use the unelevated mode",
            LaunchError::Other(_) => "see `palisade check`",
        }
    }
}

/// Why the runner could not be started, one line with advice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("could not start palisade-runner as {account}: {error}; {advice}")]
pub struct StartError {
    pub account: &'static str,
    pub error: LaunchError,
    pub advice: &'static str,
}

/// The pipe's name from 16 random bytes: `\\.\pipe\palisade-runner-<32 hex digits>`.
pub fn pipe_name(random: &[u8; 16]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("\\\\.\\pipe\\palisade-runner-{hex}")
}

/// The pipe's DACL: only the sandbox account may open it, for reading and writing but without
/// `FILE_CREATE_PIPE_INSTANCE` (so it cannot add server instances of its own). Protected, so no
/// inherited entries; the CLI works through the handle it created.
pub fn pipe_sddl(sandbox: &Sid) -> String {
    format!("D:P(A;;{PIPE_GRANTED_ACCESS:#x};;;{sandbox})")
}

/// What the pipe's DACL grants the sandbox account: FILE_GENERIC_READ (0x120089) |
/// FILE_WRITE_DATA (0x2) | FILE_WRITE_EA (0x10) | FILE_WRITE_ATTRIBUTES (0x100); not
/// FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE (0x4).
pub const PIPE_GRANTED_ACCESS: u32 = 0x0012_019b;

/// What the runner asks for when it opens the pipe: FILE_GENERIC_READ | FILE_WRITE_DATA. Not
/// GENERIC_WRITE, which maps to FILE_GENERIC_WRITE and so includes FILE_APPEND_DATA: the open
/// would be denied.
pub const PIPE_CLIENT_ACCESS: u32 = 0x0012_0089 | 0x2;

/// The pipe's client must be the runner the CLI started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the pipe was opened by process {actual}, not by the runner (process {expected}); refusing to talk to it")]
pub struct PeerMismatch {
    pub expected: u32,
    pub actual: u32,
}

pub fn check_pipe_peer(expected: u32, actual: u32) -> Result<(), PeerMismatch> {
    if expected == actual && expected != 0 {
        Ok(())
    } else {
        Err(PeerMismatch { expected, actual })
    }
}

/// Starts the runner for a command as `user` (the account the policy's network setting picked:
/// [`account_for_request`]), names the pipe, launches, and turns failures into one line with
/// advice.
pub fn start_runner<L: RunnerLauncher>(
    launcher: &mut L,
    runner: &WinPath,
    user: SandboxUser,
    password: &Password,
    random: &[u8; 16],
    setup_version: u32,
) -> Result<(LaunchSpec, L::Process), StartError> {
    let spec = LaunchSpec { user, runner: runner.clone(), pipe_name: pipe_name(random), setup_version };
    match launcher.launch(&spec, password) {
        Ok(p) => Ok((spec, p)),
        Err(error) => Err(StartError { account: user.account_name(), advice: error.advice(), error }),
    }
}

/// What `palisade-runner` exits with when it cannot report over the pipe (once connected, it
/// reports everything as `Exit`/`Error` messages and exits 0).
pub mod runner_exit {
    /// The command line is not what [`super::LaunchSpec::command_line`] writes.
    pub const USAGE: i32 = 2;
    /// The command line names another protocol or setup version than this runner's.
    pub const VERSION: i32 = 3;
    /// The pipe could not be opened or broke before the conversation ended.
    pub const PIPE: i32 = 4;
    /// The runner is not supported on this platform.
    pub const UNSUPPORTED: i32 = 125;
}

/// One line saying what a runner's exit code means, for a runner that ended without talking.
pub fn describe_runner_exit(code: u32) -> String {
    match code as i32 {
        runner_exit::USAGE => "palisade-runner refused its command line (exit 2)".to_string(),
        runner_exit::VERSION => {
            "palisade-runner belongs to another palisade version (exit 3); run `palisade setup --elevated` again"
                .to_string()
        }
        runner_exit::PIPE => "palisade-runner could not open or use its pipe (exit 4)".to_string(),
        _ => format!("palisade-runner ended with exit code {code} before it reported anything"),
    }
}

/// The runner's parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerArgs {
    pub pipe_name: String,
    pub protocol: u16,
    pub setup_version: u32,
}

/// Why the runner's command line was refused. `Display` is one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunnerArgsError {
    #[error("usage: palisade-runner --pipe \\\\.\\pipe\\palisade-runner-<32 hex digits> --protocol N --setup-version N (started by palisade, not by hand)")]
    Usage,
    #[error("unknown argument {0:?}")]
    Unknown(String),
    #[error("{0} is given twice")]
    Repeated(&'static str),
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    #[error("{flag} has an invalid value {value:?}")]
    BadValue { flag: &'static str, value: String },
    #[error("this runner speaks protocol {ours} and belongs to setup version {our_setup}; asked for protocol {protocol}, setup version {setup}")]
    Version { ours: u16, our_setup: u32, protocol: u16, setup: u32 },
}

impl RunnerArgsError {
    /// The runner's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunnerArgsError::Version { .. } => runner_exit::VERSION,
            _ => runner_exit::USAGE,
        }
    }
}

/// Whether `name` is a pipe name [`pipe_name`] makes: the runner connects to nothing else.
pub fn is_runner_pipe_name(name: &str) -> bool {
    name.strip_prefix("\\\\.\\pipe\\palisade-runner-")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Parses the runner's arguments (after the program name) as [`LaunchSpec::command_line`]
/// writes them, and checks the versions against this runner's (`setup_version` is
/// [`crate::SETUP_VERSION`]).
pub fn parse_runner_args(args: &[String], setup_version: u32) -> Result<RunnerArgs, RunnerArgsError> {
    if args.is_empty() {
        return Err(RunnerArgsError::Usage);
    }
    let (mut pipe, mut protocol, mut setup) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, slot): (&'static str, &mut Option<String>) = match a.as_str() {
            "--pipe" => ("--pipe", &mut pipe),
            "--protocol" => ("--protocol", &mut protocol),
            "--setup-version" => ("--setup-version", &mut setup),
            other => return Err(RunnerArgsError::Unknown(other.chars().take(64).collect())),
        };
        if slot.is_some() {
            return Err(RunnerArgsError::Repeated(flag));
        }
        *slot = Some(it.next().ok_or(RunnerArgsError::MissingValue(flag))?.clone());
    }
    let bad =
        |flag: &'static str, value: &str| RunnerArgsError::BadValue { flag, value: value.chars().take(64).collect() };
    let pipe = pipe.ok_or(RunnerArgsError::MissingValue("--pipe"))?;
    if !is_runner_pipe_name(&pipe) {
        return Err(bad("--pipe", &pipe));
    }
    let protocol_s = protocol.ok_or(RunnerArgsError::MissingValue("--protocol"))?;
    let protocol: u16 = decimal(&protocol_s).ok_or_else(|| bad("--protocol", &protocol_s))?;
    let setup_s = setup.ok_or(RunnerArgsError::MissingValue("--setup-version"))?;
    let setup: u32 = decimal(&setup_s).ok_or_else(|| bad("--setup-version", &setup_s))?;
    if protocol != PROTOCOL_VERSION || setup != setup_version {
        return Err(RunnerArgsError::Version { ours: PROTOCOL_VERSION, our_setup: setup_version, protocol, setup });
    }
    Ok(RunnerArgs { pipe_name: pipe, protocol, setup_version: setup })
}

/// A canonical decimal number (no sign, no leading zeros, no blanks).
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

/// The well-known `RESTRICTED` SID.
pub const RESTRICTED_SID: &str = "S-1-5-12";

/// The command's identity (issue 15) is decided in `palisade-windows-plan`: a fresh command SID
/// per command, restricting SIDs without the account (so the account's `HKCU`, profile and
/// other commands' objects are not writable), its default DACL and its private temporary
/// folder. See [`palisade_windows_plan::command_identity`].
pub use palisade_windows_plan::command_identity::{
    command_default_dacl, command_sid, is_temp_folder_name, restricting_sids, temp_folder_name, temp_folder_sddl,
    IdentityError, TEMP_LOCK_NAME,
};

/// The account a request runs as: `PalisadeOnline` with network, `PalisadeProxied` when it
/// names a proxy port (`network = allow`), else `PalisadeOffline`.
pub fn account_for_request(network: bool, proxy_port: Option<u16>) -> SandboxUser {
    match (network, proxy_port) {
        (true, _) => SandboxUser::Online,
        (false, Some(_)) => SandboxUser::Proxied,
        (false, None) => SandboxUser::Offline,
    }
}

/// The runner's check that the request matches the account it runs as, so that a mix-up fails
/// closed: a request without network must run as the fenced account it names
/// (`PalisadeOffline`, or `PalisadeProxied` with a proxy port); a request with network must
/// run as neither (the fence would break it; the plumbing tests' runner runs as the caller).
/// The CLI chose the account from the same policy, so a mismatch is a bug or a tampered request.
pub fn check_account_network(account_name: &str, network: bool, proxy_port: Option<u16>) -> Result<(), String> {
    let is = |u: SandboxUser| account_name.eq_ignore_ascii_case(u.account_name());
    let expected = account_for_request(network, proxy_port);
    if network {
        return match [SandboxUser::Offline, SandboxUser::Proxied].into_iter().find(|u| is(*u)) {
            Some(fenced) => Err(format!(
                "the request asks for network, but this runner runs as {}, which the firewall fences",
                fenced.account_name()
            )),
            None => Ok(()),
        };
    }
    if is(expected) {
        return Ok(());
    }
    let what = if proxy_port.is_some() { "only Palisade's proxy" } else { "no network" };
    Err(format!(
        "the request asks for {what}, but this runner runs as {account_name}, not {}, the account the firewall fences for it",
        expected.account_name()
    ))
}

/// Variables the runner sets itself in the command's environment (whatever the request says).
pub const RUNNER_SET_VARIABLES: [&str; 5] = ["TMP", "TEMP", "TMPDIR", "PALISADE_SANDBOX", "GIT_CONFIG_GLOBAL"];

/// The command's environment: the request's variables without those the runner sets, then its
/// private temporary folder as `TMP`/`TEMP`/`TMPDIR`, `PALISADE_SANDBOX=1` and, when setup
/// wrote it, `GIT_CONFIG_GLOBAL` naming the sandbox's git configuration (`safe.directory`,
/// OpenSSL instead of Schannel). Windows compares names without case.
pub fn command_environment(request: &[(String, String)], temp: &str, gitconfig: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = request
        .iter()
        .filter(|(k, _)| !RUNNER_SET_VARIABLES.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .cloned()
        .collect();
    for n in ["TMP", "TEMP", "TMPDIR"] {
        env.push((n.to_string(), temp.to_string()));
    }
    env.push(("PALISADE_SANDBOX".to_string(), "1".to_string()));
    if let Some(g) = gitconfig {
        env.push(("GIT_CONFIG_GLOBAL".to_string(), g.to_string()));
    }
    env
}

/// The `deny_read` paths the elevated mode cannot vouch for: setup grants the sandbox group
/// reads only inside the installing user's profile (never its credential stores, nor the
/// `deny_read` entries it was given), so a path inside the profile stays unreadable, while
/// elsewhere the account reads what `Users` may read. Those are refused (fail closed).
pub fn deny_read_outside_profile(profile: &WinPath, deny_read: &[WinPath]) -> Vec<WinPath> {
    deny_read.iter().filter(|p| !p.is_strictly_beneath(profile)).cloned().collect()
}

/// How long the runner gives a command after Ctrl+Break (a `Terminate` request) before it ends
/// the command's job.
pub const TERMINATE_GRACE_MS: u64 = 2000;

/// The exit code of a command whose job the runner ended after `Terminate` (128 + SIGTERM).
pub const TERMINATED_EXIT: u32 = 128 + 15;

/// How a command's end looks to the CLI: `Ok((code, signal))` as the library's `ExitStatus`
/// holds it, or the reason there is no status.
pub type Ending = Result<(Option<i32>, Option<i32>), String>;

/// The command's status from how the conversation ended (`Some(code)` for `Exit`, `None` when
/// the runner failed or vanished, with `failure` saying why) and the signal the CLI asked for
/// (`0`: none). A command the runner ended after `Terminate` reports the signal asked for; one
/// that was killed (the runner ended, 9) reports signal 9 even though no `Exit` came.
pub fn command_ending(exit: Option<u32>, failure: &str, signal_sent: i32) -> Ending {
    const SIGKILL: i32 = 9;
    match exit {
        Some(code) if signal_sent > 0 && code == TERMINATED_EXIT => Ok((None, Some(signal_sent))),
        Some(code) => Ok((Some(code as i32), None)),
        None if signal_sent == SIGKILL => Ok((None, Some(SIGKILL))),
        None => Err(failure.to_string()),
    }
}

/// The DACL `palisade-runner` puts on its own process and threads as soon as it starts. The
/// command runs as the same account; the account's SID is no longer one of its restricting
/// SIDs, so write-class rights on the runner fail the command's second check, but rights
/// outside a process's generic write mapping (`PROCESS_QUERY_LIMITED_INFORMATION`, then the
/// token's `TOKEN_DUPLICATE`) need only the first: with the usual DACL (the account: full
/// control) the command could open the runner — an unrestricted process of the account — and
/// take its token, and so shed its write restriction. `OWNER RIGHTS` (`OW`) replaces the owner's implicit `WRITE_DAC`;
/// the account keeps only `SYNCHRONIZE` (not even `PROCESS_QUERY_LIMITED_INFORMATION`, which
/// `OpenProcessToken` needs). The CLI works through the handle process creation gave it.
pub const RUNNER_SELF_SDDL: &str = "D:P(A;;0x100000;;;OW)(A;;GA;;;SY)";

/// The DACL of the runner's own token: the account may query it, not duplicate or impersonate it.
pub const RUNNER_TOKEN_SDDL: &str = "D:P(A;;0x20008;;;OW)(A;;GA;;;SY)";

/// The runner's default DACL from then on (threads, pipes, the job and the pseudo console it
/// creates): `SYNCHRONIZE | READ_CONTROL` for the account, full control for SYSTEM.
pub const RUNNER_DEFAULT_DACL_SDDL: &str = "D:(A;;0x120000;;;OW)(A;;GA;;;SY)";

/// Rights in an `OW` entry of the runner's DACLs that would let the command act as the runner:
/// writing or reading memory, threads, handles, the DACL, the owner, token duplication or
/// impersonation, generic rights.
pub const RUNNER_FORBIDDEN_RIGHTS: u32 = 0x0000_0fff | 0x000c_0000 | 0xf000_0000;

#[cfg(test)]
mod tests;
