//! How [`setup_plan`] orders the steps: the checks of the inputs and of the machine, the profile
//! walk, and the removal of what earlier setups recorded.

use super::*;

struct Builder<'a> {
    facts: &'a MachineFacts,
    sids: Sids,
    steps: Vec<Step>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        id: String,
        executor: Executor,
        action: StepAction,
        satisfied: bool,
        description: String,
        undo: Option<String>,
    ) {
        self.steps.push(Step { id, description, executor, action, satisfied, undo });
    }

    fn ace_present(&self, path: &WinPath, ace: &AceSpec) -> bool {
        ace.resolved(&self.sids).map(|a| self.facts.has_ace(path, &a)).unwrap_or(false)
    }
}

/// Plans the elevated setup. `records` are the records of earlier setups (empty the first time);
/// what they list but the inputs no longer want is removed.
pub fn setup_plan(inputs: &SetupInputs, facts: &MachineFacts, records: &StateRecords) -> Result<SetupPlan, SetupError> {
    let inst = &inputs.installer;
    let layout = Layout::new(&inputs.program_data);
    validate_inputs(inputs)?;
    check_accounts(facts)?;
    check_firewall(facts)?;
    // The offline account reaches no port; the proxied one only the proxy ports (recorded in
    // the marker for the CLI, see `proxy_route`).
    let proxy_ports = crate::proxy_route::setup_ports(&inputs.proxy_ports);
    let fences = [firewall::offline_fence(&[]), firewall::proxied_fence(&proxy_ports)]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail("firewall", SetupErrorKind::Fence(e)))?;
    let secrets = secrets_of(inst).map_err(|e| fail("acl", SetupErrorKind::InvalidInput(e.to_string())))?;
    let guard = GrantGuard { profile: inst.profile.clone(), secrets };

    let mut b = Builder { facts, sids: Sids::from_facts(facts), steps: Vec::new() };

    // 1. Credentials (invoker).
    for u in SandboxUser::ALL {
        let path = credential_path(&inst.local_app_data, u);
        let ok = facts.credential(u).is_some_and(|c| c.path == path && c.decryptable && c.logon_ok);
        b.push(
            format!("credential.{}.store", u.id()),
            Executor::Invoker,
            StepAction::StoreCredential { user: u, path: path.clone() },
            ok,
            format!(
                "store a new random password for {} at {path}, encrypted with DPAPI for {}",
                u.account_name(),
                inst.name
            ),
            Some(format!("delete {path}")),
        );
    }

    // 3. Palisade's folder and bin folder.
    let admin_owned = |o: &Sid| *o == Sid::administrators() || *o == Sid::system();
    let dir_aces = vec![
        ace_sid(Sid::system(), Rights::FullControl),
        ace_sid(Sid::administrators(), Rights::FullControl),
        ace_sid(inst.sid.clone(), Rights::ReadExecute),
    ];
    let dir_fact = facts.directory(&layout.dir);
    if let Some(d) = dir_fact {
        if !admin_owned(&d.owner) {
            return Err(fail(
                "dir.palisade",
                SetupErrorKind::UntrustedDirectory { path: d.path.clone(), owner: d.owner.clone() },
            ));
        }
    }
    let dir_ok = dir_fact.is_some_and(|d| {
        d.protected
            && dir_aces.iter().all(|a| d.explicit_aces.contains(a))
            && d.explicit_aces
                .iter()
                .all(|a| !a.rights.writes() || matches!(&a.trustee, Trustee::Sid(s) if admin_owned(s)))
    });
    b.push(
        "dir.palisade".into(),
        Executor::Elevated,
        StepAction::CreateDirectory {
            path: layout.dir.clone(),
            owner: Sid::administrators(),
            protected: true,
            aces: dir_aces,
            existed: dir_fact.is_some(),
        },
        dir_ok,
        format!(
            "create {} owned by Administrators, changeable only by Administrators and SYSTEM, readable by {}",
            layout.dir, inst.name
        ),
        if dir_fact.is_some() { None } else { Some(format!("remove {} when empty", layout.dir)) },
    );
    let bin_fact = facts.directory(&layout.bin);
    if let Some(d) = bin_fact {
        if !admin_owned(&d.owner) {
            return Err(fail(
                "dir.bin",
                SetupErrorKind::UntrustedDirectory { path: d.path.clone(), owner: d.owner.clone() },
            ));
        }
    }
    let bin_ok = dir_ok && bin_fact.is_some_and(|d| !d.protected && d.explicit_aces.is_empty());
    b.push(
        "dir.bin".into(),
        Executor::Elevated,
        StepAction::CreateDirectory {
            path: layout.bin.clone(),
            owner: Sid::administrators(),
            protected: false,
            aces: vec![],
            existed: bin_fact.is_some(),
        },
        bin_ok,
        format!("create {} inheriting the permissions above", layout.bin),
        if bin_fact.is_some() { None } else { Some(format!("remove {} when empty", layout.bin)) },
    );

    // 4. Group and accounts.
    b.push(
        "group.create".into(),
        Executor::Elevated,
        StepAction::CreateGroup { name: GROUP_NAME.into(), comment: "Palisade sandbox accounts".into() },
        facts.sandbox_group().is_some(),
        format!("create the local group {GROUP_NAME}"),
        Some(format!("delete the group {GROUP_NAME}")),
    );
    for u in SandboxUser::ALL {
        let name = u.account_name();
        let user = facts.sandbox_user(u);
        let sid = user.map(|x| x.sid.clone());
        let cred_ok = b.steps.iter().any(|s| s.id == format!("credential.{}.store", u.id()) && s.satisfied);
        let what = u.network_description();
        b.push(
            format!("user.{}.create", u.id()),
            Executor::Elevated,
            StepAction::CreateUser { user: u, comment: format!("Palisade sandbox account; {what}") },
            user.is_some(),
            format!("create the local account {name} (sandboxed commands run as it; it {what})"),
            Some(format!("delete the account {name} and its profile folder")),
        );
        b.push(
            format!("user.{}.password", u.id()),
            Executor::Elevated,
            StepAction::SetPassword { user: u },
            user.is_some() && cred_ok,
            format!("set the password of {name} to the one just stored"),
            None,
        );
        let member = match (&sid, facts.sandbox_group()) {
            (Some(s), Some(g)) => g.members.contains(s),
            _ => false,
        };
        b.push(
            format!("user.{}.group", u.id()),
            Executor::Elevated,
            StepAction::AddToGroup { user: u },
            member,
            format!("add {name} to {GROUP_NAME}"),
            Some(format!("remove {name} from {GROUP_NAME}")),
        );
        b.push(
            format!("user.{}.hide", u.id()),
            Executor::Elevated,
            StepAction::HideFromSignIn { user: u },
            facts.is_hidden(name),
            format!("hide {name} from the sign-in screen (SpecialAccounts\\UserList)"),
            Some(format!("delete the SpecialAccounts\\UserList value {name}")),
        );
        let held: Vec<AccountRight> = sid.as_ref().map(|s| facts.rights_of(s).to_vec()).unwrap_or_default();
        let missing: Vec<AccountRight> = DENIED_RIGHTS.iter().copied().filter(|r| !held.contains(r)).collect();
        let names: Vec<&str> = DENIED_RIGHTS.iter().map(|r| r.as_str()).collect();
        b.push(
            format!("user.{}.rights", u.id()),
            Executor::Elevated,
            StepAction::AddAccountRights {
                user: u,
                rights: if missing.is_empty() { DENIED_RIGHTS.to_vec() } else { missing.clone() },
            },
            sid.is_some() && missing.is_empty(),
            format!("deny {name} remote desktop, network, batch and service logons ({})", names.join(", ")),
            Some(format!("remove the rights Palisade added to {name}")),
        );
    }

    // 5. The offline and proxied accounts' fences.
    for r in fences.iter().flat_map(|f| &f.rules) {
        let ok = b.sids.user(r.user).is_some_and(|s| facts.rule(&r.name) == Some(&r.render(s)));
        b.push(
            format!("firewall:{}", r.name),
            Executor::Elevated,
            StepAction::AddFirewallRule(r.clone()),
            ok,
            format!("firewall rule `{}`: {}", r.name, r.description),
            Some(format!("delete the firewall rule `{}`", r.name)),
        );
    }
    let mut wfp_specs = vec![WfpSpec::Provider, WfpSpec::Sublayer];
    wfp_specs.extend(fences.iter().flat_map(|f| f.filters.iter().cloned()).map(WfpSpec::Filter));
    for w in wfp_specs {
        let rendered = w.render(&b.sids).ok();
        let ok = rendered.as_ref().is_some_and(|o| facts.has_wfp(o));
        let (id, description) = match &w {
            WfpSpec::Provider => {
                ("wfp.provider".to_string(), format!("register the WFP provider `{}`", firewall::PROVIDER_NAME))
            }
            WfpSpec::Sublayer => {
                ("wfp.sublayer".to_string(), format!("add the WFP sublayer `{}`", firewall::SUBLAYER_NAME))
            }
            WfpSpec::Filter(f) => (format!("wfp:{}", f.name), format!("WFP filter `{}`", f.name)),
        };
        let undo =
            Some(format!("delete the WFP object {}", if let WfpSpec::Filter(f) = &w { f.key() } else { id.clone() }));
        b.push(id, Executor::Elevated, StepAction::AddWfpObject(w), ok, description, undo);
    }

    // 6. System folders.
    for required in [SystemFolder::Windows, SystemFolder::ProgramFiles, SystemFolder::ProgramData] {
        if !facts.system_folders.iter().any(|f| f.folder == required) {
            return Err(fail(
                &format!("acl.system.{}", required.id()),
                SetupErrorKind::MissingFacts(format!("who may read the {} folder", required.id())),
            ));
        }
    }
    let via_ok = [Sid::users(), Sid::authenticated_users(), Sid::everyone()];
    for f in &facts.system_folders {
        let id = format!("acl.system.{}", f.folder.id());
        if let Some(via) = f.readable_by.iter().find(|s| via_ok.contains(s)) {
            b.push(
                id,
                Executor::Elevated,
                StepAction::RequireReadable { folder: f.folder, path: f.path.clone(), via: via.clone() },
                true,
                format!("{} is readable through {via} already; nothing changes", f.path),
                None,
            );
        } else if f.owner == Sid::trusted_installer() {
            return Err(fail(&id, SetupErrorKind::SystemFolderUnreadable { path: f.path.clone() }));
        } else {
            let ace = ace_group(Rights::ReadExecute, Inheritance::ContainerAndObject);
            grant(&mut b, &guard, id, f.path.clone(), ace, format!("let {GROUP_NAME} read and execute {}", f.path))?;
        }
    }

    // 7. The profile, tool folders and Palisade's folder.
    let mut grants: Vec<(WinPath, Rights, Inheritance)> = Vec::new();
    let mut not_granted = Vec::new();
    grants.push((inst.profile.clone(), Rights::ListTraverse, Inheritance::None));
    let excluded: Vec<Vec<String>> = PROFILE_SECRETS
        .iter()
        .map(|s| s.to_string())
        .chain(inst.extra_secrets.iter().cloned())
        .map(|s| s.split(['\\', '/']).map(fold).collect())
        .collect();
    walk(&inst.profile, &mut Vec::new(), &inst.profile_entries, &excluded, &mut grants, &mut not_granted)?;
    for t in &inst.tool_folders {
        let covered = grants.iter().any(|(p, r, i)| {
            *r == Rights::ReadExecute && *i == Inheritance::ContainerAndObject && t.is_same_or_beneath(p)
        });
        if !covered {
            grants.push((t.clone(), Rights::ReadExecute, Inheritance::ContainerAndObject));
        }
    }
    for (path, rights, inh) in grants {
        let how = match (rights, inh) {
            (Rights::ListTraverse, _) => "list the names in",
            (_, Inheritance::None) => "read",
            _ => "read and execute everything in",
        };
        let description = format!("let {GROUP_NAME} {how} {path}");
        grant(&mut b, &guard, format!("acl:{path}"), path, ace_group(rights, inh), description)?;
    }
    let ace = ace_group(Rights::ReadExecute, Inheritance::ContainerAndObject);
    let before = b.steps.len();
    grant(
        &mut b,
        &guard,
        format!("acl:{}", layout.dir),
        layout.dir.clone(),
        ace,
        format!("let {GROUP_NAME} read and execute {}", layout.dir),
    )?;
    // Resetting the folder's DACL (dir.palisade pending) drops this grant: redo it then.
    if !dir_ok {
        b.steps[before].satisfied = false;
    }

    // 8. Files.
    let runner_ok = facts.file(&layout.runner).is_some_and(|f| f.sha256.eq_ignore_ascii_case(&inputs.runner_sha256));
    b.push(
        "file.runner".into(),
        Executor::Elevated,
        StepAction::CopyFile {
            from: inputs.runner_source.clone(),
            to: layout.runner.clone(),
            sha256: inputs.runner_sha256.to_ascii_lowercase(),
        },
        runner_ok,
        format!("copy palisade-runner.exe to {} (the sandbox accounts run it from there)", layout.runner),
        Some(format!("delete {}", layout.runner)),
    );
    let contents = gitconfig_contents();
    let git_ok = facts.file(&layout.gitconfig).is_some_and(|f| f.text.as_deref() == Some(contents.as_str()));
    b.push(
        "file.gitconfig".into(),
        Executor::Elevated,
        StepAction::WriteFile { path: layout.gitconfig.clone(), contents },
        git_ok,
        format!(
            "write {} (git for the sandbox accounts: safe.directory = *, http.sslBackend = openssl)",
            layout.gitconfig
        ),
        Some(format!("delete {}", layout.gitconfig)),
    );

    // 9. Stale records.
    stale_steps(&mut b, records)?;

    // 10. Marker, and its invalidation up front.
    let marker_ok = facts
        .marker
        .as_ref()
        .is_some_and(|m| m.path == layout.marker && m.version == inputs.setup_version && m.proxy_ports == proxy_ports);
    let others_pending = b.steps.iter().any(|s| !s.satisfied);
    if let Some(m) = &facts.marker {
        if others_pending || !marker_ok {
            let at = b.steps.iter().position(|s| s.executor == Executor::Elevated).unwrap_or(0);
            b.steps.insert(
                at,
                Step {
                    id: "marker.invalidate".into(),
                    description: format!("delete the setup marker {} until this setup completes", m.path),
                    executor: Executor::Elevated,
                    action: StepAction::RemoveMarker { path: m.path.clone() },
                    satisfied: false,
                    undo: None,
                },
            );
        }
    }
    b.push(
        "marker.write".into(),
        Executor::Elevated,
        StepAction::WriteMarker {
            path: layout.marker.clone(),
            version: inputs.setup_version,
            proxy_ports: proxy_ports.clone(),
        },
        marker_ok && !others_pending,
        format!(
            "write the setup marker {} (version {}, proxy ports {}) last",
            layout.marker,
            inputs.setup_version,
            proxy_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        ),
        Some(format!("delete {}", layout.marker)),
    );

    Ok(SetupPlan { steps: b.steps, not_granted })
}

