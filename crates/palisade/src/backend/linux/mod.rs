//! The Linux backend: user, mount, pid and network namespaces, Landlock and seccomp.
//!
//! A command flows through here in two halves, each a short sequence of named steps.
//! [`Prepared::prepare`](Backend::prepare) (once per sandbox) gathers the host's facts (facts.rs), decides the plan
//! with a pure function (plan.rs: the strategy and its refusals, the network fence, the layers
//! shown to users), compiles the seccomp filter and resolves the policy's paths.
//! [`Prepared::spawn`](Backend::spawn) (per command) resolves the program (program.rs), creates the private
//! temporary directory (private_tmp.rs), builds the mount plan (mounts.rs, protect.rs) and the
//! Landlock ruleset (rules.rs), opens the streams (streams.rs) and clones the child
//! (process.rs), which sets itself up step by step (child.rs) and execs the command. No helper
//! binary is executed in between.

pub(crate) mod apparmor;
mod child;
mod cleanup;
mod dirfd;
mod dirfd_raw;
mod facts;
mod git_aftercare;
mod host_sockets;
mod job_control;
mod mounts;
mod network;
mod observer;
mod observer_filter;
mod placeholder_record;
mod placeholders;
mod plan;
mod private_tmp;
pub mod probe;
mod process;
mod program;
mod protect;
mod remove_tree;
mod rules;
mod seccomp;
pub(crate) mod signals;
mod socket_dirs;
mod stdio_relay;
mod strategy;
mod streams;
mod sys;
pub mod timeline;

use super::contract::{Backend, BackendChild};
use crate::error::Error;
use crate::report::{CleanupReport, Enforcement, HostReport};
use crate::spec::{CommandSpec, SandboxOptions};
use crate::status::ExitStatus;
use facts::HostFacts;
use palisade_policy::Policy;
use plan::LinuxPlan;
use private_tmp::PrivateTmp;
use process::Pipes;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use strategy::Strategy;
use streams::Streams;
use timeline::Mark;

pub(crate) use cleanup::leftover_notes;
pub(crate) use placeholders::interrupt_lock_waits;
pub use socket_dirs::hidden_offline as offline_socket_dirs;

/// The workspace's placeholder locks and record, shared by a sandbox and its running commands.
type SharedPlaceholders = Arc<Mutex<placeholders::PlaceholderLocks>>;

pub struct Prepared {
    policy: Policy,
    plan: LinuxPlan,
    host: HostFacts,
    seccomp: seccompiler::BpfProgram,
    read_roots: Vec<PathBuf>,
    write_roots: Vec<PathBuf>,
    /// Deny-read paths that exist, with whether each is a directory.
    deny_read: Vec<(PathBuf, bool)>,
    /// The workspace's shared lock and placeholder record, taken at the first command and
    /// released (removing the placeholders if this is the last sandbox there) when the sandbox
    /// and every command it started have ended: each running child holds a reference, since
    /// removing a placeholder under a running command would detach its read-only mount.
    workspace_lock: Mutex<Option<SharedPlaceholders>>,
    /// Where the host's socket files were found (see host_sockets).
    host_sockets: host_sockets::HostSockets,
    /// Landlock rule paths' handles, kept between commands (see rules::PathHandles).
    rule_handles: rules::PathHandles,
    /// What the host-side git check remembers between commands (see git_aftercare).
    git_memory: Arc<git_aftercare::Memory>,
    /// network = allow: the proxy, shared with the running commands (see network.rs).
    proxy: Option<Arc<network::SandboxProxy>>,
    /// --report-denials: the observer's filter (see observer.rs), compiled once.
    observer_program: Option<seccompiler::BpfProgram>,
}

fn list_dir(p: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(p).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default()
}

impl Backend for Prepared {
    type Child = ChildInner;

