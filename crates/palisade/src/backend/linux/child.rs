//! What runs in the new process between `clone` and `execve`, step by step.
//!
//! Everything here works on data prepared by the parent ([`ChildPlan`]) and makes only raw system
//! calls: no allocation, no locks, so it is safe after cloning a multi-threaded process. A failed
//! step is reported to the parent over the error pipe as `(step, errno, index)` and the process
//! exits; the parent turns that into a typed [`crate::error::Error::Setup`].
//!
//! Longer than the ~600 lines files here aim at, on purpose: the steps run in one order, and
//! reading them top to bottom in one file is how the sandbox's setup is reviewed.

use super::sys::{self, Errno};
use super::timeline::{mark, Mark};
use std::ffi::CString;
use std::os::fd::RawFd;

/// The steps of setting up a sandboxed process, in order. The parent names the failed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    WatchParent = 1,
    WriteIdMaps,
    MakeMountsPrivate,
    CaptureWritableTrees,
    MakeRootReadOnly,
    BuildMinimalDev,
    AttachWritableTree,
    AttachReadOnlyView,
    PinDirectory,
    ProtectPath,
    MaskDenyRead,
    HideSocketDir,
    MountProc,
    BringUpLoopback,
    OpenProxyPort,
    DropCapabilities,
    ApplyLandlock,
    ApplySeccomp,
    ObserveDenials,
    StartCommand,
    SetUpStdio,
    ChangeDirectory,
    Exec,
}

impl Step {
    /// Every step, in order.
    const ALL: [Step; 23] = [
        Step::WatchParent,
        Step::WriteIdMaps,
        Step::MakeMountsPrivate,
        Step::CaptureWritableTrees,
        Step::MakeRootReadOnly,
        Step::BuildMinimalDev,
        Step::AttachWritableTree,
        Step::AttachReadOnlyView,
        Step::PinDirectory,
        Step::ProtectPath,
        Step::MaskDenyRead,
        Step::HideSocketDir,
        Step::MountProc,
        Step::BringUpLoopback,
        Step::OpenProxyPort,
        Step::DropCapabilities,
        Step::ApplyLandlock,
        Step::ApplySeccomp,
        Step::ObserveDenials,
        Step::StartCommand,
        Step::SetUpStdio,
        Step::ChangeDirectory,
        Step::Exec,
    ];

    pub fn from_u32(v: u32) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u32 == v)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Step::WatchParent => "watch the parent process",
            Step::WriteIdMaps => "map the user and group ids into the user namespace",
            Step::MakeMountsPrivate => "make the mount namespace private",
            Step::CaptureWritableTrees => "capture a writable root's mount tree",
            Step::MakeRootReadOnly => "make the filesystem read-only",
            Step::BuildMinimalDev => "build the minimal /dev",
            Step::AttachWritableTree => "attach a writable root",
            Step::AttachReadOnlyView => "show the workspace or working directory (read-only) inside the private /tmp",
            Step::PinDirectory => "pin a directory on the way to a protected path",
            Step::ProtectPath => "make a protected path read-only",
            Step::MaskDenyRead => "hide a deny-read path",
            Step::HideSocketDir => "hide a folder of unix sockets",
            Step::MountProc => "mount a private /proc",
            Step::BringUpLoopback => "bring up the private loopback interface",
            Step::OpenProxyPort => "open the network proxy's port (127.0.0.1:3128) inside the sandbox",
            Step::DropCapabilities => "drop capabilities",
            Step::ApplyLandlock => "apply the Landlock ruleset",
            Step::ApplySeccomp => "apply the seccomp filter",
            Step::ObserveDenials => {
                "start the denial observer (a seccomp user-notification filter, Linux 5.5 or later)"
            }
            Step::StartCommand => "start the command under the sandbox's init",
            Step::SetUpStdio => "set up standard input and output",
            Step::ChangeDirectory => "change to the working directory",
            Step::Exec => "execute the command",
        }
    }
}

