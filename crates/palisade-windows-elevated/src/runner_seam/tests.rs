//! Unit tests of runner_seam.rs (kept in their own file so both stay short).

use super::*;

/// A launcher that "starts" processes by recording what it was asked to do.
#[derive(Default)]
struct FakeLauncher {
    launched: Vec<(LaunchSpec, String)>,
    fail_with: Option<LaunchError>,
    next_pid: u32,
}

#[derive(Debug)]
struct FakeProcess {
    pid: u32,
    killed: bool,
}

impl RunnerProcess for FakeProcess {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn kill(&mut self) -> std::io::Result<()> {
        self.killed = true;
        Ok(())
    }
    fn wait(&mut self) -> std::io::Result<u32> {
        Ok(if self.killed { 1 } else { 0 })
    }
}

impl RunnerLauncher for FakeLauncher {
    type Process = FakeProcess;
    fn launch(&mut self, spec: &LaunchSpec, password: &Password) -> Result<FakeProcess, LaunchError> {
        if let Some(e) = &self.fail_with {
            return Err(e.clone());
        }
        self.launched.push((spec.clone(), password.expose().to_string()));
        self.next_pid += 100;
        Ok(FakeProcess { pid: self.next_pid, killed: false })
    }
}

fn pw() -> Password {
    Password::new("abcdefghijklmnopqrstuvwxyz1A".into(), "").unwrap()
}

fn runner() -> WinPath {
    WinPath::parse("C:\\ProgramData\\Palisade\\bin\\palisade-runner.exe").unwrap()
}

#[test]
fn starts_the_account_matching_the_network_setting() {
    let mut l = FakeLauncher::default();
    let (spec, mut p) = start_runner(&mut l, &runner(), SandboxUser::Offline, &pw(), &[0xab; 16], 1).unwrap();
    assert_eq!(spec.user, SandboxUser::Offline);
    assert_eq!(p.pid(), 100);
    let (spec2, _) = start_runner(&mut l, &runner(), SandboxUser::Online, &pw(), &[1; 16], 1).unwrap();
    assert_eq!(spec2.user, SandboxUser::Online);
    assert_eq!(l.launched.len(), 2);
    assert_eq!(l.launched[0].1, "abcdefghijklmnopqrstuvwxyz1A");
    p.kill().unwrap();
    assert_eq!(p.wait().unwrap(), 1);
    // The password is handed to the launcher, never put on the command line.
    assert!(!spec.command_line().contains("abcdefghijklmnopqrstuvwxyz1A"));
    assert_eq!(
        spec.command_line(),
        format!(
            "\"C:\\ProgramData\\Palisade\\bin\\palisade-runner.exe\" --pipe \\\\.\\pipe\\palisade-runner-{} --protocol {PROTOCOL_VERSION} --setup-version 1",
            "ab".repeat(16)
        )
    );
}

#[test]
fn failures_carry_advice() {
    let mut l = FakeLauncher { fail_with: Some(LaunchError::from_win32(1326, "")), ..Default::default() };
    let e = start_runner(&mut l, &runner(), SandboxUser::Offline, &pw(), &[0; 16], 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "could not start palisade-runner as PalisadeOffline: the sandbox account's password was refused; run `palisade setup --elevated` again"
    );
    assert_eq!(LaunchError::from_win32(1385, ""), LaunchError::LogonTypeNotGranted);
    assert_eq!(LaunchError::from_win32(1058, ""), LaunchError::SecondaryLogonDisabled);
    assert!(matches!(LaunchError::from_win32(5, "Access is denied."), LaunchError::Other(m) if m.contains("(5)")));
}

