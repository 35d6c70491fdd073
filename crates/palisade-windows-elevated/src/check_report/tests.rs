//! Unit tests of check_report.rs (kept in their own file so both stay short).

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
        proxied_probe: None,
        required: true,
        unread: vec![],
    }
}

/// What an unelevated check reads: no LSA rights, no WFP objects.
fn unelevated(probe: Option<FenceProbe>) -> CheckInputs {
    CheckInputs {
        unread: vec![
            Unread::new(FactGroup::AccountRights, true, "LsaEnumerateAccountRights: Access is denied. (os error 5)"),
            Unread::new(FactGroup::Wfp, true, "FwpmEngineOpen0 failed: error 5 (0x00000005)"),
        ],
        ..check_inputs(probe)
    }
}

fn good_probe() -> FenceProbe {
    FenceProbe { outside_reached: false, loopback_reached: false, proxy_reached: Some(true), unproven: None }
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
    assert_eq!(lines.len(), 18, "{text}");
    assert_eq!(lines[0], "ok    elevated setup: version 2 (C:\\ProgramData\\Palisade\\setup.json)");
    assert!(lines.contains(&"ok    firewall policy: on in every profile; local rules honored"));
    assert!(lines.contains(&"ok    firewall rules: 4 rules block traffic of PalisadeOffline beyond loopback"));
    assert!(lines.contains(&"ok    WFP filters: every connect of PalisadeOffline blocked"));
    assert!(lines.contains(&"ok    proxied firewall rules: 4 rules block traffic of PalisadeProxied beyond loopback"));
    assert!(lines
        .contains(&"ok    proxied WFP filters: loopback TCP only to proxy port(s) 8877, every other connect blocked"));
    assert!(lines.iter().any(|l| l.starts_with("ok    account PalisadeProxied: ")));
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
    assert!(r
        .line("elevated setup")
        .unwrap()
        .detail
        .starts_with("set up by an older palisade (version 0, this one needs 2)"));

    let mut f = base.clone();
    f.firewall.profiles[0].local_rules_honored = false;
    let r = check_report(&f, &check_inputs(Some(good_probe())));
    assert_eq!(status(&r, "firewall policy"), CheckStatus::Fail);
    assert_eq!(status(&r, "network fence"), CheckStatus::Fail);
    assert!(!r.usable());

    let mut f = base.clone();
    f.firewall.rules.remove(1);
    let r = check_report(&f, &check_inputs(None));
    assert_eq!(
        r.line("firewall rules").unwrap().detail,
        "missing: Palisade offline: block outbound IPv6: run setup again"
    );

    let mut f = base.clone();
    if let crate::firewall::WfpObject::Filter(x) =
        f.firewall.wfp.iter_mut().find(|o| o.name().contains("8877 IPv4")).unwrap()
    {
        x.tcp_remote_port = Some(22);
    }
    let r = check_report(&f, &check_inputs(None));
    assert!(r
        .line("proxied WFP filters")
        .unwrap()
        .detail
        .starts_with("changed: Palisade proxied: permit loopback TCP 8877 IPv4"));
    assert_eq!(status(&r, "proxied WFP filters"), CheckStatus::Fail);
    // The offline fence is not the proxied one: offline commands stay fenced.
    assert_eq!(status(&r, "WFP filters"), CheckStatus::Ok);

    // Proxy ports other than the marker's, or no proxied account: named.
    let r = check_report(&base, &CheckInputs { proxy_ports: vec![9000], ..check_inputs(None) });
    assert!(r
        .line("proxied WFP filters")
        .unwrap()
        .detail
        .starts_with("missing: Palisade proxied: permit loopback TCP 9000"));
    let mut f = base.clone();
    f.users.retain(|u| u.name != "PalisadeProxied");
    let r = check_report(&f, &check_inputs(None));
    assert_eq!(
        r.line("proxied firewall rules").unwrap().detail,
        "PalisadeProxied is missing: network = allow cannot run; run setup again"
    );

    let r = check_report(&base, &check_inputs(Some(FenceProbe { outside_reached: true, ..good_probe() })));
    assert_eq!(r.line("network fence").unwrap().detail, "a connection as the offline account reached the outside");
    let r = check_report(&base, &check_inputs(Some(FenceProbe { loopback_reached: true, ..good_probe() })));
    assert_eq!(status(&r, "network fence"), CheckStatus::Fail);
    let r = check_report(
        &base,
        &check_inputs(Some(FenceProbe { unproven: Some("the probe could not run: x".into()), ..good_probe() })),
    );
    let l = r.lines.iter().find(|l| l.item == "network fence").unwrap();
    assert_eq!((l.status, l.detail.as_str()), (CheckStatus::Unknown, "unknown: the probe could not run: x"));
    let r = check_report(&base, &check_inputs(Some(FenceProbe { proxy_reached: Some(false), ..good_probe() })));
    assert_eq!(status(&r, "network fence"), CheckStatus::Warn);

    let mut f = base.clone();
    f.account_rights
        .push(AccountRightsFact { sid: offline.clone(), rights: vec![AccountRight::SeDenyInteractiveLogonRight] });
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

#[test]
fn unread_facts_are_unknown_never_ok_or_failed() {
    let f = installed();
    let r = check_report(&f, &unelevated(None));
    assert!(r.usable(), "{r}");
    assert_eq!(status(&r, "WFP filters"), CheckStatus::Unknown);
    assert_eq!(
        r.line("WFP filters").unwrap().to_string(),
        "??    WFP filters: unknown: needs an administrator to read (FwpmEngineOpen0 failed: error 5 (0x00000005))"
    );
    assert_eq!(status(&r, "logon rights"), CheckStatus::Unknown);
    assert!(r.line("logon rights").unwrap().detail.contains("needs an administrator to read"));
    // The accounts are judged on what was read; the rights are not claimed.
    let acc = r.line("account PalisadeOffline").unwrap();
    assert_eq!(acc.status, CheckStatus::Ok);
    assert!(acc.detail.ends_with("; hidden"), "{acc}");
    assert_eq!(status(&r, "firewall rules"), CheckStatus::Ok);
    let fence = r.line("network fence").unwrap();
    assert_eq!(fence.status, CheckStatus::Unknown);
    assert_eq!(
        fence.detail,
        "not confirmed: WFP filters could not be read here (run `palisade check` as an administrator)"
    );
    assert!(r.first_failure().is_none());
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"status\":\"unknown\""), "{json}");

    // A part that was read and is wrong still fails the fence, whatever else is unknown.
    let mut broken = f.clone();
    broken.firewall.rules.clear();
    let r = check_report(&broken, &unelevated(None));
    assert_eq!(status(&r, "firewall rules"), CheckStatus::Fail);
    assert_eq!(status(&r, "network fence"), CheckStatus::Fail);
    assert_eq!(r.first_failure().unwrap().item, "firewall rules");

    // A probe proves the fence even when its parts cannot be read.
    let r = check_report(&f, &unelevated(Some(good_probe())));
    assert_eq!(status(&r, "network fence"), CheckStatus::Ok);

    // Wine: the firewall profiles are E_NOTIMPL, which is not an access problem.
    let mut inputs = unelevated(None);
    inputs.unread.push(Unread::new(
        FactGroup::FirewallProfiles,
        false,
        "INetFwPolicy2::CurrentProfileTypes failed: HRESULT 0x80004001",
    ));
    let r = check_report(&f, &inputs);
    assert_eq!(
        r.line("firewall policy").unwrap().detail,
        "unknown: could not be read: INetFwPolicy2::CurrentProfileTypes failed: HRESULT 0x80004001"
    );
    assert!(r
        .line("network fence")
        .unwrap()
        .detail
        .starts_with("not confirmed: firewall policy, WFP filters could not"));

    // Accounts that cannot be read make their lines unknown, including the fence's SID.
    let mut inputs = check_inputs(None);
    inputs.unread.push(Unread::new(FactGroup::Accounts, false, "NetUserGetInfo: error 53"));
    inputs.unread.push(Unread::new(FactGroup::Credentials, false, "no %LOCALAPPDATA%"));
    inputs.unread.push(Unread::new(FactGroup::Files, true, "%ProgramData%\\Palisade: error 5"));
    let r = check_report(&MachineFacts::default(), &inputs);
    for item in [
        "sandbox group",
        "account PalisadeOffline",
        "password of PalisadeOnline",
        "firewall rules",
        "elevated setup",
        "runner",
    ] {
        assert_eq!(status(&r, item), CheckStatus::Unknown, "{item}: {r}");
    }
    assert!(r.lines.iter().all(|l| !l.to_string().contains('\n')));
}