/// One filesystem operation in the new mount namespace. Paths are as seen inside.
#[derive(Debug)]
pub enum MountOp {
    /// Bind a writable tree (captured before anything was covered) at `target`, creating the
    /// directory first if it is missing (a writable root under the private /tmp).
    AttachWritable { tree_index: usize, target: CString },
    /// Bind a tree (captured like the writable ones) read-only at `target`, creating the
    /// directory first: the workspace or working directory of a read-only command when it lies
    /// under /tmp, which the private /tmp covers.
    AttachReadOnly { tree_index: usize, target: CString },
    /// Bind a directory onto itself so that it cannot be renamed or removed.
    Pin { path: CString },
    /// Bind a path onto itself read-only (recursively).
    ReadOnly { path: CString },
    /// Cover a directory with an empty, unreadable, read-only tmpfs.
    MaskDir { path: CString },
    /// Cover a directory with an empty, read-only tmpfs (socket folders when offline).
    Hide { path: CString },
    /// Cover a file with /dev/null, read-only. `unreachable_ok`: skip a file that this process
    /// cannot reach (EACCES: a host socket in another user's private folder, listed by the
    /// kernel but out of reach of the command too, whose credentials are the same or fewer).
    MaskFile { path: CString, unreachable_ok: bool },
}

#[derive(Debug)]
pub struct NamespacePlan {
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
    /// Sources of the writable trees (captured first, in this order).
    pub writable_sources: Vec<CString>,
    pub ops: Vec<MountOp>,
    /// Replace /dev by a tmpfs holding only the devices in `DEVICES` (no raw disks, no GPU,
    /// no kvm), the caller's terminals (/dev/pts) and the private /dev/shm.
    pub minimal_dev: bool,
    /// The caller's terminal (a host /dev/pts node), bound at /dev/console.
    pub console: Option<CString>,
    pub mount_proc: bool,
    pub loopback_up: bool,
}

impl NamespacePlan {
    /// The paths made read-only inside writable trees (protected paths, their placeholders).
    pub fn read_only_paths(&self) -> Vec<std::path::PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        let path = |p: &CString| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(p.to_bytes()));
        self.ops
            .iter()
            .filter_map(|op| if let MountOp::ReadOnly { path: p } = op { Some(path(p)) } else { None })
            .collect()
    }

    /// The path that the step failing at `index` worked on, where the index names one (an
    /// operation of `ops`, or a writable tree being captured).
    pub fn path_of(&self, step: Step, index: usize) -> Option<&std::ffi::CStr> {
        match step {
            Step::CaptureWritableTrees => self.writable_sources.get(index).map(CString::as_c_str),
            Step::AttachWritableTree
            | Step::AttachReadOnlyView
            | Step::PinDirectory
            | Step::ProtectPath
            | Step::MaskDenyRead
            | Step::HideSocketDir => match self.ops.get(index)? {
                MountOp::AttachWritable { target: p, .. }
                | MountOp::AttachReadOnly { target: p, .. }
                | MountOp::Pin { path: p }
                | MountOp::ReadOnly { path: p }
                | MountOp::MaskDir { path: p }
                | MountOp::Hide { path: p }
                | MountOp::MaskFile { path: p, .. } => Some(p),
            },
            _ => None,
        }
    }
}

/// Device nodes bound into the minimal /dev.
pub const DEVICES: &[&std::ffi::CStr] =
    &[c"/dev/null", c"/dev/zero", c"/dev/full", c"/dev/random", c"/dev/urandom", c"/dev/tty"];
/// Symbolic links of the minimal /dev (link, target).
const DEV_LINKS: &[(&std::ffi::CStr, &std::ffi::CStr)] = &[
    (c"/dev/ptmx", c"pts/ptmx"),
    (c"/dev/fd", c"/proc/self/fd"),
    (c"/dev/stdin", c"/proc/self/fd/0"),
    (c"/dev/stdout", c"/proc/self/fd/1"),
    (c"/dev/stderr", c"/proc/self/fd/2"),
];

/// How many writable trees the child can capture (writable roots plus /tmp and /dev/shm).
pub const MAX_TREES: usize = 64;

/// Where a standard stream of the command comes from.
#[derive(Clone, Copy, Debug)]
pub enum StdioFd {
    Inherit,
    Fd(RawFd),
    /// Opened by the command's process, inside the sandbox, in place of the inherited stream:
    /// /dev/null, or the caller's terminal at /dev/console. Both are read-only binds there, so
    /// the command cannot change the host node's mode, owner, times or attributes through the
    /// descriptor (those calls check the descriptor's mount; the inherited one is the host's
    /// writable /dev). If the open fails and `or_inherit`, the inherited stream stays.
    Reopen {
        path: &'static std::ffi::CStr,
        flags: libc::c_int,
        or_inherit: bool,
    },
    /// A regular file given as stdin: opened again read-only by its path inside the sandbox
    /// (where that path is on a read-only mount) and moved to the inherited offset, if it is
    /// still the same file (device and inode); otherwise the inherited descriptor stays.
    /// `path` points into a `CString` the parent keeps alive until the child has exec'd.
    ReopenInput {
        path: *const libc::c_char,
        dev: u64,
        ino: u64,
        offset: i64,
    },
}

