//! The Linux backend: user, mount, pid and network namespaces, Landlock and seccomp.
//!
//! A command flows through here in two halves. [`Prepared::new`] (once per sandbox) decides the
//! strategy, compiles the seccomp filters and resolves the policy's paths. [`Prepared::spawn`]
//! (per command) resolves protected paths, creates the private temporary directory, builds the
//! Landlock ruleset and a [`child::ChildPlan`], and clones the child, which sets itself up step
//! by step (see `child.rs`) and execs the command. No helper binary is executed in between.

pub(crate) mod apparmor;
mod child;
mod dirfd;
mod dirfd_raw;
mod git_aftercare;
mod host_sockets;
mod placeholder_record;
mod placeholders;
mod private_tmp;
pub mod probe;
mod remove_tree;
mod rules;
mod seccomp;
pub(crate) mod signals;
mod stdio_relay;
mod strategy;
mod socket_dirs;
mod sys;

use strategy::Strategy;
pub mod timeline;

use crate::{CommandSpec, Enforcement, Error, ExitStatus, Layer, SandboxOptions, Stdio};
use child::{ChildPlan, MountOp, NamespacePlan, StdioFd};
use private_tmp::PrivateTmp;
use timeline::Mark;
use palisade_policy::protected::{self, Action};
use palisade_policy::Policy;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use probe::host_report;
pub(crate) use placeholders::interrupt_lock_waits;

type SharedLock = Mutex<Option<Arc<Mutex<placeholders::PlaceholderLocks>>>>;

pub struct Prepared {
    policy: Policy,
    strategy: Strategy,
    landlock_abi: Option<landlock::ABI>,
    seccomp: seccompiler::BpfProgram,
    read_roots: Vec<PathBuf>,
    write_roots: Vec<PathBuf>,
    /// Deny-read paths that exist, with whether each is a directory.
    deny_read: Vec<(PathBuf, bool)>,
    /// Folders of unix sockets hidden when offline (connecting to a socket needs no write
    /// access to its folder, so a read-only mount does not stop it).
    hidden_socket_dirs: Vec<PathBuf>,
    euid: u32,
    egid: u32,
    last_capability: u32,
    enforcement: Enforcement,
    /// The workspace's shared lock and placeholder record, taken at the first command and
    /// released (removing the placeholders if this is the last sandbox there) when the sandbox
    /// and every command it started have ended: each running child holds a reference, since
    /// removing a placeholder under a running command would detach its read-only mount.
    workspace_lock: SharedLock,
    /// Where the host's socket files were found (see host_sockets).
    host_sockets: host_sockets::HostSockets,
    /// Landlock rule paths' handles, kept between commands (see rules::PathHandles).
    rule_handles: rules::PathHandles,
    /// What the host-side git check remembers between commands (see git_aftercare).
    git_memory: Arc<git_aftercare::Memory>,
}

fn cstring(p: impl AsRef<OsStr>) -> Result<CString, Error> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| Error::InvalidInput(format!("{:?} contains a NUL byte", p.as_ref())))
}

