//! Palisade runs a command so that it reads broadly, writes only inside the workspace and the
//! configured writable roots, never touches protected metadata (`.git/hooks`, `.git/config`,
//! agent folders) and stays offline unless allowed — enforced by the operating system.
//!
//! The API mirrors [`std::process::Command`]: build a [`Policy`] (or load the layered
//! configuration with [`policy::config::load`]), make a [`Sandbox`] from it once, then build and
//! spawn as many commands as you like.
//!
//! ```no_run
//! use palisade::{Policy, Sandbox, Stdio};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let workspace = std::env::current_dir().unwrap();
//! let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
//! let sandbox = Sandbox::new(Policy::new(&workspace, home.as_deref()))?;
//!
//! // Run to completion and collect the output.
//! let out = sandbox.command("sh").arg("-c").arg("echo hello > greeting && cat greeting").output()?;
//! assert!(out.status.success());
//! assert_eq!(out.stdout, b"hello\n");
//!
//! // Or spawn, talk to it, and wait.
//! let mut child = sandbox.command("cat").stdin(Stdio::Piped).stdout(Stdio::Piped).spawn()?;
//! use std::io::Write;
//! child.stdin.take().unwrap().write_all(b"ping").unwrap();
//! let out = child.wait_with_output()?;
//! assert_eq!(out.stdout, b"ping");
//! # Ok(()) }
//! ```

// Platforms without an enforcing backend (backend/unsupported.rs) refuse before they reach the
// pieces the backends share; those are not dead code where a backend exists.
#![cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]

mod backend;
use backend::{Backend, BackendChild};
mod elevated_report;
mod error;
mod report;
mod setup_outcome;
mod spec;
mod status;

pub use elevated_report::ElevatedCheck;
pub use error::{exit_code, Error};
pub use report::{CleanupReport, Enforcement, HostReport, Layer};
pub(crate) use spec::CommandSpec;
pub use spec::{SandboxOptions, Stdio};
pub use status::{DenialKind, DenialRecord, ExitStatus, NetworkRecord, Output};
pub mod audit_log;
pub mod caller;
pub mod host_setup;
pub mod signals;

pub use palisade_policy as policy;
pub use palisade_policy::{EnvPolicy, Mode, Network, Policy};

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Probes this host's sandboxing mechanisms by trying each one.
pub fn check_host() -> HostReport {
    backend::Prepared::host_report()
}

/// The elevated Windows mode's state, as `palisade check` reports it: one line per part of
/// `palisade setup --elevated` (marker, group, accounts, passwords, firewall, WFP, folder,
/// runner), each ok, warn, FAIL, note or unknown (could not be read without administrator
/// rights, with the reason). `required`: `[windows] mode = "elevated"` is configured; when it
/// is not, a machine without the setup gets a single "not set up (optional)" line. `None` on
/// systems without an elevated mode. Reads only; never elevates; bounded in time.
pub fn check_elevated(required: bool) -> Option<ElevatedCheck> {
    backend::elevated_check(required, false)
}

/// [`check_elevated`], and the network fence proven (`palisade check --probe`): a runner
/// started as `PalisadeOffline` makes the fence probe it makes before every offline command
/// (a connect outside and one to a loopback port that is not a proxy port), and the "network
/// fence" line says whether both were blocked (proven), one got out (FAIL) or the probe could
/// not run (unknown, with why). Starts a process as the sandbox account; bounded in time.
pub fn check_elevated_probing(required: bool) -> Option<ElevatedCheck> {
    backend::elevated_check(required, true)
}

/// Removes what sandboxes keep on disk between commands (on Windows: the permission entries
/// recorded in `%LOCALAPPDATA%\Palisade`; on Linux: the empty placeholders of missing protected
/// paths that runs killed before their own clean-up left in workspaces, unused lock files, and
/// the private temporary folders of killed runs, see [`CleanupReport::temp_folders`]);
/// idempotent. What a running sandbox (or a `keep_processes` leftover) still uses stays.
pub fn cleanup() -> Result<CleanupReport, Error> {
    backend::Prepared::cleanup()
}

/// Makes a [`Command::spawn`] that is waiting for another run to finish with a writable root's
/// placeholders (Linux; such a wait is announced on stderr after 2 s and gives up after 60 s)
/// give up at once with an error, now or later in this process: for a program that must end
/// promptly on a signal that arrives before its command has started (the CLI calls it for
/// SIGINT, SIGTERM, SIGHUP and SIGQUIT). One atomic store: safe in a signal handler.
pub fn interrupt_lock_waits() {
    backend::interrupt_lock_waits()
}

/// The one-time administrator setup of the elevated Windows mode (`palisade setup --elevated`).
#[cfg(windows)]
pub mod windows_setup {
    pub use crate::backend::elevated_setup::{Launch, Outcome};
    pub use palisade_windows_elevated::setup_channel::{exit, Progress};