/// Everything the child needs, prepared by the parent.
pub struct ChildPlan {
    pub namespaces: Option<NamespacePlan>,
    /// The sandbox's init forks the command and forwards signals (pid namespace).
    pub init: bool,
    pub parent_death_signal: bool,
    pub parent_pid: libc::pid_t,
    pub drop_capabilities: bool,
    pub last_capability: u32,
    /// The Landlock ruleset (its descriptor: the child adds the rule for its private /dev/pts,
    /// which only exists inside, before enforcing it).
    pub landlock: Option<std::os::fd::OwnedFd>,
    /// The Landlock rights every command has on device nodes (the private /dev/pts's rule).
    pub landlock_device_access: u64,
    /// The seccomp filter (one program; see seccomp.rs).
    pub seccomp: seccompiler::BpfProgram,
    pub program: CString,
    pub argv_ptrs: Vec<*const libc::c_char>,
    pub envp_ptrs: Vec<*const libc::c_char>,
    pub cwd: CString,
    pub stdio: [StdioFd; 3],
    pub error_fd: RawFd,
    pub status_fd: RawFd,
    /// Descriptors the child must close right away (the parent's ends of pipes).
    pub close_fds: Vec<RawFd>,
    /// The stack init starts the command on (it shares init's memory until exec).
    pub command_stack: Vec<u8>,
    /// Start the command in a new session, without a controlling terminal (none of its standard
    /// streams is a terminal: /dev/tty would otherwise still reach the caller's).
    pub new_session: bool,
    /// Write the mount namespace's inode to the status pipe (no init then uses that pipe).
    pub report_mount_namespace: bool,
    /// network = allow: listen on 127.0.0.1:port of the command's own network namespace and
    /// send that socket to the parent over this unix socket (the parent serves it with the
    /// proxy), then close both.
    pub proxy_port: Option<(u16, RawFd)>,
    /// --report-denials: load the observer's filter (see observer.rs) with a new listener and
    /// send the listener to the parent over this unix socket, then close both.
    pub observer: Option<(seccompiler::BpfProgram, RawFd)>,
    /// The command runs as the terminal's foreground job (see job_control.rs): init makes its
    /// own process group, which the command joins, waits for one byte on this socket (the
    /// parent has handed the terminal over, or not) before it starts the command, and reports
    /// the stop signals its group gets there.
    pub job_channel: Option<RawFd>,
}

/// Signals that the init process forwards to the command when another process sends them.
pub const FORWARDED_SIGNALS: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
];

struct Failure {
    step: Step,
    errno: Errno,
    index: u32,
}

fn at(step: Step, index: usize) -> impl Fn(Errno) -> Failure {
    move |errno| Failure { step, errno, index: index as u32 }
}

fn report(fd: RawFd, f: &Failure) {
    let mut msg = [0u8; 12];
    msg[0..4].copy_from_slice(&(f.step as u32).to_ne_bytes());
    msg[4..8].copy_from_slice(&f.errno.to_ne_bytes());
    msg[8..12].copy_from_slice(&f.index.to_ne_bytes());
    let _ = sys::write_all(fd, &msg);
}

/// Exit status the child uses when a setup step failed (the parent reports the step).
pub const SETUP_FAILED: i32 = 125;

/// The child's entry point when it shares the parent's memory (see `sys::spawn_sharing_memory`).
pub extern "C" fn run_shared(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: arg is the parent's ChildPlan, alive and untouched while the parent is suspended
    // (CLONE_VFORK) until this process execs or exits.
    run(unsafe { &mut *(arg as *mut ChildPlan) })
}

/// The child's entry point after `clone`. Never returns.
pub fn run(plan: &mut ChildPlan) -> ! {
    match set_up_and_exec(plan) {
        Ok(never) => match never {},
        Err(f) => {
            report(plan.error_fd, &f);
            sys::exit(if f.step == Step::Exec { exec_failure_code(f.errno) } else { SETUP_FAILED })
        }
    }
}

pub fn exec_failure_code(errno: Errno) -> i32 {
    if errno == libc::ENOENT || errno == libc::ENOTDIR {
        127
    } else {
        126
    }
}

enum Never {}

