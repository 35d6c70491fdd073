//! The elevated mode's lines of `palisade check`: is the setup there, current, intact, and is
//! the offline account's fence in force (and, when probed, proven)?

use std::fmt;

use serde::Serialize;

use crate::facts::{AccountRight, MachineFacts, SandboxUser, Sids, DENIED_RIGHTS, GROUP_NAME};
use crate::firewall::{self, WfpObject};
use crate::setup_plan::{credential_path, gitconfig_contents, Layout};
use crate::sid::Sid;
use crate::winpath::WinPath;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Ok,
    /// Works, with a caveat.
    Warn,
    /// The elevated mode cannot be used until this is fixed.
    Fail,
    /// Information.
    Note,
}

impl CheckStatus {
    fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Note => "note",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    pub status: CheckStatus,
    pub item: String,
    pub detail: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4}  {}: {}", self.status.label(), self.item, self.detail)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub lines: Vec<CheckLine>,
}

impl CheckReport {
    /// No line failed: `palisade run` may use the elevated mode.
    pub fn usable(&self) -> bool {
        self.lines.iter().all(|l| l.status != CheckStatus::Fail)
    }

    pub fn line(&self, item: &str) -> Option<&CheckLine> {
        self.lines.iter().find(|l| l.item == item)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// The result of trying connections as the offline account (the runner does this on request:
/// `palisade check --probe`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FenceProbe {
    /// A TCP connect to an outside address got through.
    pub outside_reached: bool,
    /// A TCP connect to a loopback port that is not a proxy port got through.
    pub loopback_reached: bool,
    /// The proxy port answered (`None` when no proxy was listening).
    pub proxy_reached: Option<bool>,
}

/// What the check compares the facts against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckInputs {
    pub expected_version: u32,
    pub program_data: WinPath,
    pub local_app_data: WinPath,
    pub proxy_ports: Vec<u16>,
    /// SHA-256 of the runner this palisade ships, when known.
    pub runner_sha256: Option<String>,
    pub probe: Option<FenceProbe>,
}

