//! Timestamps of a spawn's steps, for `palisade-bench steps` (not part of the API).
//!
//! Off unless the benchmark turns it on: every mark is then one relaxed atomic load. When on,
//! each mark writes CLOCK_MONOTONIC (a vDSO call: no allocation, async-signal-safe) into a
//! shared anonymous page, so that the marks of the child, the sandbox's init and the command
//! (fork-style clones of this process) reach the benchmark too. This times the real code:
//! tracers add 10-40 us per system call and drown steps of a few microseconds.

use std::sync::atomic::{AtomicPtr, Ordering};

/// The points of a spawn that are stamped, in the order they happen on the way from
/// `spawn()` to the end of `wait()`. A step's duration is the time since the previous mark
/// that was stamped in the same run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Mark {
    SpawnStart = 0,
    ProgramResolved,
    PrivateTmpCreated,
    ProtectedPathsResolved,
    MountPlanBuilt,
    LandlockRulesetBuilt,
    ChildPlanReady,
    ChildRunning,
    IdMapsWritten,
    MountsPrivate,
    TreesCaptured,
    RootReadOnly,
    MinimalDevBuilt,
    ProcMounted,
    WritableAttached,
    MountOpsDone,
    DevReadOnly,
    LoopbackUp,
    CapabilitiesDropped,
    LandlockApplied,
    SeccompApplied,
    InitReady,
    CommandStarted,
    PreExec,
    ExecSeen,
    CommandReaped,
    WaitReturned,
    Finished,
}

pub const MARKS: usize = Mark::Finished as usize + 1;

/// What happens between the previous mark and this one (host = in the calling process).
pub const LABELS: [&str; MARKS] = [
    "spawn() called",
    "host: resolve the program in PATH",
    "host: create the private tmp dir",
    "host: resolve protected paths, placeholders",
    "host: mount plan (incl. bound unix sockets)",
    "host: Landlock ruleset",
    "host: pipes, argv/env, child plan",
    "clone() until the child runs",
    "child: setgroups, uid_map, gid_map",
    "child: make mounts private",
    "child: capture writable trees and devices",
    "child: make / read-only",
    "child: minimal /dev (devices, devpts, links)",
    "child: mount /proc",
    "child: attach /dev/shm, /tmp, writable roots",
    "child: protected paths, masks, hidden dirs",
    "child: /dev read-only",
    "child: bring up lo",
    "child: drop capabilities",
    "child: no_new_privs + Landlock",
    "child: seccomp",
    "init: not dumpable, close fds, block signals",
    "init: start the command (vfork-style clone)",
    "command: signals, stdio, close-on-exec, chdir",
    "execve until the parent sees it (pipe EOF)",
    "command runs and exits; init reaps it",
    "init exits, namespaces torn down, waitpid",
    "host: remove private tmp, release lock",
];

static PAGE: AtomicPtr<u64> = AtomicPtr::new(std::ptr::null_mut());

/// Turns the timeline on for every later spawn of this process (once; the page is never freed).
pub fn enable() -> std::io::Result<()> {
    if !PAGE.load(Ordering::Acquire).is_null() {
        return Ok(());
    }
    let page = super::sys::shared_page()?;
    if PAGE.compare_exchange(std::ptr::null_mut(), page.cast(), Ordering::AcqRel, Ordering::Acquire).is_err() {
        // Another thread won; its page is used and this one stays mapped unused (a benchmark).
    }
    Ok(())
}

/// Stamps `m` (and, at the start of a spawn, clears the previous run's marks).
pub fn mark(m: Mark) {
    let page = PAGE.load(Ordering::Relaxed);
    if page.is_null() {
        return;
    }
    if m == Mark::SpawnStart {
        for i in 1..MARKS {
            // SAFETY: the page holds MARKS u64s (it is 4096 bytes) and lives forever.
            unsafe { page.add(i).write_volatile(0) };
        }
    }
    // SAFETY: as above.
    unsafe { page.add(m as usize).write_volatile(super::sys::monotonic_ns()) };
}

/// The last spawn's stamps (0 where a mark was not reached), or `None` when not enabled.
/// Meaningful once the command has been waited for.
pub fn read() -> Option<[u64; MARKS]> {
    let page = PAGE.load(Ordering::Acquire);
    if page.is_null() {
        return None;
    }
    let mut out = [0u64; MARKS];
    for (i, o) in out.iter_mut().enumerate() {
        // SAFETY: as in `mark`.
        *o = unsafe { page.add(i).read_volatile() };
    }
    Some(out)
}
