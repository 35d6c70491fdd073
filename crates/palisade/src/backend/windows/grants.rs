//! Carrying out the ACL plan: the ACEs that make writable roots writable to their write SIDs,
//! keep protected paths read-only and deny world-writable folders to the sandbox, applied
//! only where they differ from what the state folder records, and removed again by
//! `palisade cleanup`.
//!
//! Holders (the plan crate's reference counts) are per writable root (`root:<key>`), so using
//! one project never removes what another project's root needs, and a root's ACEs only change
//! when its own protected paths change on disk. A root's desired state covers the registered
//! roots nested inside it too, so that it does not depend on which other roots a command
//! names. Denies on world-writable folders belong to the holder `audit` and only grow (a time-
//! limited audit that missed a folder must not lift its deny); they are dropped only for
//! folders that have become part of a writable root.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use palisade_policy::protected::{self, Action, RealFs};
use palisade_policy::{Mode, Policy};
use palisade_windows_plan::ace::Ace;
use palisade_windows_plan::acl::{
    cleanup_plan, desired_acl, ownership_aces, plan, protected_items, stabilize_items, AclChange, Creator, DesiredAcl,
    PathAce, RecordedAcl, RootSpec,
};
use palisade_windows_plan::audit::{AuditBudget, AuditReport, SkippedEntry};
use palisade_windows_plan::path::{canonicalize, WinPath};
use palisade_windows_plan::roots::check_writable_roots;
use palisade_windows_plan::sid::{SidRegistry, SidString, SyntheticKind};

use super::audit;
use super::state::{self, api_path, DiskResolver, State};
use crate::error::Error;
use crate::report::CleanupReport;
use palisade_win32::acl::{self, Outcome};
use palisade_win32::ffi;

/// The holder of the denies on world-writable folders.
const AUDIT_HOLDER: &str = "audit";

fn root_holder(root: &WinPath) -> String {
    format!("root:{}", root.key())
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidInput(e.to_string())
}

/// The policy's writable roots, canonical (links, junctions, 8.3 names and letter case
/// resolved) and checked against the folders that must never be writable.
fn canonical_roots(
    policy: &Policy,
    layout: &palisade_windows_plan::roots::SystemLayout,
) -> Result<Vec<WinPath>, Error> {
    let mut roots: Vec<WinPath> = Vec::new();
    for r in palisade_windows_plan::policy_roots(policy, &[]).map_err(invalid)? {
        let c = canonicalize(&r, &DiskResolver).map_err(invalid)?;
        if !api_path(&c).is_dir() {
            return Err(Error::InvalidInput(format!("writable root {r} is not a directory")));
        }
        if !roots.contains(&c) {
            roots.push(c);
        }
    }
    check_writable_roots(&roots, layout, &policy.protected_paths).map_err(invalid)?;
    Ok(roots)
}

/// A root with its write SID and its protected paths as they are on disk now (placeholders
/// palisade created, listed in `created`, stay placeholders: the plan crate's
/// `stabilize_items`).
fn root_spec(
    root: &WinPath,
    sid: SidString,
    patterns: &[String],
    created: &BTreeMap<WinPath, bool>,
) -> Result<RootSpec, Error> {
    let actions = protected::resolve(&api_path(root), patterns, &RealFs).map_err(invalid)?;
    // Outside a git directory placeholders are always directories, as on Linux: git does not
    // list empty directories, so a placeholder (`.envrc`, `.mcp.json`) never shows up as an
    // untracked file that could be committed, and creating a file by that name fails all the
    // same. Inside `.git` they stay what the pattern names (an empty `config` file), so that the
    // user's own `git init` still works there later: placeholders stay until `palisade cleanup`.
    let root_path = api_path(root);
    let actions: Vec<Action> = actions
        .into_iter()
        .map(|a| match a {
            Action::Placeholder { path, dir } => {
                let in_git = path
                    .strip_prefix(&root_path)
                    .ok()
                    .and_then(|rel| rel.components().next())
                    .is_some_and(|c| c.as_os_str().eq_ignore_ascii_case(".git"))
                    && path.file_name().is_some_and(|n| !n.eq_ignore_ascii_case(".git"));
                Action::Placeholder { path, dir: dir || !in_git }
            }
            other => other,
        })
        .collect();
    let items = protected_items(&actions, |p| api_path(p).is_dir()).map_err(invalid)?;
    Ok(RootSpec { root: root.clone(), sid, protected: stabilize_items(items, created) })
}

