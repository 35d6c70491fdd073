//! The command-line interface: argument parsing, configuration loading, and the `run`, `check`,
//! `policy` and `setup` subcommands. Errors are one line on stderr and exit with 125.

// Printing never panics: a closed stdout (`palisade policy | true`) or stderr must not turn the
// command's exit status into a panic's 101. What cannot be written is dropped.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

use clap::{Args, Parser, Subcommand};
use palisade::host_setup::{self, Install, Uninstall};
use palisade::policy::config::{self, LoadRequest, Overrides, Resolved};
use palisade::policy::workspace::{self, WorkspaceRule};
use palisade::{exit_code, Mode, Network, Sandbox, SandboxOptions};
use std::ffi::OsString;
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit status of `palisade run`: the command's own; 128+N if signal N ended it; 125 if Palisade
failed (bad arguments or configuration, a protection this host cannot enforce, a setup step);
126 if the command cannot be executed; 127 if it was not found.

Configuration (lowest to highest): built-in defaults, ~/.config/palisade/config.toml,
<workspace>/.palisade/config.toml (may only tighten), command-line flags; all bounded by the
administrator's /etc/palisade/managed.toml. `palisade policy` shows the result and its sources.";

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Run a command so that it reads broadly, writes only inside the workspace, never touches \
             protected metadata (.git hooks and config, agent folders) and stays offline unless allowed.",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a command in the sandbox: `palisade run -- cargo test`.
    #[command(after_help = AFTER_HELP)]
    Run {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Print a JSON line with the exit status and the enforcement layers to stderr at the end.
        #[arg(long)]
        json_status: bool,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Report which sandboxing mechanisms this host offers (by trying them) and what the
    /// effective policy will use.
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Windows, elevated mode: also prove the network fence by starting a runner as
        /// PalisadeOffline and making its fence probe (a TCP connect to 192.0.2.1 and one to a
        /// loopback port that is not a proxy port, both must be blocked); the "network fence"
        /// line then says proven, FAIL (a connect got out) or unknown. Without it the line
        /// says whether the firewall rules and filters are in place. Elsewhere: no effect.
        #[arg(long)]
        probe: bool,
    },
    /// Print the effective policy and, for each value, the layer that set it.
    Policy {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// One-time host set-up, as root: where AppArmor restricts user namespaces, install a
    /// profile that lets Palisade's binary create them (as distributions do for bwrap).
    /// Windows, with --elevated: create the sandbox accounts of the elevated mode (asks for
    /// administrator approval once; see the README's Windows section).
    Setup {
        /// Remove what `setup` installed.
        #[arg(long)]
        uninstall: bool,
        /// Windows: set up (or with --uninstall remove) the elevated mode's accounts, network
        /// fence and read grants through `palisade-setup.exe`, started with UAC approval.
        #[arg(long)]
        elevated: bool,
    },
    /// Remove what Palisade keeps on disk between commands (Windows: the ACEs recorded in
    /// %LOCALAPPDATA%\Palisade; Linux: placeholders of protected paths and the private
    /// temporary folders (/dev/shm/palisade-*) left by runs that were killed or by
    /// --keep-processes leftovers that have ended, and unused lock files). Safe to run again;
    /// what a running sandbox uses stays.
    Cleanup,
}

#[derive(Args, Clone)]
struct PolicyArgs {
    /// The workspace (writable in workspace-write mode). Default: the nearest directory, from the
    /// current one up, with `.palisade/config.toml` or a `.git` (never the home directory or
    /// /), else the current directory. The command still starts in the current directory.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// An extra writable root (repeatable).
    #[arg(long = "writable", value_name = "DIR")]
    writable: Vec<PathBuf>,
    /// read-only, workspace-write (default) or full-access.
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    mode: Option<Mode>,
    /// off (default) or on.
    #[arg(long, value_name = "off|on", value_parser = parse_network)]
    network: Option<Network>,
    /// Pass this environment variable even though its name looks like a secret (repeatable).
    #[arg(long = "keep-env", value_name = "NAME")]
    keep_env: Vec<String>,
    /// Let processes the command starts outlive it.
    #[arg(long)]
    keep_processes: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s).ok_or_else(|| format!("unknown mode {s:?} (expected read-only, workspace-write or full-access)"))
}

fn parse_network(s: &str) -> Result<Network, String> {
    Network::parse(s).ok_or_else(|| format!("unknown network setting {s:?} (expected off or on)"))
}

struct Failure {
    message: String,
    code: i32,
}

