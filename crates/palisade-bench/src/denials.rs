//! `palisade-bench denials`: what `--report-denials` (the seccomp observer every watched call
//! waits for) costs on real work: `cargo build` of a small generated crate from clean, and a
//! write-heavy loop (a shell creating and removing files), each in the default sandbox with and
//! without the observer, interleaved run by run. Printed as medians and their ratio; the ratio
//! decides whether denial reports can be on by default (no more than 5% on a real build).

use crate::scratch::Scratch;
use crate::stats;
use palisade::{Policy, Sandbox, SandboxOptions, Stdio};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many source files the generated crate has (each a few dozen functions).
const MODULES: usize = 24;
/// How many files the write-heavy loop creates (and removes) per run.
const FILES: usize = 2000;

struct Workload {
    name: &'static str,
    about: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Run on the host before each timed run (a clean target folder).
    reset: Box<dyn Fn() -> std::io::Result<()>>,
}

pub fn main(scratch: &Scratch, runs: usize, json: bool) -> Result<(), String> {
    let mut workloads = vec![write_loop(scratch)];
    match cargo_build(scratch) {
        Ok(w) => workloads.push(w),
        Err(why) => eprintln!("palisade-bench denials: cargo build row skipped: {why}"),
    }
    let plain = sandbox(scratch, false)?;
    let observed = sandbox(scratch, true)?;
    let mut rows = Vec::new();
    for w in &workloads {
        // One untimed run each: caches, and a check that the workload works in the sandbox.
        for sb in [&plain, &observed] {
            (w.reset)().map_err(|e| format!("{}: resetting: {e}", w.name))?;
            run_once(sb, w)?;
        }
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for i in 0..runs {
            // Alternate which goes first, so that drift hits both alike.
            let order: [(bool, &Sandbox); 2] =
                if i % 2 == 0 { [(false, &plain), (true, &observed)] } else { [(true, &observed), (false, &plain)] };
            for (is_observed, sb) in order {
                (w.reset)().map_err(|e| format!("{}: resetting: {e}", w.name))?;
                let t = run_once(sb, w)?;
                if is_observed {
                    with.push(t);
                } else {
                    without.push(t);
                }
            }
        }
        let (a, b) = (stats::summarize(&without), stats::summarize(&with));
        rows.push((w.name, w.about.clone(), a, b));
    }
    let mut table = String::new();
    let _ = writeln!(table, "denial observer (--report-denials): median of {runs} interleaved runs each");
    let _ = writeln!(table, "{:<14} {:>12} {:>12} {:>8}  what", "workload", "without ms", "with ms", "ratio");
    for (name, about, a, b) in &rows {
        let _ =
            writeln!(table, "{name:<14} {:>12.1} {:>12.1} {:>8.3}  {about}", a.median, b.median, b.median / a.median);
    }
    if json {
        eprint!("{table}");
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, about, a, b)| {
                serde_json::json!({"workload": name, "about": about, "runs": runs,
                    "without_ms": {"median": a.median, "p10": a.p10, "p90": a.p90},
                    "with_ms": {"median": b.median, "p10": b.p10, "p90": b.p90},
                    "ratio": b.median / a.median})
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        print!("{table}");
    }
    Ok(())
}

fn sandbox(scratch: &Scratch, report_denials: bool) -> Result<Sandbox, String> {
    let policy = Policy::new(&scratch.workspace, Some(&scratch.home));
    let options = SandboxOptions { report_denials, ..Default::default() };
    Sandbox::with_options(policy, options).map_err(|e| format!("Sandbox::with_options: {e}"))
}

