//! One run of `palisade-setup`: connect, check the peer, read one request, gather facts,
//! validate, plan, and carry out each pending step with its record written ahead, reporting
//! progress on the pipe.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use palisade_windows_elevated::ace::descriptor_sddl;
use palisade_windows_elevated::facts::{DirFact, MachineFacts, Sids, GROUP_NAME};
use palisade_windows_elevated::records::{Origin, Record, RecordsError, StateRecords};
use palisade_windows_elevated::request::{parse_request, validate, Authority, RequestAction, Validated};
use palisade_windows_elevated::setup_channel::{exit, plan_chunks, read_request, Progress};
use palisade_windows_elevated::setup_plan::{
    marker_contents, records_folder_trusted, setup_plan, Executor, Layout, SetupError, SetupPlan, Step, StepAction,
    RUNNER_EXE,
};
use palisade_windows_elevated::sid::Sid;
use palisade_windows_elevated::uninstall_plan::{uninstall_plan, UndoAction, UninstallPlan};
use palisade_windows_elevated::winpath::WinPath;
use palisade_windows_elevated::SETUP_VERSION;

use palisade_win32::fence::Fence;
use palisade_win32::gather::{self, to_path, GatherError};
use palisade_win32::{accounts, acl};

use crate::pipe;

/// Why setup stopped. `Display` is one line naming the phase or step.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("pipe: {0}")]
    Pipe(String),
    #[error("{0}")]
    Request(String),
    #[error("{0}")]
    Facts(#[from] GatherError),
    #[error("{0}")]
    Plan(#[from] SetupError),
    #[error("setup step `{step}` failed: {err}")]
    Step { step: String, err: String },
    #[error("records file {path}: {err}")]
    Records { path: String, err: String },
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => exit::USAGE,
            Failure::Pipe(_) => exit::PIPE,
            Failure::Request(_) => exit::REQUEST,
            Failure::Facts(_) => exit::FACTS,
            Failure::Plan(_) => exit::PLAN,
            Failure::Step { .. } => exit::STEP,
            Failure::Records { .. } => exit::RECORDS,
        }
    }

    /// The step (or phase) to name in the `Failed` report.
    pub fn step(&self) -> String {
        match self {
            Failure::Usage(_) => "arguments".into(),
            Failure::Pipe(_) => "pipe".into(),
            Failure::Request(_) => "request".into(),
            Failure::Facts(_) => "facts".into(),
            Failure::Plan(e) => e.step.clone(),
            Failure::Step { step, .. } => step.clone(),
            Failure::Records { .. } => "records".into(),
        }
    }
}

fn step_err(step: &str) -> impl Fn(io::Error) -> Failure + '_ {
    move |e| Failure::Step { step: step.to_string(), err: e.to_string() }
}

/// Where progress goes; a broken pipe stops setup at the next step boundary.
pub trait Reporter {
    fn report(&mut self, p: &Progress) -> io::Result<()>;
}

impl<W: Write> Reporter for W {
    fn report(&mut self, p: &Progress) -> io::Result<()> {
        self.write_all(p.encode().as_bytes())?;
        self.flush()
    }
}

fn report(out: &mut dyn Reporter, p: Progress) -> Result<(), Failure> {
    out.report(&p).map_err(|e| Failure::Pipe(format!("the palisade that started setup stopped listening ({e})")))
}

/// `palisade-setup --pipe NAME`: returns the exit code.
pub fn main_with_args(args: &[String], fence: &dyn Fence) -> i32 {
    let name = match args {
        [flag, name] if flag == "--pipe" => name,
        _ => {
            eprintln!("palisade-setup: usage: palisade-setup --pipe \\\\.\\pipe\\palisade-setup-<id> (started by `palisade setup --elevated`)");
            return exit::USAGE;
        }
    };
    if !pipe::valid_pipe_name(name) {
        eprintln!("palisade-setup: {name:?} is not a palisade-setup pipe name");
        return exit::USAGE;
    }
    let mut conn = match pipe::connect(name) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("palisade-setup: pipe: cannot open {name}: {e}");
            return exit::PIPE;
        }
    };
    let here = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let result = serve(&mut conn, here.as_deref(), fence);
    match result {
        Ok(()) => exit::OK,
        Err(f) => {
            let code = f.exit_code();
            eprintln!("palisade-setup: {f}");
            let _ = conn.report(&Progress::Failed { step: f.step(), message: f.to_string(), exit_code: code });
            code
        }
    }
}

