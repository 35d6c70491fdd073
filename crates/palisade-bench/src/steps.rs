//! `palisade-bench steps`: where the time of a sandboxed spawn goes, step by step.
//!
//! Tracers (strace, perf trace) add 10-40 us to every system call, which drowns steps that take
//! a few microseconds. So the library itself stamps CLOCK_MONOTONIC at each step of a spawn
//! (host side, the child's set-up, the sandbox's init, the command, the wait) into a shared page,
//! through the doc-hidden `palisade::__private::spawn_timeline` hook; this reads the stamps after
//! each real `status()` call. There is no replica to keep in step with the child's code: the
//! steps are the library's own (`crates/palisade/src/backend/linux/timeline.rs` lists them).

use crate::scratch::Scratch;
use crate::stats;
use palisade::__private::spawn_timeline as tl;
use palisade::{Network, Policy, Sandbox, SandboxOptions};
use std::time::{Duration, Instant};

/// One configuration of the library.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// user + mount + ipc + pid + network namespaces (the default policy)
    Default,
    /// user + mount + ipc + pid namespaces (network on)
    NetOn,
    /// user + mount + ipc namespaces (network on, keep_processes: no init)
    NoPid,
    /// no namespaces (Landlock-only mode, network on)
    LandlockOnly,
}

impl Variant {
    const ALL: [Variant; 4] = [Variant::Default, Variant::NetOn, Variant::NoPid, Variant::LandlockOnly];
    fn name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::NetOn => "net-on",
            Variant::NoPid => "no-pidns",
            Variant::LandlockOnly => "landlock-only",
        }
    }
}

fn library_for(v: Variant, scratch: &Scratch) -> Result<Sandbox, String> {
    let mut p = Policy::new(&scratch.workspace, Some(&scratch.home));
    let mut o = SandboxOptions::default();
    match v {
        Variant::Default => {}
        Variant::NetOn => p.network = Network::On,
        Variant::NoPid => {
            p.network = Network::On;
            p.keep_processes = true;
        }
        Variant::LandlockOnly => {
            p.network = Network::On;
            o = SandboxOptions { landlock_only: true, accept_unprotected_paths: true, ..Default::default() };
        }
    }
    Sandbox::with_options(p, o).map_err(|e| format!("library ({}): {e}", v.name()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    stats::percentile(&v, 50.0)
}

/// One run: the whole `status()` call, and each mark's time since the previous mark reached
/// (NaN where the step did not happen).
fn run_once(sb: &Sandbox, v: Variant) -> Result<(Duration, [f64; tl::MARKS]), String> {
    let t0 = Instant::now();
    let st = sb.command("/bin/true").status().map_err(|e| format!("library ({}): {e}", v.name()))?;
    let whole = t0.elapsed();
    if !st.success() {
        return Err(format!("library ({}): /bin/true ended with {st}", v.name()));
    }
    let stamps = tl::read().ok_or("the spawn timeline is off")?;
    let mut steps = [f64::NAN; tl::MARKS];
    let mut prev = stamps[0];
    for i in 1..tl::MARKS {
        if stamps[i] != 0 {
            steps[i] = (stamps[i] as f64 - prev as f64) / 1e6;
            prev = stamps[i];
        }
    }
    steps[0] = (prev as f64 - stamps[0] as f64) / 1e6; // total, first mark to last
    Ok((whole, steps))
}

pub fn main(scratch: &Scratch, iterations: usize, json: bool) -> Result<(), String> {
    tl::enable().map_err(|e| format!("cannot map the timeline page: {e}"))?;
    let mut variants = Vec::new();
    for v in Variant::ALL {
        let sb = match library_for(v, scratch) {
            Ok(sb) => sb,
            Err(e) => {
                eprintln!("steps: {} skipped: {e}", v.name());
                continue;
            }
        };
        match (0..10).try_for_each(|_| run_once(&sb, v).map(drop)) {
            Ok(()) => variants.push((v, sb)),
            Err(e) => eprintln!("steps: {} skipped: {e}", v.name()),
        }
    }
    // Interleaved rounds, as in the main benchmark: slow drift spreads over every variant.
    let rounds = 10;
    let per_round = iterations.div_ceil(rounds).max(1);
    let mut steps: Vec<Vec<[f64; tl::MARKS]>> = variants.iter().map(|_| Vec::new()).collect();
    let mut whole: Vec<Vec<Duration>> = variants.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, (v, sb)) in variants.iter().enumerate() {
            for _ in 0..per_round {
                let (w, s) = run_once(sb, *v)?;
                whole[i].push(w);
                steps[i].push(s);
            }
        }
    }

    let rows: Vec<(&str, Vec<f64>)> = (1..tl::MARKS)
        .map(|m| (tl::LABELS[m], steps.iter().map(|runs| median(runs.iter().map(|s| s[m]).collect())).collect()))
        .collect();
    let totals: Vec<f64> = steps.iter().map(|runs| median(runs.iter().map(|s| s[0]).collect())).collect();
    let sums: Vec<f64> =
        (0..variants.len()).map(|i| rows.iter().map(|(_, v)| v[i]).filter(|x| x.is_finite()).sum()).collect();
    let wholes: Vec<f64> = whole.iter().map(|d| stats::summarize(d).median).collect();

    let mut out: Box<dyn std::io::Write> = if json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let w = 50;
    let _ = writeln!(
        out,
        "Steps of a sandboxed spawn of /bin/true, stamped by the library (median ms of {} runs per variant)\n",
        per_round * rounds
    );
    let _ = write!(out, "{:<w$}", "step (time since the previous step)");
    for (v, _) in &variants {
        let _ = write!(out, " {:>13}", v.name());
    }
    let _ = writeln!(out);
    let print_row = |out: &mut Box<dyn std::io::Write>, label: &str, vals: &[f64]| {
        let _ = write!(out, "{label:<w$}");
        for x in vals {
            if x.is_finite() {
                let _ = write!(out, " {x:>13.3}");
            } else {
                let _ = write!(out, " {:>13}", "-");
            }
        }
        let _ = writeln!(out);
    };
    for (label, vals) in &rows {
        print_row(&mut out, label, vals);
    }
    let _ = writeln!(out);
    print_row(&mut out, "sum of the step medians", &sums);
    print_row(&mut out, "first to last mark (median)", &totals);
    print_row(&mut out, "whole status() call (median)", &wholes);
    let _ = writeln!(
        out,
        "\nSteps run in order except that the parent and the child overlap after clone (the parent closes its\n\
         ends of pipes while the child sets up); \"-\" marks a step the variant does not have."
    );
    if json {
        let steps: Vec<_> = rows
            .iter()
            .map(|(label, vals)| {
                let m: serde_json::Map<String, serde_json::Value> = variants
                    .iter()
                    .zip(vals)
                    .map(|((v, _), x)| {
                        (
                            v.name().to_string(),
                            if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null },
                        )
                    })
                    .collect();
                serde_json::json!({"step": label, "ms": m})
            })
            .collect();
        let names: Vec<_> = variants.iter().map(|(v, _)| v.name()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "variants": names,
                "steps": steps,
                "first_to_last_mark_ms": totals,
                "status_call_ms": wholes,
            }))
            .unwrap_or_default()
        );
    }
    Ok(())
}
