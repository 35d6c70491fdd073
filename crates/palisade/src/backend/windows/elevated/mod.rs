//! The elevated Windows mode (issue 4): commands run as a separate local sandbox account that
//! `palisade setup --elevated` created once, through `palisade-runner` started with
//! `CreateProcessWithLogonW`. The decisions live in `palisade-windows-elevated`; this module
//! carries them out for the CLI (never elevated): [`Prepared`] and [`Child`] are the mode,
//! `run.rs` starts and talks to the runner, `ownership.rs` gives back what a command created,
//! `check.rs` and `setup.rs` are `palisade check`'s and `palisade setup --elevated`'s parts.
//! The runner itself is its own binary (`src/bin/palisade-runner/`); of this module it shares
//! only the pipe (`pipe.rs`) and [`program_data_dir`].

// The storing half is for `palisade setup --elevated`, which is not wired up in this crate yet.
pub mod check;
#[allow(dead_code)]
pub mod credentials;
mod network;
pub mod ownership;
pub mod pipe;
pub mod run;
pub mod setup;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use palisade_policy::{Mode, Policy};
use palisade_win32::ffi;
use palisade_win32::sid::{lookup_existing, plan_sid};
use palisade_win32::system::known_folder_path;
use palisade_win32::token::{self, OwnToken};
use palisade_windows_elevated::facts::GROUP_NAME;
use palisade_windows_elevated::runner_seam::deny_read_outside_profile;
use palisade_windows_elevated::{SandboxUser, WinPath};
use windows_sys::Win32::UI::Shell::{FOLDERID_Profile, FOLDERID_ProgramData};

use super::{grants, io_ctx, push_wine_layer, state};
use crate::error::Error;
use crate::report::{Enforcement, Layer};
use crate::spec::CommandSpec;
use crate::status::ExitStatus;

/// `%ProgramData%\Palisade`: setup's folder (marker, runner, git configuration).
pub fn program_data_dir() -> io::Result<PathBuf> {
    known_folder_path(&FOLDERID_ProgramData)
        .or_else(|| std::env::var_os("ProgramData").map(PathBuf::from).filter(|p| p.is_absolute()))
        .map(|p| p.join("Palisade"))
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "neither the ProgramData known folder nor %ProgramData% is set")
        })
}

/// A policy made ready for the elevated mode.
pub struct Prepared {
    policy: Policy,
    enforcement: Enforcement,
    own: OwnToken,
    /// The writable roots' grants; `None` in full-access mode.
    setup: Option<grants::Setup>,
    /// How commands reach `palisade-runner` as the sandbox account.
    runner: run::Elevated,
}

