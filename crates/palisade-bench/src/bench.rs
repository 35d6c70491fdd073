//! The overhead table, the argument parsing, and the dispatch to the other experiments.

use crate::cases::{self, Built, Case};
use crate::stats::{self, Summary};
use crate::{denials, nscost, scratch, steps};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: palisade-bench [OPTIONS]          per-command overhead table
       palisade-bench ns-cost [OPTIONS]  cost of each clone() namespace flag alone
       palisade-bench steps [OPTIONS]    where a spawn's time goes, step by step (stamped by the library)
       palisade-bench loop CASE N        run one case N times, untimed (for strace or perf)
       palisade-bench denials [--rounds R]  --report-denials' cost: cargo build and a write loop,
                                         with and without the observer (R runs each, default 10)

options:
  --iterations N    timed runs per case (default 300)
  --rounds R        split them into R interleaved rounds (default 10)
  --warmup W        untimed runs per case first (default 20)
  --budget SECS     shrink the iterations if the estimate exceeds this (default 40)
  --only A,B,...    run only these cases (plus `spawn`, the baseline)
  --palisade PATH   the `palisade` CLI binary (default: next to this binary)
  --skip-cli WHY    leave out the CLI row, saying why (bench/run.sh: when the CLI did not build)
  --program PATH    what every case runs (default /bin/true)
  --scratch-dir DIR where to make the temporary workspace and home (default /var/tmp)
  --parent-rss MiB  allocate and touch this much memory first (fork cost grows with it)
  --keep-temp       keep the temporary workspace
  --json            JSON on stdout (the table goes to stderr)
";