fn set_up_and_exec(plan: &mut ChildPlan) -> Result<Never, Failure> {
    mark(Mark::ChildRunning);
    for &fd in &plan.close_fds {
        sys::close(fd);
    }
    if plan.parent_death_signal {
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong).map_err(at(Step::WatchParent, 0))?;
        // The parent may have died before the signal was armed (our parent pid is 0 in a new
        // pid namespace, so compare against "still the same parent" only outside one).
        if !plan.init && sys::getppid() != plan.parent_pid {
            sys::exit(SETUP_FAILED);
        }
    }
    let ruleset = plan.landlock.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    if let Some(ns) = &plan.namespaces {
        set_up_namespaces(ns, ruleset, plan.landlock_device_access)?;
        if plan.report_mount_namespace {
            // For keep_processes: the parent must know this namespace even if the command
            // exits at once (its leftovers keep it alive). 8 bytes fit the empty pipe.
            let ino = sys::inode_of(c"/proc/self/ns/mnt").map_err(at(Step::MakeMountsPrivate, 1))?;
            sys::write_all(plan.status_fd, &ino.to_ne_bytes()).map_err(at(Step::MakeMountsPrivate, 2))?;
        }
    }
    if let Some((port, channel)) = plan.proxy_port {
        // In the command's network namespace, its loopback up: the only way out it will have.
        let listener = sys::listen_on_loopback(port).map_err(at(Step::OpenProxyPort, 0))?;
        let sent = sys::send_fd(channel, listener);
        sys::close(listener);
        sys::close(channel);
        sent.map_err(at(Step::OpenProxyPort, 1))?;
    }
    if plan.drop_capabilities {
        sys::drop_all_capabilities(plan.last_capability).map_err(at(Step::DropCapabilities, 0))?;
        mark(Mark::CapabilitiesDropped);
    }
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(at(Step::ApplyLandlock, 0))?;
    if let Some(fd) = ruleset {
        // This process's own copy of the descriptor (the parent closes its copy itself).
        sys::landlock_restrict_self(fd).map_err(at(Step::ApplyLandlock, 1))?;
        sys::close(fd);
    }
    mark(Mark::LandlockApplied);
    // no_new_privs is set above.
    sys::seccomp_set_filter(&plan.seccomp).map_err(at(Step::ApplySeccomp, 0))?;
    mark(Mark::SeccompApplied);
    if let Some((program, channel)) = &plan.observer {
        // Last: from here on, watched calls wait for the parent's answer, which it can only
        // give once it has the listener. Sending it is not a watched call.
        let listener = sys::seccomp_set_filter_with_listener(program).map_err(at(Step::ObserveDenials, 0))?;
        let sent = sys::send_fd(*channel, listener);
        sys::close(listener);
        sys::close(*channel);
        sent.map_err(at(Step::ObserveDenials, 1))?;
    }
    if plan.init {
        run_init(plan)
    } else {
        exec_command(plan)
    }
}

