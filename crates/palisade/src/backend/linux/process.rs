//! The sandboxed process from this side: the child's plan, the clone, the error and status
//! pipes (a failed setup step becomes a typed error naming it), and the reaping of what a
//! command without a pid namespace leaves behind.

use super::child::{self, ChildPlan, NamespacePlan};
use super::job_control::Setup as JobSetup;
use super::network::PortChannel;
use super::observer::Observer;
use super::plan::LinuxPlan;
use super::program::{self, ExecArgs};
use super::strategy::Strategy;
use super::streams::{self, Streams};
use super::{list_dir, probe, rules, sys, Prepared};
use crate::error::Error;
use crate::spec::CommandSpec;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The pipes between this process and the child besides the standard streams: the error pipe
/// (the child writes a failed step there; end of file means the command runs) and the status
/// pipe (init writes the command's wait status; without init, the mount namespace's inode for
/// --keep-processes).
pub struct Pipes {
    pub error: OwnedFd,
    pub status: OwnedFd,
    /// The child's ends (closed here once it has its copies).
    child_ends: Option<(OwnedFd, OwnedFd)>,
}

impl Pipes {
    pub fn open() -> Result<Pipes, Error> {
        let (error, error_w) = sys::pipe().map_err(|e| Error::Io { context: "creating a pipe".into(), source: e })?;
        let (status, status_w) = sys::pipe().map_err(|e| Error::Io { context: "creating a pipe".into(), source: e })?;
        Ok(Pipes { error, status, child_ends: Some((error_w, status_w)) })
    }

    pub fn close_child_ends(&mut self) {
        self.child_ends = None;
    }

    /// The mount namespace's inode the child wrote before exec (--keep-processes without a pid
    /// namespace), or None when it failed before (its error is on the error pipe).
    pub fn read_mount_namespace(&self) -> io::Result<Option<u64>> {
        let mut ino = [0u8; 8];
        let n = sys::read_full(self.status.as_raw_fd(), &mut ino).map_err(io::Error::from_raw_os_error)?;
        Ok((n == 8).then(|| u64::from_ne_bytes(ino)))
    }

    /// Waits until the command runs (end of file on the error pipe: the child closes its copy
    /// when the command execs, or when init has started it), or returns the step that failed.
    pub fn wait_for_exec(&self) -> Option<SetupFailure> {
        let mut msg = [0u8; 12];
        let n = sys::read_full(self.error.as_raw_fd(), &mut msg).unwrap_or(0);
        let word = |i: usize| <[u8; 4]>::try_from(&msg[i..i + 4]).unwrap_or_default();
        (n == 12).then(|| SetupFailure {
            step: u32::from_ne_bytes(word(0)),
            errno: i32::from_ne_bytes(word(4)),
            index: u32::from_ne_bytes(word(8)) as usize,
        })
    }
}

/// What the child reported on the error pipe: the step (child::Step), its errno, and the index
/// of what it was working on (a mount operation, a captured tree).
pub struct SetupFailure {
    pub step: u32,
    pub errno: i32,
    pub index: usize,
}