fn list_dir(p: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(p)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

impl Prepared {
    pub fn new(policy: Policy, options: &SandboxOptions) -> Result<Prepared, Error> {
        let abi_version = rules::kernel_abi();
        let landlock_abi = rules::abi_from_version(abi_version);
        let euid = sys::geteuid();
        let write_roots = policy.write_roots();
        // The child captures the writable trees (plus /tmp's and /dev/shm's, and up to two
        // read-only views, see namespace_plan) into a fixed array.
        if write_roots.len() + 4 > child::MAX_TREES {
            return Err(Error::InvalidInput(format!(
                "{} writable roots is more than Palisade supports ({})",
                write_roots.len(),
                child::MAX_TREES - 4
            )));
        }
        for root in &write_roots {
            if !root.is_dir() {
                return Err(Error::InvalidInput(format!("writable root {} is not a directory", root.display())));
            }
        }
        let strategy = strategy::choose(&policy, options, strategy::Host { euid, landlock: landlock_abi })?;
        let mut enforcement = Enforcement::default();

        let seccomp = seccomp::build(seccomp::FilterOptions {
            unix_sockets_only: strategy.offline_by_filters(&policy),
            namespaced_families_only: policy.network.is_off(),
        })
        .map_err(|e| Error::Io { context: "compiling the seccomp filter".into(), source: io::Error::other(e.to_string()) })?;

        let deny_read: Vec<(PathBuf, bool)> = policy
            .deny_read
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| (p.clone(), m.is_dir())))
            .collect();
        let read_roots = match strategy {
            // Landlock carves the deny-read paths out of the readable tree.
            Strategy::LandlockOnly => {
                let deny: Vec<PathBuf> = deny_read.iter().map(|(p, _)| p.clone()).collect();
                rules::read_roots(&deny, &list_dir)
            }
            // The mount namespace hides them; Landlock only keeps /dev off limits.
            _ => rules::read_roots(&[], &list_dir),
        };

        match strategy {
            Strategy::Namespaces { pid, net } => {
                enforcement.push(Layer::new("user namespace", true, "commands have no privileges outside it"));
                enforcement.push(Layer::new("mount namespace", true, "read-only root, writable roots, protected paths, deny-read masks, private /tmp"));
                enforcement.push(Layer::new("ipc namespace", true, "host System V IPC and POSIX message queues out of reach"));
                enforcement.push(Layer::new("pid namespace", pid, if pid { "the process tree ends with the command" } else { "off: keep_processes asks processes to outlive the command" }));
                enforcement.push(Layer::new("network namespace", net, if net { "offline: only a private loopback" } else { "network is on" }));
            }
            Strategy::LandlockOnly => {
                enforcement.push(Layer::new("namespaces", false, "Landlock-only mode (explicit choice)"));
                if euid == 0 {
                    // Said wherever the layers are shown (check, --json-status): never silent.
                    enforcement.push(Layer::new(
                        "metadata outside writable roots",
                        false,
                        "NOT protected: root's commands can chmod/chown/touch root's files anywhere (allow_landlock_only_as_root)",
                    ));
                }
            }
            Strategy::Unconfined => {
                enforcement.push(Layer::new("filesystem", false, "full-access mode: no confinement"));
            }
        }
        let use_landlock = landlock_abi.is_some() && strategy != Strategy::Unconfined;
        enforcement.push(Layer::new(
            "landlock",
            use_landlock,
            &match landlock_abi {
                Some(_) => format!("ABI {abi_version}"),
                None => "not available in this kernel".into(),
            },
        ));
        enforcement.push(Layer::new("seccomp", true, "ptrace, io_uring, keyring, bpf, mounts, new user namespaces, TIOCSTI blocked"));

        if strategy == Strategy::LandlockOnly && !policy.keep_processes {
            // Orphans of the command are reparented here instead of to init, so they can be
            // found and ended with it (see kill_orphaned_descendants).
            sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).map_err(|e| Error::Io {
                context: "becoming a child subreaper".into(),
                source: io::Error::from_raw_os_error(e),
            })?;
        }
        let hidden_socket_dirs = if policy.network.is_off() && matches!(strategy, Strategy::Namespaces { .. }) {
            // Never the workspace's folder (nor a writable root's), whatever the mode.
            let mut keep: Vec<&Path> = write_roots.iter().map(PathBuf::as_path).collect();
            keep.push(&policy.workspace);
            socket_dirs::to_hide(&socket_dirs::candidates(), &keep)
        } else {
            Vec::new()
        };

        Ok(Prepared {
            hidden_socket_dirs,
            strategy,
            landlock_abi: if use_landlock { landlock_abi } else { None },
            seccomp,
            read_roots,
            write_roots,
            deny_read,
            euid,
            egid: sys::getegid(),
            last_capability: sys::last_capability(),
            enforcement,
            policy,
            workspace_lock: Mutex::new(None),
            host_sockets: Default::default(),
            rule_handles: rules::PathHandles::new(),
            git_memory: Arc::default(),
        })
    }

    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The actions that keep protected paths read-only, for every writable root, with the
    /// placeholders they need created (and recorded) on the host.
    fn protected_actions(&self, env: &[(OsString, OsString)]) -> Result<(Vec<Action>, Arc<Mutex<placeholders::PlaceholderLocks>>), Error> {
        let shared = {
            let mut guard = self.workspace_lock.lock().unwrap_or_else(|e| e.into_inner());
            match &*guard {
                Some(l) => l.clone(),
                None => {
                    let l = Arc::new(Mutex::new(placeholders::PlaceholderLocks::acquire(&self.write_roots).map_err(
                        |e| Error::Io { context: "locking the writable roots' placeholder records".into(), source: e },
                    )?));
                    *guard = Some(l.clone());
                    l
                }
            }
        };
        let mut lock = shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut actions = Vec::new();
        // Read once per command, not once per root: the same host files and environment apply
        // to every root.
        let git_configs = global_git_configs();
        let git_dirs = env_git_dirs(env);
        let mut config_dirs = own_config_dirs();
        // Palisade's locks and placeholder records too (a writable /tmp holds them).
        config_dirs.push(placeholders::state_dir_path());
        let view = lock.view(&self.write_roots).map_err(|e| Error::Io {
            context: "locking the writable roots' placeholder records".into(),
            source: e,
        })?;
        for root in &self.write_roots {
            let acts = protected::resolve_with_git_configs(
                root,
                &self.policy.protected_paths,
                &view,
                &git_configs,
                &git_dirs,
            )
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
            // A writable root that is neither the workspace nor a repository (a cache such as
            // ~/.cargo/registry) is not opened as a project by editors or agents: what protected
            // paths exist there stay read-only, but it gets no placeholders (a dozen empty
            // folders in a cache protect nothing anyone runs, and clutter it).
            let project = *root == self.policy.workspace || std::fs::symlink_metadata(root.join(".git")).is_ok();
            // Git indirection can point outside: only what lies in a writable root needs a
            // mount (everything else is read-only already).
            actions.extend(
                acts.into_iter()
                    .filter(|a| self.write_roots.iter().any(|r| protected::within(a.path(), r)))
                    .filter(|a| project || !matches!(a, Action::Placeholder { .. })),
            );
            // Palisade's own user configuration, when a writable root holds it (a writable
            // ~/.config): a command could otherwise rewrite the policy of the next run
            // (mode = "full-access"). Protected like the patterns, even before it exists.
            for dir in &config_dirs {
                if let Ok(rel) = dir.strip_prefix(root) {
                    let pattern = rel.to_string_lossy().into_owned();
                    if !pattern.is_empty() {
                        let acts = protected::resolve(root, &[pattern], &view).map_err(|e| Error::InvalidInput(e.to_string()))?;
                        actions.extend(acts);
                    }
                }
            }
        }
        let missing = actions.iter().filter_map(|a| match a {
            Action::Placeholder { path, dir } => Some((path.as_path(), *dir)),
            _ => None,
        });
        let intact = view.intact_placeholders();
        lock.create_placeholders(missing, &intact).map_err(|e| {
            // A workspace this user cannot write (a system folder, another user's checkout):
            // the placeholder is only the first thing that fails there; say what to do.
            let unwritable = self.write_roots.iter().find(|r| sys::access_write(r).is_err());
            match (e.kind(), unwritable) {
                (io::ErrorKind::PermissionDenied, Some(root)) => Error::InvalidInput(format!(
                    "{} is not writable by this user, so it cannot be a writable root: use --mode read-only to run here without writing, or choose another --workspace",
                    root.display()
                )),
                _ => Error::Io { context: "creating a placeholder for a missing protected path".into(), source: e },
            }
        })?;
        drop(lock);
        Ok((actions, shared))
    }

    pub fn spawn(&self, spec: &CommandSpec) -> Result<ChildInner, Error> {
        timeline::mark(Mark::SpawnStart);
        let program = resolve_program(&spec.program, &spec.env)?;
        timeline::mark(Mark::ProgramResolved);
        let mut tmp = PrivateTmp::create()?;
        timeline::mark(Mark::PrivateTmpCreated);
        let in_namespaces = matches!(self.strategy, Strategy::Namespaces { .. });

        // Environment: the policy-filtered variables, plus the private temporary directory.
        let tmpdir_inside = if in_namespaces { PathBuf::from("/tmp") } else { tmp.tmp_dir() };
        let mut env: Vec<(OsString, OsString)> =
            spec.env.iter().filter(|(k, _)| k != "TMPDIR").cloned().collect();
        if self.strategy != Strategy::Unconfined {
            env.push(("TMPDIR".into(), tmpdir_inside.into_os_string()));
        }
        env.push(("PALISADE_SANDBOX".into(), "1".into()));

        let mut workspace = None;
        let namespaces = match self.strategy {
            Strategy::Namespaces { pid, net } => {
                let (actions, lock) = self.protected_actions(&env)?;
                workspace = Some(lock);
                timeline::mark(Mark::ProtectedPathsResolved);
                let mut plan = self.namespace_plan(&actions, &tmp, pid, net, &self.command_dir(&spec.cwd))?;
                plan.console = caller_terminal(spec).map(cstring).transpose()?;
                timeline::mark(Mark::MountPlanBuilt);
                Some(plan)
            }
            _ => None,
        };

        let mut write_per_command: Vec<PathBuf> = vec![tmp.tmp_dir()];
        if in_namespaces {
            write_per_command.push(tmp.shm_dir());
        }
        let landlock = match self.landlock_abi {
            Some(abi) => rules::build(
                &rules::RulesetSpec {
                    abi,
                    read: &self.read_roots,
                    write: &self.write_roots,
                    write_per_command: &write_per_command,
                    handle_reads: self.strategy == Strategy::LandlockOnly,
                    block_tcp: self.strategy.offline_by_filters(&self.policy),
                    scope_abstract_unix: self.policy.network.is_off(),
                    scope_signals: true,
                },
                Some(&self.rule_handles),
            )
            .map_err(|e| Error::Io { context: "building the Landlock ruleset".into(), source: io::Error::other(e) })?,
            None => None,
        };
        timeline::mark(Mark::LandlockRulesetBuilt);

        // Inherited streams: no host inode whose metadata the command could change (see
        // stdio_relay); relays start once the command runs.
        let console_rdev = namespaces.as_ref().and_then(|n| n.console.as_ref()).and_then(|c| {
            std::fs::metadata(OsStr::from_bytes(c.to_bytes())).ok().map(|m| std::os::unix::fs::MetadataExt::rdev(&m))
        });
        let inherited = stdio_relay::InheritedStdio::prepare(
            [&spec.stdin, &spec.stdout, &spec.stderr].map(|s| matches!(s, Stdio::Inherit)),
            console_rdev,
            self.strategy != Strategy::Unconfined,
        )
        .map_err(|e| Error::Io { context: "setting up standard streams".into(), source: e })?;
        let (stdin, child_stdin) = stdio_pair(&spec.stdin, true)?;
        let (stdout, child_stdout) = stdio_pair(&spec.stdout, false)?;
        let (stderr, child_stderr) = stdio_pair(&spec.stderr, false)?;
        let (err_read, err_write) = sys::pipe().map_err(|e| Error::Io { context: "creating a pipe".into(), source: e })?;
        let (status_read, status_write) = sys::pipe().map_err(|e| Error::Io { context: "creating a pipe".into(), source: e })?;

        let argv: Vec<CString> = std::iter::once(cstring(&spec.program)?)
            .chain(spec.args.iter().map(cstring).collect::<Result<Vec<_>, _>>()?)
            .collect();
        let envs: Vec<CString> = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone().into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).map_err(|_| Error::InvalidInput(format!("environment variable {k:?} contains a NUL byte")))
            })
            .collect::<Result<_, _>>()?;
        let ptrs = |v: &[CString]| v.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>();

        let pid_ns = matches!(self.strategy, Strategy::Namespaces { pid: true, .. });
        let fd_of = |i: usize, s: &Stdio, p: &Option<OwnedFd>| match s {
            // Opened inside, where /dev/null is a read-only bind (not the host's node).
            Stdio::Null => StdioFd::Reopen { path: c"/dev/null", flags: if i == 0 { libc::O_RDONLY } else { libc::O_WRONLY }, or_inherit: false },
            Stdio::Inherit => inherited.child_stdio(i).unwrap_or(StdioFd::Inherit),
            Stdio::Piped => p.as_ref().map_or(StdioFd::Inherit, |f| StdioFd::Fd(f.as_raw_fd())),
        };
        let mut close_fds: Vec<RawFd> = vec![err_read.as_raw_fd(), status_read.as_raw_fd()];
        close_fds.extend([&stdin, &stdout, &stderr].iter().filter_map(|p| p.as_ref().map(|f| f.as_raw_fd())));
        close_fds.extend(inherited.parent_fds());
        let mut plan = ChildPlan {
            namespaces,
            init: pid_ns,
            parent_death_signal: spec.kill_on_parent_death,
            parent_pid: std::process::id() as libc::pid_t,
            drop_capabilities: in_namespaces || sys::has_capabilities(),
            last_capability: self.last_capability,
            landlock,
            landlock_device_access: self
                .landlock_abi
                .map_or(0, |abi| rules::device_access(abi, self.strategy == Strategy::LandlockOnly).bits()),
            seccomp: self.seccomp.clone(),
            program: cstring(&program)?,
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envs),
            cwd: cstring(&spec.cwd)?,
            stdio: [fd_of(0, &spec.stdin, &child_stdin), fd_of(1, &spec.stdout, &child_stdout), fd_of(2, &spec.stderr, &child_stderr)],
            error_fd: err_write.as_raw_fd(),
            status_fd: status_write.as_raw_fd(),
            close_fds,
            command_stack: if pid_ns { vec![0; 64 * 1024] } else { Vec::new() },
            report_mount_namespace: self.policy.keep_processes && in_namespaces && !pid_ns,
            // A command given no terminal must not reach the caller's controlling terminal
            // through /dev/tty either (to read what the user types to someone else).
            new_session: !stdio_has_terminal(spec),
        };

        let mut flags: libc::c_ulong = 0;
        if let Strategy::Namespaces { pid, net } = self.strategy {
            // A private IPC namespace too: System V shared memory, message queues and
            // semaphores, and POSIX message queues, are per IPC namespace, and uid 0 inside
            // (root's commands) owns root's segments on the host without any capability.
            flags |= (libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWIPC) as libc::c_ulong;
            if pid {
                flags |= libc::CLONE_NEWPID as libc::c_ulong;
            }
            if net {
                flags |= libc::CLONE_NEWNET as libc::c_ulong;
            }
        }
        timeline::mark(Mark::ChildPlanReady);
        // Full access has no writable roots to check: the command could write anywhere.
        let git_before = (self.strategy != Strategy::Unconfined)
            .then(|| {
                let placeholders = workspace.as_ref().map(|w| w.lock().unwrap_or_else(|e| e.into_inner()).placeholder_paths()).unwrap_or_default();
                git_aftercare::before_command(&self.write_roots, &self.policy.workspace, self.git_memory.clone(), placeholders)
            });
        let pid = if pid_ns {
            // The child becomes the sandbox's init and never execs, so it cannot share our
            // memory (we would wait for it forever): a fork-style clone.
            // SAFETY: the child only runs child::run, which makes raw system calls on data
            // prepared above and never returns; it allocates nothing and takes no locks.
            match unsafe { sys::clone_process(flags) } {
                Ok(0) => child::run(&mut plan),
                Ok(pid) => pid,
                Err(errno) => return Err(clone_error(errno, flags)),
            }
        } else {
            // The child execs the command itself: it shares our memory until then (nothing is
            // copied, however large the embedding program), and we wait for that moment.
            let mut stack = vec![0u8; 64 * 1024];
            let arg = &mut plan as *mut ChildPlan as *mut libc::c_void;
            // SAFETY: run_shared makes only raw system calls on the plan, which stays alive and
            // untouched (this thread is suspended) until the child execs or exits.
            match unsafe { sys::spawn_sharing_memory(&mut stack, child::run_shared, arg, flags as libc::c_int) } {
                Ok(pid) => pid,
                Err(errno) => return Err(clone_error(errno, flags)),
            }
        };
        // The child has its own copy of the plan (or exec'd): the mount plan stays for naming
        // the path of a failed step.
        let mount_plan = plan.namespaces.take();
        drop(plan);
        drop((err_write, status_write, child_stdin, child_stdout, child_stderr));
        let relays = match inherited.start() {
            Ok(r) => r,
            Err(e) => {
                let _ = sys::kill(pid, libc::SIGKILL);
                let _ = sys::wait_pid(pid, false);
                return Err(Error::Io { context: "starting the standard stream relays".into(), source: e });
            }
        };
        let mut kept_namespace = None;
        if let (true, Some(lock)) = (self.policy.keep_processes, &workspace) {
            // Processes may outlive the command: the placeholders must outlive them. The child
            // wrote its mount namespace's inode before exec (or failed, which the error pipe
            // reports below).
            let mut ino = [0u8; 8];
            let got = sys::read_full(status_read.as_raw_fd(), &mut ino).map_err(io::Error::from_raw_os_error);
            let kept = got.and_then(|n| {
                if n == 8 {
                    kept_namespace = Some(u64::from_ne_bytes(ino));
                    lock.lock().unwrap_or_else(|e| e.into_inner()).keep_for_namespace(u64::from_ne_bytes(ino))
                } else {
                    Ok(()) // the child failed before: its error is on the error pipe
                }
            });
            if let Err(e) = kept {
                let _ = sys::kill(pid, libc::SIGKILL);
                let _ = sys::wait_pid(pid, false);
                return Err(Error::Io { context: "recording the sandbox for --keep-processes".into(), source: e });
            }
        }
        drop((argv, envs));
        // The private temporary folder is in use while the sandbox runs, even if this process
        // is killed (see private_tmp).
        if let Err(e) = tmp.record_sandbox(pid, kept_namespace) {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::wait_pid(pid, false);
            return Err(Error::Io { context: "recording the sandbox of the private temporary folder".into(), source: e });
        }

        let mut child = ChildInner {
            pid,
            status_pipe: Some(status_read),
            status: None,
            contain_orphans: self.strategy == Strategy::LandlockOnly && !self.policy.keep_processes,
            tmp: Some(tmp),
            workspace,
            git_before,
            notices: Vec::new(),
            stdin: stdin.map(File::from),
            stdout: stdout.map(File::from),
            stderr: stderr.map(File::from),
            relays: Some(relays),
            wait_for_relays: !self.policy.keep_processes,
        };
        // The child closes its copy of the error pipe when the command execs (or when init
        // has started it): end of file means success.
        let mut msg = [0u8; 12];
        let n = sys::read_full(err_read.as_raw_fd(), &mut msg).unwrap_or(0);
        timeline::mark(Mark::ExecSeen);
        if n == 12 {
            let step = u32::from_ne_bytes(msg[0..4].try_into().unwrap());
            let errno = i32::from_ne_bytes(msg[4..8].try_into().unwrap());
            let index = u32::from_ne_bytes(msg[8..12].try_into().unwrap()) as usize;
            let _ = child.wait();
            return Err(self.setup_error(step, errno, index, &program, &spec.cwd, mount_plan.as_ref()));
        }
        Ok(child)
    }

    /// The command's working directory, with links resolved when it lies outside the writable
    /// roots and the workspace (the usual case, the workspace itself, costs nothing).
    fn command_dir(&self, cwd: &Path) -> PathBuf {
        let known = self.write_roots.iter().chain(std::iter::once(&self.policy.workspace)).any(|r| cwd.starts_with(r));
        if known {
            cwd.to_path_buf()
        } else {
            std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf())
        }
    }

    fn namespace_plan(&self, actions: &[Action], tmp: &PrivateTmp, pid: bool, net: bool, cwd: &Path) -> Result<NamespacePlan, Error> {
        let mut writable_sources = vec![cstring(tmp.shm_dir())?, cstring(tmp.tmp_dir())?];
        let mut ops = vec![
            MountOp::AttachWritable { tree_index: 0, target: cstring("/dev/shm")? },
            MountOp::AttachWritable { tree_index: 1, target: cstring("/tmp")? },
        ];
        // (path, writable): the writable roots, and the workspace and working directory where
        // the private /tmp would cover them (read-only there), outermost first.
        let mut roots: Vec<(PathBuf, bool)> = self.write_roots.iter().map(|r| (r.clone(), true)).collect();
        for view in [&self.policy.workspace, &cwd.to_path_buf()] {
            let shown = roots.iter().any(|(r, _)| view.starts_with(r));
            if view.starts_with("/tmp") && !shown && view.is_dir() {
                roots.push((view.clone(), false));
            }
        }
        roots.sort_by_key(|(r, _)| r.components().count());
        for (root, writable) in &roots {
            let (tree_index, target) = (writable_sources.len(), cstring(root)?);
            ops.push(if *writable { MountOp::AttachWritable { tree_index, target } } else { MountOp::AttachReadOnly { tree_index, target } });
            writable_sources.push(cstring(root)?);
        }
        if pid {
            // Kernel settings stay read-only even for a command that runs as uid 0 (as root's
            // do: sysctl files check the uid, not capabilities); Landlock denies it as well.
            ops.push(MountOp::ReadOnly { path: cstring("/proc/sys")? });
        }
        for a in actions {
            ops.push(match a {
                Action::Pin(p) => MountOp::Pin { path: cstring(p)? },
                Action::ReadOnly(p) | Action::Placeholder { path: p, .. } => MountOp::ReadOnly { path: cstring(p)? },
            });
        }
        for p in &self.hidden_socket_dirs {
            if cwd.starts_with(p) {
                // Hiding it would hide the working directory: its sockets are covered one by one.
                for s in socket_dirs::sockets_in(p) {
                    ops.push(MountOp::MaskFile { path: cstring(s)?, unreachable_ok: true });
                }
                continue;
            }
            ops.push(MountOp::Hide { path: cstring(p)? });
        }
        if net {
            // Sockets bound elsewhere (a folder under the home directory, say) are covered one
            // by one: connecting needs no write access to their folder, so the read-only
            // mount alone would not stop it.
            let hidden: Vec<&Path> = [Path::new("/tmp"), Path::new("/dev")]
                .into_iter()
                .chain(self.hidden_socket_dirs.iter().map(PathBuf::as_path))
                .chain(self.deny_read.iter().map(|(d, _)| d.as_path()))
                .collect();
            // Sockets inside writable roots are covered too: a listed one is bound by a host
            // process (a sandbox's own sockets live in its network namespace, whose list this
            // is not), e.g. a database or daemon socket in the workspace or in a writable
            // ~/.cache, and offline means no host service.
            for p in self.host_sockets.names(&hidden) {
                ops.push(MountOp::MaskFile { path: cstring(p)?, unreachable_ok: true });
            }
        }
        for (p, dir) in &self.deny_read {
            let path = cstring(p)?;
            ops.push(if *dir { MountOp::MaskDir { path } } else { MountOp::MaskFile { path, unreachable_ok: false } });
        }
        Ok(NamespacePlan {
            uid_map: format!("{0} {0} 1\n", self.euid).into_bytes(),
            gid_map: format!("{0} {0} 1\n", self.egid).into_bytes(),
            writable_sources,
            ops,
            minimal_dev: true,
            console: None,
            mount_proc: pid,
            loopback_up: net,
        })
    }

    fn setup_error(&self, step: u32, errno: i32, index: usize, program: &Path, cwd: &Path, mounts: Option<&NamespacePlan>) -> Error {
        let step = match child::Step::from_u32(step) {
            Some(s) => s,
            None => return Error::Io { context: "sandbox setup".into(), source: io::Error::from_raw_os_error(errno) },
        };
        let mut source = io::Error::from_raw_os_error(errno);
        // The path the failed step was working on, when its index names one.
        let path: Option<PathBuf> = match step {
            child::Step::ChangeDirectory if index == 0 => Some(cwd.to_path_buf()),
            _ => mounts.and_then(|m| m.path_of(step, index)).map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p.to_bytes()))),
        };
        // SAFETY: geteuid has no preconditions.
        if errno == libc::EACCES && unsafe { libc::geteuid() } == 0 && step != child::Step::Exec {
            // Root's capabilities inside the user namespace cover only root's own files: another
            // user's private folder (`sudo palisade` in someone's project) cannot be entered. A
            // folder root owns itself was refused for its mode: say that instead.
            let blocker = path.as_deref().and_then(closed_folder_on_the_way);
            let hint = match blocker {
                Some((dir, uid, _)) if uid != 0 => format!(
                    "; {} belongs to uid {uid}: as root, palisade cannot enter other users' private folders: run it as the owner of the workspace",
                    dir.display()
                ),
                Some((dir, _, mode)) => format!("; {} has mode {mode:03o}, which shuts root's commands out too: give it read and search permission", dir.display()),
                None => "; as root, palisade cannot enter other users' private folders: run it as the owner of the workspace".into(),
            };
            source = io::Error::new(io::ErrorKind::PermissionDenied, format!("{source}{hint}"));
        }
        match step {
            child::Step::Exec => {
                let name = program.display().to_string();
                if child::exec_failure_code(errno) == 127 {
                    Error::NotFound(format!("{name}{}", why_missing_inside(program)))
                } else {
                    // A deny_read entry (perhaps a project file's) over the program or its folder
                    // makes every command fail this way: name it.
                    let denied = self.policy.deny_read.iter().find(|d| program.starts_with(d));
                    match denied {
                        Some(d) => Error::NotExecutable(format!("{name}: {source} (it lies under the deny_read path {}: see `palisade policy` for who set it)", d.display())),
                        None => Error::NotExecutable(format!("{name}: {source}")),
                    }
                }
            }
            _ => {
                let detail = match path {
                    Some(p) => format!(" {}", p.display()),
                    None => format!(" (#{index})"),
                };
                Error::Setup { step: step.describe(), detail, source }
            }
        }
    }
}