fn set_up_namespaces(ns: &NamespacePlan, ruleset: Option<RawFd>, device_access: u64) -> Result<(), Failure> {
    let step = Step::WriteIdMaps;
    sys::write_file(c"/proc/self/setgroups", b"deny").map_err(at(step, 0))?;
    sys::write_file(c"/proc/self/uid_map", &ns.uid_map).map_err(at(step, 1))?;
    sys::write_file(c"/proc/self/gid_map", &ns.gid_map).map_err(at(step, 2))?;
    mark(Mark::IdMapsWritten);

    sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None).map_err(at(Step::MakeMountsPrivate, 0))?;
    mark(Mark::MountsPrivate);

    // Capture the writable trees before anything covers them (a workspace under /tmp is hidden
    // once the private /tmp is attached). A fixed array avoids allocating (the parent refuses
    // more roots than it holds).
    let mut trees = [-1 as RawFd; MAX_TREES];
    for (i, src) in ns.writable_sources.iter().enumerate().take(MAX_TREES) {
        // The sources are canonical: a symbolic link on the way now means that a command in
        // another sandbox swapped a directory for one since the parent resolved them, and
        // following it would make the link's target writable. Refuse (the run fails closed).
        let at_src = sys::open_path_nofollow(src).map_err(at(Step::CaptureWritableTrees, i))?;
        let tree = sys::clone_tree_at(at_src);
        sys::close(at_src);
        trees[i] = tree.map_err(at(Step::CaptureWritableTrees, i))?;
    }

    let mut devices = [-1 as RawFd; 8];
    if ns.minimal_dev {
        let step = Step::BuildMinimalDev;
        for (i, dev) in DEVICES.iter().enumerate() {
            devices[i] = sys::clone_mount_tree(dev).map_err(at(step, i))?;
        }
        if let Some(console) = &ns.console {
            devices[DEVICES.len()] = sys::clone_mount_tree(console).map_err(at(step, 40))?;
        }
    }

    mark(Mark::TreesCaptured);
    sys::set_mount_readonly(c"/", true, true).map_err(at(Step::MakeRootReadOnly, 0))?;
    mark(Mark::RootReadOnly);

    if ns.minimal_dev {
        build_minimal_dev(&devices, ruleset, device_access)?;
        mark(Mark::MinimalDevBuilt);
    }
    if ns.mount_proc {
        // A fresh /proc for the pid namespace, read-only (as the host's /proc is without a pid
        // namespace): chmod on a global entry changes it for every procfs instance, so root
        // inside could `chmod 0222 /proc/sysrq-trigger` for every host user. Writes through
        // /proc/self/fd/N reach the file's own mount and still work.
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;
        sys::mount(Some(c"proc"), c"/proc", Some(c"proc"), flags, None).map_err(at(Step::MountProc, 0))?;
        mark(Mark::ProcMounted);
    }

    let mut attaching = true;
    for (i, op) in ns.ops.iter().enumerate() {
        if attaching && !matches!(op, MountOp::AttachWritable { .. } | MountOp::AttachReadOnly { .. }) {
            attaching = false;
            mark(Mark::WritableAttached);
        }
        match op {
            MountOp::AttachWritable { tree_index, target } => {
                let step = Step::AttachWritableTree;
                // A target under the private /tmp may not exist yet; create it (and its parents).
                make_dirs(target).map_err(at(step, i))?;
                sys::attach_mount_tree(trees[*tree_index], target).map_err(at(step, i))?;
            }
            MountOp::AttachReadOnly { tree_index, target } => {
                let step = Step::AttachReadOnlyView;
                make_dirs(target).map_err(at(step, i))?;
                // Read-only while still detached: never writable on top.
                sys::set_tree_readonly(trees[*tree_index]).map_err(at(step, i))?;
                sys::attach_mount_tree(trees[*tree_index], target).map_err(at(step, i))?;
            }
            MountOp::Pin { path } => {
                // A copy of the directory's own mount tree on top of it: contents stay as they
                // are (and writable), but the directory is now a mount point.
                let step = Step::PinDirectory;
                let target = sys::open_path_nofollow(path).map_err(at(step, i))?;
                let tree = sys::clone_tree_at(target).map_err(at(step, i));
                let r = tree.and_then(|t| {
                    let r = sys::attach_tree_at(t, target).map_err(at(step, i));
                    sys::close(t);
                    r
                });
                sys::close(target);
                r?;
            }
            MountOp::ReadOnly { path } => {
                // Made read-only while still detached, then attached: never writable on top.
                let step = Step::ProtectPath;
                let target = sys::open_path_nofollow(path).map_err(at(step, i))?;
                let r = sys::clone_tree_at(target).and_then(|t| {
                    let r = sys::set_tree_readonly(t).and_then(|()| sys::attach_tree_at(t, target));
                    sys::close(t);
                    r
                });
                sys::close(target);
                r.map_err(at(step, i))?;
            }
            MountOp::MaskDir { path } => {
                let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                mount_on(path, Some(c"tmpfs"), Some(c"tmpfs"), flags, Some(c"mode=000,size=4k"), true)
                    .map_err(at(Step::MaskDenyRead, i))?;
            }
            MountOp::Hide { path } => {
                let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                mount_on(path, Some(c"tmpfs"), Some(c"tmpfs"), flags, Some(c"mode=755,size=4k"), false)
                    .map_err(at(Step::HideSocketDir, i))?;
            }
            MountOp::MaskFile { path, unreachable_ok } => {
                let step = Step::MaskDenyRead;
                let target = match sys::open_path_nofollow(path) {
                    Ok(fd) => fd,
                    Err(libc::ENOENT) => continue,
                    Err(libc::EACCES) if *unreachable_ok => continue,
                    Err(e) => return Err(at(step, i)(e)),
                };
                let r = sys::open_path_nofollow(c"/dev/null").and_then(|null| {
                    let r = sys::clone_tree_at(null).and_then(|t| {
                        let r = sys::set_tree_readonly(t).and_then(|()| sys::attach_tree_at(t, target));
                        sys::close(t);
                        r
                    });
                    sys::close(null);
                    r
                });
                sys::close(target);
                r.map_err(at(step, i))?;
            }
        }
    }
    mark(if attaching { Mark::WritableAttached } else { Mark::MountOpsDone });
    for &fd in trees.iter().chain(devices.iter()).filter(|fd| **fd >= 0) {
        sys::close(fd);
    }
    if ns.minimal_dev {
        sys::set_mount_readonly(c"/dev", true, false).map_err(at(Step::BuildMinimalDev, 99))?;
        mark(Mark::DevReadOnly);
    }
    if ns.loopback_up {
        sys::loopback_up().map_err(at(Step::BringUpLoopback, 0))?;
        mark(Mark::LoopbackUp);
    }
    // Init's working directory still names the tree as it was before the mounts (its
    // /proc/1/cwd would show the host's view): move it to the new root.
    sys::chdir(c"/").map_err(at(Step::ChangeDirectory, 1))?;
    Ok(())
}

