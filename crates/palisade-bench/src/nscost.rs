//! `palisade-bench ns-cost`: what each namespace flag of `clone()` costs on its own.
//!
//! The child exits at once, so a sample is the price of creating (in the parent's `clone`) and
//! tearing down (at the child's exit, before `waitpid` returns) the namespaces and nothing else.
//! Network namespaces are partly torn down later by a kernel worker: that cost does not show in
//! the parent's wait but in the mean over many runs (and the CPU it takes from everything else).

use crate::stats::{self, Summary};
use std::time::{Duration, Instant};

const U: libc::c_ulong = libc::CLONE_NEWUSER as libc::c_ulong;
const M: libc::c_ulong = libc::CLONE_NEWNS as libc::c_ulong;
const P: libc::c_ulong = libc::CLONE_NEWPID as libc::c_ulong;
const N: libc::c_ulong = libc::CLONE_NEWNET as libc::c_ulong;

struct FlagSet {
    name: &'static str,
    flags: libc::c_ulong,
    /// Without a user namespace, the other namespaces need CAP_SYS_ADMIN.
    needs_root: bool,
}

/// Shares the caller's memory and suspends it until the child exits or execs (posix_spawn's
/// way): no page tables to copy, whatever the caller's size.
const VFORK: libc::c_ulong = (libc::CLONE_VM | libc::CLONE_VFORK) as libc::c_ulong;

const SETS: &[FlagSet] = &[
    FlagSet { name: "fork (no flags)", flags: 0, needs_root: false },
    FlagSet { name: "NEWUSER", flags: U, needs_root: false },
    FlagSet { name: "NEWNS", flags: M, needs_root: true },
    FlagSet { name: "NEWPID", flags: P, needs_root: true },
    FlagSet { name: "NEWNET", flags: N, needs_root: true },
    FlagSet { name: "NEWUSER|NEWNS", flags: U | M, needs_root: false },
    FlagSet { name: "NEWUSER|NEWPID", flags: U | P, needs_root: false },
    FlagSet { name: "NEWUSER|NEWNET", flags: U | N, needs_root: false },
    FlagSet { name: "NEWUSER|NEWNS|NEWPID", flags: U | M | P, needs_root: false },
    FlagSet { name: "NEWUSER|NEWNS|NEWPID|NEWNET", flags: U | M | P | N, needs_root: false },
    FlagSet { name: "vfork-style (VM|VFORK)", flags: VFORK, needs_root: false },
    FlagSet { name: "VM|VFORK + all four", flags: VFORK | U | M | P | N, needs_root: false },
];

extern "C" fn exit_at_once(_: *mut libc::c_void) -> libc::c_int {
    // SAFETY: ends the child (its own thread group) immediately.
    unsafe { libc::_exit(0) }
}

/// The child's stack for vfork-style clones (the child shares our memory).
static mut STACK: [u128; 4096] = [0; 4096];

