//! The Windows backend, unelevated mode: a write-restricted token, ACLs kept between commands,
//! and a job object.
//!
//! [`Prepared::new`] (once per sandbox) refuses what this mode cannot enforce (network off,
//! deny-read, `[windows] mode = "elevated"`), resolves the writable roots on disk, gives each
//! its write SID from the SID registry, runs the world-writable audit and brings the ACLs to
//! what the plan crate wants, changing only what differs from the record (`grants.rs`).
//! [`Prepared::spawn`] (per command) finds the program (PATH + PATHEXT), makes the private
//! temporary folder, the restricted token (`token.rs`) and the job (`job.rs`), and starts the
//! command suspended with exactly its standard handles, puts it in the job and resumes it
//! (`process.rs`).
//!
//! Everything the backend decides comes from `palisade-windows-plan`; this module and its
//! children only carry the decisions out.

mod acl;
mod audit;
pub(crate) mod console_signals;
mod ffi;
pub(crate) mod elevated;
pub(crate) use elevated::setup as elevated_setup;
pub(crate) use ffi::wine_version;
mod grants;
mod job;
mod process;
mod state;
mod token;

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::windows::io::OwnedHandle;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use palisade_policy::config::WindowsMode;
use palisade_policy::{Mode, Policy};
use palisade_windows_plan::audit::AuditBudget;
use palisade_windows_plan::sid::{SidString, SyntheticKind};
use palisade_windows_plan::token::{token_plan, TokenInput};

use crate::{CleanupReport, CommandSpec, Enforcement, Error, ExitStatus, HostReport, Layer, SandboxOptions};
use ffi::Sid;
use grants::PrivateTemp;

/// SIGKILL: what `kill()` reports the command was ended by.
const SIGKILL: i32 = 9;
/// Signals `signal()` delivers as Ctrl+Break (the console's request to stop).
const GRACEFUL: &[i32] = &[1, 2, 3, 15, 21];

fn io_ctx(context: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        context: context.to_string(),
        source,
    }
}

fn sid_of(s: &SidString) -> Result<Sid, Error> {
    Sid::parse(s.as_str()).map_err(|e| Error::InvalidInput(format!("SID {s}: {e}")))
}

/// What a confined (read-only or workspace-write) sandbox needs for every command.
struct Confinement {
    user: SidString,
    logon: SidString,
    setup: grants::Setup,
}

pub struct Prepared {
    policy: Policy,
    enforcement: Enforcement,
    own: token::OwnToken,
    /// `None` in full-access mode.
    confinement: Option<Confinement>,
    wine: Option<String>,
    /// Elevated mode: commands run as a sandbox account through `palisade-runner`.
    elevated: Option<elevated::run::Elevated>,
}

fn refuse_network_off() -> Error {
    Error::Unenforceable {
        what: "network = off".into(),
        why: "the unelevated Windows sandbox cannot block a command's network access: firewall (WFP) rules need administrator rights".into(),
        fix: "run with `--network on` (or `network = \"on\"` in your user config) to accept unrestricted network access explicitly; or use the elevated mode, which enforces it (`mode = \"elevated\"` in the [windows] section, after `palisade setup --elevated`)".into(),
    }
}

/// The network allowlist needs Palisade's proxy to be the command's only way out: the
/// unelevated mode cannot fence the network at all, and the elevated mode's firewall rules for
/// the online account's route to the proxy are not built yet. Refused in both (fail closed).
fn refuse_network_allow(elevated: bool) -> Error {
    Error::Unenforceable {
        what: "network = allow (the network allowlist)".into(),
        why: if elevated {
            "the elevated Windows mode does not yet fence the online account to Palisade's proxy".into()
        } else {
            "the unelevated Windows sandbox cannot block a command's network access: firewall (WFP) rules need administrator rights".into()
        },
        fix: "use `--network off` or `--network on` on Windows for now".into(),
    }
}