fn grant(
    b: &mut Builder<'_>,
    guard: &GrantGuard,
    id: String,
    path: WinPath,
    ace: AceSpec,
    description: String,
) -> Result<(), SetupError> {
    if let Some(reason) = guard.forbidden(&path, &ace) {
        return Err(fail(&id, SetupErrorKind::ForbiddenGrant { path, reason }));
    }
    let ok = b.ace_present(&path, &ace);
    let undo = Some(format!("remove this access entry from {path}"));
    b.push(id, Executor::Elevated, StepAction::GrantAce { path, ace }, ok, description, undo);
    Ok(())
}

fn validate_inputs(inputs: &SetupInputs) -> Result<(), SetupError> {
    let inst = &inputs.installer;
    let bad = |m: String| Err(fail("request", SetupErrorKind::InvalidInput(m)));
    if inst.profile.is_drive_root() || inst.profile.components().len() < 2 {
        return bad(format!("{} cannot be a profile folder", inst.profile));
    }
    if !inst.local_app_data.is_strictly_beneath(&inst.profile) {
        return bad(format!("%LOCALAPPDATA% {} is not inside the profile {}", inst.local_app_data, inst.profile));
    }
    if !inst.sid.is_account_domain() {
        return bad(format!("{} is not an account SID", inst.sid));
    }
    for t in &inst.tool_folders {
        if !t.is_strictly_beneath(&inst.profile) {
            return bad(format!("tool folder {t} is not inside the profile {}", inst.profile));
        }
    }
    for s in &inst.extra_secrets {
        if let Err(e) = inst.profile.join(s) {
            return bad(format!("extra secret `{s}`: {e}"));
        }
    }
    if inputs.runner_sha256.len() != 64 || !inputs.runner_sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
        return bad("the runner's SHA-256 is not 64 hexadecimal digits".into());
    }
    if inputs.runner_source.file_name().map(fold) != Some(fold(RUNNER_EXE)) {
        return bad(format!("{} is not {RUNNER_EXE}", inputs.runner_source));
    }
    if inputs.program_data.is_drive_root() {
        return bad("%ProgramData% cannot be a drive root".into());
    }
    Ok(())
}

