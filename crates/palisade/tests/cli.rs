//! The command line outside `run`: version, help, `policy` and `check`.
#![cfg(target_os = "linux")]

mod common;
use common::*;

#[test]
fn version_exits_zero() {
    let fx = Fixture::new();
    let o = fx.palisade().arg("--version").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stdout(&o).starts_with("palisade "), "{}", show(&o));
    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")), "{}", show(&o));
}

#[test]
fn help_exits_zero_and_documents_exit_codes() {
    let fx = Fixture::new();
    for args in [&["--help"][..], &["run", "--help"], &["help"]] {
        let o = fx.palisade().args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", show(&o));
        let out = stdout(&o);
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
    let o = fx.palisade().arg("--help").output().unwrap();
    assert!(stdout(&o).contains("125"), "the help does not explain exit codes: {}", show(&o));
}

#[test]
fn no_subcommand_is_an_error_with_125() {
    let fx = Fixture::new();
    let o = fx.palisade().output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(!text(&o).contains("panicked"), "{}", show(&o));
}

#[test]
fn policy_exits_zero() {
    let fx = Fixture::new();
    let o = fx.palisade().args(["policy", "--workspace"]).arg(&fx.ws).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!stdout(&o).is_empty(), "`palisade policy` printed nothing");
    let o = fx.palisade().args(["policy", "--json", "--workspace"]).arg(&fx.ws).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .unwrap_or_else(|e| panic!("policy --json is not JSON ({e}): {}", show(&o)));
}

#[test]
fn check_exits_zero_on_this_host() {
    let fx = Fixture::new();
    let o = fx.palisade().args(["check", "--workspace"]).arg(&fx.ws).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "`palisade check` says this host cannot run the default policy: {}", show(&o));
    let out = stdout(&o);
    for layer in ["mount namespace", "landlock", "seccomp"] {
        assert!(out.contains(layer), "check does not mention {layer}: {out}");
    }
    let o = fx.palisade().args(["check", "--json", "--workspace"]).arg(&fx.ws).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("check --json is not JSON ({e}): {}", show(&o)));
    assert!(v["refusal"].is_null(), "{v}");
}

#[test]
fn missing_workspace_is_a_clean_error() {
    let fx = Fixture::new();
    let o = fx
        .palisade()
        .args(["run", "--workspace"])
        .arg(fx.root.join("does-not-exist"))
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", show(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", show(&o));
}

#[test]
fn missing_command_names_the_argument_on_one_line() {
    let fx = Fixture::new();
    for args in [&["run"][..], &["run", "--"], &["run", "--network", "off"]] {
        let o = fx.palisade().args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", show(&o));
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err:?}");
        assert!(err.starts_with("palisade: "), "{args:?}: {err:?}");
        // clap puts the argument's name on the line after "were not provided:"; it must not be
        // lost when the message is cut to one line.
        assert!(err.contains("<CMD>"), "{args:?}: the error does not say what is missing: {err:?}");
    }
}

#[test]
fn missing_interpreter_is_named() {
    let fx = Fixture::new();
    let script = fx.ws.join("bad-interp.sh");
    std::fs::write(&script, format!("#!/nonexistent-{}/sh\necho hi\n", fx.m)).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = fx.run(&["./bad-interp.sh"]);
    assert_eq!(o.status.code(), Some(127), "{}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    assert!(
        err.contains(&format!("/nonexistent-{}/sh", fx.m)),
        "the error does not name the missing interpreter: {err:?}"
    );
    assert!(!stdout(&o).contains("hi"), "{}", show(&o));
}

#[test]
fn program_hidden_by_the_private_tmp_is_explained() {
    let fx = Fixture::new();
    // A script in the host's /tmp (outside the workspace): the sandbox's /tmp is private.
    let host = tempfile::Builder::new().prefix("palisade-hidden-").tempdir().unwrap();
    let script = host.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = fx.run(&[s(&script)]);
    assert_eq!(o.status.code(), Some(127), "{}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    assert!(err.contains("exists on the host") && err.contains("/tmp"), "the error does not explain why: {err:?}");
}

#[test]
fn json_status_is_printed_when_the_command_never_ran() {
    let fx = Fixture::new();
    let missing = format!("no-such-command-{}", fx.m);
    let cases: [(&[&str], &[&str], i32); 2] = [
        (&["--json-status"], &[&missing], 127),
        (&["--json-status", "--writable", "/nonexistent-dir"], &["true"], 125),
    ];
    for (flags, argv, code) in cases {
        let o = fx.run_flags(flags, argv);
        assert_eq!(o.status.code(), Some(code), "{}", show(&o));
        let err = stderr(&o);
        let lines: Vec<&str> = err.trim_end().lines().collect();
        assert_eq!(lines.len(), 2, "expected the error line and the JSON line: {err:?}");
        assert!(lines[0].starts_with("palisade: "), "{err:?}");
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap_or_else(|e| panic!("not JSON ({e}): {err}"));
        assert_eq!(v["status"], code, "{v}");
        assert!(v["exit_code"].is_null() && v["signal"].is_null(), "{v}");
        assert_eq!(v["error"].as_str(), Some(lines[0].trim_start_matches("palisade: ")), "{v}");
    }
}

/// The user database's home directory of this user.
fn passwd_home() -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: getpwuid returns a pointer into static storage (read at once, single use).
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        assert!(!pw.is_null(), "this user has no passwd entry");
        std::ffi::OsStr::from_bytes(std::ffi::CStr::from_ptr((*pw).pw_dir).to_bytes()).into()
    }
}