#[test]
fn access_denied_codes() {
    assert!(is_access_denied(5));
    assert!(is_access_denied(0x8007_0005));
    assert!(is_access_denied(0xC000_0022));
    assert!(!is_access_denied(0x8000_4001));
    assert!(!is_access_denied(1764));
    let u = Unread::new(FactGroup::Wfp, false, "line one\nline two");
    assert_eq!(u.reason, "could not be read: line one line two");
}

#[test]
fn optional_and_not_set_up_is_one_note() {
    let inputs = CheckInputs { required: false, ..check_inputs(None) };
    let r = check_report(&fresh_facts(), &inputs);
    assert_eq!(r.lines.len(), 1, "{r}");
    assert_eq!(
        r.to_string(),
        "note  elevated setup: not set up (optional: `palisade setup --elevated`, then `mode = \"elevated\"` in the [windows] section)\n"
    );
    assert!(r.usable());
    // Required: every missing part is named and fails.
    let r = check_report(&fresh_facts(), &check_inputs(None));
    assert!(r.lines.len() > 10);
    assert_eq!(r.first_failure().unwrap().item, "elevated setup");
    // Optional but partly there (an interrupted setup): the whole report.
    let mut f = fresh_facts();
    f.groups.push(crate::facts::GroupFact { name: GROUP_NAME.into(), sid: sid(INSTALLER_SID), members: vec![] });
    let r = check_report(&f, &inputs);
    assert_eq!(status(&r, "elevated setup"), CheckStatus::Fail);
    // Optional, installed: the same lines as when required.
    let f = installed();
    assert_eq!(check_report(&f, &inputs), check_report(&f, &check_inputs(None)));
}