#[test]
fn pipe_name_dacl_and_peer_check() {
    assert_eq!(pipe_name(&[0; 16]), format!("\\\\.\\pipe\\palisade-runner-{}", "0".repeat(32)));
    assert_ne!(pipe_name(&[0; 16]), pipe_name(&[1; 16]));
    let sid = Sid::parse("S-1-5-21-1-2-3-1011").unwrap();
    assert_eq!(pipe_sddl(&sid), "D:P(A;;0x12019b;;;S-1-5-21-1-2-3-1011)");
    assert_eq!(0x12019b & 0x4, 0, "FILE_CREATE_PIPE_INSTANCE must not be granted");
    assert_eq!(PIPE_CLIENT_ACCESS & !PIPE_GRANTED_ACCESS, 0, "the runner must ask only for what is granted");
    assert_eq!(PIPE_CLIENT_ACCESS & 0x4, 0);
    assert!(check_pipe_peer(42, 42).is_ok());
    assert_eq!(check_pipe_peer(42, 43), Err(PeerMismatch { expected: 42, actual: 43 }));
    assert!(check_pipe_peer(0, 0).is_err());
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn runner_arguments_round_trip_from_the_launch_spec() {
    let spec = LaunchSpec {
        user: SandboxUser::Offline,
        runner: runner(),
        pipe_name: pipe_name(&[0xab; 16]),
        setup_version: 1,
    };
    let line = spec.command_line();
    // The runner's own path is quoted first; the rest has no blanks.
    let rest: Vec<String> = line.rsplit('"').next().unwrap().split_whitespace().map(String::from).collect();
    let parsed = parse_runner_args(&rest, 1).unwrap();
    assert_eq!(parsed, RunnerArgs { pipe_name: spec.pipe_name.clone(), protocol: PROTOCOL_VERSION, setup_version: 1 });
}

#[test]
fn bad_runner_arguments_are_one_line_errors() {
    let pipe = pipe_name(&[1; 16]);
    let ok = |extra: &[&str]| {
        let protocol = PROTOCOL_VERSION.to_string();
        let mut v = strings(&["--pipe", &pipe, "--protocol", &protocol, "--setup-version", "1"]);
        v.extend(strings(extra));
        v
    };
    assert_eq!(parse_runner_args(&[], 1), Err(RunnerArgsError::Usage));
    assert_eq!(parse_runner_args(&ok(&["--x"]), 1), Err(RunnerArgsError::Unknown("--x".into())));
    assert_eq!(parse_runner_args(&ok(&["--pipe", &pipe]), 1), Err(RunnerArgsError::Repeated("--pipe")));
    assert_eq!(parse_runner_args(&strings(&["--pipe"]), 1), Err(RunnerArgsError::MissingValue("--pipe")));
    assert_eq!(
        parse_runner_args(&strings(&["--pipe", &pipe, "--protocol", "1"]), 1),
        Err(RunnerArgsError::MissingValue("--setup-version"))
    );
    for bad_pipe in ["\\\\.\\pipe\\other", "\\\\host\\pipe\\palisade-runner-00000000000000000000000000000000"] {
        let e = parse_runner_args(&strings(&["--pipe", bad_pipe, "--protocol", "1", "--setup-version", "1"]), 1)
            .unwrap_err();
        assert!(matches!(e, RunnerArgsError::BadValue { flag: "--pipe", .. }), "{e}");
    }
    for bad_num in ["01", "-1", "+1", "", "1 ", "99999999999"] {
        let e = parse_runner_args(&strings(&["--pipe", &pipe, "--protocol", "1", "--setup-version", bad_num]), 1)
            .unwrap_err();
        assert!(matches!(e, RunnerArgsError::BadValue { flag: "--setup-version", .. }), "{bad_num}: {e}");
    }
    // The protocol before this one (and the one after).
    for other in [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1] {
        let e = parse_runner_args(
            &strings(&["--pipe", &pipe, "--protocol", &other.to_string(), "--setup-version", "1"]),
            1,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), runner_exit::VERSION);
    }
    let e = parse_runner_args(&strings(&["--pipe", &pipe, "--protocol", "1", "--setup-version", "7"]), 1).unwrap_err();
    assert_eq!(e.exit_code(), runner_exit::VERSION);
    for e in [RunnerArgsError::Usage, RunnerArgsError::Unknown("a\nb".into())] {
        assert!(!e.to_string().contains('\n'));
        assert_eq!(e.exit_code(), runner_exit::USAGE);
    }
    assert!(describe_runner_exit(3).contains("setup --elevated"));
    assert!(describe_runner_exit(77).contains("77"));
}

#[test]
fn restricting_sids_are_the_command_everyone_restricted_logon_and_capabilities_not_the_account() {
    let account = Sid::parse("S-1-5-21-1-2-3-1011").unwrap();
    let logon = Sid::parse("S-1-5-5-0-12345").unwrap();
    let root =
        palisade_windows_plan::sid::Sid::synthetic(palisade_windows_plan::sid::SyntheticKind::WriteRoot, [4; 16]);
    let cmd = command_sid([5; 16]);
    let got: Vec<String> = restricting_sids(&cmd, Some(&logon), std::slice::from_ref(&root))
        .unwrap()
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    assert_eq!(got, [cmd.as_str(), "S-1-1-0", RESTRICTED_SID, "S-1-5-5-0-12345", root.as_str()]);
    // A request naming the account among its capability SIDs is refused, not obeyed.
    assert!(restricting_sids(&cmd, Some(&logon), &[root, account.clone()]).is_err());
    assert_eq!(restricting_sids(&cmd, None, &[]).unwrap().len(), 3);
    // The command's objects: the command SID, the account (the runner) and SYSTEM.
    let dacl = command_default_dacl(&cmd, &account);
    assert_eq!(dacl.len(), 3);
    assert!(temp_folder_sddl(&cmd, &account).starts_with("D:P("));
    assert!(temp_folder_name(&[0; 16]).starts_with("palisade-cmd-"));
}