    fn prepare(policy: Policy, options: &SandboxOptions) -> Result<Prepared, Error> {
        let write_roots = policy.write_roots();
        check_writable_roots(&write_roots)?;
        let host = HostFacts::gather();
        let plan = plan::decide(&policy, options, &host)?;
        let seccomp_options =
            seccomp::FilterOptions { foreground_fixed: policy.keep_processes, ..plan.network.seccomp() };
        let seccomp = seccomp::build(seccomp_options).map_err(|e| Error::Io {
            context: "compiling the seccomp filter".into(),
            source: io::Error::other(e.to_string()),
        })?;
        if options.report_denials && policy.keep_processes {
            return Err(Error::InvalidInput(
                "--report-denials cannot be combined with --keep-processes: processes left running after palisade exits would lose the denial observer, and the kernel would then refuse their writes (ENOSYS)".into(),
            ));
        }
        let observer_program =
            options.report_denials.then(|| observer_filter::program(&observer::scope_watched(&policy.network)));
        let deny_read = existing_deny_read(&policy.deny_read);
        let read_roots = readable_roots(plan.strategy, &deny_read);
        if plan.contain_orphans {
            process::become_subreaper()?;
        }
        let proxy = match (plan.network.proxy_port(), policy.network.allowlist()) {
            (Some(_), Some(allowlist)) => {
                Some(network::SandboxProxy::start(allowlist, options.network_hosts_file.as_deref())?)
            }
            _ => None,
        };
        Ok(Prepared {
            policy,
            plan,
            host,
            seccomp,
            read_roots,
            write_roots,
            deny_read,
            workspace_lock: Mutex::new(None),
            host_sockets: Default::default(),
            rule_handles: rules::PathHandles::new(),
            git_memory: Arc::default(),
            proxy,
            observer_program,
        })
    }