#[test]
fn default_deny_read_uses_the_passwd_home_when_home_is_unset() {
    let fx = Fixture::new();
    let want = passwd_home().join(".ssh");
    for home in [None, Some(""), Some("relative/home")] {
        let mut c = fx.palisade();
        c.args(["policy", "--json", "--workspace"]).arg(&fx.ws);
        match home {
            None => c.env_remove("HOME"),
            Some(h) => c.env("HOME", h),
        };
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "HOME={home:?}: {}", show(&o));
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(&o)));
        let deny: Vec<&str> = v["deny_read"].as_array().unwrap().iter().filter_map(|e| e["value"].as_str()).collect();
        assert!(
            deny.contains(&want.to_str().unwrap()),
            "HOME={home:?}: the user's real ~/.ssh ({}) is not denied: {deny:?}",
            want.display()
        );
    }
}

#[test]
fn policy_names_the_files_it_looked_for() {
    let fx = Fixture::new();
    let user = fx.xdg.join("palisade/config.toml");
    let o = fx.palisade().args(["policy", "--workspace"]).arg(&fx.ws).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let line = |out: &str, name: &str| {
        out.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} line: {out}")).to_string()
    };
    assert!(line(&stdout(&o), "user file").contains(&format!("{} (not present)", user.display())), "{}", show(&o));
    assert!(
        line(&stdout(&o), "project file")
            .contains(&format!("{} (not present)", fx.ws.join(".palisade/config.toml").display())),
        "{}",
        show(&o)
    );
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    std::fs::write(&user, "mode = \"read-only\"\n").unwrap();
    let o = fx.palisade().args(["policy", "--workspace"]).arg(&fx.ws).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(line(&stdout(&o), "user file").contains(&format!("{} (read)", user.display())), "{}", show(&o));
    assert!(line(&stdout(&o), "mode").contains("read-only"), "{}", show(&o));
}