/// Root `root`'s holder's desired state: its grant and the denies for its write SID, over its
/// own protected paths and those of every registered root nested inside it.
fn root_desired(
    root: &WinPath,
    reg: &SidRegistry,
    patterns: &[String],
    sandbox: &SidString,
    created: &BTreeMap<WinPath, bool>,
) -> Result<(DesiredAcl, usize), Error> {
    let holder = root_holder(root);
    let sid = reg.get(root).map(|e| e.sid.clone()).ok_or_else(|| invalid(format!("no write SID for {root}")))?;
    let own = root_spec(root, sid.clone(), patterns, created)?;
    let protected = own.protected.len();
    let mut specs = vec![own];
    for e in reg.roots.values() {
        if e.root != *root && e.root.is_beneath(root) && api_path(&e.root).is_dir() {
            specs.push(root_spec(&e.root, e.sid.clone(), patterns, created)?);
        }
    }
    let all = desired_acl(&holder, &specs, &[], sandbox).map_err(invalid)?;
    let aces: BTreeSet<PathAce> = all.aces.into_iter().filter(|a| a.ace.trustee == sid).collect();
    let placeholders: BTreeMap<WinPath, bool> =
        all.placeholders.into_iter().filter(|(p, _)| aces.iter().any(|a| &a.path == p)).collect();
    Ok((DesiredAcl { holder, aces, placeholders }, protected))
}

/// The elevated mode's grant on `root` for the sandbox accounts' group, with the same denies on
/// its protected paths (holder `account:<key>`). A write-restricted token's write passes two
/// checks: the write SID (a restricting SID) satisfies the restricted one, but the normal one
/// runs with the account's own groups, which the user's workspace does not grant anything;
/// this grant satisfies it. The denies keep protected paths read-only to the account even
/// without its restricted token. The same holder keeps the plan crate's `ownership_aces` on
/// the root: what the account creates there it owns, and owning must give it nothing.
fn account_desired(
    root: &WinPath,
    creator: &Creator,
    patterns: &[String],
    sandbox: &SidString,
    created: &BTreeMap<WinPath, bool>,
) -> Result<DesiredAcl, Error> {
    let Creator::SandboxAccount { group, .. } = creator else {
        return Err(invalid("the sandbox accounts' grant needs the elevated mode"));
    };
    let holder = format!("account:{}", root.key());
    let spec = root_spec(root, group.clone(), patterns, created)?;
    let all = desired_acl(&holder, &[spec], &[], sandbox).map_err(invalid)?;
    let mut aces: BTreeSet<PathAce> = all.aces.into_iter().filter(|a| a.ace.trustee == *group).collect();
    aces.extend(ownership_aces(root, creator));
    let placeholders: BTreeMap<WinPath, bool> =
        all.placeholders.into_iter().filter(|(p, _)| aces.iter().any(|a| &a.path == p)).collect();
    Ok(DesiredAcl { holder, aces, placeholders })
}

/// The audit holder's desired state: denies on what this audit found, plus every deny recorded
/// before, except on folders inside the current writable roots and folders that are gone.
fn audit_desired(
    found: &[WinPath],
    rec: &RecordedAcl,
    roots: &[WinPath],
    sandbox: &SidString,
) -> Result<DesiredAcl, Error> {
    let mut d = desired_acl(AUDIT_HOLDER, &[], found, sandbox).map_err(invalid)?;
    for e in &rec.entries {
        let keep = e.holders.contains(AUDIT_HOLDER)
            && !e.pending
            && !roots.iter().any(|r| e.path.is_beneath(r))
            && std::fs::symlink_metadata(api_path(&e.path)).is_ok();
        if keep {
            d.aces.insert(PathAce { path: e.path.clone(), ace: e.ace.clone() });
        }
    }
    Ok(d)
}

fn rng(err: &mut Option<io::Error>) -> impl FnMut() -> [u8; 16] + '_ {
    move || match ffi::random16() {
        Ok(b) => b,
        Err(e) => {
            err.get_or_insert(e);
            [0; 16]
        }
    }
}

