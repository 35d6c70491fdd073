//! What the caller asks for: the options that weaken a sandbox, where each standard stream
//! goes, and the plain description of one command that a backend spawns.

use std::ffi::OsString;
use std::path::PathBuf;

/// Choices that make a sandbox weaker than the default; each must be asked for explicitly.
#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    /// Linux: confine with Landlock and seccomp only, without namespaces (for hosts that forbid
    /// user namespaces). Deny-read is still enforced; protected paths are not (see below).
    pub landlock_only: bool,
    /// Linux, with `landlock_only`: run even though protected paths cannot be kept read-only.
    pub accept_unprotected_paths: bool,
    /// Linux, with `landlock_only`: run root's commands too, although nothing stops them from
    /// changing the mode, owner or times of root's files outside the writable roots (Landlock
    /// has no right for that). The enforcement report says so in an inactive layer.
    pub landlock_only_as_root: bool,
    /// network = allow: a hosts-format file (`address name...`) the network proxy resolves
    /// names from, and only from (names it does not list are not resolved), instead of the
    /// system resolver. For tests (a "fake internet" whose names must never reach real
    /// addresses) and for pinning names to addresses. The CLI takes it from
    /// `PALISADE_NET_HOSTS_FILE`. Not yet used on Windows.
    pub network_hosts_file: Option<PathBuf>,
    /// Linux: report the writes and connections the kernel refuses (see [`crate::Child::denials`]).
    /// Opt-in: every watched call waits for Palisade's observer thread (see the README's
    /// "Denial reports" for what it costs). Not with `keep_processes`. No effect elsewhere yet.
    pub report_denials: bool,
    /// Windows: the `[windows] mode` setting (`elevated` is refused until that mode exists).
    /// Only on Windows, so that the other platforms' struct literals stay valid.
    #[cfg(windows)]
    pub windows_mode: palisade_policy::config::WindowsMode,
}

/// Where a standard stream of the command goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stdio {
    /// The caller's own stream (the default).
    #[default]
    Inherit,
    /// A pipe the caller reads or writes through [`Child`].
    Piped,
    /// `/dev/null` (or `NUL`).
    Null,
}

/// The plain description of a command that a backend spawns.
pub(crate) struct CommandSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The final environment (already filtered by the policy).
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub kill_on_parent_death: bool,
    /// Run as the terminal's foreground job (see [`crate::Command::job_control`]).
    pub job_control: bool,
}