/// Existing accounts and group must be safe to use: no privileged memberships, not disabled,
/// and the group holds nothing but Palisade's accounts (members of it can read the profile).
fn check_accounts(facts: &MachineFacts) -> Result<(), SetupError> {
    let group_sid = facts.sandbox_group().map(|g| g.sid.clone());
    let mut ours = Vec::new();
    for u in SandboxUser::ALL {
        let Some(x) = facts.sandbox_user(u) else { continue };
        let conflict = |reason: String| {
            Err(fail(
                &format!("user.{}.create", u.id()),
                SetupErrorKind::AccountConflict { name: x.name.clone(), reason },
            ))
        };
        if x.disabled {
            return conflict("it is disabled".into());
        }
        if !x.sid.is_account_domain() {
            return conflict(format!("{} is not a local account SID", x.sid));
        }
        if let Some(g) = x.groups.iter().find(|g| g.is_privileged_group()) {
            return conflict(format!("it is a member of the privileged group {g}"));
        }
        if let Some(g) = x.groups.iter().find(|g| **g != Sid::users() && Some(*g) != group_sid.as_ref()) {
            return conflict(format!("it is a member of {g}, which is neither Users nor {GROUP_NAME}"));
        }
        ours.push(x.sid.clone());
    }
    if let Some(g) = facts.sandbox_group() {
        if let Some(m) = g.members.iter().find(|m| !ours.contains(m)) {
            return Err(fail(
                "group.create",
                SetupErrorKind::GroupConflict(format!("{m} is a member, and members may read the profile")),
            ));
        }
    }
    Ok(())
}