/// Everything after the pipe is open: peer check, request, facts, plan, steps.
pub fn serve(conn: &mut std::fs::File, setup_dir: Option<&Path>, fence: &dyn Fence) -> Result<(), Failure> {
    serve_with(conn, setup_dir, fence, &records_folder_trusted)
}

/// [`serve`] with the rule that decides whether the records in Palisade's folder may be acted
/// on. The binary always uses [`records_folder_trusted`]; a test under Wine, which reports
/// every file as owned by the current user, states its own.
pub fn serve_with(
    conn: &mut std::fs::File,
    setup_dir: Option<&Path>,
    fence: &dyn Fence,
    records_trusted: &dyn Fn(&DirFact) -> bool,
) -> Result<(), Failure> {
    let (_pid, peer) =
        pipe::server_user(conn).map_err(|e| Failure::Pipe(format!("cannot tell who started setup: {e}")))?;
    let peer_sid = Sid::parse(&peer).map_err(|e| Failure::Pipe(format!("the pipe's server runs as {peer}: {e}")))?;
    report(conn, Progress::Hello { setup_version: SETUP_VERSION })?;
    let bytes = read_request(conn).map_err(|e| Failure::Request(e.to_string()))?;
    let req = parse_request(&bytes).map_err(|e| Failure::Request(e.to_string()))?;

    let peer_profile = gather::profile_of(peer_sid.as_str())?.ok_or_else(|| {
        Failure::Request(format!("the user {peer_sid} who started setup has no profile in ProfileList"))
    })?;
    let program_data = gather::program_data()?;
    let layout = Layout::new(&program_data);
    let setup_dir =
        setup_dir.ok_or_else(|| Failure::Facts(GatherError::new("palisade-setup's own folder", "unknown")))?;
    let runner = setup_dir.join(RUNNER_EXE);
    let runner_source = gather::win_path(&runner)?;
    let runner_sha256 = match req.action {
        RequestAction::Install => gather::file_sha256(&runner)?,
        // Uninstall copies nothing; the runner may be gone already.
        RequestAction::Uninstall => "0".repeat(64),
    };
    let auth =
        Authority { peer_sid, peer_profile, program_data, runner_source, runner_sha256, setup_version: SETUP_VERSION };

    let mut records = load_records(&layout)?;
    let mut facts = gather::gather(&layout, fence)?;
    if !records.entries.is_empty() && !facts.directory(&layout.dir).is_some_and(records_trusted) {
        return Err(Failure::Records {
            path: layout.state.to_string(),
            err: format!("{} may be changed by others than Administrators and SYSTEM, so its records are not acted on; remove it by hand", layout.dir),
        });
    }
    let validated = validate(req, &auth, &mut facts).map_err(|e| Failure::Request(e.to_string()))?;
    match validated.action {
        RequestAction::Install => {
            let plan = plan_setup(&validated, &mut facts, &records)?;
            for p in plan_chunks(&plan.lines()) {
                report(conn, p)?;
            }
            let changed =
                Exec { created: Vec::new(), layout: &layout, fence, facts: &facts, out: conn, records: &mut records }
                    .setup(&plan, &validated)?;
            report(conn, Progress::Finished { changed })
        }
        RequestAction::Uninstall => {
            add_aces(&mut facts, &records, &[])?;
            let plan = uninstall_plan(&records, &facts);
            for p in plan_chunks(&plan.lines()) {
                report(conn, p)?;
            }
            let changed =
                Exec { created: Vec::new(), layout: &layout, fence, facts: &facts, out: conn, records: &mut records }
                    .uninstall(&plan)?;
            report(conn, Progress::Finished { changed })
        }
    }
}