impl Prepared {
    /// Everything the child needs, prepared here: it allocates nothing after the clone.
    // One argument per part `spawn` made before, in its order (see mod.rs): bundling them would
    // only move the list into a struct built for this one call.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn child_plan(
        &self,
        spec: &CommandSpec,
        namespaces: Option<NamespacePlan>,
        landlock: Option<OwnedFd>,
        exec: &ExecArgs,
        streams: &Streams,
        pipes: &Pipes,
        proxy_channel: Option<&PortChannel>,
        observer: Option<&Observer>,
        job: Option<&JobSetup>,
    ) -> Result<ChildPlan, Error> {
        let LinuxPlan { strategy, landlock: abi, .. } = self.plan;
        let pid_ns = matches!(strategy, Strategy::Namespaces { pid: true });
        let in_namespaces = matches!(strategy, Strategy::Namespaces { .. });
        let (error_w, status_w) = pipes.child_ends.as_ref().map_or((-1, -1), |(e, s)| (e.as_raw_fd(), s.as_raw_fd()));
        let (argv_ptrs, envp_ptrs) = exec.pointers();
        let mut close_fds = vec![pipes.error.as_raw_fd(), pipes.status.as_raw_fd()];
        close_fds.extend(streams.parent_fds());
        close_fds.extend(proxy_channel.map(PortChannel::parent_fd));
        close_fds.extend(observer.map(Observer::parent_fd));
        close_fds.extend(job.map(JobSetup::parent_fds).into_iter().flatten());
        Ok(ChildPlan {
            namespaces,
            init: pid_ns,
            parent_death_signal: spec.kill_on_parent_death,
            parent_pid: std::process::id() as libc::pid_t,
            drop_capabilities: in_namespaces || sys::has_capabilities(),
            last_capability: self.host.last_capability,
            landlock,
            landlock_device_access: abi
                .map_or(0, |abi| rules::device_access(abi, strategy == Strategy::LandlockOnly).bits()),
            seccomp: self.seccomp.clone(),
            program: exec.program.clone(),
            argv_ptrs,
            envp_ptrs,
            cwd: program::cstring(&spec.cwd)?,
            stdio: streams.for_child(),
            error_fd: error_w,
            status_fd: status_w,
            close_fds,
            command_stack: if pid_ns { vec![0; 64 * 1024] } else { Vec::new() },
            report_mount_namespace: self.policy.keep_processes && in_namespaces && !pid_ns,
            // A command given no terminal must not reach the caller's controlling terminal
            // through /dev/tty either (to read what the user types to someone else).
            new_session: !streams::has_terminal(spec),
            proxy_port: self.plan.network.proxy_port().zip(proxy_channel.map(PortChannel::child_fd)),
            observer: self.observer_program.clone().zip(observer.map(Observer::child_fd)),
            job_channel: job.map(JobSetup::child_fd),
        })
    }
}

/// The namespaces the child is cloned into.
pub fn clone_flags(plan: &LinuxPlan) -> libc::c_ulong {
    let mut flags: libc::c_ulong = 0;
    if let Strategy::Namespaces { pid } = plan.strategy {
        // A private IPC namespace too: System V shared memory, message queues and
        // semaphores, and POSIX message queues, are per IPC namespace, and uid 0 inside
        // (root's commands) owns root's segments on the host without any capability.
        flags |= (libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWIPC) as libc::c_ulong;
        if pid {
            flags |= libc::CLONE_NEWPID as libc::c_ulong;
        }
        if plan.network.new_namespace() {
            flags |= libc::CLONE_NEWNET as libc::c_ulong;
        }
    }
    flags
}

/// The children this process started for commands and has not reaped yet. Their trees are not
/// orphans: ending one command's orphans must not kill another command running beside it (an
/// embedding program, the MCP server or a test harness running several at once).
static STARTED: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

/// A child of [`start`] was reaped: its pid may be reused from now on.
pub fn note_reaped(pid: libc::pid_t) {
    STARTED.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| *p != pid);
}

/// Clones the child, which runs `plan` (see child.rs); returns its pid.
pub fn start(plan: &mut ChildPlan, flags: libc::c_ulong) -> Result<libc::pid_t, Error> {
    // Held across the clone: another thread's kill_orphaned_descendants waits until the new
    // child is listed (it carries a seccomp filter before this thread resumes).
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    let pid = clone_child(plan, flags)?;
    started.push(pid);
    Ok(pid)
}

fn clone_child(plan: &mut ChildPlan, flags: libc::c_ulong) -> Result<libc::pid_t, Error> {
    if plan.init {
        // The child becomes the sandbox's init and never execs, so it cannot share our
        // memory (we would wait for it forever): a fork-style clone.
        // SAFETY: the child only runs child::run, which makes raw system calls on data
        // prepared above and never returns; it allocates nothing and takes no locks.
        match unsafe { sys::clone_process(flags) } {
            Ok(0) => child::run(plan),
            Ok(pid) => Ok(pid),
            Err(errno) => Err(clone_error(errno, flags)),
        }
    } else {
        // The child execs the command itself: it shares our memory until then (nothing is
        // copied, however large the embedding program), and we wait for that moment.
        let mut stack = vec![0u8; 64 * 1024];
        let arg = plan as *mut ChildPlan as *mut libc::c_void;
        // SAFETY: run_shared makes only raw system calls on the plan, which stays alive and
        // untouched (this thread is suspended) until the child execs or exits.
        unsafe { sys::spawn_sharing_memory(&mut stack, child::run_shared, arg, flags as libc::c_int) }
            .map_err(|errno| clone_error(errno, flags))
    }
}