impl From<palisade::Error> for Failure {
    fn from(e: palisade::Error) -> Failure {
        Failure { code: e.exit_code(), message: e.to_string() }
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Failure {
        Failure { code: exit_code::PALISADE_ERROR, message: e.to_string() }
    }
}

fn fail(message: impl Into<String>) -> Failure {
    Failure { message: message.into(), code: exit_code::PALISADE_ERROR }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { exit_code::PALISADE_ERROR } else { 0 };
            }
            errln!("palisade: {} (see `palisade --help`)", one_line(&e));
            return exit_code::PALISADE_ERROR;
        }
    };
    let mut json_status_wanted = false;
    let result = match cli.command {
        Cmd::Run { policy, json_status, command } => {
            json_status_wanted = json_status;
            run(&policy, json_status, command)
        }
        Cmd::Check { policy, json, probe } => check(&policy, json, probe),
        Cmd::Policy { policy, json } => show_policy(&policy, json),
        Cmd::Setup { uninstall, elevated } => setup(uninstall, elevated),
        Cmd::Cleanup => cleanup(),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            errln!("palisade: {}", f.message);
            if json_status_wanted {
                // The caller parses the last line of stderr: give it one even though the command
                // never ran (bad configuration, not found, a refused or failed setup).
                errln!(
                    "{}",
                    serde_json::json!({"exit_code": null, "signal": null, "status": f.code, "error": f.message, "layers": [], "notices": []})
                );
            }
            f.code
        }
    }
}

/// clap's message as one line, without its "error: " prefix: the lines before the usage (a
/// missing argument is named on the line after "the following required arguments were not
/// provided:"), joined, with clap's tip when it gives one.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts: Vec<&str> = Vec::new();
    let mut lines = text.lines();
    for l in lines.by_ref() {
        let l = l.trim();
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if !l.is_empty() {
            parts.push(l);
        }
    }
    // Continuation lines (a missing argument's name) join with a space, clap's tips with "; ".
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() {
            out.push_str(if part.starts_with("tip:") { "; " } else { " " });
        }
        out.push_str(part);
    }
    out = out.trim_start_matches("error: ").to_string();
    if out.is_empty() {
        out = "invalid arguments".into();
    }
    out
}

fn load(args: &PolicyArgs) -> Result<Resolved, Failure> {
    Ok(config::load(&request(args)?.0)?)
}

/// Where the configuration comes from: the workspace (and the rule that chose it), the files'
/// locations and the flags.
fn request(args: &PolicyArgs) -> Result<(LoadRequest, WorkspaceRule), Failure> {
    let (workspace, rule) = match &args.workspace {
        Some(w) => (w.clone(), WorkspaceRule::Flag),
        None => {
            let cwd = std::env::current_dir().map_err(|e| fail(format!("cannot determine the current directory: {e}")))?;
            let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute()).or_else(palisade::caller::home_from_user_database);
            let home = home.map(|h| std::fs::canonicalize(&h).unwrap_or(h));
            let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
            workspace::discover(&cwd, home.as_deref(), workspace::real_markers)
        }
    };
    let overrides = Overrides {
        mode: args.mode,
        network: args.network.clone(),
        writable: args.writable.clone(),
        keep_env: args.keep_env.clone(),
        keep_processes: if args.keep_processes { Some(true) } else { None },
        ..Overrides::default()
    };
    let mut req = LoadRequest::from_env(workspace, overrides);
    home_fallback(&mut req);
    Ok((req, rule))
}

/// Without a usable `$HOME` (unset, empty or relative: harnesses often clear the environment),
/// the home directory comes from the user database, so that `~/.ssh` and the other default
/// deny-read entries still name the user's real secrets instead of silently nothing.
fn home_fallback(req: &mut LoadRequest) {
    if req.home.as_ref().is_some_and(|h| h.is_absolute()) {
        return;
    }
    let Some(home) = palisade::caller::home_from_user_database() else { return };
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    req.user_config = Some(xdg.unwrap_or_else(|| home.join(".config")).join("palisade").join("config.toml"));
    req.home = Some(home);
}

fn sandbox_options(resolved: &Resolved) -> SandboxOptions {
    SandboxOptions {
        landlock_only: resolved.linux.allow_landlock_only,
        accept_unprotected_paths: resolved.linux.allow_unprotected_paths,
        landlock_only_as_root: resolved.linux.allow_landlock_only_as_root,
        #[cfg(windows)]
        windows_mode: resolved.windows.mode,
    }
}