fn check_firewall(facts: &MachineFacts) -> Result<(), SetupError> {
    for p in firewall_profiles_required() {
        let Some(f) = facts.firewall.profiles.iter().find(|f| f.profile == p) else {
            return Err(fail(
                "firewall",
                SetupErrorKind::MissingFacts(format!("the state of the {p:?} firewall profile")),
            ));
        };
        if !f.local_rules_honored {
            return Err(fail(
                "firewall",
                SetupErrorKind::GroupPolicyOverridesLocalRules(format!("{p:?}").to_lowercase()),
            ));
        }
        if !f.enabled {
            return Err(fail("firewall", SetupErrorKind::FirewallDisabled(format!("{p:?}").to_lowercase())));
        }
    }
    Ok(())
}

fn firewall_profiles_required() -> [crate::facts::FirewallProfile; 3] {
    crate::facts::FirewallProfile::ALL
}

/// Walks the profile: inheriting read on entries that contain no secret, non-inheriting list on
/// folders that do (and into them), nothing on secrets, `AppData`, hives and links.
fn walk(
    base: &WinPath,
    rel: &mut Vec<String>,
    entries: &[ProfileEntry],
    excluded: &[Vec<String>],
    out: &mut Vec<(WinPath, Rights, Inheritance)>,
    skipped: &mut Vec<(WinPath, String)>,
) -> Result<(), SetupError> {
    for e in entries {
        let path = base
            .join(&e.name)
            .map_err(|err| fail("acl", SetupErrorKind::InvalidInput(format!("profile entry: {err}"))))?;
        if e.name.contains(['\\', '/']) {
            return Err(fail(
                "acl",
                SetupErrorKind::InvalidInput(format!("profile entry `{}` is not a single name", e.name)),
            ));
        }
        rel.push(fold(&e.name));
        let r = (|| {
            if rel.len() == 1 && rel[0] == "APPDATA" {
                skipped.push((path.clone(), "AppData is only readable through the tool folders listed".into()));
                return Ok(());
            }
            if is_hive(&path) {
                skipped.push((path.clone(), "registry hive".into()));
                return Ok(());
            }
            if excluded.iter().any(|x| x == rel) {
                skipped.push((path.clone(), "credential store".into()));
                return Ok(());
            }
            match e.kind {
                EntryKind::Link => skipped.push((path.clone(), "link or junction (a grant would follow it)".into())),
                EntryKind::File => out.push((path.clone(), Rights::ReadExecute, Inheritance::None)),
                EntryKind::Directory => {
                    let holds_secret = excluded.iter().any(|x| x.len() > rel.len() && x[..rel.len()] == rel[..]);
                    if holds_secret {
                        out.push((path.clone(), Rights::ListTraverse, Inheritance::None));
                        let children = e.children.as_ref().ok_or_else(|| {
                            fail(&format!("acl:{path}"), SetupErrorKind::MissingListing { path: path.clone() })
                        })?;
                        walk(&path, rel, children, excluded, out, skipped)?;
                    } else {
                        out.push((path.clone(), Rights::ReadExecute, Inheritance::ContainerAndObject));
                    }
                }
            }
            Ok(())
        })();
        rel.pop();
        r?;
    }
    Ok(())
}

