//! The things the benchmark times: one run of the program per iteration.

use crate::scratch::{self, Scratch};
use palisade::{Network, Policy, Sandbox, SandboxOptions};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub type Run = Box<dyn FnMut() -> Result<(), String>>;

/// A goal printed next to a result: at most `added_ms` over the plain spawn.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub added_ms: f64,
    pub what: &'static str,
}

pub struct Case {
    pub name: &'static str,
    pub about: String,
    /// The exact command line, for external tools.
    pub argv: Option<Vec<String>>,
    pub target: Option<Target>,
    pub run: Run,
}

pub enum Built {
    Ready(Case),
    Skipped { name: &'static str, about: String, reason: String },
}

impl Built {
    pub fn name(&self) -> &'static str {
        match self {
            Built::Ready(c) => c.name,
            Built::Skipped { name, .. } => name,
        }
    }
}

fn external(name: &'static str, about: String, argv: Vec<OsString>, cwd: &Path, target: Option<Target>) -> Case {
    let shown = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let cwd = cwd.to_path_buf();
    let run: Run = Box::new(move || {
        let st = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(&cwd)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", argv[0].to_string_lossy()))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("{} ended with {st}", argv[0].to_string_lossy()))
        }
    });
    Case { name, about, argv: Some(shown), target, run }
}

fn library(
    name: &'static str,
    about: &str,
    policy: Policy,
    options: SandboxOptions,
    program: &Path,
    target: Option<Target>,
) -> Built {
    match Sandbox::with_options(policy, options) {
        Ok(sandbox) => {
            let layers: Vec<String> =
                sandbox.enforcement().layers.iter().filter(|l| l.active).map(|l| l.name.clone()).collect();
            let program = program.to_path_buf();
            let run: Run = Box::new(move || {
                let st = sandbox.command(&program).status().map_err(|e| e.to_string())?;
                if st.success() {
                    Ok(())
                } else {
                    Err(format!("the sandboxed command ended with {st}"))
                }
            });
            Built::Ready(Case {
                name,
                about: format!("{about} [active: {}]", layers.join(", ")),
                argv: None,
                target,
                run,
            })
        }
        Err(e) => Built::Skipped { name, about: about.into(), reason: e.to_string() },
    }
}

pub struct Setup<'a> {
    pub scratch: &'a Scratch,
    pub program: PathBuf,
    pub palisade_cli: Option<PathBuf>,
    /// Why the CLI is missing, when it is.
    pub palisade_cli_missing: String,
}

pub const LANDLOCK_ONLY_TARGET: Target = Target { added_ms: 0.3, what: "Landlock+seccomp only" };
pub const NAMESPACES_TARGET: Target = Target { added_ms: 1.5, what: "full namespace isolation" };