const LANDLOCK_ACCESS_FS_READ_DIR: u64 = 1 << 3;

fn build_minimal_dev(devices: &[RawFd], ruleset: Option<RawFd>, device_access: u64) -> Result<(), Failure> {
    let step = Step::BuildMinimalDev;
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC;
    sys::mount(Some(c"tmpfs"), c"/dev", Some(c"tmpfs"), flags, Some(c"mode=755,size=64k")).map_err(at(step, 90))?;
    for (i, dev) in DEVICES.iter().enumerate() {
        let fd = sys::open(dev, libc::O_CREAT | libc::O_WRONLY, 0o666).map_err(at(step, 10 + i))?;
        sys::close(fd);
        // Read-only binds: reading and writing a device ignore the mount's flag, but chmod,
        // utimes and the like on the host's device node (as root inside: `chmod 000
        // /dev/null` for everyone) need a writable mount.
        sys::set_tree_readonly(devices[i]).map_err(at(step, 50 + i))?;
        sys::attach_mount_tree(devices[i], dev).map_err(at(step, 20 + i))?;
    }
    // A private devpts instance, not the host's: with the host's, the command could open every
    // other terminal of the user (or, as root, of root) by name, read what is typed there
    // (passwords) and write to it. The caller's own terminal still reaches the command through
    // its standard streams and /dev/tty. Ptys made inside work (ptmx is usable by all).
    sys::mkdir(c"/dev/pts", 0o755).map_err(at(step, 91))?;
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC;
    sys::mount(Some(c"devpts"), c"/dev/pts", Some(c"devpts"), flags, Some(c"newinstance,ptmxmode=0666,mode=0620"))
        .map_err(at(step, 92))?;
    if let Some(ruleset) = ruleset {
        // The parent could not name this instance in a Landlock rule: add it here.
        let pts = sys::open_path_nofollow(c"/dev/pts").map_err(at(step, 93))?;
        let r = sys::landlock_add_path_rule(ruleset, pts, device_access);
        sys::close(pts);
        r.map_err(at(step, 94))?;
    }
    if devices[DEVICES.len()] >= 0 {
        let fd = sys::open(c"/dev/console", libc::O_CREAT | libc::O_WRONLY, 0o600).map_err(at(step, 95))?;
        sys::close(fd);
        sys::set_tree_readonly(devices[DEVICES.len()]).map_err(at(step, 60))?;
        sys::attach_mount_tree(devices[DEVICES.len()], c"/dev/console").map_err(at(step, 96))?;
        if let Some(ruleset) = ruleset {
            let tty = sys::open_path_nofollow(c"/dev/console").map_err(at(step, 97))?;
            // A file: no directory rights (listing) in its rule.
            let r = sys::landlock_add_path_rule(ruleset, tty, device_access & !LANDLOCK_ACCESS_FS_READ_DIR);
            sys::close(tty);
            r.map_err(at(step, 98))?;
        }
    }
    for (i, (link, target)) in DEV_LINKS.iter().enumerate() {
        sys::symlink(target, link).map_err(at(step, 30 + i))?;
    }
    Ok(())
}