fn run_once(sb: &Sandbox, w: &Workload) -> Result<Duration, String> {
    let mut cmd = sb.command(&w.program);
    cmd.args(&w.args).current_dir(&sb.policy().workspace).stdin(Stdio::Null).stdout(Stdio::Null);
    for (k, v) in &w.env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.stderr(Stdio::Piped).output().map_err(|e| format!("{}: {e}", w.name))?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        return Err(format!("{} failed ({}): {}", w.name, out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok(elapsed)
}

fn write_loop(scratch: &Scratch) -> Workload {
    let dir = scratch.workspace.join("writes");
    let script = format!(
        "mkdir -p writes && i=0; while [ $i -lt {FILES} ]; do echo $i > writes/f$i; i=$((i+1)); done; rm -r writes"
    );
    Workload {
        name: "write-loop",
        about: format!("sh creating {FILES} files with `>` (each a watched openat), then rm -r"),
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script],
        env: Vec::new(),
        reset: Box::new(move || match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }),
    }
}

/// `cargo build` (debug, incremental: rustc writes many small files) of a generated crate with
/// no dependencies, from a clean target folder. Cargo's home is inside the workspace (the real
/// one is not writable in the sandbox); the toolchain is found with `rustup which`, or on PATH.
fn cargo_build(scratch: &Scratch) -> Result<Workload, String> {
    let cargo = toolchain_cargo().ok_or("no cargo found (rustup which cargo, or cargo on PATH)")?;
    let krate = scratch.workspace.join("krate");
    generate_crate(&krate).map_err(|e| format!("generating the crate: {e}"))?;
    let bin_dir = cargo.parent().map(Path::to_path_buf).unwrap_or_default();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let target = krate.join("target");
    Ok(Workload {
        name: "cargo-build",
        about: format!("cargo build (debug) of a {MODULES}-module crate from clean"),
        program: cargo,
        args: vec![
            "build".into(),
            "--quiet".into(),
            "--manifest-path".into(),
            krate.join("Cargo.toml").display().to_string(),
        ],
        env: vec![
            ("PATH".into(), path),
            ("CARGO_HOME".into(), scratch.workspace.join(".cargo-home").display().to_string()),
            ("CARGO_TARGET_DIR".into(), target.display().to_string()),
        ],
        reset: Box::new(move || match std::fs::remove_dir_all(&target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }),
    })
}

fn toolchain_cargo() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("cargo"))
        .find(|c| c.is_file())?;
    // A rustup proxy (~/.cargo/bin/cargo) needs rustup's home, which HOME no longer leads to
    // (the benchmark's fake home): ask rustup for the toolchain's own cargo with it.
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| on_path.ancestors().nth(3).map(|home| home.join(".rustup")))
        .filter(|d| d.is_dir());
    let mut which = std::process::Command::new("rustup");
    which.args(["which", "cargo"]);
    if let Some(h) = rustup_home {
        which.env("RUSTUP_HOME", h);
    }
    match which.output() {
        Ok(o) if o.status.success() => Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())),
        _ => Some(on_path),
    }
}

fn generate_crate(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"krate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )?;
    let mut main = String::new();
    for m in 0..MODULES {
        let _ = writeln!(main, "mod m{m};");
        let mut src = String::new();
        for f in 0..40 {
            let _ = writeln!(
                src,
                "pub fn f{f}(v: &[u64]) -> u64 {{ v.iter().map(|x| x.wrapping_mul({f} + 1) ^ {m}).fold(0u64, |a, b| a.rotate_left(3) ^ b) }}"
            );
        }
        let _ =
            writeln!(src, "#[derive(Debug, Clone, PartialEq)]\npub struct S{m} {{ pub a: Vec<String>, pub b: u32 }}");
        std::fs::write(dir.join(format!("src/m{m}.rs")), src)?;
    }
    let _ = writeln!(main, "fn main() {{\n    let v: Vec<u64> = (0..10).collect();\n    let mut t = 0u64;");
    for m in 0..MODULES {
        let _ = writeln!(main, "    t ^= m{m}::f{}(&v);", m % 40);
    }
    let _ = writeln!(main, "    println!(\"{{t}}\");\n}}");
    std::fs::write(dir.join("src/main.rs"), main)
}