/// Every case, in display order; those that cannot run here are skipped with the reason.
pub fn build_all(s: &Setup<'_>) -> Vec<Built> {
    let ws = &s.scratch.workspace;
    let home = &s.scratch.home;
    let prog = s.program.as_os_str().to_os_string();
    let mut out = Vec::new();

    out.push(Built::Ready(external(
        "spawn",
        format!("baseline: std::process::Command::new({:?}).status()", s.program),
        vec![prog.clone()],
        ws,
        None,
    )));

    let policy = || Policy::new(ws, Some(home));
    out.push(library(
        "lib-default",
        "library, default policy: user+mount+pid+network namespaces, Landlock, seccomp",
        policy(),
        SandboxOptions::default(),
        &s.program,
        Some(NAMESPACES_TARGET),
    ));
    let mut net_on = policy();
    net_on.network = Network::On;
    out.push(library(
        "lib-net-on",
        "library, network on: user+mount+pid namespaces (no network namespace), Landlock, seccomp",
        net_on,
        SandboxOptions::default(),
        &s.program,
        None,
    ));
    let mut no_pid = policy();
    no_pid.network = Network::On;
    no_pid.keep_processes = true;
    out.push(library(
        "lib-net-on-no-pidns",
        "library, network on + keep_processes: user+mount namespaces only (no pid ns, no init, no /proc mount), Landlock, seccomp",
        no_pid,
        SandboxOptions::default(),
        &s.program,
        None,
    ));
    let mut ll = policy();
    ll.network = Network::On;
    out.push(library(
        "lib-landlock-only",
        "library, Landlock-only mode, network on: no namespaces; Landlock, seccomp",
        ll,
        SandboxOptions { landlock_only: true, accept_unprotected_paths: true, ..Default::default() },
        &s.program,
        Some(LANDLOCK_ONLY_TARGET),
    ));

    match &s.palisade_cli {
        Some(cli) => out.push(Built::Ready(external(
            "cli-default",
            "CLI `palisade run -- PROGRAM` in the workspace, default policy (config loading + Sandbox::new + spawn, per command)".into(),
            vec![cli.as_os_str().into(), "run".into(), "--".into(), prog.clone()],
            ws,
            None,
        ))),
        None => out.push(Built::Skipped {
            name: "cli-default",
            about: "CLI `palisade run -- PROGRAM`".into(),
            reason: s.palisade_cli_missing.clone(),
        }),
    }

    match scratch::which("bwrap") {
        Some(bwrap) => {
            let equiv = bwrap_equivalent(&bwrap, s, true);
            out.push(Built::Ready(external(
                "bwrap-equiv",
                "bubblewrap with the protections of the default policy that bwrap can express (see bench/README.md)"
                    .into(),
                equiv,
                ws,
                None,
            )));
            let equiv_on = bwrap_equivalent(&bwrap, s, false);
            out.push(Built::Ready(external(
                "bwrap-equiv-net-on",
                "the same without --unshare-net and without hiding socket folders (network on)".into(),
                equiv_on,
                ws,
                None,
            )));
            out.push(Built::Ready(external(
                "bwrap-min",
                "bubblewrap's floor: `bwrap --ro-bind / / PROGRAM` (a mount namespace; a user namespace when not root)"
                    .into(),
                vec![bwrap.into_os_string(), "--ro-bind".into(), "/".into(), "/".into(), prog.clone()],
                ws,
                None,
            )));
        }
        None => {
            for name in ["bwrap-equiv", "bwrap-equiv-net-on", "bwrap-min"] {
                out.push(Built::Skipped {
                    name,
                    about: "bubblewrap".into(),
                    reason: "bwrap is not installed (bench/setup.sh installs it)".into(),
                });
            }
        }
    }

    match scratch::which("firejail") {
        Some(fj) => out.push(Built::Ready(external(
            "firejail",
            "firejail --quiet --noprofile --net=none --private-tmp PROGRAM".into(),
            vec![
                fj.into_os_string(),
                "--quiet".into(),
                "--noprofile".into(),
                "--net=none".into(),
                "--private-tmp".into(),
                prog.clone(),
            ],
            ws,
            None,
        ))),
        None => out.push(Built::Skipped {
            name: "firejail",
            about: "firejail".into(),
            reason: "firejail is not installed (optional; not installed by bench/setup.sh)".into(),
        }),
    }

    match (scratch::which("systemd-run"), systemd_running()) {
        (Some(sr), true) => out.push(Built::Ready(external(
            "systemd-run",
            "systemd-run --scope --quiet PROGRAM (a transient scope unit; no confinement)".into(),
            vec![sr.into_os_string(), "--scope".into(), "--quiet".into(), prog.clone()],
            ws,
            None,
        ))),
        (None, _) => out.push(Built::Skipped {
            name: "systemd-run",
            about: "systemd-run".into(),
            reason: "systemd-run is not installed".into(),
        }),
        (Some(_), false) => out.push(Built::Skipped {
            name: "systemd-run",
            about: "systemd-run".into(),
            reason: "systemd is not running on this host (a container?)".into(),
        }),
    }
    out
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// bubblewrap with what Palisade's default policy enforces through namespaces and mounts:
///
/// - `--unshare-user --unshare-pid` (+ `--unshare-net` when offline); bwrap always makes a mount
///   namespace;
/// - `--ro-bind / /`: the whole filesystem read-only (recursively);
/// - `--dev /dev`: a minimal /dev (null, zero, full, random, urandom, tty, pts, shm);
/// - `--proc /proc`: a fresh /proc for the pid namespace;
/// - `--tmpfs /tmp`: a private /tmp;
/// - `--bind WS WS`: the workspace writable;
/// - `--ro-bind P P` for each protected path that exists in the workspace (.git/hooks, .git/config);
/// - `--tmpfs D --remount-ro D` for each deny-read folder that exists in the home (.ssh);
/// - offline only: `--tmpfs D --remount-ro D` for the socket folders Palisade hides (/run,
///   /var/run, /var/tmp, `$XDG_RUNTIME_DIR`; the library's own list);
/// - `--die-with-parent` (Palisade's kill-on-parent-death) and `--new-session` (against TIOCSTI,
///   which Palisade blocks with seccomp instead).
///
/// What bwrap does NOT do here: Landlock, a seccomp filter, placeholders for missing protected
/// paths, dropping the environment's secrets. So this row does strictly less work than
/// `lib-default`.
pub fn bwrap_equivalent(bwrap: &Path, s: &Setup<'_>, offline: bool) -> Vec<OsString> {
    let ws = s.scratch.workspace.as_os_str();
    let mut a: Vec<OsString> = vec![bwrap.as_os_str().into()];
    let mut push = |items: &[&std::ffi::OsStr]| a.extend(items.iter().map(|i| i.to_os_string()));
    push(&["--unshare-user".as_ref(), "--unshare-pid".as_ref()]);
    if offline {
        push(&["--unshare-net".as_ref()]);
    }
    push(&["--ro-bind".as_ref(), "/".as_ref(), "/".as_ref()]);
    push(&[
        "--dev".as_ref(),
        "/dev".as_ref(),
        "--proc".as_ref(),
        "/proc".as_ref(),
        "--tmpfs".as_ref(),
        "/tmp".as_ref(),
    ]);
    push(&["--bind".as_ref(), ws, ws]);
    for p in s.scratch.existing_protected() {
        push(&["--ro-bind".as_ref(), p.as_os_str(), p.as_os_str()]);
    }
    let mut masks = s.scratch.existing_deny_read_dirs();
    if offline {
        masks.extend(palisade::__private::offline_socket_dirs(&[s.scratch.workspace.as_path()]));
    }
    for d in &masks {
        push(&["--tmpfs".as_ref(), d.as_os_str(), "--remount-ro".as_ref(), d.as_os_str()]);
    }
    push(&["--die-with-parent".as_ref(), "--new-session".as_ref(), s.program.as_os_str()]);
    a
}