    /// Starts `palisade-setup.exe` (next to this executable unless `setup_exe` is given) with
    /// `launch`, serves it one setup or uninstall request, reports its progress, and commits
    /// (setup succeeded), discards (it failed) or removes (uninstall succeeded) the stored
    /// passwords of the sandbox accounts. An uninstall first removes, as the caller, the
    /// permission entries commands added to writable roots (as [`crate::cleanup`]), reported
    /// as a `Note`. `proxy_ports`: the loopback ports for `network = allow` (empty: those the
    /// current setup recorded, else the defaults).
    pub fn run(
        uninstall: bool,
        launch: Launch,
        setup_exe: Option<std::path::PathBuf>,
        proxy_ports: &[u16],
        report: &mut dyn FnMut(&Progress),
    ) -> Result<Outcome, crate::Error> {
        crate::backend::elevated_setup::run(uninstall, launch, setup_exe, proxy_ports, report)
    }
}

/// A policy made ready for this host: decide and compile once, spawn many times.
pub struct Sandbox {
    inner: backend::Prepared,
}

impl Sandbox {
    /// Prepares the policy for this host, refusing if it cannot be enforced.
    pub fn new(policy: Policy) -> Result<Sandbox, Error> {
        Sandbox::with_options(policy, SandboxOptions::default())
    }

    pub fn with_options(policy: Policy, options: SandboxOptions) -> Result<Sandbox, Error> {
        if !policy.workspace.is_absolute() {
            return Err(Error::InvalidInput(format!(
                "workspace {} is not an absolute path",
                policy.workspace.display()
            )));
        }
        Ok(Sandbox { inner: backend::Prepared::prepare(policy, &options)? })
    }

    pub fn policy(&self) -> &Policy {
        Backend::policy(&self.inner)
    }

    /// The layers this sandbox enforces with on this host.
    pub fn enforcement(&self) -> &Enforcement {
        Backend::enforcement(&self.inner)
    }

    /// Whether its commands' refused calls are observed and reported ([`Child::denials`]):
    /// asked for with [`SandboxOptions::report_denials`], and only on Linux so far.
    pub fn reports_denials(&self) -> bool {
        Backend::reports_denials(&self.inner)
    }

    /// A command to run in this sandbox; its working directory defaults to the workspace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command<'_> {
        Command {
            sandbox: self,
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            clear_env: false,
            cwd: None,
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            kill_on_parent_death: false,
            job_control: false,
        }
    }
}

/// Not part of the API: what `palisade-runner` shares with the library, and the entry points of
/// the elevated mode's plumbing tests. A sandboxed command cannot reach these (they are
/// functions of the calling program, not settings).
#[doc(hidden)]
pub mod __private {
    /// Wine's version when this process runs under Wine, for tests that must say what Wine
    /// cannot show (Windows only).
    #[cfg(windows)]
    pub fn wine_version() -> Option<String> {
        crate::backend::wine_version()
    }

    /// What `palisade-runner` (its own binary) shares with the library (Windows only).
    #[cfg(windows)]
    pub use crate::backend::runner_shared as runner;

    #[cfg(windows)]
    pub use crate::backend::ElevatedTestSeam;

    /// `palisade check --probe`'s fence probe through the test seam's runner (the caller, asked
    /// for network: the probe is report-only there), for the plumbing tests.
    #[cfg(windows)]
    pub fn elevated_fence_probe_for_tests(
        seam: &ElevatedTestSeam,
    ) -> Result<palisade_windows_elevated::FenceProbe, crate::Error> {
        crate::backend::elevated_fence_probe_for_tests(seam)
    }