/// The first folder on the way to `path` (from `/`) that root's sandbox cannot search, with its
/// owner and mode: root's capabilities there cover no one else's files, so the mode bits decide
/// (the owner's for root's own folders, the group's for group root, the others' otherwise).
fn closed_folder_on_the_way(path: &Path) -> Option<(PathBuf, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut ancestors: Vec<&Path> = path.ancestors().collect();
    ancestors.reverse();
    ancestors.into_iter().find_map(|dir| {
        let m = std::fs::symlink_metadata(dir).ok()?;
        let search = match (m.uid(), m.gid()) {
            (0, _) => 0o100,
            (_, 0) => 0o010,
            _ => 0o001,
        };
        (m.is_dir() && m.mode() & search == 0).then(|| (dir.to_path_buf(), m.uid(), m.mode() & 0o7777))
    })
}

/// The git configuration files that apply to every repository of this user (system, global,
/// XDG), as text: a relative `core.hooksPath` there names a folder in each work tree.
fn global_git_configs() -> Vec<String> {
    let mut files = vec![PathBuf::from("/etc/gitconfig")];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        files.push(Path::new(&home).join(".gitconfig"));
        files.push(Path::new(&home).join(".config/git/config"));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|h| !h.is_empty()) {
        let xdg = Path::new(&x).join("git/config");
        // Usually ~/.config/git/config again: read it once.
        if !files.contains(&xdg) {
            files.push(xdg);
        }
    }
    files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect()
}