    fn enforcement(&self) -> &Enforcement {
        &self.plan.layers
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn reports_denials(&self) -> bool {
        self.observer_program.is_some()
    }

    fn spawn(&self, spec: &CommandSpec) -> Result<ChildInner, Error> {
        timeline::mark(Mark::SpawnStart);
        let program = program::resolve(&spec.program, &spec.env)?;
        timeline::mark(Mark::ProgramResolved);
        let mut tmp = PrivateTmp::create()?;
        timeline::mark(Mark::PrivateTmpCreated);
        let env = self.command_env(spec, &tmp);
        let (mounts, workspace) = self.mount_plan(spec, &env, &tmp)?;
        let landlock = self.landlock_ruleset(&tmp)?;
        timeline::mark(Mark::LandlockRulesetBuilt);
        let mut streams = Streams::open(spec, mounts.as_ref(), self.plan.strategy != Strategy::Unconfined)?;
        let mut pipes = Pipes::open()?;
        let mut port_channel = self.proxy.as_ref().map(|_| network::PortChannel::open()).transpose()?;
        let exec = program::ExecArgs::new(&program, spec, &env)?;
        let mut observer = match self.observer_program {
            Some(_) => Some(observer::Observer::start(self.observer_scope(mounts.as_ref(), &tmp))?),
            None => None,
        };
        let pid_ns = matches!(self.plan.strategy, Strategy::Namespaces { pid: true });
        let job = job_control::Setup::open(spec, pid_ns)
            .map_err(|e| Error::Io { context: "setting up the terminal's job control".into(), source: e })?;
        let mut child_plan = self.child_plan(
            spec,
            mounts,
            landlock,
            &exec,
            &streams,
            &pipes,
            port_channel.as_ref(),
            observer.as_ref(),
            job.as_ref(),
        )?;
        timeline::mark(Mark::ChildPlanReady);
        let git_before = self.git_check_before(workspace.as_ref());

        let pid = process::start(&mut child_plan, process::clone_flags(&self.plan))?;
        // The child has its own copy of the plan (or exec'd): the mount plan stays for naming
        // the path of a failed step.
        let mount_plan = child_plan.namespaces.take();
        drop(child_plan);
        pipes.close_child_ends();
        streams.close_child_ends();
        if let Some(channel) = port_channel.as_mut() {
            channel.close_child_end();
        }
        if let Some(o) = observer.as_mut() {
            o.close_child_end();
        }
        // Init waits for this before it starts the command.
        let job = job.map(|j| j.start(pid));
        let (relays, [stdin, stdout, stderr]) = streams.start().map_err(|e| {
            process::abandon(pid, Error::Io { context: "starting the standard stream relays".into(), source: e })
        })?;
        let kept_namespace = self.keep_placeholders_for_kept_processes(&pipes, workspace.as_ref()).map_err(|e| {
            process::abandon(pid, Error::Io { context: "recording the sandbox for --keep-processes".into(), source: e })
        })?;
        drop(exec);
        // The private temporary folder is in use while the sandbox runs, even if this process
        // is killed (see private_tmp).
        tmp.record_sandbox(pid, kept_namespace).map_err(|e| {
            process::abandon(
                pid,
                Error::Io { context: "recording the sandbox of the private temporary folder".into(), source: e },
            )
        })?;

        let failure = pipes.wait_for_exec();
        timeline::mark(Mark::ExecSeen);
        let mut child = ChildInner {
            pid,
            status_pipe: Some(pipes.status),
            status: None,
            contain_orphans: self.plan.contain_orphans,
            tmp: Some(tmp),
            workspace,
            git_before,
            notices: Vec::new(),
            stdin,
            stdout,
            stderr,
            relays: Some(relays),
            wait_for_relays: !self.policy.keep_processes,
            network: None,
            network_records: Vec::new(),
            observer,
            denials: Vec::new(),
            job,
        };
        if let Some(f) = failure {
            let _ = child.wait();
            return Err(process::setup_error(&f, &program, &spec.cwd, mount_plan.as_ref(), &self.policy.deny_read));
        }
        if let (Some(channel), Some(proxy)) = (port_channel, &self.proxy) {
            // The command runs: its listener is in the channel (sent before exec).
            match channel.serve(proxy) {
                Ok(served) => child.network = Some(served),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            }
        }
        Ok(child)
    }

    fn host_report() -> HostReport {
        probe::host_report()
    }

    fn cleanup() -> Result<CleanupReport, Error> {
        cleanup::cleanup()
    }
}

impl Prepared {
    /// The command's environment: the policy-filtered variables, plus the private temporary
    /// directory.
    fn command_env(&self, spec: &CommandSpec, tmp: &PrivateTmp) -> Vec<(OsString, OsString)> {
        let in_namespaces = matches!(self.plan.strategy, Strategy::Namespaces { .. });
        let tmpdir_inside = if in_namespaces { PathBuf::from("/tmp") } else { tmp.tmp_dir() };
        let mut env: Vec<(OsString, OsString)> = spec.env.iter().filter(|(k, _)| k != "TMPDIR").cloned().collect();
        if self.plan.strategy != Strategy::Unconfined {
            env.push(("TMPDIR".into(), tmpdir_inside.into_os_string()));
        }
        env.push(("PALISADE_SANDBOX".into(), "1".into()));
        if let Some(port) = self.plan.network.proxy_port() {
            // The proxy's variables replace any the caller passed (see network::proxy_env).
            let proxy_env = network::proxy_env(port);
            env.retain(|(k, _)| !proxy_env.iter().any(|(p, _)| p == k));
            env.extend(proxy_env);
        }
        env
    }

    /// What the command may write and reach, for judging what the denial observer sees: paths
    /// as seen inside (the writable roots are bound at their own paths; the private /tmp and
    /// /dev/shm with namespaces, the private folder's own path without).
    fn observer_scope(&self, mounts: Option<&child::NamespacePlan>, tmp: &PrivateTmp) -> observer::Scope {
        let mut writable = self.write_roots.clone();
        match (self.plan.strategy, mounts) {
            (Strategy::Unconfined, _) => writable = vec![PathBuf::from("/")],
            (_, Some(_)) => writable.extend([PathBuf::from("/tmp"), PathBuf::from("/dev/shm")]),
            (_, None) => writable.push(tmp.tmp_dir()),
        }
        let protected = mounts.map(child::NamespacePlan::read_only_paths).unwrap_or_default();
        observer::Scope {
            write: palisade_policy::denials::WriteScope {
                writable,
                protected,
                deny_read: self.deny_read.iter().map(|(p, _)| p.clone()).collect(),
            },
            network: observer::network_scope(&self.policy.network),
        }
    }