struct Args {
    iterations: usize,
    rounds: usize,
    warmup: usize,
    budget: f64,
    only: Option<Vec<String>>,
    palisade: Option<PathBuf>,
    skip_cli: Option<String>,
    program: PathBuf,
    scratch_dir: Option<PathBuf>,
    parent_rss_mib: usize,
    keep_temp: bool,
    json: bool,
    ns_cost: bool,
    steps: bool,
    denials: bool,
    /// `loop CASE N`: run one case N times for a profiler.
    loop_case: Option<(String, usize)>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        iterations: 300,
        rounds: 10,
        warmup: 20,
        budget: 40.0,
        only: None,
        palisade: None,
        skip_cli: None,
        program: PathBuf::from("/bin/true"),
        scratch_dir: None,
        parent_rss_mib: 0,
        keep_temp: false,
        json: false,
        ns_cost: false,
        steps: false,
        denials: false,
        loop_case: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let num = |name: &str, v: String| v.parse::<usize>().map_err(|_| format!("{name}: not a number: {v}"));
        match arg.as_str() {
            "ns-cost" => a.ns_cost = true,
            "steps" => a.steps = true,
            "denials" => a.denials = true,
            "loop" => {
                let case = value("loop")?;
                let n = num("loop", value("loop")?)?;
                a.loop_case = Some((case, n));
            }
            "--iterations" => a.iterations = num("--iterations", value("--iterations")?)?.max(1),
            "--rounds" => a.rounds = num("--rounds", value("--rounds")?)?.max(1),
            "--warmup" => a.warmup = num("--warmup", value("--warmup")?)?,
            "--budget" => {
                let v = value("--budget")?;
                a.budget = v.parse().map_err(|_| format!("--budget: not a number: {v}"))?;
            }
            "--only" => a.only = Some(value("--only")?.split(',').map(|s| s.trim().to_string()).collect()),
            "--palisade" => a.palisade = Some(value("--palisade")?.into()),
            "--skip-cli" => a.skip_cli = Some(value("--skip-cli")?),
            "--program" => a.program = value("--program")?.into(),
            "--scratch-dir" => a.scratch_dir = Some(value("--scratch-dir")?.into()),
            "--parent-rss" => a.parent_rss_mib = num("--parent-rss", value("--parent-rss")?)?,
            "--keep-temp" => a.keep_temp = true,
            "--json" => a.json = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

pub fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("palisade-bench: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if args.ns_cost {
        let _ballast = ballast(args.parent_rss_mib);
        std::process::exit(nscost::main(args.iterations, args.json, args.parent_rss_mib));
    }
    match bench(&args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("palisade-bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Memory the process holds (and has touched) so that fork-style spawns copy real page tables.
fn ballast(mib: usize) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    v
}

struct Measured {
    name: &'static str,
    about: String,
    argv: Option<Vec<String>>,
    target: Option<cases::Target>,
    summary: Summary,
}

fn bench(args: &Args) -> Result<(), String> {
    let scratch = scratch::Scratch::create(args.scratch_dir.as_deref(), args.keep_temp)
        .map_err(|e| format!("cannot create the temporary workspace: {e}"))?;
    // A fake home: no user configuration is read, and the default deny-read list points into it.
    // Set before anything else runs (the process has a single thread here).
    std::env::set_var("HOME", &scratch.home);
    std::env::set_var("XDG_CONFIG_HOME", scratch.home.join(".config"));
    let _ballast = ballast(args.parent_rss_mib);

    let (palisade_cli, missing) = find_cli(args);
    let setup =
        cases::Setup { scratch: &scratch, program: args.program.clone(), palisade_cli, palisade_cli_missing: missing };

    if args.steps {
        return steps::main(&scratch, args.iterations.min(1000), args.json);
    }
    if args.denials {
        return denials::main(&scratch, args.rounds, args.json);
    }
    if let Some((name, n)) = &args.loop_case {
        let built = cases::build_all(&setup).into_iter().find(|b| b.name() == name);
        let mut case = match built {
            Some(Built::Ready(c)) => c,
            Some(Built::Skipped { reason, .. }) => return Err(format!("{name} cannot run here: {reason}")),
            None => return Err(format!("no case named {name}")),
        };
        let t = Instant::now();
        for _ in 0..*n {
            (case.run)()?;
        }
        eprintln!(
            "{name}: {n} runs in {:.3}s ({:.3} ms each)",
            t.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64() * 1e3 / *n as f64
        );
        return Ok(());
    }

    let load_at_start = load_average();
    let t_new = time_sandbox_new(&setup);
    let mut all = cases::build_all(&setup);
    if let Some(only) = &args.only {
        all.retain(|b| b.name() == "spawn" || only.iter().any(|o| o == b.name()));
    }
    let mut ready: Vec<Case> = Vec::new();
    let mut skipped: Vec<(&'static str, String, String)> = Vec::new();
    for b in all {
        match b {
            Built::Ready(c) => ready.push(c),
            Built::Skipped { name, about, reason } => skipped.push((name, about, reason)),
        }
    }

    // Warm-up: caches, page faults, lazily loaded code. A case that fails here is skipped.
    let mut per_iter = Vec::new();
    let mut adopted = 0;
    let mut i = 0;
    while i < ready.len() {
        let started = Instant::now();
        let mut failure = None;
        for _ in 0..args.warmup.max(1) {
            let r = (ready[i].run)();
            adopted += reap_adopted_orphans();
            if let Err(e) = r {
                failure = Some(e);
                break;
            }
        }
        match failure {
            Some(e) => {
                let c = ready.remove(i);
                if c.name == "spawn" {
                    return Err(format!("the baseline itself fails: {e}"));
                }
                skipped.push((c.name, c.about, format!("failed during warm-up: {e}")));
            }
            None => {
                per_iter.push(started.elapsed().as_secs_f64() / args.warmup.max(1) as f64);
                i += 1;
            }
        }
    }

    // Keep the whole run within the budget.
    let per_round_of_all: f64 = per_iter.iter().sum();
    let mut iterations = args.iterations;
    let mut notes = Vec::new();
    if per_round_of_all * iterations as f64 > args.budget {
        let fit = ((args.budget / per_round_of_all) as usize).max(args.rounds).max(30);
        if fit < iterations {
            notes.push(format!(
                "iterations cut from {iterations} to {fit} to stay within the {}s budget (--budget)",
                args.budget
            ));
            iterations = fit;
        }
    }
    let per_round = iterations.div_ceil(args.rounds);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    if load_at_start > 0.5 * cpus {
        notes.push(format!(
            "the machine was busy before the run (load average {load_at_start:.2} on {cpus} CPUs): expect noise, \
             and much slower namespace rows if the load writes to disk (see bench/README.md)"
        ));
    }

    // Timed rounds: every case runs a block of iterations per round, and the order of the cases
    // rotates (and reverses every other round), so slow drift in the machine's state (frequency,
    // caches, background work) spreads evenly over the cases instead of biasing one.
    let mut samples: Vec<Vec<Duration>> = ready.iter().map(|_| Vec::with_capacity(per_round * args.rounds)).collect();
    let started = Instant::now();
    for round in 0..args.rounds {
        let mut order: Vec<usize> = (0..ready.len()).collect();
        order.rotate_left(round % ready.len().max(1));
        if round % 2 == 1 {
            order.reverse();
        }
        for &ci in &order {
            for _ in 0..per_round {
                let t = Instant::now();
                let r = (ready[ci].run)();
                let d = t.elapsed();
                adopted += reap_adopted_orphans();
                r.map_err(|e| format!("{}: {e}", ready[ci].name))?;
                samples[ci].push(d);
            }
        }
    }
    let measuring = started.elapsed();
    if adopted > 0 {
        notes.push(format!(
            "this process became a child subreaper (the library does that in Landlock-only mode): {adopted} orphaned \
             processes of other cases (e.g. bubblewrap's) were adopted by it and reaped between runs, untimed; left as \
             zombies they slow every Landlock-only spawn, which scans the children (see bench/README.md)"
        ));
    }

    let measured: Vec<Measured> = ready
        .into_iter()
        .zip(samples)
        .map(|(c, s)| Measured {
            name: c.name,
            about: c.about,
            argv: c.argv,
            target: c.target,
            summary: stats::summarize(&s),
        })
        .collect();
    let report = Report {
        args,
        measured,
        skipped,
        notes,
        per_round,
        measuring,
        sandbox_new: t_new,
        scratch: &scratch,
        load_at_start,
    };
    if args.json {
        report.print_table(&mut std::io::stderr());
        println!("{}", serde_json::to_string_pretty(&report.json()).unwrap_or_default());
    } else {
        report.print_table(&mut std::io::stdout());
    }
    Ok(())
}

fn find_cli(args: &Args) -> (Option<PathBuf>, String) {
    if let Some(why) = &args.skip_cli {
        return (None, why.clone());
    }
    let candidate = match &args.palisade {
        Some(p) => p.clone(),
        None => match std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("palisade"))) {
            Some(p) => p,
            None => return (None, "cannot locate this binary's folder; pass --palisade PATH".into()),
        },
    };
    if scratch::is_executable(&candidate) {
        (Some(candidate), String::new())
    } else {
        (
            None,
            format!(
                "no palisade binary at {} (build it with `cargo build --release -p palisade`, or pass --palisade PATH)",
                candidate.display()
            ),
        )
    }
}

/// Reaps children that are not ours to wait for: orphans adopted because the library made this
/// process a child subreaper. Only called between runs, when no case has a child left running.
fn reap_adopted_orphans() -> usize {
    let mut n = 0;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on any child; nothing else waits for these.
        if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
            return n;
        }
        n += 1;
    }
}