/// The rights other entries with the same key still need, when `ace` is removed.
fn keep_mask(desired: &DesiredAcl, path: &WinPath, ace: &Ace) -> u32 {
    desired
        .aces
        .iter()
        .filter(|d| {
            &d.path == path
                && d.ace.trustee == ace.trustee
                && d.ace.kind == ace.kind
                && d.ace.flags == ace.flags
                && d.ace != *ace
        })
        .fold(0, |m, d| m | d.ace.mask)
}

fn apply(change: &AclChange, desired: Option<&DesiredAcl>) -> Result<(), Error> {
    match change {
        AclChange::CreatePlaceholder { path, dir } => {
            let p = api_path(path);
            if std::fs::symlink_metadata(&p).is_ok() {
                return Ok(());
            }
            let made = if *dir {
                std::fs::create_dir(&p)
            } else {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p)
                    .and_then(|mut f| io::Write::write_all(&mut f, placeholder_content(path)))
            };
            match made {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(Error::Io { context: format!("creating a placeholder for the protected path {path}"), source: e }),
            }
        }
        AclChange::Add { path, ace } => match acl::add(&api_path(path), std::slice::from_ref(ace)) {
            Ok(Outcome::Changed | Outcome::Unchanged) => Ok(()),
            Ok(Outcome::Missing) => Err(Error::Io {
                context: format!("adding `{ace}` to {path}"),
                source: io::Error::new(io::ErrorKind::NotFound, "it disappeared while palisade was setting up; run the command again"),
            }),
            Err(e) if ace.trustee.synthetic_kind() == Some(SyntheticKind::Sandbox) => Err(Error::Unenforceable {
                what: format!("the folder {path}, which Everyone may write"),
                why: format!("a sandboxed command could write there, and palisade could not deny it to the sandbox: {e}"),
                fix: format!("remove Everyone's write access (for example `icacls \"{path}\" /remove:g *S-1-1-0`, as its owner or an administrator)"),
            }),
            Err(e) => Err(Error::Io { context: format!("adding `{ace}` to {path}"), source: e }),
        },
        AclChange::Remove { path, ace } => {
            let keep = desired.map_or(0, |d| keep_mask(d, path, ace));
            acl::remove(&api_path(path), ace, keep)
                .map(drop)
                .map_err(|e| Error::Io { context: format!("removing `{ace}` from {path}"), source: e })
        }
        AclChange::RemovePlaceholder { path, dir } => remove_placeholder(path, *dir)
            .map(drop)
            .map_err(|e| Error::Io { context: format!("removing the placeholder {path}"), source: e }),
    }
}

/// What a placeholder file holds: empty, except `commondir`, which git reads whatever it is
/// (an empty one is a fatal error): "." names the git directory itself, i.e. no redirection.
fn placeholder_content(path: &WinPath) -> &'static [u8] {
    match path.file_name() {
        Some(name) if name.eq_ignore_ascii_case("commondir") => b".\n",
        _ => b"",
    }
}

/// What happened to a placeholder palisade created.
enum Removed {
    Gone,
    /// Still there because something was put in it (or written to it): not palisade's any more.
    InUse,
    AlreadyGone,
}

/// Deletes a placeholder if it is still empty (a directory without entries, an empty file).
fn remove_placeholder(path: &WinPath, dir: bool) -> io::Result<Removed> {
    let p = api_path(path);
    let meta = match std::fs::symlink_metadata(&p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removed::AlreadyGone),
        Err(e) => return Err(e),
    };
    if meta.is_dir() != dir || meta.file_type().is_symlink() {
        return Ok(Removed::InUse);
    }
    if dir {
        if std::fs::read_dir(&p)?.next().is_some() {
            return Ok(Removed::InUse);
        }
        std::fs::remove_dir(&p)?;
    } else {
        let content = placeholder_content(path);
        if meta.len() != content.len() as u64 || std::fs::read(&p)? != content {
            return Ok(Removed::InUse);
        }
        std::fs::remove_file(&p)?;
    }
    Ok(Removed::Gone)
}

/// Brings the disk to one holder's desired state, write-ahead logged in the record. Returns
/// how many changes were applied.
fn converge(st: &State, rec: &mut RecordedAcl, desired: &DesiredAcl) -> Result<usize, Error> {
    let changes = plan(desired, rec);
    if changes.is_empty() {
        return Ok(0);
    }
    rec.begin(&changes);
    st.save_acl(rec)?;
    for c in &changes {
        apply(c, Some(desired))?;
    }
    rec.commit(desired);
    st.save_acl(rec)?;
    Ok(changes.len())
}