    /// What the last elevated command's ownership pass did (Windows only): examined, given
    /// back, roots walked whole, failures.
    #[cfg(windows)]
    pub fn last_ownership_report() -> Option<palisade_windows_elevated::ownership::Report> {
        crate::backend::LAST_OWNERSHIP_REPORT.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The elevated mode's watcher of writable roots, on `roots` (Windows only): the same code
    /// that collects what a command creates, for tests where no command runs as another user.
    #[cfg(windows)]
    pub fn ownership_watch_for_tests(roots: &[std::path::PathBuf]) -> Result<OwnershipWatchForTests, crate::Error> {
        crate::backend::ownership_watch_for_tests(roots).map(OwnershipWatchForTests)
    }

    /// See [`ownership_watch_for_tests`].
    #[cfg(windows)]
    pub struct OwnershipWatchForTests(crate::backend::OwnershipWatch);

    #[cfg(windows)]
    impl OwnershipWatchForTests {
        /// Stops watching: each root's plan (names created or renamed in, or the root to walk).
        pub fn finish(self) -> Vec<palisade_windows_elevated::ownership::FixPlan> {
            self.0.finish()
        }
    }

    /// Timestamps of the steps of a spawn (host, child, init, command), for
    /// `palisade-bench steps` (Linux only; off unless `enable` is called).
    #[cfg(target_os = "linux")]
    pub use crate::backend::timeline as spawn_timeline;

    /// The host folders of unix sockets an offline sandbox hides (given the folders that must
    /// stay visible), for `palisade-bench`'s bubblewrap row (Linux only).
    #[cfg(target_os = "linux")]
    pub use crate::backend::offline_socket_dirs;

    /// An elevated-mode sandbox whose runner is started with a plain `CreateProcessW` as the
    /// caller (see `ElevatedTestSeam`): for testing the pipe and protocol where
    /// `CreateProcessWithLogonW` cannot run. Enforces nothing the sandbox account would.
    #[cfg(windows)]
    pub fn elevated_sandbox_for_tests(
        policy: crate::Policy,
        seam: &ElevatedTestSeam,
    ) -> Result<crate::Sandbox, crate::Error> {
        elevated_sandbox_with_hosts_for_tests(policy, seam, None)
    }

    /// [`elevated_sandbox_for_tests`], with the proxy's names resolved from `hosts_file` only
    /// (as `SandboxOptions::network_hosts_file`).
    #[cfg(windows)]
    pub fn elevated_sandbox_with_hosts_for_tests(
        policy: crate::Policy,
        seam: &ElevatedTestSeam,
        hosts_file: Option<&std::path::Path>,
    ) -> Result<crate::Sandbox, crate::Error> {
        if !policy.workspace.is_absolute() {
            return Err(crate::Error::InvalidInput(format!(
                "workspace {} is not an absolute path",
                policy.workspace.display()
            )));
        }
        Ok(crate::Sandbox { inner: crate::backend::Prepared::new_elevated(policy, Some(seam), hosts_file)? })
    }
}

/// A command to run in a [`Sandbox`], built like [`std::process::Command`].
pub struct Command<'a> {
    sandbox: &'a Sandbox,
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    clear_env: bool,
    cwd: Option<PathBuf>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    kill_on_parent_death: bool,
    job_control: bool,
}

impl<'a> Command<'a> {
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }
    /// Sets a variable. Variables set here are passed even if their name looks like a secret:
    /// the caller chose them.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((key.as_ref().to_os_string(), Some(val.as_ref().to_os_string())));
        self
    }
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }
    /// Starts from an empty environment instead of the (filtered) inherited one.
    pub fn env_clear(&mut self) -> &mut Self {
        self.clear_env = true;
        self.env.clear();
        self
    }
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }
    pub fn stdin(&mut self, s: Stdio) -> &mut Self {
        self.stdin = s;
        self
    }
    pub fn stdout(&mut self, s: Stdio) -> &mut Self {
        self.stdout = s;
        self
    }
    pub fn stderr(&mut self, s: Stdio) -> &mut Self {
        self.stderr = s;
        self
    }
    /// Kill the command (and everything it started) if the thread that spawned it dies. Linux
    /// ties this to the spawning *thread*, so only use it from a long-lived thread.
    pub fn kill_on_parent_death(&mut self, yes: bool) -> &mut Self {
        self.kill_on_parent_death = yes;
        self
    }

    /// Linux: run the command as the terminal's foreground job, for a program that runs one
    /// command at a time in the foreground, as a shell runs a job (`palisade run` does). When
    /// the command's stdin and stdout are the calling program's controlling terminal, the
    /// sandbox gets a process group of its own, made the terminal's foreground group while the
    /// calling program's group is (never taken from a background job), so that interactive
    /// shells, editors and REPLs inside work as under `sh`; the command's stops (Ctrl-Z) stop
    /// the calling program's group too, continuing it continues the command, and the terminal
    /// goes back to the calling program's group when the command ends. No effect elsewhere.
    pub fn job_control(&mut self, yes: bool) -> &mut Self {
        self.job_control = yes;
        self
    }

    fn spec(&self, default_stdio: Stdio) -> Result<CommandSpec, Error> {
        let policy = self.sandbox.policy();
        let mut env: Vec<(OsString, OsString)> =
            if self.clear_env { Vec::new() } else { policy.env.filter(std::env::vars_os()) };
        for (k, v) in &self.env {
            env.retain(|(ek, _)| ek != k);
            if let Some(v) = v {
                env.push((k.clone(), v.clone()));
            }
        }
        let cwd = match &self.cwd {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => policy.workspace.join(d),
            None => policy.workspace.clone(),
        };
        let pick = |s: Stdio| if s == Stdio::Inherit { default_stdio } else { s };
        Ok(CommandSpec {
            program: self.program.clone(),
            args: self.args.clone(),
            env,
            cwd,
            stdin: if default_stdio == Stdio::Piped { self.stdin } else { pick(self.stdin) },
            stdout: pick(self.stdout),
            stderr: pick(self.stderr),
            kill_on_parent_death: self.kill_on_parent_death,
            job_control: self.job_control,
        })
    }

    /// Starts the command confined.
    pub fn spawn(&mut self) -> Result<Child, Error> {
        let spec = self.spec(Stdio::Inherit)?;
        Ok(Child::new(Backend::spawn(&self.sandbox.inner, &spec)?))
    }

    /// Runs the command to completion and waits for its status. The host-side check's notices
    /// are not returned here: use [`Command::spawn`] and [`Child::notices`] (or
    /// [`Command::output`]) to show them.
    pub fn status(&mut self) -> Result<ExitStatus, Error> {
        let mut child = self.spawn()?;
        child.wait().map_err(|e| Error::Io { context: "waiting for the command".into(), source: e })
    }

    /// Runs the command with stdout and stderr captured (stdin is `/dev/null` unless set).
    pub fn output(&mut self) -> Result<Output, Error> {
        let mut spec = self.spec(Stdio::Piped)?;
        if self.stdin == Stdio::Inherit {
            spec.stdin = Stdio::Null;
        }
        let child = Child::new(Backend::spawn(&self.sandbox.inner, &spec)?);
        child.wait_with_output().map_err(|e| Error::Io { context: "waiting for the command".into(), source: e })
    }
}