impl Prepared {
    pub fn new(policy: Policy, options: &SandboxOptions) -> Result<Prepared, Error> {
        if policy.network.allowlist().is_some() {
            return Err(refuse_network_allow(options.windows_mode == WindowsMode::Elevated));
        }
        if options.windows_mode == WindowsMode::Elevated {
            return Prepared::new_elevated(policy, None);
        }
        if policy.network.is_off() {
            return Err(refuse_network_off());
        }
        let wine = ffi::wine_version();
        let own = token::open_own().map_err(io_ctx("reading this process's access token"))?;
        let mut enforcement = Enforcement::default();

        if policy.mode == Mode::FullAccess {
            enforcement.push(Layer::new("filesystem", false, "full-access mode: no confinement"));
            enforcement.push(Layer::new(
                "restricted token",
                true,
                "privileges removed (all but SeChangeNotifyPrivilege); writes are not restricted",
            ));
            Self::common_layers(&mut enforcement, &policy, &wine);
            return Ok(Prepared {
                policy,
                enforcement,
                own,
                confinement: None,
                wine,
                elevated: None,
            });
        }

        // A write-restricted token restricts writes only: reads cannot be denied in this mode.
        let unreadable: Vec<String> = policy
            .deny_read
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if !unreadable.is_empty() {
            return Err(Error::Unenforceable {
                what: format!("deny_read ({})", unreadable.join(", ")),
                why: "the unelevated Windows sandbox restricts writes only; it cannot stop a command from reading what you can read".into(),
                fix: "drop these paths from deny_read with `allow_read = [...]` in your user config (%APPDATA%\\palisade\\config.toml) if the command may read them; or use the elevated mode, which keeps your profile's credential stores unreadable (`mode = \"elevated\"` in the [windows] section, after `palisade setup --elevated`)".into(),
            });
        }
        let user = SidString::parse(&own.user.to_string_form()).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let logon = own
            .logon
            .as_ref()
            .and_then(|s| SidString::parse(&s.to_string_form()).ok())
            .ok_or_else(|| Error::Unenforceable {
                what: "the restricted token".into(),
                why: "this process's token has no logon SID (is palisade running as a service or a scheduled task?), and the command's own objects are granted to it".into(),
                fix: "run palisade from an interactive logon session".into(),
            })?;

        let setup = grants::Setup::new(&policy)?;
        // Planned only: `palisade check` changes nothing; the first command applies it.
        let g = setup.pending()?;
        let acl_detail = if g.changes == 0 {
            "unchanged since the last command: nothing to apply".to_string()
        } else {
            format!(
                "{} ACL changes to apply before the command (then recorded and kept)",
                g.changes
            )
        };
        enforcement.push(Layer::new(
            "restricted token",
            true,
            &format!(
                "write-restricted: writes need one of {} write SIDs (a private one for TMP); all privileges but SeChangeNotifyPrivilege removed",
                g.write_sids.len() + 1
            ),
        ));
        enforcement.push(Layer::new(
            "ACLs",
            true,
            &format!(
                "{} writable roots granted to their own write SIDs, {} protected or pinned paths denied, {} world-writable folders denied; {acl_detail}",
                setup.roots.len(),
                g.protected,
                g.world_denied
            ),
        ));
        let mut audit_detail = format!(
            "{} folders checked, {} writable by a broad group",
            setup.audit.checked,
            setup.audit.findings.len()
        );
        if setup.audit.timed_out {
            audit_detail.push_str(&format!(
                "; cut short after {} s, {} folders not checked",
                AuditBudget::default().time_limit.as_secs(),
                setup.audit.not_checked.len()
            ));
        }
        if !setup.audit_skipped.is_empty() {
            audit_detail.push_str(&format!(
                "; {} PATH/TEMP entries skipped (not absolute paths)",
                setup.audit_skipped.len()
            ));
        }
        enforcement.push(Layer::new(
            "world-writable audit",
            !setup.audit.timed_out,
            &audit_detail,
        ));
        enforcement.push(Layer::new(
            "deny-read",
            false,
            "none of the deny_read paths exists; the unelevated mode cannot deny reads",
        ));
        Self::common_layers(&mut enforcement, &policy, &wine);
        Ok(Prepared {
            policy,
            enforcement,
            own,
            confinement: Some(Confinement { user, logon, setup }),
            wine,
            elevated: None,
        })
    }

