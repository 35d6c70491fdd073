//! Spawning from a multi-threaded program (every library user, and the test harness itself).
//! Kept in its own test binary: the allocator-hammering threads here would otherwise make the
//! other tests' spawns deadlock too, and this test kills deadlocked children to end.
#![cfg(target_os = "linux")]

mod common;
use common::*;

/// Pids of this process's children that are a pid namespace's init (NSpid ends in 1) — the
/// sandbox's init right after `clone`, before it has started the command.
fn stuck_inits() -> Vec<(i32, String)> {
    let me = std::process::id().to_string();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Some(st) = proc_status(pid) else { continue };
        let nspid: Vec<&str> = st.get("NSpid").map(|s| s.split_whitespace().collect()).unwrap_or_default();
        if st.get("PPid").map(String::as_str) == Some(me.as_str()) && nspid.len() == 2 && nspid[1] == "1" {
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            v.push((pid, wchan));
        }
    }
    v
}

/// Library users are multi-threaded (so is the test harness). Spawning while other threads
/// allocate must not hang: the child made by `clone` may only use async-signal-safe calls, and
/// glibc's `fork()` (which takes malloc's locks, possibly held by another thread at the time of
/// the clone) is not one. A deadlocked init is recognised by its state (single-threaded, asleep
/// on a futex); a 30-second bound catches other hangs. Neither is a speed requirement.
#[test]
fn spawning_while_other_threads_allocate_does_not_deadlock() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let stop = AtomicBool::new(false);
    let mut failure = None;
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let v: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 32 + i * 24]).collect();
                    std::hint::black_box(v);
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let sb = &sb;
        let stop_ref = &stop;
        s.spawn(move || {
            for i in 0..40 {
                if stop_ref.load(Ordering::Relaxed) {
                    break;
                }
                let st = sb.command("true").status();
                if tx.send((i, st.map(|s| s.to_string()).map_err(|e| e.to_string()))).is_err() {
                    break;
                }
            }
        });
        let mut done = 0;
        let mut waited = Duration::ZERO;
        while done < 40 {
            // A single-threaded process waiting on a private futex can never be woken: that
            // is a deadlock, recognisable at once. The 30 s bound catches any other hang.
            let deadlocked = stuck_inits().iter().any(|(_, w)| w.contains("futex"));
            let got = if deadlocked {
                Err(mpsc::RecvTimeoutError::Timeout)
            } else {
                rx.recv_timeout(Duration::from_millis(50))
            };
            if matches!(got, Err(mpsc::RecvTimeoutError::Timeout)) && !deadlocked {
                waited += Duration::from_millis(50);
                if waited < Duration::from_secs(30) {
                    continue;
                }
            } else {
                waited = Duration::ZERO;
            }
            match got {
                Ok((_, Ok(st))) if st == "exit status 0" => done += 1,
                Ok((i, r)) => {
                    failure = Some(format!("spawn #{i} ended with {r:?}"));
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let stuck = stuck_inits();
                    failure = Some(format!(
                        "DEADLOCK after {done} spawns: the sandbox's init never started the command; stuck inits (pid, wchan): {stuck:?}. \
                         The init calls glibc fork() after a raw clone() of a multi-threaded process (sys::fork_process in \
                         child::run_init) and waits forever for a malloc lock another thread held at clone time."
                    ));
                    // Unblock the spawning thread so the test can end.
                    for (pid, _) in stuck {
                        // SAFETY: kill on our own child.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        stop.store(true, Ordering::Relaxed);
        // Drain so the spawner is never blocked on a full channel (it is unbounded anyway).
        while rx.recv_timeout(Duration::from_millis(1)).is_ok() {}
    });
    if let Some(f) = failure {
        panic!("{f}");
    }
}