impl Prepared {
    /// The elevated mode: setup must have completed; the command runs as `PalisadeOffline`
    /// (network off), `PalisadeProxied` (allow, through the sandbox's proxy: `network.rs`) or
    /// `PalisadeOnline` (on) through `palisade-runner`. Writable roots are granted
    /// to their write SIDs (which the runner puts into the command's token) and to the sandbox
    /// group (which the account's own access check needs). `seam` is the plumbing tests' way
    /// in (`TestSeam`).
    pub fn new(policy: Policy, seam: Option<&run::TestSeam>, hosts_file: Option<&Path>) -> Result<Prepared, Error> {
        let user = match (policy.network.is_off(), policy.network.allowlist()) {
            (true, _) => SandboxUser::Offline,
            (false, Some(_)) => SandboxUser::Proxied,
            (false, None) => SandboxUser::Online,
        };
        let mut el = run::Elevated::new(user, seam)?;
        if let Some(allowlist) = policy.network.allowlist() {
            el.set_proxy(network::SandboxProxy::start(allowlist, &el.proxy_ports, hosts_file)?);
        }
        let wine = ffi::wine_version();
        let own = token::open_own().map_err(io_ctx("reading this process's access token"))?;
        let mut enforcement = Enforcement::default();

        // Reads: setup granted the sandbox group the profile minus its credential stores and
        // the deny_read entries it was given; elsewhere the account reads what Users may.
        let profile = known_folder_path(&FOLDERID_Profile).and_then(|p| WinPath::parse(&p.to_string_lossy()).ok());
        let existing: Vec<WinPath> = policy
            .deny_read
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .filter_map(|p| WinPath::parse(&p.to_string_lossy()).ok())
            .collect();
        let outside = match &profile {
            Some(pr) => deny_read_outside_profile(pr, &existing),
            None => existing.clone(),
        };
        if !outside.is_empty() {
            let list: Vec<&str> = outside.iter().map(|p| p.as_str()).collect();
            return Err(Error::Unenforceable {
                what: format!("deny_read ({})", list.join(", ")),
                why: "the elevated setup keeps only paths inside your profile unreadable to the sandbox accounts; elsewhere they read what Users may read".into(),
                fix: "remove Users' read access to these paths yourself, or drop them from deny_read with `allow_read = [...]` in your user config".into(),
            });
        }

        let setup = if policy.mode == Mode::FullAccess {
            enforcement.push(Layer::new(
                "filesystem",
                false,
                "full-access mode: no writable roots granted; the command writes only its own temporary folder (not the account's profile or HKCU)",
            ));
            None
        } else {
            let group = el.account_group.clone();
            let me = plan_sid(&own.user).map_err(|e| Error::InvalidInput(e.to_string()))?;
            let setup = grants::Setup::new(&policy)?.with_account_group(group, me);
            let g = setup.pending()?;
            enforcement.push(Layer::new(
                "restricted token",
                true,
                &format!(
                    "made by palisade-runner as {}: write-restricted to a fresh per-command SID (its own processes and temporary folder; not the account), Everyone, RESTRICTED, the logon session and {} write SIDs; privileges removed",
                    el.user.account_name(),
                    g.write_sids.len() + 1
                ),
            ));
            enforcement.push(Layer::new(
                "ACLs",
                true,
                &format!(
                    "{} writable roots granted to their write SIDs and to {}, {} protected or pinned paths denied, owners' implicit rights removed (what a command creates is given back to you after it); {} changes pending",
                    setup.roots.len(),
                    GROUP_NAME,
                    g.protected,
                    g.changes
                ),
            ));
            Some(setup)
        };
        enforcement.push(Layer::new(
            "sandbox account",
            true,
            &format!("commands run as {} (palisade-runner, CreateProcessWithLogonW)", el.user.account_name()),
        ));
        enforcement.push(Layer::new(
            "deny-read",
            true,
            "the sandbox accounts read your profile without its credential stores (granted by setup)",
        ));
        enforcement.push(Layer::new(
            "network",
            user != SandboxUser::Online,
            match user {
                SandboxUser::Offline => "PalisadeOffline: firewall rules and WFP filters from setup block every connect",
                SandboxUser::Proxied => "network = allow: PalisadeProxied, whose firewall rules and WFP filters from setup let it reach only Palisade's proxy on loopback (which asks for each command's own secret); proved before each command",
                SandboxUser::Online => "network = on: PalisadeOnline, unrestricted",
            },
        ));
        enforcement.push(Layer::new(
            "job object",
            true,
            if policy.keep_processes {
                "made by palisade-runner; keep_processes: processes may outlive the command"
            } else {
                "made by palisade-runner: the process tree ends with the command or the runner"
            },
        ));
        push_wine_layer(&mut enforcement, &wine);
        Ok(Prepared { policy, enforcement, own, setup, runner: el })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    /// Starts a command through `palisade-runner`.
    pub fn spawn(&self, spec: &CommandSpec) -> Result<Child, Error> {
        let cwd = state::plain_path(&spec.cwd);
        let mut capability = Vec::new();
        if let Some(setup) = &self.setup {
            let applied = setup.apply()?;
            capability.extend(applied.write_sids.iter().chain(std::iter::once(&applied.sandbox_sid)).cloned());
        }
        // Watching starts before the command does, so that everything it creates is seen.
        let ownership = match &self.setup {
            Some(setup) => Some(self.ownership_pass(&setup.roots)?),
            None => None,
        };
        let mut runner = self.runner.spawn(spec, &cwd, capability, self.policy.keep_processes)?;
        Ok(Child {
            stdin: runner.stdin.take(),
            stdout: runner.stdout.take(),
            stderr: runner.stderr.take(),
            runner,
            ownership,
        })
    }

    /// What the command creates in `roots` is owned by the sandbox account: watch the roots, to
    /// give it back to the user when the command ended (`ownership.rs`).
    fn ownership_pass(&self, roots: &[WinPath]) -> Result<ownership::Pass, Error> {
        let mut sandbox = vec![self.runner.pipe_owner.clone(), self.runner.account_group.clone()];
        for user in SandboxUser::ALL {
            if let Some(sid) = lookup_existing(user.account_name()).ok().and_then(|s| plan_sid(&s).ok()) {
                if !sandbox.contains(&sid) {
                    sandbox.push(sid);
                }
            }
        }
        let watch = ownership::Watch::start(roots)
            .map_err(io_ctx("watching the writable roots for what the command creates"))?;
        Ok(ownership::Pass { watch, owners: ownership::Owners { sandbox, user: self.own.user.clone() } })
    }
}

/// A command running through `palisade-runner`, with the ownership pass to run once it ended
/// (`None` without writable roots).
pub struct Child {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    runner: run::RunnerChild,
    ownership: Option<ownership::Pass>,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.runner.id()
    }

    pub fn signal(&self, sig: i32) -> io::Result<()> {
        self.runner.signal(sig)
    }

    pub fn kill(&mut self) -> io::Result<()> {
        self.runner.kill()
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.runner.wait();
        if let Some(p) = self.ownership.take() {
            p.finish();
        }
        status
    }

    pub fn network_records(&self) -> &[crate::status::NetworkRecord] {
        self.runner.network_records()
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let status = self.runner.try_wait();
        if matches!(status, Ok(Some(_)) | Err(_)) {
            if let Some(p) = self.ownership.take() {
                p.finish();
            }
        }
        status
    }
}

/// The elevated mode's root watcher on `roots` (canonicalized like writable roots), for the
/// plumbing tests (`palisade::__private::ownership_watch_for_tests`).
pub(crate) fn ownership_watch_for_tests(roots: &[PathBuf]) -> Result<ownership::Watch, Error> {
    let mut canonical = Vec::new();
    for r in roots {
        let p = state::win_path(r)?;
        let c = palisade_windows_plan::path::canonicalize(&p, &state::DiskResolver)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        canonical.push(c);
    }
    ownership::Watch::start(&canonical).map_err(io_ctx("watching the roots"))
}