/// A sandbox's roots and audit findings, from which the ACLs are planned (dry, for `palisade
/// check` and the enforcement report) and applied (before every command, which costs nothing
/// when nothing changed).
pub struct Setup {
    state_dir: PathBuf,
    pub roots: Vec<WinPath>,
    patterns: Vec<String>,
    pub audit: AuditReport,
    pub audit_skipped: Vec<SkippedEntry>,
    /// Elevated mode: the group of the sandbox accounts (granted each root too) and the real
    /// user (who takes ownership back).
    account_group: Option<Creator>,
}

/// What [`Setup::apply`] (or [`Setup::pending`], without changing anything) found.
pub struct Applied {
    pub write_sids: Vec<SidString>,
    pub sandbox_sid: SidString,
    /// Protected paths (read-only or placeholder) and pinned folders across the roots.
    pub protected: usize,
    /// ACL changes applied (or, dry, to apply).
    pub changes: usize,
    /// Folders denied to the sandbox because Everyone may write them (recorded, all time).
    pub world_denied: usize,
}

impl Setup {
    /// Resolves the roots on disk, refuses forbidden ones and runs the world-writable audit.
    /// Changes nothing.
    pub fn new(policy: &Policy) -> Result<Setup, Error> {
        let state_dir = state::state_dir()?;
        let layout = state::system_layout(&state_dir);
        let roots = canonical_roots(policy, &layout)?;
        let workspace_children = if policy.mode == Mode::ReadOnly { Some(policy.workspace.as_path()) } else { None };
        let (audit, audit_skipped) =
            audit::run(&audit::environment(workspace_children), &roots, AuditBudget::default());
        Ok(Setup {
            state_dir,
            roots,
            patterns: policy.protected_paths.clone(),
            audit,
            audit_skipped,
            account_group: None,
        })
    }

    /// Grants each root to `group` as well, and keeps ownership from giving the sandbox
    /// accounts rights there (elevated mode: see `account_desired`); `user` is the real user.
    pub fn with_account_group(mut self, group: SidString, user: SidString) -> Setup {
        self.account_group = Some(Creator::SandboxAccount { group, user });
        self
    }

    /// Write SIDs for the roots (assigned in `reg` if new) and every holder's desired state.
    fn desired(
        &self,
        reg: &mut SidRegistry,
        rec: &RecordedAcl,
    ) -> Result<(Vec<SidString>, SidString, Vec<DesiredAcl>, usize), Error> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut rng_error = None;
        let (write_sids, sandbox_sid) = {
            let mut random = rng(&mut rng_error);
            let sids: Vec<SidString> = self.roots.iter().map(|r| reg.assign(r, now, &mut random)).collect();
            let sandbox = reg.sandbox_sid(&mut random);
            (sids, sandbox)
        };
        if let Some(e) = rng_error {
            return Err(Error::Io { context: "generating write SIDs".into(), source: e });
        }
        let mut holders = Vec::new();
        let mut protected = 0;
        for root in &self.roots {
            let (d, n) = root_desired(root, reg, &self.patterns, &sandbox_sid, &rec.placeholders)?;
            protected += n;
            holders.push(d);
            if let Some(creator) = &self.account_group {
                holders.push(account_desired(root, creator, &self.patterns, &sandbox_sid, &rec.placeholders)?);
            }
        }
        holders.push(audit_desired(&self.audit.deny_for_restricted_token(), rec, &self.roots, &sandbox_sid)?);
        Ok((write_sids, sandbox_sid, holders, protected))
    }

    /// What [`Setup::apply`] would do now, without the lock and without changing anything.
    pub fn pending(&self) -> Result<Applied, Error> {
        let st = State::read_only(&self.state_dir);
        let mut reg = st.load_sids()?;
        let rec = st.load_acl()?;
        let (write_sids, sandbox_sid, holders, protected) = self.desired(&mut reg, &rec)?;
        let changes = holders.iter().map(|d| plan(d, &rec).len()).sum();
        let world_denied = holders.last().map_or(0, |d| d.aces.len());
        Ok(Applied { write_sids, sandbox_sid, protected, changes, world_denied })
    }

    /// Brings the ACLs to the desired state under the state lock, changing only what differs
    /// from the record (write-ahead logged).
    pub fn apply(&self) -> Result<Applied, Error> {
        let st = State::lock(&self.state_dir)?;
        let mut reg = st.load_sids()?;
        let before = reg.clone();
        let mut rec = st.load_acl()?;
        let (write_sids, sandbox_sid, holders, protected) = self.desired(&mut reg, &rec)?;
        if reg != before {
            st.save_sids(&reg)?;
        }
        let mut changes = 0;
        for d in &holders {
            changes += converge(&st, &mut rec, d)?;
        }
        let world_denied = holders.last().map_or(0, |d| d.aces.len());
        Ok(Applied { write_sids, sandbox_sid, protected, changes, world_denied })
    }
}

