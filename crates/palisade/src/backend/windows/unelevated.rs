//! The unelevated Windows mode: a write-restricted token, ACLs kept between commands, and a
//! job object.
//!
//! [`Prepared::new`] (once per sandbox) refuses what this mode cannot enforce (network off,
//! deny-read), resolves the writable roots on disk, gives each its write SID from the SID
//! registry, runs the world-writable audit and brings the ACLs to what the plan crate wants,
//! changing only what differs from the record (`grants.rs`). [`Prepared::spawn`] (per command)
//! finds the program (PATH + PATHEXT), makes the private temporary folder, the restricted token
//! (`palisade_win32::token`) and the job (`job.rs`), and starts the command suspended with
//! exactly its standard handles, puts it in the job and resumes it (`process.rs`).

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::windows::io::OwnedHandle;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use palisade_policy::{Mode, Policy};
use palisade_win32::sid::{plan_sid, Sid};
use palisade_win32::{acl, ffi, token};
use palisade_windows_plan::audit::AuditBudget;
use palisade_windows_plan::sid::{SidString, SyntheticKind};
use palisade_windows_plan::token::{admin_group, token_plan, TokenInput};

use super::grants::{self, PrivateTemp};
use super::{command_console, io_ctx, job, process, push_wine_layer, state};
use crate::error::Error;
use crate::report::{Enforcement, Layer};
use crate::spec::CommandSpec;
use crate::status::ExitStatus;

/// SIGKILL: what `kill()` reports the command was ended by.
const SIGKILL: i32 = 9;
/// Signals `signal()` delivers as Ctrl+Break (the console's request to stop).
const GRACEFUL: &[i32] = &[1, 2, 3, 15, 21];

fn sid_of(s: &SidString) -> Result<Sid, Error> {
    Sid::parse(s.as_str()).map_err(|e| Error::InvalidInput(format!("SID {s}: {e}")))
}

/// The groups of this process's token that can grant access (see `TokenInput::groups`), in
/// the plan's string form.
fn usable_groups(own: &token::OwnToken) -> Result<Vec<SidString>, Error> {
    own.usable_groups()
        .map(|g| {
            let text = g.to_string_form();
            SidString::canonicalize(&text)
                .map_err(|e| Error::InvalidInput(format!("a group of this process's token: {e}")))
        })
        .collect()
}

/// The names of the administrative groups among `groups` (what the token makes deny-only).
fn admin_names(groups: &[SidString]) -> Vec<&'static str> {
    groups.iter().filter_map(admin_group).collect()
}

/// What a confined (read-only or workspace-write) sandbox needs for every command.
struct Confinement {
    user: SidString,
    logon: SidString,
    /// This sandbox's own SID: its commands' processes and other objects are granted to it
    /// (not to the logon SID every sandbox's token has), see `palisade_windows_plan::token`.
    instance: SidString,
    /// This process's groups that can grant access; the administrative ones become deny-only.
    groups: Vec<SidString>,
    setup: grants::Setup,
}

/// A policy made ready for the unelevated mode.
pub struct Prepared {
    policy: Policy,
    enforcement: Enforcement,
    own: token::OwnToken,
    /// `None` in full-access mode.
    confinement: Option<Confinement>,
    wine: Option<String>,
}

fn refuse_network_off() -> Error {
    Error::Unenforceable {
        what: "network = off".into(),
        why: "the unelevated Windows sandbox cannot block a command's network access: firewall (WFP) rules need administrator rights".into(),
        fix: "run with `--network on` (or `network = \"on\"` in your user config) to accept unrestricted network access explicitly; or use the elevated mode, which enforces it (`mode = \"elevated\"` in the [windows] section, after `palisade setup --elevated`)".into(),
    }
}