/// The report for the elevated mode.
pub fn check_report(facts: &MachineFacts, inputs: &CheckInputs) -> CheckReport {
    let mut lines = Vec::new();
    let mut add = |status, item: &str, detail: String| lines.push(CheckLine { status, item: item.to_string(), detail });
    let layout = Layout::new(&inputs.program_data);
    let sids = Sids::from_facts(facts);

    // Marker.
    match &facts.marker {
        None => add(CheckStatus::Fail, "elevated setup", "not set up: run `palisade setup --elevated` (asks for administrator approval)".into()),
        Some(m) if m.version < inputs.expected_version => add(
            CheckStatus::Fail,
            "elevated setup",
            format!("set up by an older palisade (version {}, this one needs {}): run `palisade setup --elevated` again", m.version, inputs.expected_version),
        ),
        Some(m) if m.version > inputs.expected_version => add(
            CheckStatus::Fail,
            "elevated setup",
            format!("set up by a newer palisade (version {}, this one knows {}): use that palisade", m.version, inputs.expected_version),
        ),
        Some(m) => add(CheckStatus::Ok, "elevated setup", format!("version {} ({})", m.version, m.path)),
    }

    // Group.
    let ours: Vec<Sid> = SandboxUser::ALL.iter().filter_map(|u| sids.user(*u).cloned()).collect();
    match facts.sandbox_group() {
        None => add(CheckStatus::Fail, "sandbox group", format!("{GROUP_NAME} is missing")),
        Some(g) => match g.members.iter().find(|m| !ours.contains(m)) {
            Some(m) => add(CheckStatus::Fail, "sandbox group", format!("{m} is a member of {GROUP_NAME} and can read what the sandbox reads")),
            None => add(CheckStatus::Ok, "sandbox group", format!("{GROUP_NAME} ({})", g.sid)),
        },
    }

    // Accounts and passwords.
    for u in SandboxUser::ALL {
        let name = u.account_name();
        let item = format!("account {name}");
        match facts.sandbox_user(u) {
            None => add(CheckStatus::Fail, &item, "missing: run setup again".into()),
            Some(x) => {
                let rights = facts.rights_of(&x.sid);
                let missing: Vec<&str> = DENIED_RIGHTS.iter().filter(|r| !rights.contains(r)).map(|r| r.as_str()).collect();
                let in_group = facts.sandbox_group().is_some_and(|g| g.members.contains(&x.sid));
                if x.disabled {
                    add(CheckStatus::Fail, &item, "disabled".into());
                } else if let Some(g) = x.groups.iter().find(|g| g.is_privileged_group()) {
                    add(CheckStatus::Fail, &item, format!("member of the privileged group {g}"));
                } else if rights.contains(&AccountRight::SeDenyInteractiveLogonRight) {
                    add(
                        CheckStatus::Fail,
                        &item,
                        "holds SeDenyInteractiveLogonRight, so the runner cannot start (CreateProcessWithLogonW logs on interactively)".into(),
                    );
                } else if !in_group {
                    add(CheckStatus::Fail, &item, format!("not a member of {GROUP_NAME}, so it cannot read the profile's tools"));
                } else if !missing.is_empty() {
                    add(CheckStatus::Warn, &item, format!("{} missing: other logons with its password are not denied", missing.join(", ")));
                } else if !facts.is_hidden(name) {
                    add(CheckStatus::Warn, &item, "shown on the sign-in screen".into());
                } else {
                    add(CheckStatus::Ok, &item, format!("{}; hidden; remote desktop, network, batch and service logons denied", x.sid));
                }
            }
        }
        let item = format!("password of {name}");
        let path = credential_path(&inputs.local_app_data, u);
        match facts.credential(u) {
            None => add(CheckStatus::Fail, &item, format!("not stored at {path}: run setup again")),
            Some(c) if !c.decryptable => add(
                CheckStatus::Fail,
                &item,
                "cannot be decrypted (stored by another user, or the DPAPI key changed): run setup again".into(),
            ),
            Some(c) if !c.logon_ok => add(CheckStatus::Fail, &item, "does not match the account: run setup again".into()),
            Some(c) => add(CheckStatus::Ok, &item, format!("stored with DPAPI at {}", c.path)),
        }
    }

    // Firewall policy and the fence.
    let mut fence_in_force = true;
    let mut policy_problems = Vec::new();
    for p in crate::facts::FirewallProfile::ALL {
        match facts.firewall.profiles.iter().find(|f| f.profile == p) {
            None => policy_problems.push(format!("{p:?} profile state unknown")),
            Some(f) if !f.local_rules_honored => policy_problems.push(format!("Group Policy ignores local rules in the {p:?} profile")),
            Some(f) if !f.enabled => policy_problems.push(format!("the {p:?} profile's firewall is off")),
            Some(_) => {}
        }
    }
    if policy_problems.is_empty() {
        add(CheckStatus::Ok, "firewall policy", "on in every profile; local rules honored".into());
    } else {
        fence_in_force = false;
        add(CheckStatus::Fail, "firewall policy", policy_problems.join("; "));
    }
    match (firewall::offline_fence(&inputs.proxy_ports), &sids.offline) {
        (Err(e), _) => {
            fence_in_force = false;
            add(CheckStatus::Fail, "firewall rules", e.to_string());
        }
        (Ok(_), None) => {
            fence_in_force = false;
            add(CheckStatus::Fail, "firewall rules", format!("{} is missing, so nothing can be fenced", SandboxUser::Offline.account_name()));
        }
        (Ok(fence), Some(sid)) => {
            let mut missing = Vec::new();
            let mut changed = Vec::new();
            for r in &fence.rules {
                match facts.rule(&r.name) {
                    None => missing.push(r.name.clone()),
                    Some(x) if *x != r.render(sid) => changed.push(r.name.clone()),
                    Some(_) => {}
                }
            }
            if missing.is_empty() && changed.is_empty() {
                add(CheckStatus::Ok, "firewall rules", format!("{} rules block traffic of {} beyond loopback", fence.rules.len(), SandboxUser::Offline.account_name()));
            } else {
                fence_in_force = false;
                add(CheckStatus::Fail, "firewall rules", list_problems(&missing, &changed));
            }
            let mut expected: Vec<WfpObject> = vec![firewall::provider(), firewall::sublayer()];
            expected.extend(fence.filters.iter().map(|f| f.render(sid)));
            let mut missing = Vec::new();
            let mut changed = Vec::new();
            for o in &expected {
                match facts.firewall.wfp.iter().find(|x| x.key() == o.key()) {
                    None => missing.push(o.name().to_string()),
                    Some(x) if x != o => changed.push(o.name().to_string()),
                    Some(_) => {}
                }
            }
            if missing.is_empty() && changed.is_empty() {
                let ports: Vec<String> = inputs.proxy_ports.iter().map(|p| p.to_string()).collect();
                let detail = if ports.is_empty() {
                    "every connect blocked (no proxy ports)".to_string()
                } else {
                    format!("loopback TCP only to proxy port(s) {}, every other connect blocked", ports.join(", "))
                };
                add(CheckStatus::Ok, "WFP filters", detail);
            } else {
                fence_in_force = false;
                add(CheckStatus::Fail, "WFP filters", list_problems(&missing, &changed));
            }
        }
    }
    match (&inputs.probe, fence_in_force) {
        (_, false) => add(CheckStatus::Fail, "network fence", "not in force (see above); offline commands would not be offline".into()),
        (None, true) => add(CheckStatus::Warn, "network fence", "in place but not proven here: run `palisade check --probe`".into()),
        (Some(p), true) if p.outside_reached => add(CheckStatus::Fail, "network fence", "a connection as the offline account reached the outside".into()),
        (Some(p), true) if p.loopback_reached => add(CheckStatus::Fail, "network fence", "a connection as the offline account reached a loopback port that is not the proxy".into()),
        (Some(p), true) if p.proxy_reached == Some(false) => {
            add(CheckStatus::Warn, "network fence", "proven closed, but the proxy port could not be reached".into())
        }
        (Some(_), true) => add(CheckStatus::Ok, "network fence", "proven: outside and loopback connects blocked".into()),
    }

    // Palisade's folder, runner, git configuration.
    match facts.directory(&layout.dir) {
        None => add(CheckStatus::Fail, "palisade folder", format!("{} is missing", layout.dir)),
        Some(d) if !(d.owner == Sid::administrators() || d.owner == Sid::system()) || !d.protected => add(
            CheckStatus::Fail,
            "palisade folder",
            format!("{} is owned by {} or inherits permissions: the runner could be replaced", d.path, d.owner),
        ),
        Some(d) => add(CheckStatus::Ok, "palisade folder", format!("{} (Administrators only)", d.path)),
    }
    match (facts.file(&layout.runner), &inputs.runner_sha256) {
        (None, _) => add(CheckStatus::Fail, "runner", format!("{} is missing: run setup again", layout.runner)),
        (Some(f), Some(h)) if !f.sha256.eq_ignore_ascii_case(h) => {
            add(CheckStatus::Fail, "runner", format!("{} differs from this palisade's runner: run setup again", layout.runner))
        }
        (Some(f), _) => add(CheckStatus::Ok, "runner", f.path.to_string()),
    }
    let git_ok = facts.file(&layout.gitconfig).is_some_and(|f| f.text.as_deref() == Some(gitconfig_contents().as_str()));
    if git_ok {
        add(CheckStatus::Ok, "git for the sandbox", format!("{} (safe.directory, OpenSSL)", layout.gitconfig));
    } else {
        add(CheckStatus::Warn, "git for the sandbox", format!("{} missing or changed: git may refuse the workspace", layout.gitconfig));
    }
    add(
        CheckStatus::Note,
        "TLS inside",
        "tools using Windows' own TLS (curl.exe, Invoke-WebRequest, WinHTTP) fail under the restricted token; Node, Python, Go and git (OpenSSL) work".into(),
    );
    CheckReport { lines }
}

