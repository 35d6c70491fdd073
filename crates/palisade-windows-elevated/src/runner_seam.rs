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
    // FILE_GENERIC_READ (0x120089) | FILE_WRITE_DATA (0x2) | FILE_WRITE_EA (0x10) |
    // FILE_WRITE_ATTRIBUTES (0x100); not FILE_APPEND_DATA / FILE_CREATE_PIPE_INSTANCE (0x4).
    format!("D:P(A;;0x12019b;;;{sandbox})")
}

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

/// Starts the runner for a command: picks the account from the policy's network setting, names
/// the pipe, launches, and turns failures into one line with advice.
pub fn start_runner<L: RunnerLauncher>(
    launcher: &mut L,
    runner: &WinPath,
    network: bool,
    password: &Password,
    random: &[u8; 16],
    setup_version: u32,
) -> Result<(LaunchSpec, L::Process), StartError> {
    let user = SandboxUser::for_network(network);
    let spec = LaunchSpec { user, runner: runner.clone(), pipe_name: pipe_name(random), setup_version };
    match launcher.launch(&spec, password) {
        Ok(p) => Ok((spec, p)),
        Err(error) => Err(StartError { account: user.account_name(), advice: error.advice(), error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A launcher that "starts" processes by recording what it was asked to do.
    #[derive(Default)]
    struct FakeLauncher {
        launched: Vec<(LaunchSpec, String)>,
        fail_with: Option<LaunchError>,
        next_pid: u32,
    }

    #[derive(Debug)]
    struct FakeProcess {
        pid: u32,
        killed: bool,
    }

    impl RunnerProcess for FakeProcess {
        fn pid(&self) -> u32 {
            self.pid
        }
        fn kill(&mut self) -> std::io::Result<()> {
            self.killed = true;
            Ok(())
        }
        fn wait(&mut self) -> std::io::Result<u32> {
            Ok(if self.killed { 1 } else { 0 })
        }
    }

    impl RunnerLauncher for FakeLauncher {
        type Process = FakeProcess;
        fn launch(&mut self, spec: &LaunchSpec, password: &Password) -> Result<FakeProcess, LaunchError> {
            if let Some(e) = &self.fail_with {
                return Err(e.clone());
            }
            self.launched.push((spec.clone(), password.expose().to_string()));
            self.next_pid += 100;
            Ok(FakeProcess { pid: self.next_pid, killed: false })
        }
    }

    fn pw() -> Password {
        Password::new("abcdefghijklmnopqrstuvwxyz1A".into(), "").unwrap()
    }

    fn runner() -> WinPath {
        WinPath::parse("C:\\ProgramData\\Palisade\\bin\\palisade-runner.exe").unwrap()
    }

    #[test]
    fn starts_the_account_matching_the_network_setting() {
        let mut l = FakeLauncher::default();
        let (spec, mut p) = start_runner(&mut l, &runner(), false, &pw(), &[0xab; 16], 1).unwrap();
        assert_eq!(spec.user, SandboxUser::Offline);
        assert_eq!(p.pid(), 100);
        let (spec2, _) = start_runner(&mut l, &runner(), true, &pw(), &[1; 16], 1).unwrap();
        assert_eq!(spec2.user, SandboxUser::Online);
        assert_eq!(l.launched.len(), 2);
        assert_eq!(l.launched[0].1, "abcdefghijklmnopqrstuvwxyz1A");
        p.kill().unwrap();
        assert_eq!(p.wait().unwrap(), 1);
        // The password is handed to the launcher, never put on the command line.
        assert!(!spec.command_line().contains("abcdefghijklmnopqrstuvwxyz1A"));
        assert_eq!(
            spec.command_line(),
            format!(
                "\"C:\\ProgramData\\Palisade\\bin\\palisade-runner.exe\" --pipe \\\\.\\pipe\\palisade-runner-{} --protocol 1 --setup-version 1",
                "ab".repeat(16)
            )
        );
    }

    #[test]
    fn failures_carry_advice() {
        let mut l = FakeLauncher { fail_with: Some(LaunchError::from_win32(1326, "")), ..Default::default() };
        let e = start_runner(&mut l, &runner(), false, &pw(), &[0; 16], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "could not start palisade-runner as PalisadeOffline: the sandbox account's password was refused; run `palisade setup --elevated` again"
        );
        assert_eq!(LaunchError::from_win32(1385, ""), LaunchError::LogonTypeNotGranted);
        assert_eq!(LaunchError::from_win32(1058, ""), LaunchError::SecondaryLogonDisabled);
        assert!(matches!(LaunchError::from_win32(5, "Access is denied."), LaunchError::Other(m) if m.contains("(5)")));
    }

    #[test]
    fn pipe_name_dacl_and_peer_check() {
        assert_eq!(pipe_name(&[0; 16]), format!("\\\\.\\pipe\\palisade-runner-{}", "0".repeat(32)));
        assert_ne!(pipe_name(&[0; 16]), pipe_name(&[1; 16]));
        let sid = Sid::parse("S-1-5-21-1-2-3-1011").unwrap();
        assert_eq!(pipe_sddl(&sid), "D:P(A;;0x12019b;;;S-1-5-21-1-2-3-1011)");
        assert_eq!(0x12019b & 0x4, 0, "FILE_CREATE_PIPE_INSTANCE must not be granted");
        assert!(check_pipe_peer(42, 42).is_ok());
        assert_eq!(check_pipe_peer(42, 43), Err(PeerMismatch { expected: 42, actual: 43 }));
        assert!(check_pipe_peer(0, 0).is_err());
    }
}