impl Prepared {
    pub fn new(policy: Policy) -> Result<Prepared, Error> {
        if policy.network.is_off() {
            return Err(refuse_network_off());
        }
        let wine = ffi::wine_version();
        let own = token::open_own().map_err(io_ctx("reading this process's access token"))?;
        let groups = usable_groups(&own)?;
        let admin = admin_names(&groups);
        let mut enforcement = Enforcement::default();

        if policy.mode == Mode::FullAccess {
            enforcement.push(Layer::new("filesystem", false, "full-access mode: no confinement"));
            let mut detail =
                "privileges removed (all but SeChangeNotifyPrivilege); writes are not restricted".to_string();
            if !admin.is_empty() {
                detail.push_str(&format!("; administrative groups kept: {}", admin.join(", ")));
            }
            enforcement.push(Layer::new("restricted token", true, &detail));
            Self::common_layers(&mut enforcement, &policy, &wine);
            return Ok(Prepared { policy, enforcement, own, confinement: None, wine });
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
        let user = plan_sid(&own.user).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let logon = own
            .logon
            .as_ref()
            .and_then(|s| plan_sid(s).ok())
            .ok_or_else(|| Error::Unenforceable {
                what: "the restricted token".into(),
                why: "this process's token has no logon SID (is palisade running as a service or a scheduled task?), and the command's own objects are granted to it".into(),
                fix: "run palisade from an interactive logon session".into(),
            })?;

        let instance = SidString::synthetic(
            SyntheticKind::Instance,
            ffi::random16().map_err(io_ctx("generating the sandbox's instance SID"))?,
        );
        let setup = grants::Setup::new(&policy)?;
        // Planned only: `palisade check` changes nothing; the first command applies it.
        let g = setup.pending()?;
        let acl_detail = if g.changes == 0 {
            "unchanged since the last command: nothing to apply".to_string()
        } else {
            format!("{} ACL changes to apply before the command (then recorded and kept)", g.changes)
        };
        let mut token_detail = format!(
            "write-restricted: writes need one of {} write SIDs (a private one for TMP); its processes are granted to this sandbox's own SID, not to the logon session; all privileges but SeChangeNotifyPrivilege removed",
            g.write_sids.len() + 1
        );
        if !admin.is_empty() {
            // Run from an elevated prompt: these would otherwise still grant reads (and the
            // first check of writes) wherever only administrators are allowed.
            token_detail.push_str(&format!("; administrative groups deny-only: {}", admin.join(", ")));
        }
        enforcement.push(Layer::new("restricted token", true, &token_detail));
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
            audit_detail
                .push_str(&format!("; {} PATH/TEMP entries skipped (not absolute paths)", setup.audit_skipped.len()));
        }
        enforcement.push(Layer::new("world-writable audit", !setup.audit.timed_out, &audit_detail));
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
            confinement: Some(Confinement { user, logon, instance, groups, setup }),
            wine,
        })
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
        push_wine_layer(enforcement, wine);
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
        let setup = |step: &'static str| move |e: io::Error| Error::Setup { step, detail: String::new(), source: e };
        let Some(c) = &self.confinement else {
            let spec =
                token::TokenSpec { write_restricted: false, restricting: &[], deny_only: &[], default_dacl: &[] };
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
            instance_sid: c.instance.clone(),
            write_sids,
            groups: c.groups.clone(),
        })
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let restricting: Vec<Sid> = plan.sids().into_iter().map(sid_of).collect::<Result<_, _>>()?;
        let deny_only: Vec<Sid> = plan.deny_only_sids.iter().map(sid_of).collect::<Result<_, _>>()?;
        let dacl_sids: Vec<Sid> = plan.default_dacl.iter().map(|a| sid_of(&a.trustee)).collect::<Result<_, _>>()?;
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
            deny_only: &deny_only,
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
                    why: format!("privileges that should have been removed are still in it: {}", left.join(", ")),
                    fix: "report this with `palisade check` output".into(),
                });
            }
            let groups = token::groups(&tok).map_err(setup("list the restricted token's groups"))?;
            let still_usable: Vec<String> = deny_only
                .iter()
                .filter(|d| !groups.iter().any(|g| &g.sid == *d && g.is_deny_only() && !g.is_enabled()))
                .map(|d| d.to_string_form())
                .collect();
            if !still_usable.is_empty() {
                return Err(Error::Unenforceable {
                    what: "the restricted token".into(),
                    why: format!("administrative groups that should be deny-only are not: {}", still_usable.join(", ")),
                    fix: "report this with `palisade check` output".into(),
                });
            }
        }
        Ok(tok)
    }

    pub fn spawn(&self, spec: &CommandSpec) -> Result<Child, Error> {
        // `kill_on_parent_death` needs nothing more: the job ends the tree when this process
        // exits (unless keep_processes asks processes to outlive the command).
        let _ = spec.kill_on_parent_death;
        // Job control is a Unix terminal's: the console has no process groups to hand over.
        let _ = spec.job_control;
        let cwd = state::plain_path(&spec.cwd);
        let launch = process::resolve_program(&spec.program, &spec.env, &cwd)?;
        let temp = if self.confinement.is_some() { Some(PrivateTemp::create()?) } else { None };
        let token = self.command_token(temp.as_ref())?;

        // Environment: the policy-filtered variables, with the private temporary folder.
        let mut env: Vec<(OsString, OsString)> = spec.env.clone();
        if let Some(t) = &temp {
            env.retain(|(k, _)| !["TMP", "TEMP", "TMPDIR"].iter().any(|n| k.to_string_lossy().eq_ignore_ascii_case(n)));
            for n in ["TMP", "TEMP", "TMPDIR"] {
                env.push((n.into(), t.dir.clone().into_os_string()));
            }
        }
        env.retain(|(k, _)| !k.to_string_lossy().eq_ignore_ascii_case("PALISADE_SANDBOX"));
        env.push(("PALISADE_SANDBOX".into(), "1".into()));
        let env_block = process::environment_block(&env)?;
        let command = process::command_line(&launch, &spec.args)?;

        let job =
            job::Job::new(&job::JobSpec { kill_on_close: !self.policy.keep_processes, ui_limits: job::UI_LIMITS })
                .map_err(io_ctx("creating the job object"))?;
        // Never palisade's console (see `command_console`): a pseudo console or one of its own.
        let mut console = command_console::setup([spec.stdin, spec.stdout, spec.stderr])
            .map_err(io_ctx("setting up standard streams"))?;

        let spawned = process::create_suspended(process::CreateSpec {
            token: &token,
            command,
            env_block: &env_block,
            cwd: &cwd,
            stdio: &console.stdio.child,
            new_process_group: true,
            pseudo_console: console.pseudo_console,
            own_hidden_console: true,
        })
        .map_err(|e| process::spawn_error(e, &launch, &cwd))?;
        // The command's copies of its handles are closed here (it has its own now).
        console.stdio.child = [None, None, None];
        let [stdin, stdout, stderr] = std::mem::take(&mut console.stdio.parent);
        if let Err(e) = job.assign(&spawned.process) {
            let _ = process::terminate(&spawned.process, 1);
            return Err(Error::Setup { step: "put the command in its job object", detail: String::new(), source: e });
        }
        process::resume(&spawned.thread).map_err(|e| {
            let _ = job.terminate(1);
            Error::Setup { step: "start the command", detail: String::new(), source: e }
        })?;
        drop(spawned.thread);
        let relays = console.start().map_err(|e| {
            let _ = job.terminate(1);
            Error::Setup {
                step: "put the console in raw mode for the command's terminal",
                detail: String::new(),
                source: e,
            }
        })?;
        Ok(Child {
            process: spawned.process,
            pid: spawned.pid,
            job: Some(job),
            keep_processes: self.policy.keep_processes,
            killed_by: AtomicI32::new(0),
            status: None,
            temp,
            relays: Some(relays),
            stdin,
            stdout,
            stderr,
        })
    }
}