fn run(args: &PolicyArgs, json_status: bool, command: Vec<OsString>) -> Result<i32, Failure> {
    if let Some(e) = nested_refusal() {
        return Err(e.into());
    }
    let resolved = load(args)?;
    warn_unwritable_worktree_repository(&resolved.policy);
    let options = sandbox_options(&resolved);
    let sandbox = Sandbox::with_options(resolved.policy.clone(), options)?;
    let (program, rest) = command.split_first().ok_or_else(|| fail("no command given"))?;
    // The command starts where the user is (the workspace may be a parent: see `request`).
    let cwd = std::env::current_dir()
        .ok()
        .map(|d| std::fs::canonicalize(&d).unwrap_or(d))
        .filter(|d| d.starts_with(&sandbox.policy().workspace));
    let mut cmd = sandbox.command(program);
    cmd.args(rest).kill_on_parent_death(true);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let forwarder = palisade::signals::Forwarder::install();
    // A signal that arrived before the command started (while waiting for another run's lock,
    // say) ends palisade with the status the signal would give.
    let mut child = cmd.spawn().map_err(|e| match forwarder.pending() {
        Some(sig) => Failure { code: 128 + sig, message: e.to_string() },
        None => e.into(),
    })?;
    forwarder.forward_to(&child);
    let status = forwarder.wait(&mut child).map_err(|e| fail(format!("waiting for the command: {e}")))?;
    for notice in child.notices() {
        errln!("palisade: warning: {notice}");
    }
    if json_status {
        let layers: Vec<_> = sandbox
            .enforcement()
            .layers
            .iter()
            .map(|l| serde_json::json!({"name": l.name, "active": l.active, "detail": l.detail}))
            .collect();
        errln!(
            "{}",
            serde_json::json!({"exit_code": status.code(), "signal": status.signal(), "status": status.shell_code(), "layers": layers, "notices": child.notices()})
        );
    }
    Ok(status.shell_code())
}

/// `sudo <this binary's full path> setup`: `sudo` does not search `~/.local/bin`.
fn sudo_setup_hint() -> String {
    match std::env::current_exe() {
        Ok(p) => format!("sudo {} setup", p.display()),
        Err(_) => "sudo palisade setup".into(),
    }
}

/// A linked git worktree (common with agents that work on several branches at once) keeps its
/// index lock, objects and refs in the main repository's git directory: unless that is
/// writable too, every `git add` or `git commit` inside fails with "Read-only file system".
/// Say so before the command runs, with the flag that fixes it.
fn warn_unwritable_worktree_repository(policy: &palisade::Policy) {
    if policy.mode != Mode::WorkspaceWrite {
        return;
    }
    let Some(common) = workspace::linked_worktree_common_dir(&policy.workspace) else { return };
    if policy.write_roots().iter().any(|r| common.starts_with(r)) {
        return;
    }
    errln!(
        "palisade: warning: {} is a linked git worktree, and its repository's git directory {} is not writable here: git add and git commit will fail; add --writable {} to let them",
        policy.workspace.display(),
        common.display(),
        common.display()
    );
}

/// A run inside a Palisade sandbox (an agent wrapped in Palisade whose shell tool calls Palisade
/// again) cannot set up a sandbox of its own: it is refused with one line saying so. The outer
/// sandbox's policy keeps applying to everything inside, whatever this says.
fn nested_refusal() -> Option<palisade::Error> {
    (std::env::var_os("PALISADE_SANDBOX").is_some_and(|v| v == "1")).then(|| palisade::Error::Unenforceable {
        what: "a sandbox of its own".into(),
        why: "this process already runs inside a Palisade sandbox (PALISADE_SANDBOX=1), whose policy applies to everything it starts".into(),
        fix: "run the command directly (it stays confined by the outer sandbox); to narrow what it may do, give the outer run the narrower policy".into(),
    })
}

