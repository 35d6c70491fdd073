//! Protected paths: for every writable root, what must stay read-only (protected::resolve over
//! the policy's patterns, git's indirections and palisade's own configuration), and the
//! placeholders missing ones need, created and recorded on the host (see placeholders.rs).

use super::{placeholders, sys, Prepared, SharedPlaceholders};
use crate::error::Error;
use palisade_policy::protected::{self, Action};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

impl Prepared {
    /// The actions that keep protected paths read-only, for every writable root, with the
    /// placeholders they need created (and recorded) on the host.
    pub(super) fn protected_actions(
        &self,
        env: &[(OsString, OsString)],
    ) -> Result<(Vec<Action>, SharedPlaceholders), Error> {
        let shared = {
            let mut guard = self.workspace_lock.lock().unwrap_or_else(|e| e.into_inner());
            match &*guard {
                Some(l) => l.clone(),
                None => {
                    let l = Arc::new(Mutex::new(placeholders::PlaceholderLocks::acquire(&self.write_roots).map_err(
                        |e| Error::Io { context: "locking the writable roots' placeholder records".into(), source: e },
                    )?));
                    *guard = Some(l.clone());
                    l
                }
            }
        };
        let mut lock = shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut actions = Vec::new();
        // Read once per command, not once per root: the same host files and environment apply
        // to every root.
        let git_configs = global_git_configs();
        let git_dirs = env_git_dirs(env);
        let mut config_dirs = own_config_dirs();
        // Palisade's locks and placeholder records too (a writable /tmp holds them).
        config_dirs.push(placeholders::state_dir_path());
        let view = lock
            .view(&self.write_roots)
            .map_err(|e| Error::Io { context: "locking the writable roots' placeholder records".into(), source: e })?;
        for root in &self.write_roots {
            let acts =
                protected::resolve_with_git_configs(root, &self.policy.protected_paths, &view, &git_configs, &git_dirs)
                    .map_err(|e| Error::InvalidInput(e.to_string()))?;
            // A writable root that is neither the workspace nor a repository (a cache such as
            // ~/.cargo/registry) is not opened as a project by editors or agents: what protected
            // paths exist there stay read-only, but it gets no placeholders (a dozen empty
            // folders in a cache protect nothing anyone runs, and clutter it).
            let project = *root == self.policy.workspace || std::fs::symlink_metadata(root.join(".git")).is_ok();
            // Git indirection can point outside: only what lies in a writable root needs a
            // mount (everything else is read-only already).
            actions.extend(
                acts.into_iter()
                    .filter(|a| self.write_roots.iter().any(|r| protected::within(a.path(), r)))
                    .filter(|a| project || !matches!(a, Action::Placeholder { .. })),
            );
            // Palisade's own user configuration, when a writable root holds it (a writable
            // ~/.config): a command could otherwise rewrite the policy of the next run
            // (mode = "full-access"). Protected like the patterns, even before it exists.
            for dir in &config_dirs {
                if let Ok(rel) = dir.strip_prefix(root) {
                    let pattern = rel.to_string_lossy().into_owned();
                    if !pattern.is_empty() {
                        let acts = protected::resolve(root, &[pattern], &view)
                            .map_err(|e| Error::InvalidInput(e.to_string()))?;
                        actions.extend(acts);
                    }
                }
            }
        }
        let missing = actions.iter().filter_map(|a| match a {
            Action::Placeholder { path, dir } => Some((path.as_path(), *dir)),
            _ => None,
        });
        let intact = view.intact_placeholders();
        lock.create_placeholders(missing, &intact).map_err(|e| {
            // A workspace this user cannot write (a system folder, another user's checkout):
            // the placeholder is only the first thing that fails there; say what to do.
            let unwritable = self.write_roots.iter().find(|r| sys::access_write(r).is_err());
            match (e.kind(), unwritable) {
                (io::ErrorKind::PermissionDenied, Some(root)) => Error::InvalidInput(format!(
                    "{} is not writable by this user, so it cannot be a writable root: use --mode read-only to run here without writing, or choose another --workspace",
                    root.display()
                )),
                _ => Error::Io { context: "creating a placeholder for a missing protected path".into(), source: e },
            }
        })?;
        drop(lock);
        Ok((actions, shared))
    }
}

/// The git configuration files that apply to every repository of this user (system, global,
/// XDG), as text: a relative `core.hooksPath` there names a folder in each work tree.
fn global_git_configs() -> Vec<String> {
    let mut files = vec![PathBuf::from("/etc/gitconfig")];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        files.push(Path::new(&home).join(".gitconfig"));
        files.push(Path::new(&home).join(".config/git/config"));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|h| !h.is_empty()) {
        let xdg = Path::new(&x).join("git/config");
        // Usually ~/.config/git/config again: read it once.
        if !files.contains(&xdg) {
            files.push(xdg);
        }
    }
    files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect()
}

/// Where palisade reads the user's configuration (`$XDG_CONFIG_HOME/palisade`, else
/// `~/.config/palisade`; both when they differ), with links in the existing part resolved.
fn own_config_dirs() -> Vec<PathBuf> {
    let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(x) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        dirs.push(x.join("palisade"));
    }
    if let Some(h) = var("HOME") {
        dirs.push(h.join(".config").join("palisade"));
    }
    // And its state folder, where the audit log is by default: palisade appends to it and
    // rotates it after the command, so a command must not swap it for a link to another folder
    // (a writable ~/.local).
    if let Some(x) = var("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
        dirs.push(x.join("palisade"));
    }
    if let Some(h) = var("HOME") {
        dirs.push(h.join(".local").join("state").join("palisade"));
    }
    dirs.sort();
    // Usually the same folder twice (XDG_CONFIG_HOME=~/.config): resolve it once.
    dirs.dedup();
    dirs.into_iter()
        .map(|d| {
            let existing = d.ancestors().find(|a| a.exists()).map(Path::to_path_buf).unwrap_or_default();
            match (std::fs::canonicalize(&existing), d.strip_prefix(&existing)) {
                (Ok(real), Ok(rest)) => real.join(rest),
                _ => d,
            }
        })
        .collect()
}

/// The git directories that `GIT_DIR` / `GIT_COMMON_DIR` name, in palisade's own environment
/// (the user's shell, whose later git commands use it) and in the command's, made absolute.
fn env_git_dirs(command_env: &[(OsString, OsString)]) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let names = ["GIT_DIR", "GIT_COMMON_DIR"];
    let own = names.iter().filter_map(std::env::var_os);
    let cmd = command_env.iter().filter(|(k, _)| names.iter().any(|n| k == n)).map(|(_, v)| v.clone());
    own.chain(cmd)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let p = cwd.join(v);
            std::fs::canonicalize(&p).unwrap_or(p)
        })
        .collect()
}