fn list_problems(missing: &[String], changed: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing: {}", missing.join(", ")));
    }
    if !changed.is_empty() {
        parts.push(format!("changed: {}", changed.join(", ")));
    }
    format!("{}: run setup again", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::AccountRightsFact;
    use crate::setup_plan::setup_plan;
    use crate::testkit::*;

    fn check_inputs(probe: Option<FenceProbe>) -> CheckInputs {
        CheckInputs {
            expected_version: crate::SETUP_VERSION,
            program_data: p("C:\\ProgramData"),
            local_app_data: p("C:\\Users\\me\\AppData\\Local"),
            proxy_ports: vec![8877],
            runner_sha256: Some(RUNNER_SHA.into()),
            probe,
        }
    }

    fn good_probe() -> FenceProbe {
        FenceProbe { outside_reached: false, loopback_reached: false, proxy_reached: Some(true) }
    }

    fn installed() -> MachineFacts {
        let mut m = Machine::new(fresh_facts());
        m.run(&setup_plan(&inputs(), &m.facts, &m.records).unwrap(), None);
        m.facts
    }

    fn status(r: &CheckReport, item: &str) -> CheckStatus {
        r.line(item).unwrap_or_else(|| panic!("no line {item}")).status
    }

    #[test]
    fn nothing_set_up() {
        let r = check_report(&fresh_facts(), &check_inputs(None));
        assert!(!r.usable());
        assert_eq!(
            r.lines[0].to_string(),
            "FAIL  elevated setup: not set up: run `palisade setup --elevated` (asks for administrator approval)"
        );
        assert_eq!(status(&r, "network fence"), CheckStatus::Fail);
        assert_eq!(status(&r, "account PalisadeOffline"), CheckStatus::Fail);
    }

    #[test]
    fn complete_setup_fixture() {
        let f = installed();
        let r = check_report(&f, &check_inputs(Some(good_probe())));
        assert!(r.usable(), "{r}");
        let text = r.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 14, "{text}");
        assert_eq!(lines[0], "ok    elevated setup: version 1 (C:\\ProgramData\\Palisade\\setup.json)");
        assert!(lines.contains(&"ok    firewall policy: on in every profile; local rules honored"));
        assert!(lines.contains(&"ok    firewall rules: 4 rules block traffic of PalisadeOffline beyond loopback"));
        assert!(lines.contains(&"ok    WFP filters: loopback TCP only to proxy port(s) 8877, every other connect blocked"));
        assert!(lines.contains(&"ok    network fence: proven: outside and loopback connects blocked"));
        assert!(lines.last().unwrap().starts_with("note  TLS inside: "));
        assert!(r.lines.iter().all(|l| matches!(l.status, CheckStatus::Ok | CheckStatus::Note)));
        // Without a probe the fence is only "in place".
        let r = check_report(&f, &check_inputs(None));
        assert!(r.usable());
        assert_eq!(status(&r, "network fence"), CheckStatus::Warn);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"status\":\"warn\""));
    }

    #[test]
    fn problems_are_named() {
        let base = installed();
        let offline = base.sandbox_user(SandboxUser::Offline).unwrap().sid.clone();

        let mut f = base.clone();
        f.marker.as_mut().unwrap().version = 0;
        let r = check_report(&f, &check_inputs(None));
        assert!(r.line("elevated setup").unwrap().detail.starts_with("set up by an older palisade (version 0, this one needs 1)"));

        let mut f = base.clone();
        f.firewall.profiles[0].local_rules_honored = false;
        let r = check_report(&f, &check_inputs(Some(good_probe())));
        assert_eq!(status(&r, "firewall policy"), CheckStatus::Fail);
        assert_eq!(status(&r, "network fence"), CheckStatus::Fail);
        assert!(!r.usable());

        let mut f = base.clone();
        f.firewall.rules.remove(1);
        let r = check_report(&f, &check_inputs(None));
        assert_eq!(r.line("firewall rules").unwrap().detail, "missing: Palisade offline: block outbound IPv6: run setup again");

        let mut f = base.clone();
        if let crate::firewall::WfpObject::Filter(x) = f.firewall.wfp.iter_mut().find(|o| o.name().contains("8877 IPv4")).unwrap() {
            x.tcp_remote_port = Some(22);
        }
        let r = check_report(&f, &check_inputs(None));
        assert!(r.line("WFP filters").unwrap().detail.starts_with("changed: Palisade offline: permit loopback TCP 8877 IPv4"));

        let r = check_report(&base, &check_inputs(Some(FenceProbe { outside_reached: true, ..good_probe() })));
        assert_eq!(r.line("network fence").unwrap().detail, "a connection as the offline account reached the outside");
        let r = check_report(&base, &check_inputs(Some(FenceProbe { loopback_reached: true, ..good_probe() })));
        assert_eq!(status(&r, "network fence"), CheckStatus::Fail);
        let r = check_report(&base, &check_inputs(Some(FenceProbe { proxy_reached: Some(false), ..good_probe() })));
        assert_eq!(status(&r, "network fence"), CheckStatus::Warn);

        let mut f = base.clone();
        f.account_rights.push(AccountRightsFact { sid: offline.clone(), rights: vec![AccountRight::SeDenyInteractiveLogonRight] });
        f.account_rights.retain(|r| r.sid != offline || r.rights.contains(&AccountRight::SeDenyInteractiveLogonRight));
        let r = check_report(&f, &check_inputs(None));
        assert!(r.line("account PalisadeOffline").unwrap().detail.contains("runner cannot start"));

        let mut f = base.clone();
        f.hidden_accounts.clear();
        let r = check_report(&f, &check_inputs(None));
        assert_eq!(status(&r, "account PalisadeOnline"), CheckStatus::Warn);

        let mut f = base.clone();
        f.credentials[1].decryptable = false;
        let r = check_report(&f, &check_inputs(None));
        assert!(r.line("password of PalisadeOnline").unwrap().detail.starts_with("cannot be decrypted"));

        let mut f = base.clone();
        f.files.iter_mut().find(|x| x.path.as_str().ends_with("palisade-runner.exe")).unwrap().sha256 = "a".repeat(64);
        let r = check_report(&f, &check_inputs(None));
        assert_eq!(status(&r, "runner"), CheckStatus::Fail);

        let mut f = base.clone();
        f.groups[0].members.push(sid(INSTALLER_SID));
        let r = check_report(&f, &check_inputs(None));
        assert_eq!(status(&r, "sandbox group"), CheckStatus::Fail);

        let mut f = base.clone();
        f.directories[0].protected = false;
        let r = check_report(&f, &check_inputs(None));
        assert_eq!(status(&r, "palisade folder"), CheckStatus::Fail);

        for l in check_report(&fresh_facts(), &check_inputs(None)).lines {
            assert!(!l.to_string().contains('\n'));
        }
    }
}