fn check(args: &PolicyArgs, json: bool, probe: bool) -> Result<i32, Failure> {
    let report = palisade::check_host();
    let policy = load(args);
    let sandbox = match &policy {
        Ok(_) if nested_refusal().is_some() => nested_refusal().map(Err),
        Ok(r) => Some(Sandbox::with_options(r.policy.clone(), sandbox_options(r)).and_then(|s| {
            // The sandbox is only prepared here; a spawn would find out that the namespaces it
            // needs are missing. The probe above already tried them: say now what run would.
            let needs_namespaces = s.enforcement().layers.iter().any(|l| l.name == "user namespace" && l.active);
            if needs_namespaces && !report.namespaces {
                let why = report
                    .mechanisms
                    .iter()
                    .find(|m| !m.active)
                    .map(|m| m.detail.clone())
                    .unwrap_or_else(|| "user namespaces are unavailable".into());
                return Err(palisade::Error::Unenforceable {
                    what: "the sandbox's namespaces".into(),
                    why,
                    fix: format!("run `{}` where AppArmor restricts user namespaces, or set `[linux] allow_landlock_only = true` to run with Landlock and seccomp only", sudo_setup_hint()),
                });
            }
            Ok(s)
        })),
        Err(_) => None,
    };
    // The elevated Windows mode's state. With `[windows] mode = "elevated"` a failed line is
    // a refusal (the mode cannot be trusted to enforce), unless the sandbox already refused;
    // otherwise the lines are information.
    let required = matches!(&policy, Ok(r) if r.windows.mode == config::WindowsMode::Elevated);
    let elevated = if probe { palisade::check_elevated_probing(required) } else { palisade::check_elevated(required) };
    let sandbox = match (sandbox, &elevated) {
        (Some(Ok(_)), Some(e)) if required && e.first_failure().is_some() => {
            let l = e.first_failure().expect("checked");
            Some(Err(palisade::Error::Unenforceable {
                what: "[windows] mode = \"elevated\"".into(),
                why: format!("the elevated setup is not intact ({}: {})", l.item, l.detail),
                fix: "run `palisade setup --elevated` again (see the elevated mode's lines above)".into(),
            }))
        }
        (s, _) => s,
    };
    if json {
        let mech: Vec<_> = report
            .mechanisms
            .iter()
            .map(|l| serde_json::json!({"name": l.name, "available": l.active, "detail": l.detail}))
            .collect();
        let (layers, refusal) = match &sandbox {
            Some(Ok(s)) => (
                s.enforcement().layers.iter().map(|l| serde_json::json!({"name": l.name, "active": l.active, "detail": l.detail})).collect(),
                None,
            ),
            Some(Err(e)) => (vec![], Some(e.to_string())),
            None => (vec![], policy.as_ref().err().map(|f| f.message.clone())),
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "host": report.facts.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                "mechanisms": mech,
                "policy_layers": layers,
                "refusal": refusal,
                "elevated": elevated.as_ref().map(|e| serde_json::json!({
                    "required": required,
                    "usable": e.usable(),
                    "lines": e.lines,
                })),
                "notes": report.notes,
            }))
            .unwrap_or_default()
        );
    } else {
        outln!("Host");
        for (k, v) in &report.facts {
            outln!("  {k:<36} {v}");
        }
        outln!("\nMechanisms (each one tried in a throw-away process)");
        for m in &report.mechanisms {
            outln!("  {:<36} {:<4} {}", m.name, if m.active { "yes" } else { "NO" }, m.detail);
        }
        if let Some(e) = &elevated {
            if required {
                outln!("\nElevated mode ([windows] mode = \"elevated\"; `palisade setup --elevated`)");
            } else {
                outln!("\nElevated mode (information: [windows] mode is not \"elevated\")");
            }
            for l in &e.lines {
                outln!("  {l}");
            }
        }
        outln!("\nThe effective policy on this host");
        match &sandbox {
            Some(Ok(s)) => {
                for l in &s.enforcement().layers {
                    outln!("  {:<36} {:<4} {}", l.name, if l.active { "on" } else { "off" }, l.detail);
                }
            }
            Some(Err(e)) => outln!("  `palisade run` would refuse: {e}"),
            None => outln!("  configuration error: {}", policy.as_ref().err().map(|f| f.message.as_str()).unwrap_or("")),
        }
        for n in &report.notes {
            outln!("\nNote: {n}");
        }
    }
    Ok(match sandbox {
        Some(Ok(_)) => 0,
        _ => exit_code::PALISADE_ERROR,
    })
}

fn show_policy(args: &PolicyArgs, json: bool) -> Result<i32, Failure> {
    let (req, rule) = request(args)?;
    let resolved = config::load(&req)?;
    if json {
        let mut v = resolved.to_json();
        if let Some(map) = v.as_object_mut() {
            map.insert("workspace_rule".into(), serde_json::json!({"rule": rule.as_str(), "text": rule.to_string()}));
        }
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        out!("{}", resolved.render());
        outln!("{:<30} {rule}", "workspace chosen as");
        // Which files were looked for, so that a file in the wrong place is noticed.
        let project = resolved.policy.workspace.join(".palisade").join("config.toml");
        let files = [("user file", req.user_config.as_deref()), ("project file", Some(project.as_path())), ("managed file", req.managed_config.as_deref())];
        for (name, path) in files {
            match path {
                Some(p) => outln!("{name:<30} {} ({})", p.display(), if p.exists() { "read" } else { "not present" }),
                None => outln!("{name:<30} (none: no home directory)"),
            }
        }
    }
    Ok(0)
}