    /// The command's Landlock ruleset (None without Landlock).
    fn landlock_ruleset(&self, tmp: &PrivateTmp) -> Result<Option<OwnedFd>, Error> {
        let Some(abi) = self.plan.landlock else { return Ok(None) };
        let mut write_per_command: Vec<PathBuf> = vec![tmp.tmp_dir()];
        if matches!(self.plan.strategy, Strategy::Namespaces { .. }) {
            write_per_command.push(tmp.shm_dir());
        }
        let spec = rules::RulesetSpec {
            abi,
            read: &self.read_roots,
            write: &self.write_roots,
            write_per_command: &write_per_command,
            handle_reads: self.plan.strategy == Strategy::LandlockOnly,
            block_tcp: self.plan.network.landlock_blocks_tcp(),
            scope_abstract_unix: self.plan.network.scopes_abstract_unix(),
            scope_signals: true,
        };
        rules::build(&spec, Some(&self.rule_handles))
            .map_err(|e| Error::Io { context: "building the Landlock ruleset".into(), source: io::Error::other(e) })
    }

    /// The host-side git check's view before the command (not in full access: with no
    /// writable roots to check, the command could write anywhere).
    fn git_check_before(&self, workspace: Option<&SharedPlaceholders>) -> Option<git_aftercare::Before> {
        (self.plan.strategy != Strategy::Unconfined).then(|| {
            let placeholders =
                workspace.map(|w| w.lock().unwrap_or_else(|e| e.into_inner()).placeholder_paths()).unwrap_or_default();
            git_aftercare::before_command(
                &self.write_roots,
                &self.policy.workspace,
                self.git_memory.clone(),
                placeholders,
            )
        })
    }

    /// With --keep-processes, processes may outlive the command: the placeholders must outlive
    /// them, recorded with the command's mount namespace (which the child reports before exec).
    fn keep_placeholders_for_kept_processes(
        &self,
        pipes: &Pipes,
        workspace: Option<&SharedPlaceholders>,
    ) -> io::Result<Option<u64>> {
        let (true, Some(lock)) = (self.policy.keep_processes, workspace) else { return Ok(None) };
        let Some(namespace) = pipes.read_mount_namespace()? else { return Ok(None) };
        lock.lock().unwrap_or_else(|e| e.into_inner()).keep_for_namespace(namespace)?;
        Ok(Some(namespace))
    }
}

/// The writable roots are folders, and no more than the child can hold: it captures them (plus
/// /tmp's and /dev/shm's, and up to two read-only views, see mounts.rs) into a fixed array.
fn check_writable_roots(write_roots: &[PathBuf]) -> Result<(), Error> {
    if write_roots.len() + 4 > child::MAX_TREES {
        return Err(Error::InvalidInput(format!(
            "{} writable roots is more than Palisade supports ({})",
            write_roots.len(),
            child::MAX_TREES - 4
        )));
    }
    for root in write_roots {
        if !root.is_dir() {
            return Err(Error::InvalidInput(format!("writable root {} is not a directory", root.display())));
        }
    }
    Ok(())
}

/// The deny-read paths that exist, with whether each is a directory.
fn existing_deny_read(deny_read: &[PathBuf]) -> Vec<(PathBuf, bool)> {
    deny_read.iter().filter_map(|p| std::fs::metadata(p).ok().map(|m| (p.clone(), m.is_dir()))).collect()
}

/// What Landlock lets the command read.
fn readable_roots(strategy: Strategy, deny_read: &[(PathBuf, bool)]) -> Vec<PathBuf> {
    match strategy {
        // Landlock carves the deny-read paths out of the readable tree.
        Strategy::LandlockOnly => {
            let deny: Vec<PathBuf> = deny_read.iter().map(|(p, _)| p.clone()).collect();
            rules::read_roots(&deny, &list_dir)
        }
        // The mount namespace hides them; Landlock only keeps /dev off limits.
        _ => rules::read_roots(&[], &list_dir),
    }
}

pub struct ChildInner {
    pid: libc::pid_t,
    /// Without a pid namespace (Landlock-only mode), this process is a child subreaper and
    /// kills what the command left behind once it ends.
    contain_orphans: bool,
    status_pipe: Option<OwnedFd>,
    status: Option<ExitStatus>,
    tmp: Option<PrivateTmp>,
    /// Keeps the workspace's placeholders in place while the command runs.
    workspace: Option<SharedPlaceholders>,
    /// The host-side git check to run when the command has ended, and what it reported.
    git_before: Option<git_aftercare::Before>,
    notices: Vec<String>,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    /// Relays of inherited streams (see stdio_relay): all output is through before the status
    /// is returned.
    relays: Option<stdio_relay::Relays>,
    wait_for_relays: bool,
    /// network = allow: the command's listener at the proxy (closed when the command ends, or
    /// when this is dropped), and then the records of its connections.
    network: Option<network::CommandNetwork>,
    network_records: Vec<crate::status::NetworkRecord>,
    /// --report-denials: the command's observer, and then its records.
    observer: Option<observer::Observer>,
    denials: Vec<crate::status::DenialRecord>,
    /// The command runs as the terminal's foreground job (see job_control.rs).
    job: Option<job_control::JobControl>,
}

impl BackendChild for ChildInner {
    fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Sends a signal to the command (through the sandbox's init, which forwards it).
    fn signal(&self, sig: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        if let (libc::SIGCONT, Some(job)) = (sig, &self.job) {
            // The sandbox's whole process group, as job control continues it (init does not
            // pass SIGCONT on then).
            return sys::kill(-job.sandbox_group(), sig).map_err(io::Error::from_raw_os_error);
        }
        sys::kill(self.pid, sig).map_err(io::Error::from_raw_os_error)
    }

    fn kill(&mut self) -> io::Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// What the host-side git check found and did after the command (see git_aftercare).
    fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The command's connections through the proxy (network = allow), once it has ended.
    fn network_records(&self) -> &[crate::status::NetworkRecord] {
        &self.network_records
    }

    /// The refused calls the observer saw (--report-denials), once the command has ended.
    fn denials(&self) -> &[crate::status::DenialRecord] {
        &self.denials
    }

    fn stop_denial_observer(&mut self) {
        if let Some(o) = self.observer.as_mut() {
            o.stop();
        }
    }

    fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        drop(self.stdin.take());
        let raw = sys::wait_pid(self.pid, false).map_err(io::Error::from_raw_os_error)?.unwrap_or(0);
        timeline::mark(Mark::WaitReturned);
        let status = self.finish(raw);
        timeline::mark(Mark::Finished);
        Ok(status)
    }

    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        match sys::wait_pid(self.pid, true).map_err(io::Error::from_raw_os_error)? {
            Some(raw) => Ok(Some(self.finish(raw))),
            None => Ok(None),
        }
    }