/// One clone + wait; returns (time in clone, time from before clone to after waitpid).
fn once(flags: libc::c_ulong) -> Result<(Duration, Duration), i32> {
    if flags & VFORK != 0 {
        let t0 = Instant::now();
        // SAFETY: the child runs exit_at_once on its own stack and touches nothing else; with
        // CLONE_VFORK we are suspended until it has exited, so the stack is never shared.
        let pid = unsafe {
            let top = std::ptr::addr_of_mut!(STACK).cast::<u8>().add(std::mem::size_of::<[u128; 4096]>());
            libc::clone(
                exit_at_once,
                top.cast(),
                (flags | libc::SIGCHLD as libc::c_ulong) as libc::c_int,
                std::ptr::null_mut(),
            )
        };
        let t1 = t0.elapsed();
        if pid < 0 {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        let mut status = 0;
        // SAFETY: waits for the child just made.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Ok((t1, t0.elapsed()));
    }
    let t0 = Instant::now();
    // SAFETY: a fork-style clone (no CLONE_VM); the child only calls exit_group, which is
    // async-signal-safe and touches no memory.
    let pid = unsafe {
        libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    if pid == 0 {
        // SAFETY: ends the child immediately.
        unsafe { libc::syscall(libc::SYS_exit_group, 0) };
        unreachable!("exit_group returned");
    }
    let t1 = t0.elapsed();
    if pid < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    let mut status = 0;
    // SAFETY: waits for the child just made.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    Ok((t1, t0.elapsed()))
}

pub fn main(iterations: usize, json: bool, parent_rss_mib: usize) -> i32 {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let iterations = iterations.clamp(20, 5000);
    let rounds = 10;
    let per_round = iterations.div_ceil(rounds);
    let mut sets: Vec<&FlagSet> = Vec::new();
    let mut skipped: Vec<(&str, String)> = Vec::new();
    for s in SETS {
        if s.needs_root && !root {
            skipped.push((s.name, "needs root (CAP_SYS_ADMIN) without a user namespace".into()));
            continue;
        }
        // Warm-up, and find out whether this host allows it.
        match (0..10).try_for_each(|_| once(s.flags).map(drop)) {
            Ok(()) => sets.push(s),
            Err(e) => skipped.push((s.name, format!("clone failed: {}", std::io::Error::from_raw_os_error(e)))),
        }
    }
    let mut clone_t: Vec<Vec<Duration>> = sets.iter().map(|_| Vec::new()).collect();
    let mut total_t: Vec<Vec<Duration>> = sets.iter().map(|_| Vec::new()).collect();
    let mut wall: Vec<Duration> = sets.iter().map(|_| Duration::ZERO).collect();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..sets.len()).collect();
        order.rotate_left(round % sets.len().max(1));
        for &i in &order {
            let block = Instant::now();
            for _ in 0..per_round {
                if let Ok((c, t)) = once(sets[i].flags) {
                    clone_t[i].push(c);
                    total_t[i].push(t);
                }
            }
            wall[i] += block.elapsed();
        }
    }
    let sums: Vec<(Summary, Summary)> =
        clone_t.iter().zip(&total_t).map(|(c, t)| (stats::summarize(c), stats::summarize(t))).collect();
    let base = sums.first().map(|(_, t)| t.median).unwrap_or(f64::NAN);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map(|s| s.lines().count()).unwrap_or(0);

    let mut out: Box<dyn std::io::Write> = if json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let _ = writeln!(
        out,
        "clone() + waitpid() of a child that exits at once, by namespace flags ({} runs each, {}; {mounts} mounts in the table the mount namespace copies{})",
        per_round * rounds,
        if root { "root" } else { "unprivileged" },
        if parent_rss_mib > 0 { format!("; parent holds {parent_rss_mib} MiB") } else { String::new() }
    );
    let _ = writeln!(
        out,
        "{:<30} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "flags", "clone ms", "total ms", "p90 ms", "mean ms", "added ms"
    );
    for (i, s) in sets.iter().enumerate() {
        let (c, t) = &sums[i];
        let mean_wall = wall[i].as_secs_f64() * 1e3 / total_t[i].len().max(1) as f64;
        let _ = writeln!(
            out,
            "{:<30} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>+10.3}",
            s.name,
            c.median,
            t.median,
            t.p90,
            mean_wall,
            t.median - base
        );
    }
    for (name, why) in &skipped {
        let _ = writeln!(out, "{name:<30} skipped: {why}");
    }
    let _ = writeln!(out, "clone ms: median time inside clone() (creation); total: clone to waitpid return (creation + child exit + teardown); mean: wall time per run over the blocks, including deferred work that slows the next runs");
    if json {
        let rows: Vec<serde_json::Value> = sets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (c, t) = &sums[i];
                serde_json::json!({
                    "flags": s.name,
                    "clone_median_ms": c.median,
                    "total_median_ms": t.median,
                    "total_p10_ms": t.p10,
                    "total_p90_ms": t.p90,
                    "mean_wall_ms": wall[i].as_secs_f64() * 1e3 / total_t[i].len().max(1) as f64,
                    "added_ms": t.median - base,
                })
            })
            .collect();
        let skipped: Vec<_> = skipped.iter().map(|(n, r)| serde_json::json!({"flags": n, "reason": r})).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"mounts": mounts, "root": root, "sets": rows, "skipped": skipped})
            )
            .unwrap_or_default()
        );
    }
    0
}