fn cleanup() -> Result<i32, Failure> {
    let report = palisade::cleanup()?;
    if cfg!(windows) {
        outln!("removed {} recorded permission entries ({} were already gone)", report.removed, report.already_gone);
    }
    for n in &report.notes {
        outln!("note: {n}");
    }
    if report.failed.is_empty() {
        return Ok(0);
    }
    for f in &report.failed {
        outln!("not removed: {f}");
    }
    Err(fail(format!("{} entries could not be removed; they stay recorded: run `palisade cleanup` again", report.failed.len())))
}

fn setup(uninstall: bool, elevated: bool) -> Result<i32, Failure> {
    if elevated {
        return elevated_setup::run(uninstall);
    }
    if uninstall {
        match host_setup::uninstall_apparmor_profile().map_err(|e| fail(e.to_string()))? {
            Uninstall::Removed { profile } => outln!("removed {}", profile.display()),
            Uninstall::NotInstalled { profile } => outln!("nothing to remove: {} is not installed", profile.display()),
        }
    } else {
        match host_setup::install_apparmor_profile().map_err(|e| fail(e.to_string()))? {
            Install::Installed { profile, exe } => outln!("installed {} for {}", profile.display(), exe.display()),
            Install::NotNeeded => outln!("nothing to do: this host does not restrict unprivileged user namespaces"),
        }
    }
    Ok(0)
}

/// `palisade setup --elevated [--uninstall]` (Windows).
mod elevated_setup {
    use super::{fail, Failure};

    #[cfg(windows)]
    pub fn run(uninstall: bool) -> Result<i32, Failure> {
        use palisade::windows_setup::{self, exit, Launch, Progress};
        if uninstall {
            outln!("palisade setup --elevated --uninstall removes the permission entries your commands added to writable roots (as `palisade cleanup` does), then what the elevated setup recorded (accounts, group, firewall rules and filters, read grants, Palisade's folder), then the stored passwords.");
        } else {
            outln!("palisade setup --elevated asks Windows for administrator approval once, to:");
            for line in [
                "create %ProgramData%\\Palisade (Administrators only may change it) and copy palisade-runner.exe there",
                "create the local group PalisadeSandboxUsers and the hidden local accounts PalisadeOffline and PalisadeOnline (random passwords, stored DPAPI-encrypted for you)",
                "deny them remote desktop, network, batch and service logons",
                "fence PalisadeOffline off the network (Windows Firewall rules and WFP filters; loopback to Palisade's proxy only)",
                "let the group read your profile except credential stores, AppData and registry hives (never write)",
            ] {
                outln!("  - {line}");
            }
            outln!("The plan as setup finds this machine follows ([done] steps change nothing). Undo with `palisade setup --elevated --uninstall`.");
        }
        let mut report = |p: &Progress| match p {
            Progress::Hello { setup_version } => outln!("palisade-setup started (setup version {setup_version})"),
            Progress::Plan { lines } => lines.iter().for_each(|l| outln!("  {l}")),
            Progress::Step { index, total, description, .. } => outln!("[{index}/{total}] {description}"),
            Progress::StepDone { .. } => {}
            Progress::Note { text } => outln!("note: {text}"),
            Progress::Failed { step, message, .. } => errln!("palisade: setup stopped at `{step}`: {message}"),
            Progress::Finished { changed } => outln!("done: {changed} step(s) changed this machine"),
        };
        let outcome = windows_setup::run(uninstall, Launch::RunAs, None, &mut report).map_err(|e| fail(e.to_string()))?;
        if outcome.exit_code == exit::OK && outcome.finished {
            if uninstall {
                outln!("removed the stored passwords of the sandbox accounts");
            }
            return Ok(0);
        }
        Err(fail(format!("palisade-setup exited with {}: {}", outcome.exit_code, exit::meaning(outcome.exit_code))))
    }

    #[cfg(not(windows))]
    pub fn run(_uninstall: bool) -> Result<i32, Failure> {
        Err(fail("`palisade setup --elevated` is the Windows elevated mode's setup; on this system run `palisade setup`"))
    }
}