/// mount(2) onto the exact location `path` names, refusing symbolic links on the way (the target
/// is opened first and named through /proc/self/fd). A missing target is skipped if
/// `missing_ok` (a deny-read path that a mount before this one already hid).
fn mount_on(
    path: &std::ffi::CStr,
    src: Option<&std::ffi::CStr>,
    fstype: Option<&std::ffi::CStr>,
    flags: libc::c_ulong,
    data: Option<&std::ffi::CStr>,
    missing_ok: bool,
) -> Result<(), Errno> {
    let target = match sys::open_path_nofollow(path) {
        Ok(fd) => fd,
        Err(libc::ENOENT) if missing_ok => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut buf = [0u8; 32];
    let r = sys::mount(src, sys::fd_path(target, &mut buf), fstype, flags, data);
    sys::close(target);
    r
}

/// `mkdir -p` without allocating: walks the path's slashes in a stack buffer.
fn make_dirs(path: &std::ffi::CStr) -> Result<(), Errno> {
    let bytes = path.to_bytes();
    let mut buf = [0u8; 4096];
    if bytes.len() >= buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    for end in (1..=bytes.len()).filter(|&e| e == bytes.len() || bytes[e] == b'/') {
        buf[..end].copy_from_slice(&bytes[..end]);
        buf[end] = 0;
        let c = std::ffi::CStr::from_bytes_until_nul(&buf[..=end]).map_err(|_| libc::EINVAL)?;
        sys::mkdir(c, 0o755)?;
    }
    Ok(())
}

/// The sandbox's pid 1: starts the command, forwards signals sent to it by other processes,
/// reaps orphans, and reports the command's wait status to the parent when it ends. When init
/// exits, the kernel kills every process left in the pid namespace.
fn run_init(plan: &mut ChildPlan) -> Result<Never, Failure> {
    // Init is a fork of the caller that never execs: it still has the caller's memory (the
    // unfiltered environment, in /proc/1/environ) and every descriptor the caller left open
    // (reachable through /proc/1/fd, along with init's status pipe). Not dumpable, no
    // process without CAP_SYS_PTRACE (none inside) may open its /proc files; and it keeps only
    // the descriptors it and the command need.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).map_err(at(Step::StartCommand, 1))?;
    let mut keep = [plan.error_fd, plan.status_fd, -1, -1, -1, plan.job_channel.unwrap_or(-1)];
    for (i, s) in plan.stdio.iter().enumerate() {
        if let StdioFd::Fd(fd) = s {
            keep[2 + i] = *fd;
        }
    }
    sys::close_all_except(3, &keep);
    let mut signals = sys::sigset_of(FORWARDED_SIGNALS);
    // SAFETY: adds a valid signal number to an initialised set.
    unsafe { libc::sigaddset(&mut signals, libc::SIGCHLD) };
    if plan.job_channel.is_some() {
        // The sandbox's own process group, visible inside (the caller's is not), which the
        // command and everything it starts join. Blocked, the stop signals the group gets are
        // queued for init to report instead of discarded (init ignores them otherwise).
        sys::setpgid(0, 0).map_err(at(Step::StartCommand, 2))?;
        for &sig in super::job_control::STOP_SIGNALS {
            // SAFETY: adds a valid signal number to an initialised set.
            unsafe { libc::sigaddset(&mut signals, sig) };
        }
    }
    sys::block_signals(&signals);
    if let Some(channel) = plan.job_channel {
        // The command starts only once the parent has made this group the terminal's
        // foreground (if its own group is), so that it finds itself there. End of file (the
        // parent is gone) starts it too: the parent death signal ends everything anyway.
        let _ = sys::read_full(channel, &mut [0u8; 1]);
    }
    mark(Mark::InitReady);
    // The command shares init's memory until it execs (init waits meanwhile): no copy of the
    // address space, which is the embedding program's.
    let arg = plan as *mut ChildPlan as *mut libc::c_void;
    // SAFETY: start_command only sets up stdio and execs (or reports and _exits); it reads the
    // plan and writes nothing init relies on.
    let command = unsafe { sys::spawn_sharing_memory(&mut plan.command_stack, start_command, arg, 0) }
        .map_err(at(Step::StartCommand, 0))?;
    sys::close(plan.error_fd);
    // The command has its own copies now; init needs no standard streams.
    for fd in 0..3 {
        sys::close(fd);
    }
    for fd in plan.stdio.iter().filter_map(|s| match s {
        StdioFd::Fd(fd) => Some(*fd),
        StdioFd::Inherit | StdioFd::Reopen { .. } | StdioFd::ReopenInput { .. } => None,
    }) {
        sys::close(fd);
    }
    loop {
        let (sig, code) = sys::wait_signal(&signals);
        if sig == libc::SIGCHLD {
            while let Ok(Some((pid, status))) = sys::reap_any() {
                if pid == command {
                    mark(Mark::CommandReaped);
                    let _ = sys::write_all(plan.status_fd, &status.to_ne_bytes());
                    sys::exit(if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    });
                }
            }
        } else if super::job_control::STOP_SIGNALS.contains(&sig) {
            // The terminal stopped the group (Ctrl-Z, or a background read), or a program in it
            // stopped it (vim's suspend): the parent stops the user's job to match.
            if let Some(channel) = plan.job_channel {
                let _ = sys::send_byte(channel, sig as u8);
            }
        } else if sig == libc::SIGCONT && plan.job_channel.is_some() {
            // The parent continues the whole group, the command included.
        } else if code == libc::SI_USER || code == libc::SI_QUEUE || code == libc::SI_TKILL {
            // Sent by a process (the parent forwarding): pass it on. Signals the terminal
            // generated (SI_KERNEL) already reached the command through its process group.
            let _ = sys::kill(command, sig);
        }
    }
}