#[test]
fn root_in_another_users_private_folder_gets_a_hint() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip_expected("needs root (the root pass runs it)");
        return;
    }
    let fx = Fixture::new();
    let private = fx.root.join("theirs");
    let ws = private.join("project");
    std::fs::create_dir_all(&ws).unwrap();
    let c = std::ffi::CString::new(s(&private)).unwrap();
    // SAFETY: chown on a NUL-terminated path.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
    std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let o = fx.palisade().args(["run", "--workspace"]).arg(&ws).args(["--", "sh", "-c", "echo ran"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(!stdout(&o).contains("ran"), "{}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    assert!(err.contains("run it as the owner of the workspace"), "no hint: {err:?}");
}

/// As root, a folder root owns with mode 000 on the way to the workspace is named with its mode,
/// not taken for another user's private folder.
#[test]
fn root_in_its_own_closed_folder_gets_the_mode_named() {
    if !is_root() {
        skip_expected("needs root (the root pass runs it)");
        return;
    }
    let fx = Fixture::new();
    let closed = fx.root.join("closed");
    let ws = closed.join("project");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::set_permissions(&closed, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let o = fx.palisade().args(["run", "--workspace"]).arg(&ws).args(["--", "sh", "-c", "echo ran"]).output().unwrap();
    std::fs::set_permissions(&closed, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    if o.status.success() {
        skip_expected("this kernel lets root's sandbox enter root's mode-000 folders (nothing to explain)");
        return;
    }
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    assert!(!err.contains("other users"), "a folder of root's own was called another user's: {err:?}");
    assert!(
        err.contains("has mode 0") && err.contains(&closed.display().to_string()),
        "the folder and its mode are not named: {err:?}"
    );
}

#[test]
fn misspelled_flag_keeps_clap_s_suggestion_on_one_line() {
    let fx = Fixture::new();
    let o = fx.palisade().args(["run", "--netwrk", "on", "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    assert!(err.contains("'--netwrk'") && err.contains("; tip: a similar argument exists: '--network'"), "{err:?}");
}

/// A pipe whose reading end is already closed: writing to it fails with EPIPE.
fn broken_pipe() -> std::process::Stdio {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors that we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is ours and closed once; fds[1] is handed over to the Stdio.
    unsafe {
        libc::close(fds[0]);
        std::process::Stdio::from(std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    }
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let fx = Fixture::new();
    let ws = fx.ws.to_str().unwrap();
    for args in [
        &["policy", "--workspace", ws][..],
        &["policy", "--json", "--workspace", ws],
        &["check", "--workspace", ws],
        &["cleanup"],
    ] {
        let o = fx.palisade().args(args).stdout(broken_pipe()).output().unwrap();
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", show(&o));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", show(&o));
    }
}

#[test]
fn closed_stderr_keeps_the_command_s_exit_status() {
    use std::os::unix::process::CommandExt;
    let fx = Fixture::new();
    for (flags, argv, want) in [
        (&[][..], &["/nonexistent-palisade-test"][..], 127),
        (&["--json-status"], &["true"], 0),
        (&[], &["sh", "-c", "exit 7"], 7),
    ] {
        // A reader that went away (`2>&1 | head -0`) and a descriptor closed outright (`2>&-`).
        let o = fx.run_cmd(flags, argv).stderr(broken_pipe()).output().unwrap();
        assert_eq!(o.status.code(), Some(want), "{argv:?} with a broken stderr pipe: {}", show(&o));
        let mut c = fx.run_cmd(flags, argv);
        // SAFETY: close is async-signal-safe; it runs in the child after stdio is set up.
        unsafe {
            c.pre_exec(|| {
                libc::close(2);
                Ok(())
            });
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(want), "{argv:?} with stderr closed: {}", show(&o));
    }
}

/// An agent wrapped in Palisade whose shell tool calls Palisade again: the inner run refuses
/// with one line saying why (the outer sandbox still applies), and `check` inside says so.
#[test]
fn a_nested_run_is_refused_with_one_line() {
    let fx = Fixture::new();
    fx.require_visible();
    // A copy where the sandbox can see it (the build may live under /tmp, which it hides).
    let inner_path = fx.outside.join("palisade");
    std::fs::copy(BIN, &inner_path).unwrap();
    let inner = inner_path.to_str().unwrap();
    let o = fx.run(&[inner, "run", "--", "echo", "inner-ran"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(!stdout(&o).contains("inner-ran"), "{}", show(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", show(&o));
    assert!(stderr(&o).contains("already runs inside a Palisade sandbox"), "{}", show(&o));
    let o = fx.run(&[inner, "check"]);
    assert!(
        stdout(&o).contains("already runs inside a Palisade sandbox"),
        "check inside does not say so: {}",
        show(&o)
    );
}

/// A workspace this user cannot write (a system folder): one line saying so and what to do,
/// not a placeholder's "Permission denied"; read-only mode runs there.
#[test]
fn an_unwritable_workspace_is_named_with_the_way_out() {
    if is_root() {
        skip_expected("root can write everywhere (the unprivileged pass runs it)");
        return;
    }
    let fx = Fixture::new();
    let o = fx
        .palisade()
        .current_dir("/usr/share")
        .args(["run", "--workspace", "/usr/share", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", show(&o));
    assert!(
        stderr(&o).contains("not writable by this user") && stderr(&o).contains("--mode read-only"),
        "{}",
        show(&o)
    );
    let o = fx
        .palisade()
        .current_dir("/usr/share")
        .args(["run", "--workspace", "/usr/share", "--mode", "read-only", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

/// A project file's `deny_read` over the program's folder makes the command fail with 126: the
/// message names the deny_read path, so a cloned repository that does this is recognisable.
#[test]
fn a_program_under_deny_read_is_explained() {
    let fx = Fixture::new();
    fx.require_visible();
    std::fs::create_dir_all(fx.ws.join(".palisade")).unwrap();
    std::fs::write(fx.ws.join(".palisade/config.toml"), "deny_read = [\"/usr/bin\"]\n").unwrap();
    let o = fx.run(&["/usr/bin/true"]);
    assert_eq!(o.status.code(), Some(126), "{}", show(&o));
    assert!(stderr(&o).contains("deny_read path /usr/bin"), "{}", show(&o));
}

/// `palisade setup` changes the host (an AppArmor profile), so only root may run it: anyone
/// else is refused with one line, whether or not this host needs the profile. `--elevated` is
/// the Windows mode's setup: here one line names the command that applies.
#[test]
fn setup_is_refused_without_root_and_elevated_names_the_linux_setup() {
    use std::os::unix::process::CommandExt;
    let fx = Fixture::new();
    for args in [&["setup"][..], &["setup", "--uninstall"]] {
        let mut cmd = fx.palisade();
        if is_root() {
            // The unprivileged user needs a working directory it may enter.
            cmd.uid(65534).gid(65534).current_dir("/");
        }
        let o = cmd.args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", show(&o));
        assert_eq!(stderr(&o), "palisade: setup must run as root (sudo palisade setup)\n", "{args:?}: {}", show(&o));
        assert_eq!(stdout(&o), "", "{args:?}: {}", show(&o));
    }
    let o = fx.palisade().args(["setup", "--elevated"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert_eq!(
        stderr(&o),
        "palisade: `palisade setup --elevated` is the Windows elevated mode's setup; on this system run `palisade setup`\n",
        "{}",
        show(&o)
    );
}
