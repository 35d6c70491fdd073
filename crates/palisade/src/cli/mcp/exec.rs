//! One `run` tool call's command: spawned on a thread of its own (the sandbox is tied to the
//! thread that spawned it: if the server dies, so does the command), its output read with a
//! bound, and ended when the call is cancelled or its time is up.

use palisade::{ExitStatus, NetworkRecord, Sandbox, SandboxOptions, Stdio};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct Job {
    pub(super) policy: palisade::Policy,
    pub(super) options: SandboxOptions,
    pub(super) argv: Vec<OsString>,
    pub(super) cwd: PathBuf,
    pub(super) env: BTreeMap<String, String>,
    pub(super) stdin: Option<String>,
    pub(super) timeout: Duration,
    pub(super) max_output: usize,
}

pub(super) struct Outcome {
    pub(super) status: ExitStatus,
    pub(super) timed_out: bool,
    pub(super) cancelled: bool,
    pub(super) duration: Duration,
    pub(super) stdout: Captured,
    pub(super) stderr: Captured,
    pub(super) notices: Vec<String>,
    pub(super) network: Vec<NetworkRecord>,
    /// For the audit line: the enforcement layers and the sandbox's refusals.
    pub(super) layers: Vec<serde_json::Value>,
    pub(super) denials: Vec<serde_json::Value>,
}

/// The first bytes of a stream and how many it had in all.
#[derive(Default)]
pub(super) struct Captured {
    pub(super) kept: Vec<u8>,
    pub(super) total: u64,
}

impl Captured {
    /// The text, with a visible marker when it was cut.
    pub(super) fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.kept).into_owned();
        if self.total > self.kept.len() as u64 {
            s.push_str(&format!(
                "\n[palisade: output truncated: the first {} of {} bytes are shown]",
                self.kept.len(),
                self.total
            ));
        }
        s
    }
}

/// Runs the job to its end; `cancel` set by the caller ends it early (the command and
/// everything it started are killed). Palisade's own refusals are `Err` with one line.
pub(super) fn run(job: Job, cancel: Arc<AtomicBool>) -> Result<Outcome, String> {
    let sandbox = Sandbox::with_options(job.policy, job.options).map_err(|e| e.to_string())?;
    let (program, rest) = job.argv.split_first().ok_or("empty command")?;
    let mut cmd = sandbox.command(program);
    cmd.args(rest).current_dir(&job.cwd).kill_on_parent_death(true);
    for (k, v) in &job.env {
        cmd.env(k, v);
    }
    cmd.stdin(if job.stdin.is_some() { Stdio::Piped } else { Stdio::Null });
    cmd.stdout(Stdio::Piped).stderr(Stdio::Piped);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let feeder = match (child.stdin.take(), job.stdin) {
        (Some(mut pipe), Some(text)) => Some(std::thread::spawn(move || {
            // A command that does not read its input closes the pipe: that is not an error.
            let _ = pipe.write_all(text.as_bytes());
        })),
        _ => None,
    };
    let max = job.max_output;
    let readers: Vec<_> = [child.stdout.take(), child.stderr.take()]
        .into_iter()
        .map(|pipe| std::thread::spawn(move || pipe.map(|p| read_bounded(p, max)).unwrap_or_default()))
        .collect();
    let (mut timed_out, mut cancelled) = (false, false);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the command: {e}")),
        }
        if cancel.load(Ordering::SeqCst) || started.elapsed() >= job.timeout {
            cancelled = cancel.load(Ordering::SeqCst);
            timed_out = !cancelled;
            let _ = child.kill();
            break child.wait().map_err(|e| format!("waiting for the command: {e}"))?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let duration = started.elapsed();
    let mut captured = readers.into_iter().map(|r| r.join().unwrap_or_default());
    let (stdout, stderr) = (captured.next().unwrap_or_default(), captured.next().unwrap_or_default());
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Ok(Outcome {
        status,
        timed_out,
        cancelled,
        duration,
        stdout,
        stderr,
        notices: child.notices().to_vec(),
        network: child.network_records().to_vec(),
        layers: super::super::status::enforcement_layers(&sandbox),
        denials: super::super::status::denials(&child),
    })
}

/// Keeps the first `max` bytes and counts (and drains) the rest, so that the command never
/// blocks on a full pipe.
fn read_bounded(mut pipe: impl Read, max: usize) -> Captured {
    let mut out = Captured::default();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = max.saturating_sub(out.kept.len()).min(n);
                out.kept.extend_from_slice(&buf[..room]);
                out.total += n as u64;
            }
        }
    }
    out
}