/// Plans twice: the first plan names the paths whose ACEs matter, the second sees them.
fn plan_setup(v: &Validated, facts: &mut MachineFacts, records: &StateRecords) -> Result<SetupPlan, Failure> {
    let first = setup_plan(&v.inputs, facts, records)?;
    let paths: Vec<WinPath> = first
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            StepAction::GrantAce { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect();
    add_aces(facts, records, &paths)?;
    Ok(setup_plan(&v.inputs, facts, records)?)
}

/// Fills in the ACEs of Palisade's trustees on `paths` and on every recorded path.
fn add_aces(facts: &mut MachineFacts, records: &StateRecords, paths: &[WinPath]) -> Result<(), Failure> {
    let mut all = paths.to_vec();
    for e in &records.entries {
        if let Record::AceAdded { path, .. } = &e.record {
            all.push(path.clone());
        }
    }
    let sids = Sids::from_facts(facts);
    let mut trustees: Vec<Sid> = [sids.group, sids.offline, sids.online].into_iter().flatten().collect();
    trustees.extend(records.created_sids());
    facts.aces = gather::gather_aces(&all, &trustees)?;
    Ok(())
}

fn state_path(layout: &Layout) -> PathBuf {
    to_path(&layout.state)
}

fn load_records(layout: &Layout) -> Result<StateRecords, Failure> {
    let path = state_path(layout);
    let fail = |err: String| Failure::Records { path: path.display().to_string(), err };
    match std::fs::read_to_string(&path) {
        Ok(s) => StateRecords::from_json(&s).map_err(|e: RecordsError| fail(e.to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(StateRecords::new()),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Writes the records (to a temporary file, then replaces), once Palisade's folder exists; until
/// the first step has made it they are kept in memory.
fn save_records(layout: &Layout, records: &StateRecords) -> Result<(), Failure> {
    let path = state_path(layout);
    if !to_path(&layout.dir).is_dir() {
        return Ok(());
    }
    let tmp = path.with_extension("json.new");
    let fail = |e: io::Error| Failure::Records { path: path.display().to_string(), err: e.to_string() };
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(records.to_json().as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(fail)
}

struct Exec<'a> {
    /// Accounts this run created with the request's password (their `SetPassword` step has
    /// nothing left to do).
    created: Vec<palisade_windows_elevated::facts::SandboxUser>,
    layout: &'a Layout,
    fence: &'a dyn Fence,
    facts: &'a MachineFacts,
    out: &'a mut dyn Reporter,
    records: &'a mut StateRecords,
}

impl Exec<'_> {
    fn save(&mut self) -> Result<(), Failure> {
        save_records(self.layout, self.records)
    }

    /// Carries out the pending steps; returns how many changed the machine (a refused grant
    /// changed nothing).
    fn setup(mut self, plan: &SetupPlan, v: &Validated) -> Result<u32, Failure> {
        let total = plan.pending().filter(|s| s.executor == Executor::Elevated).count() as u32;
        let mut index = 0;
        let mut changed = 0;
        for step in &plan.steps {
            let sids = gather::current_sids()?;
            if step.satisfied {
                // Setup may have stopped after this action but before marking it done.
                self.records.complete(&step.id, step.created_sid(&sids).as_ref());
                continue;
            }
            if step.executor == Executor::Invoker {
                // The CLI did this before starting setup (it stored the password, pending until
                // setup succeeds); setup keeps the record, which only it may write.
                if let Some(rec) =
                    step.intent(&sids).map_err(|e| Failure::Step { step: step.id.clone(), err: e.to_string() })?
                {
                    self.records.begin(&step.id, Origin::Setup, rec);
                    self.records.complete(&step.id, None);
                }
                continue;
            }
            index += 1;
            report(
                self.out,
                Progress::Step { index, total, id: step.id.clone(), description: step.description.clone() },
            )?;
            let intent = step.intent(&sids).map_err(|e| Failure::Step { step: step.id.clone(), err: e.to_string() })?;
            if let Some(rec) = intent {
                self.records.begin(&step.id, Origin::Setup, rec);
                self.save()?;
            }
            match self.act(step, &sids, v) {
                Err(e) => {
                    self.records.discard_pending(&step.id);
                    self.save()?;
                    return Err(e);
                }
                Ok(Some(left_undone)) => {
                    // A grant refused on disk: nothing was written, so nothing is recorded; the
                    // entry stays unreadable to the sandbox, and setup goes on with the rest.
                    self.records.discard_pending(&step.id);
                    self.save()?;
                    report(self.out, Progress::Note { text: left_undone })?;
                    report(self.out, Progress::StepDone { id: step.id.clone() })?;
                    continue;
                }
                Ok(None) => changed += 1,
            }
            if let StepAction::RemoveStale(r) = &step.action {
                self.records.forget(r);
            }
            let sids = gather::current_sids()?;
            self.records.complete(&step.id, step.created_sid(&sids).as_ref());
            self.save()?;
            report(self.out, Progress::StepDone { id: step.id.clone() })?;
        }
        self.save()?;
        Ok(changed)
    }

    /// Carries out one step. `Some(note)`: the step was left undone on purpose (a read grant
    /// whose path is not, on disk, the object the plan names), and `note` says why.
    fn act(&mut self, step: &Step, sids: &Sids, v: &Validated) -> Result<Option<String>, Failure> {
        let id = step.id.as_str();
        let e = step_err(id);
        let fence_err = |err: String| Failure::Step { step: id.to_string(), err };
        let need = |what: Option<&Sid>, name: &str| -> Result<String, Failure> {
            what.map(|s| s.to_string())
                .ok_or_else(|| Failure::Step { step: id.to_string(), err: format!("{name} does not exist") })
        };
        let done: Result<(), Failure> = match &step.action {
            StepAction::RemoveMarker { path } => remove_file(&to_path(path)).map_err(e),
            StepAction::StoreCredential { .. } => Ok(()),
            StepAction::CreateDirectory { path, owner, protected, aces, .. } => {
                let sddl = descriptor_sddl(owner, *protected, aces, sids).map_err(|x| fence_err(x.to_string()))?;
                let p = to_path(path);
                if p.is_dir() {
                    acl::reset_directory(&p, &sddl, *protected).map_err(e)
                } else {
                    acl::create_directory(&p, &sddl).map_err(e)
                }
            }
            StepAction::CreateGroup { name, comment } => accounts::create_group(name, comment).map_err(e),
            StepAction::CreateUser { user, comment } => {
                let pw = v
                    .password(*user)
                    .ok_or_else(|| fence_err(format!("the request carries no password for {}", user.account_name())))?;
                accounts::create_user(user.account_name(), pw.expose(), comment).map_err(e)?;
                self.created.push(*user);
                Ok(())
            }
            // NetUserAdd just set this very password.
            StepAction::SetPassword { user } if self.created.contains(user) => Ok(()),
            StepAction::SetPassword { user } => {
                let pw = v
                    .password(*user)
                    .ok_or_else(|| fence_err(format!("the request carries no password for {}", user.account_name())))?;
                accounts::set_password(user.account_name(), pw.expose()).map_err(e)
            }
            StepAction::AddToGroup { user } => {
                let member = need(sids.user(*user), user.account_name())?;
                accounts::add_member(GROUP_NAME, &member).map_err(e)
            }
            StepAction::HideFromSignIn { user } => accounts::hide_from_sign_in(user.account_name()).map_err(e),
            StepAction::AddAccountRights { user, rights } => {
                let sid = need(sids.user(*user), user.account_name())?;
                let names: Vec<&str> = rights.iter().map(|r| r.as_str()).collect();
                accounts::add_account_rights(&sid, &names).map_err(e)
            }
            StepAction::AddFirewallRule(r) => {
                let sid =
                    sids.user(r.user).ok_or_else(|| fence_err(format!("{} does not exist", r.user.account_name())))?;
                self.fence.add_rule(&r.render(sid)).map_err(fence_err)
            }
            StepAction::AddWfpObject(w) => {
                let o = w.render(sids).map_err(|x| fence_err(x.to_string()))?;
                self.fence.add_wfp(&o).map_err(fence_err)
            }
            StepAction::RequireReadable { .. } => Ok(()),
            StepAction::GrantAce { path, ace } => {
                let sid =
                    ace.trustee.resolve(sids).ok_or_else(|| fence_err(format!("{} does not exist", ace.trustee)))?;
                return match acl::grant_ace(path, ace, sid.as_str()).map_err(e)? {
                    acl::Granted::Done => Ok(None),
                    acl::Granted::Refused(why) => {
                        Ok(Some(format!("not granted: {why}; it stays unreadable to the sandbox accounts")))
                    }
                };
            }
            StepAction::CopyFile { from, to, sha256 } => {
                let dest = to_path(to);
                std::fs::copy(to_path(from), &dest).map_err(&e)?;
                let got = gather::file_sha256(&dest)?;
                if !got.eq_ignore_ascii_case(sha256) {
                    let _ = std::fs::remove_file(&dest);
                    return Err(fence_err(format!(
                        "the copy of {from} has SHA-256 {got}, expected {sha256}; removed it"
                    )));
                }
                Ok(())
            }
            StepAction::WriteFile { path, contents } => std::fs::write(to_path(path), contents).map_err(e),
            StepAction::RemoveStale(r) => {
                let one = StateRecords {
                    version: self.records.version,
                    entries: vec![palisade_windows_elevated::records::RecordEntry {
                        step: id.into(),
                        origin: Origin::Setup,
                        done: true,
                        record: r.clone(),
                    }],
                };
                let plan = uninstall_plan(&one, self.facts);
                for s in &plan.steps {
                    self.undo(id, &s.action)?;
                }
                Ok(())
            }
            StepAction::WriteMarker { path, version, proxy_ports } => {
                std::fs::write(to_path(path), marker_contents(*version, proxy_ports)).map_err(e)
            }
        };
        done.map(|()| None)
    }

    /// Carries out the uninstall steps, forgetting each record once its step succeeded.
    fn uninstall(mut self, plan: &UninstallPlan) -> Result<u32, Failure> {
        let total = plan.steps.len() as u32;
        let mut changed = 0;
        // Records of things that are gone name nothing left to remove, and the stored
        // passwords are the CLI's to delete: forget both first, so that the records file is
        // empty (and removed with its folder) once the last elevated step is done.
        for n in &plan.not_found {
            self.records.forget(&n.record);
        }
        for s in plan.steps.iter().filter(|s| s.action.executor() == Executor::Invoker) {
            if let Some(r) = &s.record {
                self.records.forget(r);
            }
        }
        if state_path(self.layout).exists() {
            self.save()?;
        }
        for (i, step) in plan.steps.iter().enumerate() {
            report(
                self.out,
                Progress::Step {
                    index: i as u32 + 1,
                    total,
                    id: step.id.clone(),
                    description: step.description.clone(),
                },
            )?;
            if step.action.executor() == Executor::Invoker {
                report(
                    self.out,
                    Progress::Note { text: format!("{} (palisade does this after setup)", step.description) },
                )?;
            } else {
                let is_own_dir =
                    matches!(&step.action, UndoAction::RemoveDirectoryIfEmpty { path } if *path == self.layout.dir);
                if is_own_dir {
                    // The records file goes just before its folder, once nothing else is recorded.
                    if let Some(r) = &step.record {
                        self.records.forget(r);
                    }
                    if self.records.entries.is_empty() {
                        remove_file(&state_path(self.layout)).map_err(step_err(&step.id))?;
                    } else {
                        self.save()?;
                    }
                }
                self.undo(&step.id, &step.action)?;
                changed += 1;
            }
            if let Some(r) = &step.record {
                self.records.forget(r);
            }
            if state_path(self.layout).exists() {
                self.save()?;
            }
            report(self.out, Progress::StepDone { id: step.id.clone() })?;
        }
        Ok(changed)
    }

    fn undo(&mut self, id: &str, action: &UndoAction) -> Result<(), Failure> {
        let e = step_err(id);
        let fence_err = |err: String| Failure::Step { step: id.to_string(), err };
        match action {
            UndoAction::DeleteMarker { path } | UndoAction::DeleteFile { path } => {
                remove_file(&to_path(path)).map_err(e)
            }
            UndoAction::RemoveDirectoryIfEmpty { path } => match std::fs::remove_dir(to_path(path)) {
                Ok(()) => Ok(()),
                Err(x) if x.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(x) if x.raw_os_error() == Some(145) => {
                    // ERROR_DIR_NOT_EMPTY: something not Palisade's is inside; it stays.
                    report(self.out, Progress::Note { text: format!("{path} is not empty, so it stays") })
                }
                Err(x) => Err(e(x)),
            },
            UndoAction::RemoveAce { path, ace } => {
                let palisade_windows_elevated::ace::Trustee::Sid(sid) = &ace.trustee else {
                    return Err(fence_err("a recorded access entry without a SID".into()));
                };
                acl::remove_ace(&to_path(path), ace, sid.as_str()).map(|_| ()).map_err(e)
            }
            UndoAction::DeleteWfpObject { key, .. } => match self.facts.firewall.wfp.iter().find(|o| o.key() == key) {
                Some(o) => self.fence.remove_wfp(o).map(|_| ()).map_err(fence_err),
                None => Ok(()),
            },
            UndoAction::DeleteFirewallRule { name } => self.fence.remove_rule(name).map(|_| ()).map_err(fence_err),
            UndoAction::DeleteCredential { .. } => Ok(()),
            UndoAction::RemoveAccountRights { sid, rights } => {
                let names: Vec<&str> = rights.iter().map(|r| r.as_str()).collect();
                accounts::remove_account_rights(sid.as_str(), &names).map_err(e)
            }
            UndoAction::UnhideFromSignIn { name } => accounts::unhide_from_sign_in(name).map_err(e),
            UndoAction::RemoveFromGroup { member, group } => {
                let name = self
                    .facts
                    .groups
                    .iter()
                    .find(|g| &g.sid == group)
                    .map(|g| g.name.clone())
                    .unwrap_or_else(|| GROUP_NAME.into());
                accounts::remove_member(&name, member.as_str()).map_err(e)
            }
            UndoAction::DeleteProfile { sid, path } => {
                accounts::delete_profile(sid.as_str(), &to_path(path)).map_err(e)
            }
            UndoAction::DeleteUser { name, sid } => {
                // Only the account recorded: a new account of that name is someone else's.
                if palisade_win32::sid::lookup_local_account(name).map_err(&e)?.as_deref() != Some(sid.as_str()) {
                    return report(
                        self.out,
                        Progress::Note { text: format!("the account {name} is not {sid} any more; left in place") },
                    );
                }
                accounts::delete_user(name).map_err(e)
            }
            UndoAction::DeleteGroup { name, sid } => {
                if palisade_win32::sid::lookup_local_account(name).map_err(&e)?.as_deref() != Some(sid.as_str()) {
                    return report(
                        self.out,
                        Progress::Note { text: format!("the group {name} is not {sid} any more; left in place") },
                    );
                }
                accounts::delete_group(name).map_err(e)
            }
        }
    }
}

fn remove_file(p: &Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}
