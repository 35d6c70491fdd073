//! From the command line to the effective configuration: which workspace, which files, which
//! flags (`palisade::policy::config` does the layering), and the sandbox options it asks for.

use super::args::PolicyArgs;
use super::{fail, Failure};
use palisade::policy::config::{self, LoadRequest, Overrides, Resolved};
use palisade::policy::workspace::{self, WorkspaceRule};
use palisade::SandboxOptions;
use std::path::PathBuf;

pub(super) fn load(args: &PolicyArgs) -> Result<Resolved, Failure> {
    Ok(config::load(&request(args)?.0)?)
}

/// Where the configuration comes from: the workspace (and the rule that chose it), the files'
/// locations and the flags.
pub(super) fn request(args: &PolicyArgs) -> Result<(LoadRequest, WorkspaceRule), Failure> {
    let (workspace, rule) = match &args.workspace {
        Some(w) => (w.clone(), WorkspaceRule::Flag),
        None => {
            let cwd =
                std::env::current_dir().map_err(|e| fail(format!("cannot determine the current directory: {e}")))?;
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|h| h.is_absolute())
                .or_else(palisade::caller::home_from_user_database);
            let home = home.map(|h| std::fs::canonicalize(&h).unwrap_or(h));
            let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
            workspace::discover(&cwd, home.as_deref(), workspace::real_markers)
        }
    };
    let overrides = Overrides {
        mode: args.mode,
        network: args.network.clone(),
        allow_net: args.allow_net.clone(),
        writable: args.writable.clone(),
        keep_env: args.keep_env.clone(),
        keep_processes: if args.keep_processes { Some(true) } else { None },
        no_audit: args.no_audit,
        ..Overrides::default()
    };
    let mut req = LoadRequest::from_env(workspace, overrides);
    // The managed file's place comes from the system, never from the environment.
    req.managed_config = Some(palisade::caller::managed_config_path());
    if let Some(log) = palisade::caller::audit_log_default() {
        req.audit_log = Some(log);
    }
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
    if req.audit_log.is_none() {
        let state = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
        req.audit_log = config::default_audit_log(state, Some(&home));
    }
    req.home = Some(home);
}

pub(super) fn sandbox_options(resolved: &Resolved) -> SandboxOptions {
    SandboxOptions {
        landlock_only: resolved.linux.allow_landlock_only,
        accept_unprotected_paths: resolved.linux.allow_unprotected_paths,
        landlock_only_as_root: resolved.linux.allow_landlock_only_as_root,
        network_hosts_file: std::env::var_os("PALISADE_NET_HOSTS_FILE").filter(|v| !v.is_empty()).map(PathBuf::from),
        report_denials: false,
        #[cfg(windows)]
        windows_mode: resolved.windows.mode,
    }
}

/// A run inside a Palisade sandbox (an agent wrapped in Palisade whose shell tool calls Palisade
/// again) cannot set up a sandbox of its own: it is refused with one line saying so. The outer
/// sandbox's policy keeps applying to everything inside, whatever this says.
pub(super) fn nested_refusal() -> Option<palisade::Error> {
    (std::env::var_os("PALISADE_SANDBOX").is_some_and(|v| v == "1")).then(|| palisade::Error::Unenforceable {
        what: "a sandbox of its own".into(),
        why: "this process already runs inside a Palisade sandbox (PALISADE_SANDBOX=1), whose policy applies to everything it starts".into(),
        fix: "run the command directly (it stays confined by the outer sandbox); to narrow what it may do, give the outer run the narrower policy".into(),
    })
}
