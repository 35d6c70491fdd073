//! The elevated mode's lines of `palisade check`: is the setup there, current, intact, and is
//! the offline account's fence in force (and, when probed, proven), and the proxied account's
//! (`proxied.rs`)?

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
    /// Could not be read from here (typically: needs an administrator to read); the detail
    /// says why. Neither a pass nor a failure of the setup.
    Unknown,
}

impl CheckStatus {
    fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Note => "note",
            CheckStatus::Unknown => "??",
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

    /// The first failed line: why `palisade run` should not use the elevated mode.
    pub fn first_failure(&self) -> Option<&CheckLine> {
        self.lines.iter().find(|l| l.status == CheckStatus::Fail)
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
    /// Nothing got out, but the probe proved nothing either (it could not run, or a connect
    /// failed for another reason than the fence): why, in one line.
    pub unproven: Option<String>,
}

/// A group of facts the check could not read (an unelevated `palisade check` cannot read LSA
/// account rights or WFP objects, for example). Lines that depend on it say "unknown" with the
/// reason instead of passing or failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FactGroup {
    /// The sandbox group, the accounts and their memberships.
    Accounts,
    /// The sign-in screen's `UserList` values.
    HiddenAccounts,
    /// LSA account rights.
    AccountRights,
    /// The stored passwords (decrypted, logged on with).
    Credentials,
    /// Windows Firewall's profiles (on, local rules honored).
    FirewallProfiles,
    /// Palisade's Windows Firewall rules.
    FirewallRules,
    /// Palisade's WFP provider, sublayer and filters.
    Wfp,
    /// Palisade's folder, its files (marker, runner, git configuration).
    Files,
}

/// A fact group that could not be read, and why (one line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unread {
    pub fact: FactGroup,
    pub reason: String,
}

impl Unread {
    /// `access_denied`: the OS refused the read (ERROR_ACCESS_DENIED, E_ACCESSDENIED, ...),
    /// which for an unelevated check means an administrator could read it; `error` names the
    /// call that failed.
    pub fn new(fact: FactGroup, access_denied: bool, error: &str) -> Unread {
        let error = error.replace(['\r', '\n'], " ");
        let reason = if access_denied {
            format!("needs an administrator to read ({error})")
        } else {
            format!("could not be read: {error}")
        };
        Unread { fact, reason }
    }
}

/// Whether a Win32 error code, HRESULT or NTSTATUS means "access denied".
pub fn is_access_denied(code: u32) -> bool {
    // ERROR_ACCESS_DENIED, E_ACCESSDENIED (HRESULT_FROM_WIN32(5)), STATUS_ACCESS_DENIED,
    // FWP_E_... has no access code of its own (WFP returns ERROR_ACCESS_DENIED).
    matches!(code, 5 | 0x8007_0005 | 0xC000_0022)
}

/// What the check compares the facts against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckInputs {
    pub expected_version: u32,
    pub program_data: WinPath,
    pub local_app_data: WinPath,
    /// The proxy ports of the proxied account's fence (the marker's; see `proxy_route`).
    pub proxy_ports: Vec<u16>,
    /// SHA-256 of the runner this palisade ships, when known.
    pub runner_sha256: Option<String>,
    pub probe: Option<FenceProbe>,
    /// The same probe as the proxied account (`network = allow`), with a proxy listening on a
    /// proxy port: `palisade check --probe`.
    pub proxied_probe: Option<FenceProbe>,
    /// `[windows] mode = "elevated"` is configured: a failed line means `palisade run` cannot
    /// use the mode. Otherwise the lines are information, and a machine where nothing of the
    /// setup exists gets one "not set up (optional)" line.
    pub required: bool,
    /// Fact groups that could not be read (their lines say "unknown").
    pub unread: Vec<Unread>,
}

impl CheckInputs {
    fn unread(&self, fact: FactGroup) -> Option<&str> {
        self.unread.iter().find(|u| u.fact == fact).map(|u| u.reason.as_str())
    }
}

/// Nothing of the elevated setup is on the machine (no marker, group, account or folder).
fn nothing_installed(facts: &MachineFacts, layout: &Layout) -> bool {
    facts.marker.is_none()
        && facts.sandbox_group().is_none()
        && SandboxUser::ALL.iter().all(|u| facts.sandbox_user(*u).is_none())
        && facts.directory(&layout.dir).is_none()
        && facts.credentials.is_empty()
}