/// The 1-minute load average (0 if unknown).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// The one-time cost of `Sandbox::new` with the default policy (the CLI pays it per command).
fn time_sandbox_new(s: &cases::Setup<'_>) -> Option<Summary> {
    let mut v = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let sb = palisade::Sandbox::new(palisade::Policy::new(&s.scratch.workspace, Some(&s.scratch.home)));
        let d = t.elapsed();
        sb.ok()?;
        v.push(d);
    }
    Some(stats::summarize(&v[5..]))
}

struct Report<'a> {
    args: &'a Args,
    measured: Vec<Measured>,
    skipped: Vec<(&'static str, String, String)>,
    notes: Vec<String>,
    per_round: usize,
    measuring: Duration,
    sandbox_new: Option<Summary>,
    scratch: &'a scratch::Scratch,
    load_at_start: f64,
}

fn host_line() -> String {
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let who = if uid == 0 { "root".to_string() } else { format!("uid {uid}") };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map(|s| s.lines().count()).unwrap_or(0);
    format!("{who}, Linux {kernel}, {cpus} CPUs, {mounts} mounts in the host's table")
}

impl Report<'_> {
    fn baseline(&self) -> f64 {
        self.measured.iter().find(|m| m.name == "spawn").map(|m| m.summary.median).unwrap_or(f64::NAN)
    }

    fn print_table(&self, out: &mut dyn Write) {
        let base = self.baseline();
        let n = self.per_round * self.args.rounds;
        let _ = writeln!(out, "Palisade per-command overhead: {} ({})", self.args.program.display(), host_line());
        let _ = writeln!(
            out,
            "{n} timed runs per case in {} interleaved rounds after {} warm-up runs; measuring took {:.1}s; load average {:.2} at start{}",
            self.args.rounds,
            self.args.warmup,
            self.measuring.as_secs_f64(),
            self.load_at_start,
            if self.args.parent_rss_mib > 0 { format!("; parent holds {} MiB", self.args.parent_rss_mib) } else { String::new() },
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>8} {:>8} {:>8} {:>9}  target (added over spawn)",
            "case", "median", "p10", "p90", "x spawn", "added"
        );
        let _ = writeln!(out, "{:<20} {:>8} {:>8} {:>8} {:>8} {:>9}", "", "ms", "ms", "ms", "", "ms");
        for m in &self.measured {
            let s = &m.summary;
            let added = s.median - base;
            let target = match m.target {
                Some(t) => format!(
                    "<= {:.1} ms ({}): {}",
                    t.added_ms,
                    t.what,
                    if added <= t.added_ms { "MET" } else { "MISSED" }
                ),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<20} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>+9.3}  {}",
                m.name,
                s.median,
                s.p10,
                s.p90,
                s.median / base,
                added,
                target
            );
        }
        for (name, _, reason) in &self.skipped {
            let _ = writeln!(out, "{name:<20} skipped: {reason}");
        }
        if let Some(s) = &self.sandbox_new {
            let _ = writeln!(
                out,
                "\none-time Sandbox::new (default policy): median {:.3} ms, p10 {:.3}, p90 {:.3} (the library pays it once; the CLI per command)",
                s.median, s.p10, s.p90
            );
        }
        let _ = writeln!(out, "\ncases:");
        for m in &self.measured {
            let _ = writeln!(out, "  {:<20} {}", m.name, m.about);
            if let Some(argv) = &m.argv {
                if argv.len() > 1 {
                    let _ = writeln!(out, "  {:<20}   $ {}", "", argv.join(" "));
                }
            }
        }
        for (name, about, _) in &self.skipped {
            let _ = writeln!(out, "  {name:<20} {about} (skipped)");
        }
        let _ = writeln!(
            out,
            "\nworkspace {} (git-shaped), HOME {} (fake, with .ssh)",
            self.scratch.workspace.display(),
            self.scratch.home.display()
        );
    }

    fn json(&self) -> serde_json::Value {
        let base = self.baseline();
        let cases: Vec<serde_json::Value> = self
            .measured
            .iter()
            .map(|m| {
                let s = &m.summary;
                let added = s.median - base;
                serde_json::json!({
                    "name": m.name,
                    "about": m.about,
                    "argv": m.argv,
                    "samples": s.n,
                    "median_ms": s.median,
                    "p10_ms": s.p10,
                    "p90_ms": s.p90,
                    "mean_ms": s.mean,
                    "min_ms": s.min,
                    "max_ms": s.max,
                    "ratio_to_spawn": s.median / base,
                    "added_ms": added,
                    "target_added_ms": m.target.map(|t| t.added_ms),
                    "target_met": m.target.map(|t| added <= t.added_ms),
                })
            })
            .collect();
        let skipped: Vec<serde_json::Value> =
            self.skipped.iter().map(|(n, a, r)| serde_json::json!({"name": n, "about": a, "reason": r})).collect();
        serde_json::json!({
            "program": self.args.program,
            "host": host_line(),
            "rounds": self.args.rounds,
            "runs_per_case": self.per_round * self.args.rounds,
            "warmup": self.args.warmup,
            "parent_rss_mib": self.args.parent_rss_mib,
            "load_average_at_start": self.load_at_start,
            "measuring_seconds": self.measuring.as_secs_f64(),
            "notes": self.notes,
            "sandbox_new_median_ms": self.sandbox_new.as_ref().map(|s| s.median),
            "cases": cases,
            "skipped": skipped,
        })
    }
}