/// A running sandboxed command.
pub struct Child {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    inner: backend::ChildInner,
}

impl Child {
    fn new(mut inner: backend::ChildInner) -> Child {
        let (stdin, stdout, stderr) = inner.take_stdio();
        Child { stdin, stdout, stderr, inner }
    }
    /// The process id Palisade watches (on Linux, the sandbox's init or the command itself).
    pub fn id(&self) -> u32 {
        BackendChild::id(&self.inner)
    }
    /// Sends a signal to the command (Unix signal numbers; on Windows only termination).
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        BackendChild::signal(&self.inner, sig)
    }
    /// Kills the command and everything it started.
    pub fn kill(&mut self) -> io::Result<()> {
        BackendChild::kill(&mut self.inner)
    }
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        BackendChild::wait(&mut self.inner)
    }
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        BackendChild::try_wait(&mut self.inner)
    }
    /// What Palisade's host-side check found and did once the command ended (empty until then),
    /// one line each, for the caller to show the user. On Linux: symbolic links the command
    /// left in a git directory (removed: the host's git would write through them), nested
    /// repositories registered as submodules with config or hooks git does not write itself
    /// (quarantined: `P/.git` renamed to `P/.git.palisade-quarantine`), and changes that hide
    /// work from `git status`/`git log` (skip-worktree entries, replace refs, `info/exclude`).
    pub fn notices(&self) -> &[String] {
        BackendChild::notices(&self.inner)
    }
    /// The command's connections through Palisade's network proxy (network = allow: host, port,
    /// allowed or refused, the deciding rule or the reason, bytes each way, duration), oldest
    /// first; empty until the command has ended, and for other network settings.
    pub fn network_records(&self) -> &[NetworkRecord] {
        BackendChild::network_records(&self.inner)
    }
    /// The writes and connections the kernel refused, as Palisade's observer saw them (Linux,
    /// with [`SandboxOptions::report_denials`]): kind, path or address, the policy rule that
    /// refuses it, the system call and how many times; empty until the command has ended, and
    /// without the option. See the README's "Denial reports" for what it does not see.
    pub fn denials(&self) -> &[DenialRecord] {
        BackendChild::denials(&self.inner)
    }
    /// Closes the denial observer's listener while the command runs: the kernel then answers
    /// the command's watched calls ENOSYS. Only for tests that the observer fails closed.
    #[doc(hidden)]
    pub fn stop_denial_observer(&mut self) {
        BackendChild::stop_denial_observer(&mut self.inner)
    }
    /// Closes stdin, reads stdout and stderr to the end (concurrently), and waits.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let err_reader = self.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                e.read_to_end(&mut buf).map(|_| buf)
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut o) = self.stdout.take() {
            o.read_to_end(&mut stdout)?;
        }
        let stderr = match err_reader {
            Some(h) => h.join().map_err(|_| io::Error::other("stderr reader panicked"))??,
            None => Vec::new(),
        };
        let status = BackendChild::wait(&mut self.inner)?;
        Ok(Output {
            status,
            stdout,
            stderr,
            notices: self.notices().to_vec(),
            network: self.network_records().to_vec(),
            denials: self.denials().to_vec(),
        })
    }
}