/// The command's private temporary folder: `%TEMP%\palisade-<random>`, writable only through
/// its own write SID (which no other command has), removed with everything in it afterwards.
pub struct PrivateTemp {
    pub dir: PathBuf,
    pub sid: SidString,
}

impl PrivateTemp {
    pub fn create() -> Result<PrivateTemp, Error> {
        let base = std::env::temp_dir();
        let err = |e| Error::Io {
            context: format!("creating the private temporary folder in {}", base.display()),
            source: e,
        };
        let rnd = ffi::random16().map_err(err)?;
        let name: String = rnd[..8].iter().map(|b| format!("{b:02x}")).collect();
        let dir = state::plain_path(&base.join(format!("palisade-{name}")));
        std::fs::create_dir(&dir).map_err(err)?;
        let t = PrivateTemp { dir, sid: SidString::synthetic(SyntheticKind::WriteRoot, ffi::random16().map_err(err)?) };
        let wp = state::win_path(&t.dir)?;
        let grant = palisade_windows_plan::acl::root_grant(&wp, &t.sid);
        let aces: Vec<Ace> = grant.iter().map(|g| g.ace.clone()).collect();
        acl::add(&t.dir, &aces).map_err(err)?;
        Ok(t)
    }
}

impl Drop for PrivateTemp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes every ACE the record lists (see `palisade cleanup`). Idempotent: entries already
/// gone count as removed; entries that cannot be removed stay recorded and are reported.
pub fn cleanup() -> Result<CleanupReport, Error> {
    let dir = state::state_dir()?;
    let mut report = CleanupReport::default();
    if !dir.join("acl.json").exists() && !dir.join("sids.json").exists() {
        report.notes.push(format!("nothing recorded in {}", dir.display()));
        return Ok(report);
    }
    let st = State::lock(&dir)?;
    let mut rec = st.load_acl()?;
    let changes = cleanup_plan(&rec);
    let mut failed = Vec::new();
    let (mut placeholders_removed, mut placeholders_kept) = (0, Vec::new());
    for c in &changes {
        match c {
            AclChange::Remove { path, ace } => match acl::remove(&api_path(path), ace, 0) {
                Ok(Outcome::Changed) => report.removed += 1,
                Ok(Outcome::Unchanged | Outcome::Missing) => report.already_gone += 1,
                Err(e) => {
                    report.failed.push(format!("{path}: {ace}: {e}"));
                    failed.push(c.clone());
                }
            },
            AclChange::RemovePlaceholder { path, dir } => match remove_placeholder(path, *dir) {
                Ok(Removed::Gone) => placeholders_removed += 1,
                Ok(Removed::AlreadyGone) => {}
                Ok(Removed::InUse) => placeholders_kept.push(path.to_string()),
                Err(e) => {
                    report.failed.push(format!("placeholder {path}: {e}"));
                    failed.push(c.clone());
                }
            },
            _ => {}
        }
    }
    rec.after_cleanup(&failed);
    st.save_acl(&rec)?;
    let mut reg = st.load_sids()?;
    let still: BTreeSet<&SidString> = rec.entries.iter().map(|e| &e.ace.trustee).collect();
    let keys: Vec<WinPath> = reg.roots.values().filter(|e| !still.contains(&e.sid)).map(|e| e.root.clone()).collect();
    for k in &keys {
        reg.forget(k);
    }
    if !keys.is_empty() {
        st.save_sids(&reg)?;
    }
    report.notes.push(format!("{placeholders_removed} empty placeholders for missing protected paths removed"));
    if !placeholders_kept.is_empty() {
        report
            .notes
            .push(format!("placeholders left because they are no longer empty: {}", placeholders_kept.join(", ")));
    }
    report.notes.push(format!("state folder: {}", dir.display()));
    Ok(report)
}