/// A command started directly with the restricted token, in its job object.
pub struct Child {
    process: OwnedHandle,
    pid: u32,
    job: Option<job::Job>,
    keep_processes: bool,
    /// The signal `kill()` or `signal()` ended the command with, if they did (0: none).
    killed_by: AtomicI32,
    status: Option<ExitStatus>,
    temp: Option<PrivateTemp>,
    /// The command's console and palisade's relays to it.
    relays: Option<command_console::Relays>,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

impl Child {
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
                if running && self.relays.as_ref().is_some_and(|r| r.is_terminal()) {
                    // Typed into its pseudo console: the command's own Ctrl+C.
                    if self.relays.as_ref().is_some_and(|r| r.interrupt()) {
                        return Ok(());
                    }
                    self.terminate_tree(s)
                } else if running && process::shares_console(self.pid) && process::ctrl_break(self.pid).is_ok() {
                    Ok(())
                } else {
                    self.terminate_tree(s)
                }
            }
            s => Err(io::Error::new(io::ErrorKind::Unsupported, format!("signal {s} has no Windows equivalent"))),
        }
    }

    /// Ends the command and everything it started.
    pub fn kill(&mut self) -> io::Result<()> {
        self.signal(SIGKILL)
    }

    fn finish(&mut self, code: u32) -> ExitStatus {
        let st = match self.killed_by.load(Ordering::SeqCst) {
            sig if sig > 0 && code == 128 + sig as u32 => ExitStatus { code: None, signal: Some(sig) },
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
        if let Some(mut r) = self.relays.take() {
            r.finish(if self.keep_processes { Duration::from_millis(500) } else { Duration::from_secs(5) });
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

impl Drop for Child {
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
            if let Some(r) = self.relays.take() {
                r.detach();
            }
        }
    }
}