/// Where palisade reads the user's configuration (`$XDG_CONFIG_HOME/palisade`, else
/// `~/.config/palisade`; both when they differ), with links in the existing part resolved.
fn own_config_dirs() -> Vec<PathBuf> {
    let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(x) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        dirs.push(x.join("palisade"));
    }
    if let Some(h) = var("HOME") {
        dirs.push(h.join(".config").join("palisade"));
    }
    // Usually the same folder twice (XDG_CONFIG_HOME=~/.config): resolve it once.
    dirs.dedup();
    dirs.into_iter()
        .map(|d| {
            let existing = d.ancestors().find(|a| a.exists()).map(Path::to_path_buf).unwrap_or_default();
            match (std::fs::canonicalize(&existing), d.strip_prefix(&existing)) {
                (Ok(real), Ok(rest)) => real.join(rest),
                _ => d,
            }
        })
        .collect()
}

/// The git directories that `GIT_DIR` / `GIT_COMMON_DIR` name, in palisade's own environment
/// (the user's shell, whose later git commands use it) and in the command's, made absolute.
fn env_git_dirs(command_env: &[(OsString, OsString)]) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let names = ["GIT_DIR", "GIT_COMMON_DIR"];
    let own = names.iter().filter_map(std::env::var_os);
    let cmd = command_env.iter().filter(|(k, _)| names.iter().any(|n| k == n)).map(|(_, v)| v.clone());
    own.chain(cmd)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let p = cwd.join(v);
            std::fs::canonicalize(&p).unwrap_or(p)
        })
        .collect()
}

