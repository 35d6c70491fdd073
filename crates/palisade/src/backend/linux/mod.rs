//! The Linux backend: user, mount, pid and network namespaces, Landlock and seccomp.
//!
//! A command flows through here in two halves. [`Prepared::new`] (once per sandbox) decides the
//! strategy, compiles the seccomp filters and resolves the policy's paths. [`Prepared::spawn`]
//! (per command) resolves protected paths, creates the private temporary directory, builds the
//! Landlock ruleset and a [`child::ChildPlan`], and clones the child, which sets itself up step
//! by step (see `child.rs`) and execs the command. No helper binary is executed in between.

mod child;
mod dirfd;
mod git_aftercare;
mod placeholders;
pub mod probe;
mod rules;
mod seccomp;
mod sys;
pub mod timeline;

use crate::{CommandSpec, Enforcement, Error, ExitStatus, Layer, SandboxOptions, Stdio};
use child::{ChildPlan, MountOp, NamespacePlan, StdioFd};
use timeline::Mark;
use palisade_policy::protected::{self, Action};
use palisade_policy::{Mode, Policy};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use probe::host_report;

/// How this sandbox confines commands on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// User + mount (+ pid, + network) namespaces, with Landlock and seccomp inside.
    Namespaces { pid: bool, net: bool },
    /// Landlock and seccomp only (an explicit user choice where namespaces are unavailable).
    LandlockOnly,
    /// No confinement (mode = full-access): only the environment filter and seccomp's
    /// process protections.
    Unconfined,
}