/// Steps removing what earlier setups recorded but this plan no longer adds.
fn stale_steps(b: &mut Builder<'_>, records: &StateRecords) -> Result<(), SetupError> {
    let mut stale = Vec::new();
    for e in &records.entries {
        let wanted = |pred: &dyn Fn(&StepAction) -> bool| b.steps.iter().any(|s| pred(&s.action));
        let keep = match &e.record {
            Record::FirewallRuleAdded { name } => {
                wanted(&|a| matches!(a, StepAction::AddFirewallRule(r) if &r.name == name))
            }
            Record::WfpAdded { key, .. } => wanted(&|a| match a {
                StepAction::AddWfpObject(w) => w.render(&b.sids).map(|o| o.key() == key).unwrap_or(false),
                _ => false,
            }),
            Record::AceAdded { path, ace } => wanted(&|a| match a {
                StepAction::GrantAce { path: p, ace: x } => p == path && x.resolved(&b.sids).ok().as_ref() == Some(ace),
                _ => false,
            }),
            _ => true,
        };
        if !keep {
            stale.push(e.record.clone());
        }
    }
    for r in stale {
        let present = match &r {
            Record::FirewallRuleAdded { name } => b.facts.rule(name).is_some(),
            Record::WfpAdded { key, .. } => b.facts.wfp_key_present(key),
            Record::AceAdded { path, ace } => b.facts.has_ace(path, ace),
            _ => false,
        };
        // Never satisfied: even when the object is gone already, its record must be forgotten.
        let what = if present { "remove" } else { "forget the record of" };
        let id = format!("stale:{}", r.describe());
        b.push(
            id,
            Executor::Elevated,
            StepAction::RemoveStale(r.clone()),
            false,
            format!("{what} the {} (no longer wanted)", r.describe()),
            None,
        );
    }
    Ok(())
}