fn clone_error(errno: i32, flags: libc::c_ulong) -> Error {
    if flags & libc::CLONE_NEWUSER as libc::c_ulong != 0 && matches!(errno, libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EACCES) {
        let why = probe::userns_denial_reason(errno);
        return Error::Unenforceable {
            what: "the sandbox's namespaces".into(),
            why,
            fix: format!("run `{}` where AppArmor restricts user namespaces, or set `[linux] allow_landlock_only = true` to run with Landlock and seccomp only (see `palisade check`)", probe::sudo_setup()),
        };
    }
    Error::Io { context: "starting the sandboxed process".into(), source: io::Error::from_raw_os_error(errno) }
}

/// Why a program found on the host was "not found" by `execve` inside the sandbox: its `#!`
/// interpreter is missing, or the sandbox hides the file (its `/tmp`, `/var/tmp` and `/run` are
/// private). Empty when the host does not have it either.
fn why_missing_inside(program: &Path) -> String {
    let Ok(mut f) = File::open(program) else { return String::new() };
    let mut head = [0u8; 256];
    let n = io::Read::read(&mut f, &mut head).unwrap_or(0);
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let interp = String::from_utf8_lossy(line);
        if let Some(interp) = interp.split_whitespace().next() {
            if !Path::new(interp).exists() {
                return format!(" (its interpreter {interp}, named on its #! line, does not exist)");
            }
        }
    }
    " (it exists on the host, but not inside the sandbox: /tmp, /var/tmp and /run are private there, \
     or its interpreter or loader is hidden)"
        .into()
}