    fn take_stdio(&mut self) -> (Option<File>, Option<File>, Option<File>) {
        (self.stdin.take(), self.stdout.take(), self.stderr.take())
    }
}

impl ChildInner {
    fn finish(&mut self, raw: i32) -> ExitStatus {
        process::note_reaped(self.pid);
        let status = process::command_status(self.status_pipe.take(), raw);
        let st = ExitStatus::from_raw(status);
        self.status = Some(st);
        if let Some(job) = self.job.take() {
            // The sandbox is empty (init has exited): the terminal goes back to the caller.
            job.finish(status);
        }
        if self.contain_orphans {
            process::kill_orphaned_descendants();
        }
        if let Some(r) = self.relays.take() {
            r.finish(self.wait_for_relays);
        }
        if let Some(before) = self.git_before.take() {
            self.notices = git_aftercare::after_command(before);
        }
        if let Some(mut network) = self.network.take() {
            let (records, notice) = network.finish();
            self.network_records = records;
            self.notices.extend(notice);
        }
        if let Some(mut observer) = self.observer.take() {
            self.denials = observer.finish();
        }
        self.tmp.take();
        self.workspace.take();
        st
    }
}

impl Drop for ChildInner {
    fn drop(&mut self) {
        // Like std::process::Child, dropping does not wait; but the private temporary
        // directory must not vanish under a command still running, so it is only removed once
        // the command has ended.
        if self.status.is_none() {
            if let Ok(Some(raw)) = sys::wait_pid(self.pid, true) {
                self.finish(raw);
            } else {
                // Recorded: `palisade cleanup` (or a later run) removes it once the sandbox is gone.
                if let Some(t) = self.tmp.take() {
                    t.leave();
                }
                std::mem::forget(self.workspace.take());
            }
        }
    }
}