    /// The elevated mode: setup must have completed; the command runs as `PalisadeOffline`
    /// (network off) or `PalisadeOnline` through `palisade-runner`. Writable roots are granted
    /// to their write SIDs (which the runner puts into the command's token) and to the sandbox
    /// group (which the account's own access check needs). `seam` is the plumbing tests' way
    /// in (`TestSeam`).
    pub fn new_elevated(policy: Policy, seam: Option<&elevated::run::TestSeam>) -> Result<Prepared, Error> {
        if policy.network.allowlist().is_some() {
            return Err(refuse_network_allow(true));
        }
        let el = elevated::run::Elevated::new(!policy.network.is_off(), seam)?;
        let wine = ffi::wine_version();
        let own = token::open_own().map_err(io_ctx("reading this process's access token"))?;
        let mut enforcement = Enforcement::default();

        // Reads: setup granted the sandbox group the profile minus its credential stores and
        // the deny_read entries it was given; elsewhere the account reads what Users may.
        let profile = state::known_folder(&windows_sys::Win32::UI::Shell::FOLDERID_Profile)
            .and_then(|p| palisade_windows_elevated::WinPath::parse(&p.to_string_lossy()).ok());
        let existing: Vec<palisade_windows_elevated::WinPath> = policy
            .deny_read
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .filter_map(|p| palisade_windows_elevated::WinPath::parse(&p.to_string_lossy()).ok())
            .collect();
        let outside = match &profile {
            Some(pr) => palisade_windows_elevated::runner_seam::deny_read_outside_profile(pr, &existing),
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

        let confinement = if policy.mode == Mode::FullAccess {
            enforcement.push(Layer::new("filesystem", false, "full-access mode: no writable roots granted; the account writes only its own profile"));
            None
        } else {
            let group = SidString::parse(el.account_group.as_str()).map_err(|e| Error::InvalidInput(e.to_string()))?;
            let me = SidString::parse(&own.user.to_string_form()).map_err(|e| Error::InvalidInput(e.to_string()))?;
            let setup = grants::Setup::new(&policy)?.with_account_group(group, me);
            let g = setup.pending()?;
            enforcement.push(Layer::new(
                "restricted token",
                true,
                &format!(
                    "made by palisade-runner as {}: write-restricted to the account, Everyone, RESTRICTED, the logon session and {} write SIDs; privileges removed",
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
                    palisade_windows_elevated::facts::GROUP_NAME,
                    g.protected,
                    g.changes
                ),
            ));
            let user = SidString::parse(&own.user.to_string_form()).map_err(|e| Error::InvalidInput(e.to_string()))?;
            let logon = user.clone();
            Some(Confinement { user, logon, setup })
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
            policy.network.is_off(),
            if policy.network.is_off() {
                "PalisadeOffline: firewall rules and WFP filters from setup block everything but loopback proxies"
            } else {
                "network = on: PalisadeOnline, unrestricted"
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
        if let Some(v) = &wine {
            enforcement.push(Layer::new(
                "wine",
                false,
                &format!("running under Wine {v}: tokens and ACLs are accepted but NOT enforced"),
            ));
        }
        Ok(Prepared { policy, enforcement, own, confinement, wine, elevated: Some(el) })
    }

    /// Starts a command through `palisade-runner` (elevated mode).
    fn spawn_elevated(&self, el: &elevated::run::Elevated, spec: &CommandSpec) -> Result<ChildInner, Error> {
        let cwd = state::plain_path(&spec.cwd);
        let mut capability = Vec::new();
        if let Some(c) = &self.confinement {
            let applied = c.setup.apply()?;
            for s in applied.write_sids.iter().chain(std::iter::once(&applied.sandbox_sid)) {
                capability.push(
                    palisade_windows_elevated::Sid::parse(s.as_str()).map_err(|e| Error::InvalidInput(e.to_string()))?,
                );
            }
        }
        // Watching starts before the command does, so that everything it creates is seen.
        let ownership = match &self.confinement {
            Some(c) => Some(self.ownership_pass(el, &c.setup.roots)?),
            None => None,
        };
        let mut child = el.spawn(spec, &cwd, capability, self.policy.keep_processes)?;
        Ok(ChildInner {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            imp: Imp::Elevated(child, ownership),
        })
    }

    /// What the command creates in `roots` is owned by the sandbox account: watch the roots, to
    /// give it back to the user when the command ended (`elevated::ownership`).
    fn ownership_pass(&self, el: &elevated::run::Elevated, roots: &[palisade_windows_plan::path::WinPath]) -> Result<elevated::ownership::Pass, Error> {
        let mut sandbox = vec![el.pipe_owner.clone(), el.account_group.clone()];
        for user in [palisade_windows_elevated::SandboxUser::Offline, palisade_windows_elevated::SandboxUser::Online] {
            if let Some(sid) = elevated::lookup_account(user.account_name()).ok().and_then(|s| elevated::protocol_sid(&s).ok()) {
                if !sandbox.contains(&sid) {
                    sandbox.push(sid);
                }
            }
        }
        let watch = elevated::ownership::Watch::start(roots).map_err(io_ctx("watching the writable roots for what the command creates"))?;
        Ok(elevated::ownership::Pass { watch, owners: elevated::ownership::Owners { sandbox, user: self.own.user.clone() } })
    }

    fn common_layers(enforcement: &mut Enforcement, policy: &Policy, wine: &Option<String>) {
        enforcement.push(Layer::new(
            "job object",
            true,
            if policy.keep_processes {
                "UI limits; keep_processes: processes may outlive the command"
            } else {
                "the process tree ends with the command; UI limits (no clipboard, no other processes' windows)"
            },
        ));
        enforcement.push(Layer::new(
            "network",
            false,
            "network = on: unrestricted (the unelevated mode cannot block it)",
        ));
        if let Some(v) = wine {
            enforcement.push(Layer::new(
                "wine",
                false,
                &format!("running under Wine {v}: tokens and ACLs are accepted but NOT enforced"),
            ));
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    /// The command's primary token: write-restricted to the roots' write SIDs (and the private
    /// temporary folder's), after the ACLs were brought up to date.
    fn command_token(&self, temp: Option<&PrivateTemp>) -> Result<OwnedHandle, Error> {
        let setup = |step: &'static str| {
            move |e: io::Error| Error::Setup {
                step,
                detail: String::new(),
                source: e,
            }
        };
        let Some(c) = &self.confinement else {
            let spec = token::TokenSpec {
                write_restricted: false,
                restricting: &[],
                deny_only: &[],
                default_dacl: &[],
            };
            return token::restricted(&self.own, &spec).map_err(setup("make the command's token"));
        };
        let applied = c.setup.apply()?;
        let mut write_sids = applied.write_sids;
        if let Some(t) = temp {
            write_sids.push(t.sid.clone());
        }
        let plan = token_plan(&TokenInput {
            user_sid: c.user.clone(),
            logon_sid: c.logon.clone(),
            sandbox_sid: applied.sandbox_sid,
            write_sids,
        })
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let restricting: Vec<Sid> = plan.sids().into_iter().map(sid_of).collect::<Result<_, _>>()?;
        let dacl_sids: Vec<Sid> = plan
            .default_dacl
            .iter()
            .map(|a| sid_of(&a.trustee))
            .collect::<Result<_, _>>()?;
        let dacl: Vec<acl::NewAce<'_>> = plan
            .default_dacl
            .iter()
            .zip(&dacl_sids)
            .map(|(a, sid)| acl::NewAce {
                sid,
                allow: a.kind == palisade_windows_plan::ace::AceKind::Allow,
                mask: a.mask,
                flags: a.flags,
            })
            .collect();
        let spec = token::TokenSpec {
            write_restricted: plan.flags & palisade_windows_plan::token::WRITE_RESTRICTED != 0,
            restricting: &restricting,
            deny_only: &[],
            default_dacl: &dacl,
        };
        let tok = token::restricted(&self.own, &spec).map_err(setup("make the command's restricted token"))?;
        // Check what the system made of it: restricted, and no privilege but the kept ones.
        // Wine accepts the calls but enforces nothing, which the enforcement layers say.
        if self.wine.is_none() {
            if !token::is_restricted(&tok) {
                return Err(Error::Unenforceable {
                    what: "the restricted token".into(),
                    why: "Windows made the command's token without its restricting SIDs".into(),
                    fix: "report this with `palisade check` output".into(),
                });
            }
            let left: Vec<String> = token::privilege_names(&tok)
                .map_err(setup("list the restricted token's privileges"))?
                .into_iter()
                .filter(|p| !plan.keeps_privilege(p))
                .collect();
            if !left.is_empty() {
                return Err(Error::Unenforceable {
                    what: "the restricted token".into(),
                    why: format!(
                        "privileges that should have been removed are still in it: {}",
                        left.join(", ")
                    ),
                    fix: "report this with `palisade check` output".into(),
                });
            }
        }
        Ok(tok)
    }

    pub fn spawn(&self, spec: &CommandSpec) -> Result<ChildInner, Error> {
        if let Some(el) = &self.elevated {
            return self.spawn_elevated(el, spec);
        }
        // `kill_on_parent_death` needs nothing more: the job ends the tree when this process
        // exits (unless keep_processes asks processes to outlive the command).
        let _ = spec.kill_on_parent_death;
        let cwd = state::plain_path(&spec.cwd);
        let launch = process::resolve_program(&spec.program, &spec.env, &cwd)?;
        let temp = if self.confinement.is_some() {
            Some(PrivateTemp::create()?)
        } else {
            None
        };
        let token = self.command_token(temp.as_ref())?;

        // Environment: the policy-filtered variables, with the private temporary folder.
        let mut env: Vec<(OsString, OsString)> = spec.env.clone();
        if let Some(t) = &temp {
            env.retain(|(k, _)| {
                !["TMP", "TEMP", "TMPDIR"]
                    .iter()
                    .any(|n| k.to_string_lossy().eq_ignore_ascii_case(n))
            });
            for n in ["TMP", "TEMP", "TMPDIR"] {
                env.push((n.into(), t.dir.clone().into_os_string()));
            }
        }
        env.retain(|(k, _)| !k.to_string_lossy().eq_ignore_ascii_case("PALISADE_SANDBOX"));
        env.push(("PALISADE_SANDBOX".into(), "1".into()));
        let env_block = process::environment_block(&env)?;
        let command = process::command_line(&launch, &spec.args)?;

        let job = job::Job::new(&job::JobSpec {
            kill_on_close: !self.policy.keep_processes,
            ui_limits: job::UI_LIMITS,
        })
        .map_err(io_ctx("creating the job object"))?;
        let stdio =
            process::stdio([spec.stdin, spec.stdout, spec.stderr]).map_err(io_ctx("setting up standard streams"))?;

        let spawned = process::create_suspended(process::CreateSpec {
            token: &token,
            command,
            env_block: &env_block,
            cwd: &cwd,
            stdio: &stdio.child,
            new_process_group: true,
            pseudo_console: None,
            own_hidden_console: false,
        })
        .map_err(|e| spawn_error(e, &launch, &cwd))?;
        drop(stdio.child);
        if let Err(e) = job.assign(&spawned.process) {
            let _ = process::terminate(&spawned.process, 1);
            return Err(Error::Setup {
                step: "put the command in its job object",
                detail: String::new(),
                source: e,
            });
        }
        process::resume(&spawned.thread).map_err(|e| {
            let _ = job.terminate(1);
            Error::Setup {
                step: "start the command",
                detail: String::new(),
                source: e,
            }
        })?;
        drop(spawned.thread);
        let [stdin, stdout, stderr] = stdio.parent;
        Ok(ChildInner::local(LocalChild {
            process: spawned.process,
            pid: spawned.pid,
            job: Some(job),
            keep_processes: self.policy.keep_processes,
            killed_by: AtomicI32::new(0),
            status: None,
            temp,
            stdin,
            stdout,
            stderr,
        }))
    }
}

/// Maps a failed `CreateProcessAsUserW` to 127/126 or a setup error.
fn spawn_error(e: io::Error, launch: &process::Launch, cwd: &std::path::Path) -> Error {
    let name = launch.path().display().to_string();
    match e.raw_os_error().map(|c| c as u32) {
        Some(2 | 3) => Error::NotFound(name),
        // ERROR_DIRECTORY: the working directory is not a folder.
        Some(267) => Error::Setup {
            step: "change to the working directory",
            detail: format!(" {}", cwd.display()),
            source: e,
        },
        // Access denied, bad format, not a valid Win32 application, wrong machine type, etc.
        Some(5 | 11 | 191 | 192 | 193 | 216 | 1392) => Error::NotExecutable(format!("{name}: {e}")),
        _ => Error::Setup {
            step: "start the command with the restricted token",
            detail: format!(" ({name})"),
            source: e,
        },
    }
}

/// A command Palisade started: directly (unelevated) or through `palisade-runner` (elevated).
pub struct ChildInner {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    imp: Imp,
}

enum Imp {
    Local(LocalChild),
    /// With the ownership pass to run once the command ended (`None` without writable roots).
    Elevated(elevated::run::RunnerChild, Option<elevated::ownership::Pass>),
}

impl ChildInner {
    fn local(mut c: LocalChild) -> ChildInner {
        ChildInner { stdin: c.stdin.take(), stdout: c.stdout.take(), stderr: c.stderr.take(), imp: Imp::Local(c) }
    }

    pub fn id(&self) -> u32 {
        match &self.imp {
            Imp::Local(c) => c.id(),
            Imp::Elevated(c, _) => c.id(),
        }
    }

    pub fn signal(&self, sig: i32) -> io::Result<()> {
        match &self.imp {
            Imp::Local(c) => c.signal(sig),
            Imp::Elevated(c, _) => c.signal(sig),
        }
    }

    pub fn kill(&mut self) -> io::Result<()> {
        match &mut self.imp {
            Imp::Local(c) => c.kill(),
            Imp::Elevated(c, _) => c.kill(),
        }
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        match &mut self.imp {
            Imp::Local(c) => c.wait(),
            Imp::Elevated(c, pass) => {
                let status = c.wait();
                if let Some(p) = pass.take() {
                    p.finish();
                }
                status
            }
        }
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.imp {
            Imp::Local(c) => c.try_wait(),
            Imp::Elevated(c, pass) => {
                let status = c.try_wait();
                if matches!(status, Ok(Some(_)) | Err(_)) {
                    if let Some(p) = pass.take() {
                        p.finish();
                    }
                }
                status
            }
        }
    }
}

struct LocalChild {
    process: OwnedHandle,
    pid: u32,
    job: Option<job::Job>,
    keep_processes: bool,
    /// The signal `kill()` or `signal()` ended the command with, if they did (0: none).
    killed_by: AtomicI32,
    status: Option<ExitStatus>,
    temp: Option<PrivateTemp>,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

impl LocalChild {
    pub fn id(&self) -> u32 {
        self.pid
    }

    fn terminate_tree(&self, sig: i32) -> io::Result<()> {
        self.killed_by.store(sig, Ordering::SeqCst);
        match &self.job {
            Some(job) => job.terminate(128 + sig as u32),
            None => process::terminate(&self.process, 128 + sig as u32),
        }
    }

    /// Unix signal numbers: SIGINT, SIGTERM, SIGHUP, SIGQUIT (and SIGBREAK, 21) ask the command
    /// to stop with Ctrl+Break when it shares this console (it leads its own process group), or
    /// end the process tree otherwise; SIGKILL ends the tree; 0 checks that it runs.
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        match sig {
            0 => Ok(()),
            SIGKILL => self.terminate_tree(SIGKILL),
            s if GRACEFUL.contains(&s) => {
                // Only while the command (its process group's leader) runs and shares this
                // console: Ctrl+Break sent to a process group that does not exist reaches
                // every process on the console, this one included.
                let running = !process::wait(&self.process, Some(0))?;
                if running && process::shares_console(self.pid) && process::ctrl_break(self.pid).is_ok() {
                    Ok(())
                } else {
                    self.terminate_tree(s)
                }
            }
            s => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("signal {s} has no Windows equivalent"),
            )),
        }
    }

    /// Ends the command and everything it started.
    pub fn kill(&mut self) -> io::Result<()> {
        self.signal(SIGKILL)
    }

    fn finish(&mut self, code: u32) -> ExitStatus {
        let st = match self.killed_by.load(Ordering::SeqCst) {
            sig if sig > 0 && code == 128 + sig as u32 => ExitStatus {
                code: None,
                signal: Some(sig),
            },
            _ => ExitStatus::from_code(code as i32),
        };
        self.status = Some(st);
        if let Some(job) = self.job.take() {
            if self.keep_processes {
                // Without KILL_ON_JOB_CLOSE, closing the handle leaves the processes running.
                drop(job);
            } else {
                // Whatever the command left behind ends with it (and releases its files, so the
                // private temporary folder can go).
                job.terminate_and_drain(1, Duration::from_secs(5));
            }
        }
        self.temp.take();
        st
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        drop(self.stdin.take());
        process::wait(&self.process, None)?;
        let code = process::exit_code(&self.process)?;
        Ok(self.finish(code))
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        if !process::wait(&self.process, Some(0))? {
            return Ok(None);
        }
        let code = process::exit_code(&self.process)?;
        Ok(Some(self.finish(code)))
    }
}

impl Drop for LocalChild {
    fn drop(&mut self) {
        // Like std::process::Child, dropping does not wait or kill: if the command still runs,
        // its job handle is kept open (so the tree lives until this process exits) and its
        // private temporary folder stays.
        if self.status.is_none() {
            if let Ok(Some(_)) = self.try_wait() {
                return;
            }
            std::mem::forget(self.job.take());
            std::mem::forget(self.temp.take());
        }
    }
}

/// Removes every ACE palisade recorded (`palisade cleanup`).
pub fn cleanup() -> Result<CleanupReport, Error> {
    grants::cleanup()
}

/// What this host offers, found by trying each mechanism.
pub fn host_report() -> HostReport {
    let mut r = HostReport::default();
    let wine = ffi::wine_version();
    r.facts.push(("os".into(), "windows".into()));
    r.facts
        .push(("wine".into(), wine.clone().unwrap_or_else(|| "no".into())));
    match token::open_own() {
        Ok(own) => {
            r.facts.push(("user SID".into(), own.user.to_string_form()));
            r.facts.push((
                "logon SID".into(),
                own.logon
                    .as_ref()
                    .map(|s| s.to_string_form())
                    .unwrap_or_else(|| "none".into()),
            ));
            r.facts
                .push(("elevated".into(), if own.elevated { "yes".into() } else { "no".into() }));
            r.facts.push((
                "integrity level".into(),
                match own.integrity_rid {
                    Some(0x1000) => "low".into(),
                    Some(0x2000) => "medium".into(),
                    Some(0x3000) => "high".into(),
                    Some(0x4000) => "system".into(),
                    Some(n) => format!("{n:#x}"),
                    None => "unknown".into(),
                },
            ));
            if own.restricted {
                r.notes.push("palisade itself runs with a restricted token".into());
            }
            // A throw-away write SID: CreateRestrictedToken with WRITE_RESTRICTED.
            let probe = ffi::random16().map(|b| SidString::synthetic(SyntheticKind::WriteRoot, b));
            let result = probe.map_err(|e| e.to_string()).and_then(|s| {
                let sid = Sid::parse(s.as_str()).map_err(|e| e.to_string())?;
                let sids = [sid];
                let spec = token::TokenSpec {
                    write_restricted: true,
                    restricting: &sids,
                    deny_only: &[],
                    default_dacl: &[],
                };
                let tok = token::restricted(&own, &spec).map_err(|e| e.to_string())?;
                Ok(token::is_restricted(&tok))
            });
            match result {
                Ok(true) => r.push(
                    "restricted token",
                    true,
                    "CreateRestrictedToken(WRITE_RESTRICTED | DISABLE_MAX_PRIVILEGE) works".into(),
                ),
                Ok(false) => r.push(
                    "restricted token",
                    false,
                    "the token was made but is not restricted (Wine enforces no tokens)".into(),
                ),
                Err(e) => r.push("restricted token", false, e),
            }
        }
        Err(e) => r.push(
            "restricted token",
            false,
            format!("cannot read this process's token: {e}"),
        ),
    }
    match job::Job::new(&job::JobSpec {
        kill_on_close: true,
        ui_limits: job::UI_LIMITS,
    }) {
        Ok(_) => r.push("job object", true, "kill-on-close and UI limits can be set".into()),
        Err(e) => r.push("job object", false, e.to_string()),
    }
    if let Ok(nested) = job::current_process_in_job() {
        r.facts.push((
            "palisade runs in a job".into(),
            if nested {
                "yes (nested jobs need Windows 8+)".into()
            } else {
                "no".into()
            },
        ));
    }
    match ffi::random16() {
        Ok(_) => r.push("system RNG", true, "BCryptGenRandom (write SIDs)".into()),
        Err(e) => r.push("system RNG", false, e.to_string()),
    }
    let temp = std::env::temp_dir();
    match acl::security(&temp) {
        Ok(Some(_)) => r.push("ACLs", true, format!("the DACL of {} can be read", temp.display())),
        Ok(None) => r.push("ACLs", false, format!("{} does not exist", temp.display())),
        Err(e) => r.push("ACLs", false, format!("reading the DACL of {}: {e}", temp.display())),
    }
    r.push(
        "network filtering",
        false,
        "needs administrator rights (WFP); the unelevated mode requires --network on".into(),
    );
    r.push(
        "read restriction",
        false,
        "a write-restricted token restricts writes only; deny_read needs the elevated mode".into(),
    );
    match state::state_dir() {
        Ok(dir) => {
            r.facts.push(("state folder".into(), dir.display().to_string()));
            if let Ok(text) = std::fs::read_to_string(dir.join("acl.json")) {
                if let Ok(rec) = palisade_windows_plan::acl::RecordedAcl::from_json(&text) {
                    r.facts.push((
                        "recorded ACEs".into(),
                        format!("{} (remove with `palisade cleanup`)", rec.entries.len()),
                    ));
                }
            }
        }
        Err(e) => r.notes.push(e.to_string()),
    }
    let cwd = std::env::current_dir().ok();
    let (report, skipped) = audit::run(&audit::environment(cwd.as_deref()), &[], AuditBudget::default());
    r.notes.extend(audit::describe(&report, &skipped));
    if let Some(v) = wine {
        r.notes.push(format!(
            "running under Wine {v}: Wine accepts the security APIs but enforces none of them; enforcement needs real Windows"
        ));
    }
    r
}

/// The elevated mode's root watcher on `roots` (canonicalized like writable roots), for the
/// plumbing tests (`palisade::__private::ownership_watch_for_tests`).
pub(crate) fn ownership_watch_for_tests(roots: &[std::path::PathBuf]) -> Result<elevated::ownership::Watch, Error> {
    let mut canonical = Vec::new();
    for r in roots {
        let p = state::win_path(r)?;
        let c = palisade_windows_plan::path::canonicalize(&p, &state::DiskResolver).map_err(|e| Error::InvalidInput(e.to_string()))?;
        canonical.push(c);
    }
    elevated::ownership::Watch::start(&canonical).map_err(io_ctx("watching the roots"))
}