#[test]
fn the_account_must_match_the_network_setting() {
    assert!(check_account_network("PalisadeOffline", false, None).is_ok());
    assert!(check_account_network("palisadeoffline", false, None).is_ok());
    assert!(check_account_network("PalisadeOnline", true, None).is_ok());
    assert!(check_account_network("PalisadeOnline", false, None).is_err());
    assert!(check_account_network("someone", false, None).is_err());
    assert!(check_account_network("PalisadeOffline", true, None).is_err());
    // network = allow: only the proxied account, and it only for that.
    assert!(check_account_network("PalisadeProxied", false, Some(47_310)).is_ok());
    assert!(check_account_network("palisadeproxied", false, Some(47_310)).is_ok());
    let e = check_account_network("PalisadeOffline", false, Some(47_310)).unwrap_err();
    assert!(e.contains("only Palisade's proxy") && e.contains("not PalisadeProxied"), "{e}");
    assert!(check_account_network("PalisadeOnline", false, Some(47_310)).is_err());
    assert!(check_account_network("PalisadeProxied", false, None).is_err());
    assert!(check_account_network("PalisadeProxied", true, None).unwrap_err().contains("fences"));
    assert_eq!(account_for_request(false, None), SandboxUser::Offline);
    assert_eq!(account_for_request(false, Some(1)), SandboxUser::Proxied);
    assert_eq!(account_for_request(true, None), SandboxUser::Online);
}

#[test]
fn the_runner_sets_temp_sandbox_and_git_variables_itself() {
    let req = vec![
        ("Path".to_string(), "C:\\bin".to_string()),
        ("tmp".to_string(), "C:\\Users\\me\\Temp".to_string()),
        ("git_config_global".to_string(), "C:\\evil".to_string()),
    ];
    let env = command_environment(&req, "C:\\t", Some("C:\\ProgramData\\Palisade\\sandbox.gitconfig"));
    let get =
        |n: &str| env.iter().filter(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(get("PATH"), ["C:\\bin"]);
    assert_eq!(get("TMP"), ["C:\\t"]);
    assert_eq!(get("TMPDIR"), ["C:\\t"]);
    assert_eq!(get("PALISADE_SANDBOX"), ["1"]);
    assert_eq!(get("GIT_CONFIG_GLOBAL"), ["C:\\ProgramData\\Palisade\\sandbox.gitconfig"]);
    let without = command_environment(&req, "C:\\t", None);
    assert!(without.iter().all(|(k, _)| !k.eq_ignore_ascii_case("GIT_CONFIG_GLOBAL")));
}

#[test]
fn deny_read_outside_the_profile_is_refused() {
    let profile = WinPath::parse("C:\\Users\\me").unwrap();
    let inside = WinPath::parse("C:\\Users\\me\\.ssh").unwrap();
    let outside = WinPath::parse("D:\\secrets").unwrap();
    assert_eq!(
        deny_read_outside_profile(&profile, &[inside.clone(), outside.clone(), profile.clone()]),
        vec![outside, profile.clone()]
    );
    assert!(deny_read_outside_profile(&profile, &[inside]).is_empty());
}

#[test]
fn command_endings() {
    assert_eq!(command_ending(Some(0), "", 0), Ok((Some(0), None)));
    assert_eq!(command_ending(Some(7), "", 0), Ok((Some(7), None)));
    // A command that exits 143 on its own is not a signal.
    assert_eq!(command_ending(Some(TERMINATED_EXIT), "", 0), Ok((Some(143), None)));
    assert_eq!(command_ending(Some(TERMINATED_EXIT), "", 2), Ok((None, Some(2))));
    // NTSTATUS codes (STATUS_CONTROL_C_EXIT after Ctrl+Break) come through as negative codes.
    assert_eq!(command_ending(Some(0xC000_013A), "", 2), Ok((Some(0xC000_013Au32 as i32), None)));
    assert_eq!(command_ending(None, "runner vanished", 9), Ok((None, Some(9))));
    assert_eq!(command_ending(None, "runner vanished", 15), Err("runner vanished".to_string()));
    assert_eq!(command_ending(None, "runner vanished", 0), Err("runner vanished".to_string()));
}

/// The access masks `sddl` grants the `OW` (owner rights) SID.
fn owner_masks(sddl: &str) -> Vec<u32> {
    sddl.split('(')
        .filter_map(|ace| ace.strip_suffix(')'))
        .filter(|ace| ace.ends_with(";;;OW"))
        .map(|ace| {
            let mask = ace.split(';').nth(2).unwrap();
            u32::from_str_radix(mask.trim_start_matches("0x"), 16).unwrap()
        })
        .collect()
}

#[test]
fn the_runner_leaves_its_account_nothing_to_act_with() {
    for sddl in [RUNNER_SELF_SDDL, RUNNER_TOKEN_SDDL, RUNNER_DEFAULT_DACL_SDDL] {
        let masks = owner_masks(sddl);
        assert_eq!(masks.len(), 1, "{sddl}: exactly one OWNER RIGHTS entry");
        // The token may be queried (0x8), nothing else below 0x1000.
        let forbidden =
            if sddl == RUNNER_TOKEN_SDDL { RUNNER_FORBIDDEN_RIGHTS & !0x8 } else { RUNNER_FORBIDDEN_RIGHTS };
        assert_eq!(masks[0] & forbidden, 0, "{sddl}");
        assert!(sddl.contains("(A;;GA;;;SY)"));
    }
    // PROCESS_QUERY_LIMITED_INFORMATION would let OpenProcessToken reach the token.
    assert_eq!(owner_masks(RUNNER_SELF_SDDL)[0] & 0x1000, 0);
    assert!(RUNNER_SELF_SDDL.starts_with("D:P") && RUNNER_TOKEN_SDDL.starts_with("D:P"));
}