/// Looks the program up in the command's PATH (as the shell would), so that "not found" and
/// "not executable" are reported before anything is set up.
fn resolve_program(program: &OsStr, env: &[(OsString, OsString)]) -> Result<PathBuf, Error> {
    let name = Path::new(program);
    let check = |p: &Path| -> Option<Result<PathBuf, Error>> {
        let meta = std::fs::metadata(p).ok()?;
        if meta.is_dir() {
            return Some(Err(Error::NotExecutable(format!("{}: is a directory", p.display()))));
        }
        let c = CString::new(p.as_os_str().as_bytes()).ok()?;
        // SAFETY: access() on a NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            return Some(Err(Error::NotExecutable(format!("{}: permission denied", p.display()))));
        }
        Some(Ok(p.to_path_buf()))
    };
    if program.as_bytes().contains(&b'/') {
        return check(name).unwrap_or_else(|| Err(Error::NotFound(name.display().to_string())));
    }
    if program.is_empty() {
        return Err(Error::NotFound("(empty program name)".into()));
    }
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone()).unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = None;
    for dir in std::env::split_paths(&path) {
        match check(&dir.join(name)) {
            Some(Ok(p)) => return Ok(p),
            Some(Err(e)) => {
                denied.get_or_insert(e);
            }
            None => {}
        }
    }
    Err(denied.unwrap_or_else(|| Error::NotFound(name.display().to_string())))
}