fn clone_error(errno: i32, flags: libc::c_ulong) -> Error {
    if flags & libc::CLONE_NEWUSER as libc::c_ulong != 0
        && matches!(errno, libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EACCES)
    {
        let why = probe::userns_denial_reason(errno);
        return Error::Unenforceable {
            what: "the sandbox's namespaces".into(),
            why,
            fix: format!("run `{}` where AppArmor restricts user namespaces, or set `[linux] allow_landlock_only = true` to run with Landlock and seccomp only (see `palisade check`)", probe::sudo_setup()),
        };
    }
    Error::Io { context: "starting the sandboxed process".into(), source: io::Error::from_raw_os_error(errno) }
}

/// Ends a child that was started but cannot be handed over (a later step failed): kills it,
/// reaps it, and returns that step's error.
pub fn abandon(pid: libc::pid_t, error: Error) -> Error {
    let _ = sys::kill(pid, libc::SIGKILL);
    let _ = sys::wait_pid(pid, false);
    note_reaped(pid);
    error
}

/// Orphans of the command are reparented here instead of to init, so they can be found and
/// ended with it (see kill_orphaned_descendants).
pub fn become_subreaper() -> Result<(), Error> {
    sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).map_err(|e| Error::Io {
        context: "becoming a child subreaper".into(),
        source: io::Error::from_raw_os_error(e),
    })
}

/// The error a failed setup step becomes: the step, and the path it was working on.
pub fn setup_error(
    f: &SetupFailure,
    program: &Path,
    cwd: &Path,
    mounts: Option<&NamespacePlan>,
    deny_read: &[PathBuf],
) -> Error {
    let SetupFailure { step, errno, index } = *f;
    let step = match child::Step::from_u32(step) {
        Some(s) => s,
        None => return Error::Io { context: "sandbox setup".into(), source: io::Error::from_raw_os_error(errno) },
    };
    let mut source = io::Error::from_raw_os_error(errno);
    // The path the failed step was working on, when its index names one.
    let path: Option<PathBuf> = match step {
        child::Step::ChangeDirectory if index == 0 => Some(cwd.to_path_buf()),
        _ => mounts
            .and_then(|m| m.path_of(step, index))
            .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p.to_bytes()))),
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
                Error::NotFound(format!("{name}{}", program::why_missing_inside(program)))
            } else {
                // A deny_read entry (perhaps a project file's) over the program or its folder
                // makes every command fail this way: name it.
                let denied = deny_read.iter().find(|d| program.starts_with(d));
                match denied {
                    Some(d) => Error::NotExecutable(format!(
                        "{name}: {source} (it lies under the deny_read path {}: see `palisade policy` for who set it)",
                        d.display()
                    )),
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

/// The command's own wait status, if init reported it on the status pipe; otherwise `raw`
/// (init's, or the direct child's).
pub fn command_status(status_pipe: Option<OwnedFd>, raw: i32) -> i32 {
    let Some(pipe) = status_pipe else { return raw };
    let mut buf = [0u8; 4];
    if sys::read_full(pipe.as_raw_fd(), &mut buf) == Ok(4) {
        i32::from_ne_bytes(buf)
    } else {
        raw
    }
}

/// Kills the sandboxed processes reparented to this (subreaper) process, until none is left.
/// Sandboxed processes are recognised by a seccomp filter and no_new_privs, so that the
/// embedding program's own (unfiltered) children are left alone, and the commands it started
/// and has not reaped (running beside this one) are not orphans.
pub fn kill_orphaned_descendants() {
    fn sandboxed_children() -> Vec<libc::pid_t> {
        let mut kids = Vec::new();
        for task in list_dir(Path::new("/proc/self/task")) {
            let text = std::fs::read_to_string(task.join("children")).unwrap_or_default();
            kids.extend(text.split_whitespace().filter_map(|p| p.parse::<libc::pid_t>().ok()));
        }
        let started = STARTED.lock().unwrap_or_else(|e| e.into_inner()).clone();
        kids.retain(|pid| !started.contains(pid));
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