extern "C" fn start_command(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: arg is the init's ChildPlan, alive (init is suspended) until this execs or exits.
    let plan = unsafe { &*(arg as *const ChildPlan) };
    let Err(f) = exec_command(plan);
    report(plan.error_fd, &f);
    sys::exit(if f.step == Step::Exec { exec_failure_code(f.errno) } else { SETUP_FAILED })
}

fn exec_command(plan: &ChildPlan) -> Result<Never, Failure> {
    mark(Mark::CommandStarted);
    sys::reset_signal_dispositions();
    // The caller may block signals (palisade's CLI does, to forward them): the command starts
    // with none blocked.
    sys::set_signal_mask(&sys::empty_sigset());
    for (target, src) in plan.stdio.iter().enumerate() {
        match *src {
            StdioFd::Fd(fd) => sys::dup2(fd, target as RawFd).map_err(at(Step::SetUpStdio, target))?,
            StdioFd::Reopen { path, flags, or_inherit } => match sys::open(path, flags, 0) {
                Ok(fd) => {
                    sys::dup2(fd, target as RawFd).map_err(at(Step::SetUpStdio, target))?;
                    if fd != target as RawFd {
                        sys::close(fd);
                    }
                }
                Err(_) if or_inherit => {}
                Err(errno) => return Err(at(Step::SetUpStdio, 10 + target)(errno)),
            },
            StdioFd::ReopenInput { path, dev, ino, offset } => {
                // SAFETY: the parent keeps the string alive until the exec (see the variant).
                let path = unsafe { std::ffi::CStr::from_ptr(path) };
                if let Ok(fd) = sys::open(path, libc::O_RDONLY | libc::O_NOCTTY, 0) {
                    let same = sys::fstat_id(fd).is_ok_and(|id| id == (dev, ino));
                    if same && sys::seek_to(fd, offset).is_ok() {
                        sys::dup2(fd, target as RawFd).map_err(at(Step::SetUpStdio, target))?;
                    }
                    if fd != target as RawFd {
                        sys::close(fd);
                    }
                }
            }
            StdioFd::Inherit => {}
        }
    }
    if plan.new_session {
        // SAFETY: setsid has no memory effects; this process is not a group leader.
        if unsafe { libc::setsid() } < 0 {
            return Err(at(Step::SetUpStdio, 4)(sys::errno_now()));
        }
    }
    // Nothing the caller holds open reaches the command except stdio.
    sys::cloexec_from(3).map_err(at(Step::SetUpStdio, 3))?;
    sys::chdir(&plan.cwd).map_err(at(Step::ChangeDirectory, 0))?;
    mark(Mark::PreExec);
    let errno = sys::execve(&plan.program, &plan.argv_ptrs, &plan.envp_ptrs);
    Err(at(Step::Exec, 0)(errno))
}

#[cfg(test)]
mod tests {
    use super::Step;

    /// The parent names a failed step from the number the child wrote: every step must come
    /// back as itself, and nothing else as any step.
    #[test]
    fn every_step_comes_back_from_its_number() {
        for (i, step) in Step::ALL.iter().enumerate() {
            assert_eq!(*step as u32, i as u32 + 1, "{step:?} is out of order in Step::ALL");
            assert_eq!(Step::from_u32(*step as u32), Some(*step));
        }
        assert_eq!(Step::from_u32(0), None);
        assert_eq!(Step::from_u32(Step::ALL.len() as u32 + 1), None);
    }
}