/// The caller's terminal (a host pty) when the command inherits it as a standard stream: the
/// private /dev/pts does not hold it, so it is shown as /dev/console (for `tty` and ttyname).
fn caller_terminal(spec: &CommandSpec) -> Option<PathBuf> {
    let streams = [&spec.stdin, &spec.stdout, &spec.stderr];
    streams.iter().enumerate().filter(|(_, s)| matches!(s, Stdio::Inherit)).find_map(|(fd, _)| {
        let mut buf = [0u8; 256];
        // SAFETY: ttyname_r writes a NUL-terminated name into buf (of the given length).
        if unsafe { libc::ttyname_r(fd as RawFd, buf.as_mut_ptr().cast(), buf.len()) } != 0 {
            return None;
        }
        let name = std::ffi::CStr::from_bytes_until_nul(&buf).ok()?;
        let path = PathBuf::from(OsStr::from_bytes(name.to_bytes()));
        path.starts_with("/dev/pts/").then_some(path)
    })
}

/// Whether a standard stream the command inherits is a terminal.
fn stdio_has_terminal(spec: &CommandSpec) -> bool {
    let streams = [&spec.stdin, &spec.stdout, &spec.stderr];
    // SAFETY: isatty only inspects the descriptor.
    streams.iter().enumerate().any(|(fd, s)| matches!(s, Stdio::Inherit) && unsafe { libc::isatty(fd as RawFd) } == 1)
}

fn stdio_pair(s: &Stdio, input: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>), Error> {
    let io_err = |e| Error::Io { context: "setting up standard streams".into(), source: e };
    match s {
        Stdio::Inherit => Ok((None, None)),
        // The child opens /dev/null inside the sandbox (StdioFd::Reopen).
        Stdio::Null => Ok((None, None)),
        Stdio::Piped => {
            let (r, w) = sys::pipe().map_err(io_err)?;
            Ok(if input { (Some(w), Some(r)) } else { (Some(r), Some(w)) })
        }
    }
}