type SharedLock = Mutex<Option<Arc<Mutex<placeholders::WorkspaceLock>>>>;

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
    /// Where host sockets bound with a relative path were found, by (socket inode, path as
    /// bound): finding one means reading every process's descriptors, so each socket is looked
    /// for until it has been found once. A socket's bound path never changes, and a new socket
    /// has a new key (see `bound_unix_sockets`).
    relative_sockets_found: Mutex<std::collections::HashMap<(String, String), Vec<PathBuf>>>,
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
        // The child captures the writable trees (plus /tmp's and /dev/shm's) into a fixed array.
        if write_roots.len() + 2 > child::MAX_TREES {
            return Err(Error::InvalidInput(format!(
                "{} writable roots is more than Palisade supports ({})",
                write_roots.len(),
                child::MAX_TREES - 2
            )));
        }
        for root in &write_roots {
            if !root.is_dir() {
                return Err(Error::InvalidInput(format!("writable root {} is not a directory", root.display())));
            }
        }
        let strategy = if policy.mode == Mode::FullAccess {
            Strategy::Unconfined
        } else if options.landlock_only {
            Strategy::LandlockOnly
        } else {
            // A network namespace gives offline commands their own loopback (test servers
            // inside keep working) while the host's is unreachable. Keeping processes alive
            // after the command means no pid namespace (its end kills everything in it).
            Strategy::Namespaces { pid: !policy.keep_processes, net: policy.network.is_off() }
        };

        let mut enforcement = Enforcement::default();
        let needs_landlock = match strategy {
            Strategy::LandlockOnly => true,
            // Device nodes ignore read-only mounts, and root owns the raw disks: only
            // Landlock's device rules keep root's commands off them.
            Strategy::Namespaces { .. } => euid == 0,
            Strategy::Unconfined => false,
        };
        if landlock_abi.is_none() && needs_landlock {
            return Err(Error::Unenforceable {
                what: "the filesystem policy".into(),
                why: "Landlock is not available in this kernel (it needs Linux 5.13+ with landlock in the lsm= boot list)".into(),
                fix: "enable Landlock (add `landlock` to the kernel's lsm= parameter) or run Palisade as an unprivileged user with user namespaces".into(),
            });
        }
        if !signals_fenced(strategy, landlock_abi) {
            return Err(Error::Unenforceable {
                what: "keeping the command away from processes outside (signals)".into(),
                why: "without a pid namespace (--keep-processes, or Landlock-only mode) only Landlock's signal scope (ABI 6, Linux 6.12+) stops a command from signalling the user's other processes, and this kernel does not have it".into(),
                fix: "run without --keep-processes (and with user namespaces), or on Linux 6.12+".into(),
            });
        }
        if strategy == Strategy::LandlockOnly && euid == 0 {
            // Landlock has no right for metadata changes, and without a mount namespace nothing
            // is read-only: root (even without capabilities, as the owner) could chmod any of
            // root's files on the host (/etc/shadow 0666).
            return Err(Error::Unenforceable {
                what: "the filesystem policy for root in Landlock-only mode".into(),
                why: "Landlock does not cover chmod/utimes, and without a mount namespace root's commands could change the mode of any of root's files on the host".into(),
                fix: "run Palisade as an unprivileged user, or allow user namespaces (`sudo palisade setup` where AppArmor restricts them)".into(),
            });
        }
        if strategy == Strategy::LandlockOnly {
            // Without a mount namespace nothing can keep a path inside a writable root
            // read-only, nor hide file names.
            if !policy.protected_paths.is_empty() && !write_roots.is_empty() && !options.accept_unprotected_paths {
                return Err(Error::Unenforceable {
                    what: "protected paths (.git/hooks, .git/config, agent folders)".into(),
                    why: "they need a mount namespace, and Landlock-only mode has none".into(),
                    fix: "allow user namespaces (`sudo palisade setup` where AppArmor restricts them), or also set `[linux] allow_unprotected_paths = true` to accept that protected paths are writable".into(),
                });
            }
            if policy.network.is_off() && landlock_abi.is_none_or(|a| a < landlock::ABI::V4) {
                return Err(Error::Unenforceable {
                    what: "network = off".into(),
                    why: "without a network namespace it needs Landlock's TCP rules (ABI 4, Linux 6.7+)".into(),
                    fix: "allow user namespaces, or run with --network on".into(),
                });
            }
        }

        let seccomp = seccomp::build(seccomp::FilterOptions {
            unix_sockets_only: policy.network.is_off() && !matches!(strategy, Strategy::Namespaces { net: true, .. }),
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
            socket_dirs(&write_roots)
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
            relative_sockets_found: Mutex::new(Default::default()),
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
    fn protected_actions(&self, env: &[(OsString, OsString)]) -> Result<(Vec<Action>, Arc<Mutex<placeholders::WorkspaceLock>>), Error> {
        let shared = {
            let mut guard = self.workspace_lock.lock().unwrap_or_else(|e| e.into_inner());
            match &*guard {
                Some(l) => l.clone(),
                None => {
                    let l = Arc::new(Mutex::new(placeholders::WorkspaceLock::acquire(&self.policy.workspace).map_err(
                        |e| Error::Io { context: "locking the workspace's placeholder record".into(), source: e },
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
        let config_dirs = own_config_dirs();
        let view = lock.view();
        for root in &self.write_roots {
            let acts = protected::resolve_with_git_configs(
                root,
                &self.policy.protected_paths,
                &view,
                &git_configs,
                &git_dirs,
            )
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
            // Git indirection can point outside: only what lies in a writable root needs a
            // mount (everything else is read-only already).
            actions.extend(acts.into_iter().filter(|a| self.write_roots.iter().any(|r| protected::within(a.path(), r))));
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
            Action::Placeholder { path, .. } => Some(path.as_path()),
            _ => None,
        });
        let intact = view.intact_placeholders();
        lock.create_placeholders(missing, &intact).map_err(|e| Error::Io {
            context: "creating a placeholder for a missing protected path".into(),
            source: e,
        })?;
        drop(lock);
        Ok((actions, shared))
    }

    pub fn spawn(&self, spec: &CommandSpec) -> Result<ChildInner, Error> {
        timeline::mark(Mark::SpawnStart);
        let program = resolve_program(&spec.program, &spec.env)?;
        timeline::mark(Mark::ProgramResolved);
        let tmp = PrivateTmp::create()?;
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
                let mut plan = self.namespace_plan(&actions, &tmp, pid, net)?;
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
                    block_tcp: self.policy.network.is_off() && !matches!(self.strategy, Strategy::Namespaces { net: true, .. }),
                    scope_abstract_unix: self.policy.network.is_off(),
                    scope_signals: true,
                },
                Some(&self.rule_handles),
            )
            .map_err(|e| Error::Io { context: "building the Landlock ruleset".into(), source: io::Error::other(e) })?,
            None => None,
        };
        timeline::mark(Mark::LandlockRulesetBuilt);

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
        let fd_of = |p: &Option<OwnedFd>| p.as_ref().map_or(StdioFd::Inherit, |f| StdioFd::Fd(f.as_raw_fd()));
        let mut close_fds: Vec<RawFd> = vec![err_read.as_raw_fd(), status_read.as_raw_fd()];
        close_fds.extend([&stdin, &stdout, &stderr].iter().filter_map(|p| p.as_ref().map(|f| f.as_raw_fd())));
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
            stdio: [fd_of(&child_stdin), fd_of(&child_stdout), fd_of(&child_stderr)],
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
            .then(|| git_aftercare::before_command(&self.write_roots, &self.policy.workspace, self.git_memory.clone()));
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
        drop(plan);
        drop((err_write, status_write, child_stdin, child_stdout, child_stderr));
        if let (true, Some(lock)) = (self.policy.keep_processes, &workspace) {
            // Processes may outlive the command: the placeholders must outlive them. The child
            // wrote its mount namespace's inode before exec (or failed, which the error pipe
            // reports below).
            let mut ino = [0u8; 8];
            let got = sys::read_full(status_read.as_raw_fd(), &mut ino).map_err(io::Error::from_raw_os_error);
            let kept = got.and_then(|n| {
                if n == 8 {
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
            return Err(self.setup_error(step, errno, index, &program));
        }
        Ok(child)
    }

    fn namespace_plan(&self, actions: &[Action], tmp: &PrivateTmp, pid: bool, net: bool) -> Result<NamespacePlan, Error> {
        let mut writable_sources = vec![cstring(tmp.shm_dir())?, cstring(tmp.tmp_dir())?];
        let mut ops = vec![
            MountOp::AttachWritable { tree_index: 0, target: cstring("/dev/shm")? },
            MountOp::AttachWritable { tree_index: 1, target: cstring("/tmp")? },
        ];
        let mut roots = self.write_roots.clone();
        roots.sort_by_key(|r| r.components().count());
        for root in &roots {
            ops.push(MountOp::AttachWritable { tree_index: writable_sources.len(), target: cstring(root)? });
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
            ops.push(MountOp::Hide { path: cstring(p)? });
        }
        if net {
            // Sockets bound elsewhere (a folder under the home directory, say) are covered one
            // by one: connecting needs no write access to their folder, so the read-only
            // mount alone would not stop it.
            for p in self.bound_unix_sockets() {
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

    /// The host's bound pathname unix sockets (from /proc/net/unix, as the kernel lists them
    /// now) that the sandbox would still see: outside the hidden folders, the private /tmp and
    /// /dev and the deny-read masks.
    fn bound_unix_sockets(&self) -> Vec<PathBuf> {
        use std::os::unix::fs::FileTypeExt;
        let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
        let mut relative: Vec<(String, String)> = Vec::new();
        let mut found: Vec<PathBuf> = table
            .lines()
            .skip(1)
            .filter_map(|line| {
                // Num RefCount Protocol Flags Type St Inode Path: the path is what follows the
                // seventh field; abstract names start with '@', unnamed sockets have none.
                let mut rest = line;
                let mut inode = "";
                for i in 0..7 {
                    rest = rest.trim_start();
                    let end = rest.find(' ').unwrap_or(rest.len());
                    if i == 6 {
                        inode = &rest[..end];
                    }
                    rest = &rest[end..];
                }
                let path = rest.trim_start();
                if !path.is_empty() && !path.starts_with('/') && !path.starts_with('@') {
                    // Bound relative to the binder's working directory: found below.
                    relative.push((inode.to_string(), path.to_string()));
                    return None;
                }
                // As bound, the path may run through a link (/var/run -> /run): mounts refuse
                // links, so name the socket by where it really is.
                path.starts_with('/').then(|| std::fs::canonicalize(path).ok()).flatten()
            })
            .collect();
        {
            let mut known = self.relative_sockets_found.lock().unwrap_or_else(|e| e.into_inner());
            // Only live sockets are listed: forget the rest (and an inode number reused by a
            // new socket comes with that socket's own path, a new key).
            known.retain(|k, _| relative.contains(k));
            let unknown: Vec<(String, String)> = relative.iter().filter(|k| !known.contains_key(*k)).cloned().collect();
            for (key, paths) in relative_sockets(&unknown) {
                // Not found (yet): looked for again next time.
                if !paths.is_empty() {
                    known.insert(key, paths);
                }
            }
            found.extend(relative.iter().filter_map(|k| known.get(k)).flatten().cloned());
        }
        let mut found: Vec<PathBuf> = found
            .into_iter()
            .filter(|p| {
                let hidden = ["/tmp", "/dev"].iter().any(|d| p.starts_with(d))
                    || self.hidden_socket_dirs.iter().any(|d| p.starts_with(d))
                    || self.deny_read.iter().any(|(d, _)| p.starts_with(d));
                // Sockets inside writable roots are covered too: one listed here is bound by a
                // host process (a sandbox's own sockets live in its network namespace, whose
                // list this is not), e.g. a database or daemon socket in the workspace or in a
                // writable ~/.cache, and offline means no host service.
                !hidden && std::fs::symlink_metadata(p).map(|m| m.file_type().is_socket()).unwrap_or(false)
            })
            .collect();
        found.sort();
        found.dedup();
        found
    }

    fn setup_error(&self, step: u32, errno: i32, index: usize, program: &Path) -> Error {
        let step = match child::Step::from_u32(step) {
            Some(s) => s,
            None => return Error::Io { context: "sandbox setup".into(), source: io::Error::from_raw_os_error(errno) },
        };
        let mut source = io::Error::from_raw_os_error(errno);
        // SAFETY: geteuid has no preconditions.
        if errno == libc::EACCES && unsafe { libc::geteuid() } == 0 && step != child::Step::Exec {
            // Root's capabilities inside the user namespace cover only root's own files: another
            // user's private folder (`sudo palisade` in someone's project) cannot be entered.
            source = io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{source}; as root, palisade cannot enter other users' private folders: run it as the owner of the workspace"),
            );
        }
        match step {
            child::Step::Exec => {
                let name = program.display().to_string();
                if child::exec_failure_code(errno) == 127 {
                    Error::NotFound(format!("{name}{}", why_missing_inside(program)))
                } else {
                    Error::NotExecutable(format!("{name}: {source}"))
                }
            }
            child::Step::ChangeDirectory => Error::Setup { step: step.describe(), detail: String::new(), source },
            _ => Error::Setup { step: step.describe(), detail: format!(" (#{index})"), source },
        }
    }
}

/// The well-known folders that hold unix sockets of host services (/run with the user's
/// runtime folder, docker's and dbus's sockets; /var/run and /var/tmp when they are real folders;
/// $XDG_RUNTIME_DIR wherever it is), unless a writable root lies inside one.
fn socket_dirs(write_roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/run", "/var/run", "/var/tmp"].iter().map(PathBuf::from).collect();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        dirs.push(x);
    }
    dirs.retain(|d| {
        let real_dir = std::fs::symlink_metadata(d).map(|m| m.is_dir()).unwrap_or(false);
        let covered = d != Path::new("/run") && d.starts_with("/run");
        real_dir && !covered && !write_roots.iter().any(|r| r.starts_with(d))
    });
    dirs
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

/// Where the host's sockets bound with a relative path (socket inode, path as bound) are, as far
/// as this user may look: the path taken from the working directory of every process (through
/// `/proc/<pid>/cwd`, which reaches it in the process's own mount namespace), where it names a
/// socket. The binder usually still sits where it bound, and so does any process it handed the
/// socket to: looking from every process's directory finds at least the sockets that looking
/// from the holders' directories would, for one `stat` per process instead of one `readlink`
/// per open descriptor of every process.
fn relative_sockets(relative: &[(String, String)]) -> Vec<((String, String), Vec<PathBuf>)> {
    use std::os::unix::fs::FileTypeExt;
    if relative.is_empty() {
        return Vec::new();
    }
    let procs: Vec<PathBuf> = list_dir(Path::new("/proc"))
        .into_iter()
        .filter(|d| d.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .collect();
    relative
        .iter()
        .map(|(ino, rel)| {
            let mut paths: Vec<PathBuf> = procs
                .iter()
                .map(|d| d.join("cwd").join(rel))
                .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()))
                .filter_map(|p| std::fs::canonicalize(p).ok())
                .collect();
            paths.sort();
            paths.dedup();
            ((ino.clone(), rel.clone()), paths)
        })
        .collect()
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

/// Whether processes outside the sandbox are out of reach of the command's signals: a pid
/// namespace hides them (a host pid does not exist inside); without one, only Landlock's
/// signal scope (ABI 6) stops kill(2) on the user's other processes. Unconfined (full-access)
/// promises nothing.
fn signals_fenced(strategy: Strategy, abi: Option<landlock::ABI>) -> bool {
    match strategy {
        Strategy::Namespaces { pid: true, .. } | Strategy::Unconfined => true,
        Strategy::Namespaces { pid: false, .. } | Strategy::LandlockOnly => abi.is_some_and(|a| a >= landlock::ABI::V6),
    }
}

fn clone_error(errno: i32, flags: libc::c_ulong) -> Error {
    if flags & libc::CLONE_NEWUSER as libc::c_ulong != 0 && matches!(errno, libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EACCES) {
        let why = probe::userns_denial_reason(errno);
        return Error::Unenforceable {
            what: "the sandbox's namespaces".into(),
            why,
            fix: "run `sudo palisade setup` where AppArmor restricts user namespaces, or set `[linux] allow_landlock_only = true` to run with Landlock and seccomp only (see `palisade check`)".into(),
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
        Stdio::Null => {
            let f = std::fs::OpenOptions::new().read(input).write(!input).open("/dev/null").map_err(io_err)?;
            Ok((None, Some(f.into())))
        }
        Stdio::Piped => {
            let (r, w) = sys::pipe().map_err(io_err)?;
            Ok(if input { (Some(w), Some(r)) } else { (Some(r), Some(w)) })
        }
    }
}

/// The command's private temporary directory on the host: `tmp/` becomes `/tmp` (and
/// `TMPDIR`) inside, `shm/` becomes `/dev/shm`. Removed with everything in it afterwards.
struct PrivateTmp {
    dir: PathBuf,
}

impl PrivateTmp {
    fn create() -> Result<PrivateTmp, Error> {
        // On a tmpfs when there is one (creating and removing it costs a fifth of what it
        // does on a journaling filesystem, and the sandbox's /tmp is then memory-backed like
        // bubblewrap's --tmpfs), else in the usual temporary folder.
        let base = if is_tmpfs(Path::new("/dev/shm")) { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let err = |e| Error::Io { context: format!("creating the private temporary directory in {}", base.display()), source: e };
        let mut rnd = [0u8; 8];
        // SAFETY: getrandom writes at most rnd.len() bytes into rnd.
        unsafe { libc::getrandom(rnd.as_mut_ptr().cast(), rnd.len(), 0) };
        let dir = base.join(format!("palisade-{}", rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(err)?;
        let t = PrivateTmp { dir };
        for d in [t.tmp_dir(), t.shm_dir()] {
            std::fs::DirBuilder::new().create(&d).map_err(err)?;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).map_err(err)?;
        }
        Ok(t)
    }
    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }
    fn shm_dir(&self) -> PathBuf {
        self.dir.join("shm")
    }
}

fn is_tmpfs(p: &Path) -> bool {
    const TMPFS_MAGIC: libc::c_long = 0x0102_1994;
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else { return false };
    // SAFETY: statfs fills the zeroed buffer we own; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0;
    // Writable by us (it is world-writable and sticky on every distribution that has it).
    ok && st.f_type as libc::c_long == TMPFS_MAGIC && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        // Usually the command left both folders empty: three rmdirs instead of a walk.
        let empty = [self.tmp_dir(), self.shm_dir(), self.dir.clone()].iter().all(|d| std::fs::remove_dir(d).is_ok());
        if !empty {
            let _ = std::fs::remove_dir_all(&self.dir);
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
    workspace: Option<Arc<Mutex<placeholders::WorkspaceLock>>>,
    /// The host-side git check to run when the command has ended, and what it reported.
    git_before: Option<git_aftercare::Before>,
    notices: Vec<String>,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
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
                std::mem::forget(self.tmp.take());
                std::mem::forget(self.workspace.take());
            }
        }
    }
}

/// `palisade cleanup`: what runs that were killed before they could clean up left in workspaces
/// (empty placeholders for missing protected paths; see `placeholders`), and the lock files of
/// workspaces nobody uses. Placeholders a running sandbox or a kept process relies on stay.
pub(crate) fn cleanup() -> Result<crate::CleanupReport, Error> {
    let stale = placeholders::remove_stale()
        .map_err(|e| Error::Io { context: "cleaning palisade's runtime folder".into(), source: e })?;
    let mut r = crate::CleanupReport { removed: stale.removed, ..Default::default() };
    r.notes.push(format!("{} placeholders left by interrupted runs removed", stale.removed));
    if stale.in_use > 0 {
        r.notes.push(format!(
            "{} workspace(s) in use by a running sandbox or a --keep-processes leftover: their placeholders stay",
            stale.in_use
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_pid_namespace_signals_need_landlock_scopes() {
        let keep = Strategy::Namespaces { pid: false, net: true };
        assert!(signals_fenced(Strategy::Namespaces { pid: true, net: true }, None));
        assert!(signals_fenced(keep, Some(landlock::ABI::V6)));
        for abi in [None, Some(landlock::ABI::V1), Some(landlock::ABI::V5)] {
            assert!(!signals_fenced(keep, abi), "{abi:?}");
            assert!(!signals_fenced(Strategy::LandlockOnly, abi), "{abi:?}");
        }
    }
}