/// The report for the elevated mode.
pub fn check_report(facts: &MachineFacts, inputs: &CheckInputs) -> CheckReport {
    let mut lines = Vec::new();
    let mut add = |status, item: &str, detail: String| lines.push(CheckLine { status, item: item.to_string(), detail });
    let layout = Layout::new(&inputs.program_data);
    let sids = Sids::from_facts(facts);
    let unknown = |reason: &str| format!("unknown: {reason}");
    let files_unread = inputs.unread(FactGroup::Files);
    let accounts_unread = inputs.unread(FactGroup::Accounts);

    if !inputs.required && files_unread.is_none() && accounts_unread.is_none() && nothing_installed(facts, &layout) {
        add(
            CheckStatus::Note,
            "elevated setup",
            "not set up (optional: `palisade setup --elevated`, then `mode = \"elevated\"` in the [windows] section)"
                .into(),
        );
        return CheckReport { lines };
    }

    // Marker.
    match (&facts.marker, files_unread) {
        (None, Some(why)) => add(CheckStatus::Unknown, "elevated setup", unknown(why)),
        (None, None) => add(
            CheckStatus::Fail,
            "elevated setup",
            "not set up: run `palisade setup --elevated` (asks for administrator approval)".into(),
        ),
        (Some(m), _) if m.version < inputs.expected_version => add(
            CheckStatus::Fail,
            "elevated setup",
            format!(
                "set up by an older palisade (version {}, this one needs {}): run `palisade setup --elevated` again",
                m.version, inputs.expected_version
            ),
        ),
        (Some(m), _) if m.version > inputs.expected_version => add(
            CheckStatus::Fail,
            "elevated setup",
            format!(
                "set up by a newer palisade (version {}, this one knows {}): use that palisade",
                m.version, inputs.expected_version
            ),
        ),
        (Some(m), _) => add(CheckStatus::Ok, "elevated setup", format!("version {} ({})", m.version, m.path)),
    }

    // Group.
    let ours: Vec<Sid> = SandboxUser::ALL.iter().filter_map(|u| sids.user(*u).cloned()).collect();
    match (facts.sandbox_group(), accounts_unread) {
        (_, Some(why)) => add(CheckStatus::Unknown, "sandbox group", unknown(why)),
        (None, None) => add(CheckStatus::Fail, "sandbox group", format!("{GROUP_NAME} is missing")),
        (Some(g), None) => match g.members.iter().find(|m| !ours.contains(m)) {
            Some(m) => add(
                CheckStatus::Fail,
                "sandbox group",
                format!("{m} is a member of {GROUP_NAME} and can read what the sandbox reads"),
            ),
            None => add(CheckStatus::Ok, "sandbox group", format!("{GROUP_NAME} ({})", g.sid)),
        },
    }

    // Accounts and passwords.
    let rights_unread = inputs.unread(FactGroup::AccountRights);
    let hidden_unread = inputs.unread(FactGroup::HiddenAccounts);
    for u in SandboxUser::ALL {
        let name = u.account_name();
        let item = format!("account {name}");
        match (facts.sandbox_user(u), accounts_unread) {
            (_, Some(why)) => add(CheckStatus::Unknown, &item, unknown(why)),
            (None, None) => add(CheckStatus::Fail, &item, "missing: run setup again".into()),
            (Some(x), None) => {
                let rights = facts.rights_of(&x.sid);
                let missing: Vec<&str> =
                    DENIED_RIGHTS.iter().filter(|r| !rights.contains(r)).map(|r| r.as_str()).collect();
                let in_group = facts.sandbox_group().is_some_and(|g| g.members.contains(&x.sid));
                if x.disabled {
                    add(CheckStatus::Fail, &item, "disabled".into());
                } else if let Some(g) = x.groups.iter().find(|g| g.is_privileged_group()) {
                    add(CheckStatus::Fail, &item, format!("member of the privileged group {g}"));
                } else if rights_unread.is_none() && rights.contains(&AccountRight::SeDenyInteractiveLogonRight) {
                    add(
                        CheckStatus::Fail,
                        &item,
                        "holds SeDenyInteractiveLogonRight, so the runner cannot start (CreateProcessWithLogonW logs on interactively)".into(),
                    );
                } else if !in_group {
                    add(
                        CheckStatus::Fail,
                        &item,
                        format!("not a member of {GROUP_NAME}, so it cannot read the profile's tools"),
                    );
                } else if rights_unread.is_none() && !missing.is_empty() {
                    add(
                        CheckStatus::Warn,
                        &item,
                        format!("{} missing: other logons with its password are not denied", missing.join(", ")),
                    );
                } else if hidden_unread.is_none() && !facts.is_hidden(name) {
                    add(CheckStatus::Warn, &item, "shown on the sign-in screen".into());
                } else {
                    let mut detail = x.sid.to_string();
                    if hidden_unread.is_none() {
                        detail.push_str("; hidden");
                    }
                    if rights_unread.is_none() {
                        detail.push_str("; remote desktop, network, batch and service logons denied");
                    }
                    add(CheckStatus::Ok, &item, detail);
                }
            }
        }
        let item = format!("password of {name}");
        let path = credential_path(&inputs.local_app_data, u);
        match (facts.credential(u), inputs.unread(FactGroup::Credentials)) {
            (_, Some(why)) => add(CheckStatus::Unknown, &item, unknown(why)),
            (None, None) => add(CheckStatus::Fail, &item, format!("not stored at {path}: run setup again")),
            (Some(c), None) if !c.decryptable => add(
                CheckStatus::Fail,
                &item,
                "cannot be decrypted (stored by another user, or the DPAPI key changed): run setup again".into(),
            ),
            (Some(c), None) if !c.logon_ok => {
                add(CheckStatus::Fail, &item, "does not match the account: run setup again".into())
            }
            (Some(c), None) => add(CheckStatus::Ok, &item, format!("stored with DPAPI at {}", c.path)),
        }
    }
    if accounts_unread.is_none() && SandboxUser::ALL.iter().any(|u| facts.sandbox_user(*u).is_some()) {
        if let Some(why) = rights_unread {
            add(CheckStatus::Unknown, "logon rights", format!("the accounts' denied logons: {}", unknown(why)));
        }
        if let Some(why) = hidden_unread {
            add(CheckStatus::Unknown, "sign-in screen", format!("whether the accounts are hidden: {}", unknown(why)));
        }
    }

    // Firewall policy and the fence. The fence is in force only if every part of it was read
    // and found right; a part that could not be read leaves it unknown.
    let mut fence = Fence::InForce;
    if let Some(why) = inputs.unread(FactGroup::FirewallProfiles) {
        fence.unknown("firewall policy");
        add(CheckStatus::Unknown, "firewall policy", unknown(why));
    } else {
        let mut policy_problems = Vec::new();
        for p in crate::facts::FirewallProfile::ALL {
            match facts.firewall.profiles.iter().find(|f| f.profile == p) {
                None => policy_problems.push(format!("{p:?} profile state unknown")),
                Some(f) if !f.local_rules_honored => {
                    policy_problems.push(format!("Group Policy ignores local rules in the {p:?} profile"))
                }
                Some(f) if !f.enabled => policy_problems.push(format!("the {p:?} profile's firewall is off")),
                Some(_) => {}
            }
        }
        if policy_problems.is_empty() {
            add(CheckStatus::Ok, "firewall policy", "on in every profile; local rules honored".into());
        } else {
            fence = Fence::Broken;
            add(CheckStatus::Fail, "firewall policy", policy_problems.join("; "));
        }
    }
    let offline_sid = match (&sids.offline, accounts_unread) {
        (_, Some(why)) => Err(unknown(why)),
        (None, None) => Ok(None),
        (Some(s), None) => Ok(Some(s)),
    };
    match (firewall::offline_fence(&[]), offline_sid) {
        (Err(e), _) => {
            fence = Fence::Broken;
            add(CheckStatus::Fail, "firewall rules", e.to_string());
        }
        (Ok(_), Err(why)) => {
            fence.unknown("the offline account");
            add(CheckStatus::Unknown, "firewall rules", format!("the offline account's SID is {why}"));
        }
        (Ok(_), Ok(None)) => {
            fence = Fence::Broken;
            add(
                CheckStatus::Fail,
                "firewall rules",
                format!("{} is missing, so nothing can be fenced", SandboxUser::Offline.account_name()),
            );
        }
        (Ok(f), Ok(Some(sid))) => {
            if let Some(why) = inputs.unread(FactGroup::FirewallRules) {
                fence.unknown("firewall rules");
                add(CheckStatus::Unknown, "firewall rules", unknown(why));
            } else {
                let mut missing = Vec::new();
                let mut changed = Vec::new();
                for r in &f.rules {
                    match facts.rule(&r.name) {
                        None => missing.push(r.name.clone()),
                        Some(x) if *x != r.render(sid) => changed.push(r.name.clone()),
                        Some(_) => {}
                    }
                }
                if missing.is_empty() && changed.is_empty() {
                    add(
                        CheckStatus::Ok,
                        "firewall rules",
                        format!(
                            "{} rules block traffic of {} beyond loopback",
                            f.rules.len(),
                            SandboxUser::Offline.account_name()
                        ),
                    );
                } else {
                    fence = Fence::Broken;
                    add(CheckStatus::Fail, "firewall rules", list_problems(&missing, &changed));
                }
            }
            if let Some(why) = inputs.unread(FactGroup::Wfp) {
                fence.unknown("WFP filters");
                add(CheckStatus::Unknown, "WFP filters", unknown(why));
            } else {
                let mut expected: Vec<WfpObject> = vec![firewall::provider(), firewall::sublayer()];
                expected.extend(f.filters.iter().map(|x| x.render(sid)));
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
                    let detail = format!("every connect of {} blocked", SandboxUser::Offline.account_name());
                    add(CheckStatus::Ok, "WFP filters", detail);
                } else {
                    fence = Fence::Broken;
                    add(CheckStatus::Fail, "WFP filters", list_problems(&missing, &changed));
                }
            }
        }
    }
    match (&inputs.probe, &fence) {
        (Some(p), _) if p.outside_reached => {
            add(CheckStatus::Fail, "network fence", "a connection as the offline account reached the outside".into())
        }
        (Some(p), _) if p.loopback_reached => add(
            CheckStatus::Fail,
            "network fence",
            "a connection as the offline account reached a loopback port that is not the proxy".into(),
        ),
        (_, Fence::Broken) => add(
            CheckStatus::Fail,
            "network fence",
            "not in force (see above); offline commands would not be offline".into(),
        ),
        (Some(FenceProbe { unproven: Some(why), .. }), _) => {
            add(CheckStatus::Unknown, "network fence", format!("unknown: {why}"))
        }
        (Some(p), _) if p.proxy_reached == Some(false) => {
            add(CheckStatus::Warn, "network fence", "proven closed, but the proxy port could not be reached".into())
        }
        (Some(_), _) => add(CheckStatus::Ok, "network fence", "proven: outside and loopback connects blocked".into()),
        (None, Fence::Unknown(parts)) => add(
            CheckStatus::Unknown,
            "network fence",
            format!(
                "not confirmed: {} could not be read here (run `palisade check` as an administrator)",
                parts.join(", ")
            ),
        ),
        (None, Fence::InForce) => {
            add(CheckStatus::Warn, "network fence", "in place but not proven here: run `palisade check --probe`".into())
        }
    }

    // The proxied account's fence (network = allow).
    for l in proxied::fence_lines(facts, inputs, &sids, accounts_unread) {
        add(l.status, &l.item, l.detail);
    }

    // Palisade's folder, runner, git configuration.
    if let Some(why) = files_unread {
        for item in ["palisade folder", "runner", "git for the sandbox"] {
            add(CheckStatus::Unknown, item, unknown(why));
        }
    } else {
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
            (Some(f), Some(h)) if !f.sha256.eq_ignore_ascii_case(h) => add(
                CheckStatus::Fail,
                "runner",
                format!("{} differs from this palisade's runner: run setup again", layout.runner),
            ),
            (Some(f), Some(_)) => add(CheckStatus::Ok, "runner", format!("{} (same as this palisade's)", f.path)),
            (Some(f), None) => add(
                CheckStatus::Ok,
                "runner",
                format!("{} (not compared: no palisade-runner.exe next to palisade)", f.path),
            ),
        }
        let git_ok =
            facts.file(&layout.gitconfig).is_some_and(|f| f.text.as_deref() == Some(gitconfig_contents().as_str()));
        if git_ok {
            add(CheckStatus::Ok, "git for the sandbox", format!("{} (safe.directory, OpenSSL)", layout.gitconfig));
        } else {
            add(
                CheckStatus::Warn,
                "git for the sandbox",
                format!("{} missing or changed: git may refuse the workspace", layout.gitconfig),
            );
        }
    }
    add(
        CheckStatus::Note,
        "TLS inside",
        "tools using Windows' own TLS (curl.exe, Invoke-WebRequest, WinHTTP) fail under the restricted token; Node, Python, Go and git (OpenSSL) work".into(),
    );
    CheckReport { lines }
}

/// What the fence's parts add up to.
enum Fence {
    InForce,
    /// Some part could not be read (and none was found wrong).
    Unknown(Vec<&'static str>),
    /// Some part is missing or wrong.
    Broken,
}

impl Fence {
    fn unknown(&mut self, part: &'static str) {
        match self {
            Fence::InForce => *self = Fence::Unknown(vec![part]),
            Fence::Unknown(parts) => parts.push(part),
            Fence::Broken => {}
        }
    }
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

mod proxied;

#[cfg(test)]
mod tests;