/// Kills the sandboxed processes reparented to this (subreaper) process, until none is left.
/// Sandboxed processes are recognised by a seccomp filter and no_new_privs, so that the
/// embedding program's own (unfiltered) children are left alone.
fn kill_orphaned_descendants() {
    fn sandboxed_children() -> Vec<libc::pid_t> {
        let mut kids = Vec::new();
        for task in list_dir(Path::new("/proc/self/task")) {
            let text = std::fs::read_to_string(task.join("children")).unwrap_or_default();
            kids.extend(text.split_whitespace().filter_map(|p| p.parse::<libc::pid_t>().ok()));
        }
        kids.retain(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
            field("NoNewPrivs:").as_deref() == Some("1")
                && field("Seccomp_filters:").and_then(|v| v.parse::<u32>().ok()).unwrap_or(0) >= 1
        });
        kids
    }
    // Bounded: each round kills everything found; processes killed cannot fork any more.
    for _ in 0..64 {
        let kids = sandboxed_children();
        if kids.is_empty() {
            return;
        }
        for pid in kids {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::wait_pid(pid, false);
        }
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
    workspace: Option<Arc<Mutex<placeholders::PlaceholderLocks>>>,
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
}

impl ChildInner {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Sends a signal to the command (through the sandbox's init, which forwards it).
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        sys::kill(self.pid, sig).map_err(io::Error::from_raw_os_error)
    }

    pub fn kill(&mut self) -> io::Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// What the host-side git check found and did after the command (see git_aftercare).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    fn finish(&mut self, raw: i32) -> ExitStatus {
        // The command's own status, if init reported it; otherwise init's (or the direct
        // child's) status.
        let mut status = raw;
        if let Some(pipe) = self.status_pipe.take() {
            let mut buf = [0u8; 4];
            if sys::read_full(pipe.as_raw_fd(), &mut buf) == Ok(4) {
                status = i32::from_ne_bytes(buf);
            }
        }
        let st = ExitStatus::from_raw(status);
        self.status = Some(st);
        if self.contain_orphans {
            kill_orphaned_descendants();
        }
        if let Some(r) = self.relays.take() {
            r.finish(self.wait_for_relays);
        }
        if let Some(before) = self.git_before.take() {
            self.notices = git_aftercare::after_command(before);
        }
        self.tmp.take();
        self.workspace.take();
        st
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
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

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        match sys::wait_pid(self.pid, true).map_err(io::Error::from_raw_os_error)? {
            Some(raw) => Ok(Some(self.finish(raw))),
            None => Ok(None),
        }
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

/// `palisade cleanup`: what runs that were killed before they could clean up left behind: in
/// workspaces, empty placeholders for missing protected paths (see `placeholders`) and the lock
/// files of workspaces nobody uses; on /dev/shm or in the temporary folder, their private
/// temporary folders (see `private_tmp`). What a running sandbox or a kept process relies on
/// stays.
pub(crate) fn cleanup() -> Result<crate::CleanupReport, Error> {
    // One part that cannot be done (its folder unusable) must not keep the other from running:
    // it is reported as a failure, and cleanup exits non-zero.
    let (stale, stale_failure) = match placeholders::remove_stale() {
        Ok(s) => (s, None),
        Err(e) => (Default::default(), Some(format!("placeholders: {e}"))),
    };
    let tmps = private_tmp::remove_leftovers()
        .map_err(|e| Error::Io { context: "cleaning palisade's records of private temporary folders".into(), source: e })?;
    let mut r = crate::CleanupReport { removed: stale.removed + tmps.removed.len(), failed: tmps.failed, ..Default::default() };
    r.failed.extend(stale_failure);
    r.notes.push(format!("{} placeholders left by interrupted runs removed", stale.removed));
    if stale.in_use > 0 {
        r.notes.push(format!(
            "{} writable root(s) in use by a running sandbox or a --keep-processes leftover: their placeholders stay",
            stale.in_use
        ));
    }
    if tmps.removed.is_empty() {
        r.notes.push("no private temporary folders left by killed runs".into());
    }
    for l in &tmps.removed {
        r.notes.push(format!(
            "removed {} ({}), the private temporary folder of a run that was killed (or whose --keep-processes leftovers have ended)",
            l.dir.display(),
            private_tmp::human_size(l.bytes)
        ));
    }
    if tmps.in_use > 0 {
        r.notes.push(format!("{} private temporary folder(s) of running commands stay", tmps.in_use));
    }
    r.notes.extend(tmps.left_alone.iter().cloned());
    r.temp_folders = tmps.removed.into_iter().map(|l| (l.dir, l.bytes)).collect();
    Ok(r)
}

/// `palisade check`'s lines about what killed runs left (removed by `palisade cleanup`).
pub(crate) fn leftover_notes() -> Vec<String> {
    let left = private_tmp::leftovers();
    if left.is_empty() {
        return Vec::new();
    }
    let bytes = left.iter().map(|l| l.bytes).sum();
    let names: Vec<String> = left.iter().map(|l| l.dir.display().to_string()).collect();
    vec![format!(
        "{} private temporary folder(s) left by killed runs ({}: {}): `palisade cleanup` removes them",
        left.len(),
        private_tmp::human_size(bytes),
        names.join(", ")
    )]
}
