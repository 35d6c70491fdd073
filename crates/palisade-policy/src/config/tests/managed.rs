//! The managed file's bounds.

use super::*;

#[test]
fn managed_clamps_defaults_and_refuses_requests() {
    let f = fixture();
    let m = f.managed.display().to_string();
    write(&f.managed, "# policy\nallowed_modes = [\"read-only\", \"full-access\"]\n");
    let r = f.load();
    assert_eq!(r.policy.mode, Mode::ReadOnly);
    assert_eq!(r.source("mode"), Some(&managed(&f, 2)));

    write(&f.managed, "allowed_modes = [\"read-only\", \"workspace-write\"]\nallow_network = false\n");
    write(&f.user, "\n\nmode = \"full-access\"\n");
    assert_eq!(
        f.err(),
        format!("{}:3: mode: \"full-access\" is forbidden by the administrator ({m}:1: allowed_modes = [\"read-only\", \"workspace-write\"])", f.user.display())
    );
    // Overridden on the command line by an allowed mode: fine.
    assert_eq!(f.load_with(Overrides { mode: Some(Mode::ReadOnly), ..Default::default() }).policy.mode, Mode::ReadOnly);
    assert_eq!(
        f.err_with(Overrides { mode: Some(Mode::FullAccess), ..Default::default() }),
        format!("command line: --mode: \"full-access\" is forbidden by the administrator ({m}:1: allowed_modes = [\"read-only\", \"workspace-write\"])")
    );
    fs::remove_file(&f.user).unwrap();
    assert_eq!(
        f.err_with(Overrides { network: Some(Network::On), ..Default::default() }),
        format!("command line: --network: \"on\" is forbidden by the administrator ({m}:2: allow_network = false)")
    );
    write(&f.user, "network = \"on\"\n");
    assert_prefix(
        &f.err(),
        &format!("{}:1: network: \"on\" is forbidden by the administrator ({m}:2:", f.user.display()),
    );
}

#[test]
fn managed_forbids_loosening_switches() {
    let f = fixture();
    let m = f.managed.display().to_string();
    let u = f.user.display().to_string();
    f.dir("home/.cargo");
    write(&f.managed, "allow_writable_roots = false\nallow_keep_env = false\nallow_landlock_only = false\nallow_unprotected_paths = false\n");
    write(&f.user, "writable_roots = [\"~/.cargo\"]\n");
    assert_eq!(
        f.err(),
        format!("{u}:1: writable_roots: extra writable roots are forbidden by the administrator ({m}:1: allow_writable_roots = false)")
    );
    fs::remove_file(&f.user).unwrap();
    assert_prefix(
        &f.err_with(Overrides { keep_env: vec!["GH_TOKEN".into()], ..Default::default() }),
        &format!("command line: --keep-env: keeping \"GH_TOKEN\" is forbidden by the administrator ({m}:2: allow_keep_env = false)"),
    );
    write(&f.user, "[linux]\nallow_landlock_only = true\n");
    assert_eq!(
        f.err(),
        format!("{u}:2: linux.allow_landlock_only: true is forbidden by the administrator ({m}:3: allow_landlock_only = false)")
    );
    write(&f.user, "[linux]\nallow_landlock_only = false\nallow_unprotected_paths = true\n");
    assert_prefix(
        &f.err(),
        &format!("{u}:3: linux.allow_unprotected_paths: true is forbidden by the administrator ({m}:4:"),
    );
    // Explicitly false is fine.
    write(&f.user, "[linux]\nallow_landlock_only = false\n");
    assert!(!f.load().linux.allow_landlock_only);
    write(&f.managed, "allow_landlock_only_as_root = false\n");
    write(&f.user, "[linux]\nallow_landlock_only_as_root = true\n");
    assert_prefix(
        &f.err(),
        &format!("{u}:2: linux.allow_landlock_only_as_root: true is forbidden by the administrator ({m}:1:"),
    );
}

#[test]
fn managed_forced_lists_cannot_be_undone() {
    let f = fixture();
    let m = f.managed.display().to_string();
    let u = f.user.display().to_string();
    write(
        &f.managed,
        "deny_read = [\"~/.ssh\"]\nprotected_paths = [\".github/workflows\"]\n[env]\nsecret_patterns = [\"*_PAT\"]\n",
    );
    let r = f.load();
    assert!(r.policy.deny_read.contains(&f.home.join(".ssh")));
    assert_eq!(r.policy.protected_paths.last().map(String::as_str), Some(".github/workflows"));
    let last = r.policy.protected_paths.len() - 1;
    assert_eq!(r.source(&format!("protected_paths[{last}]")), Some(&managed(&f, 2)));

    write(&f.user, "allow_read = [\"~/.ssh\"]\n");
    assert_eq!(
        f.err(),
        format!(
            "{u}:1: allow_read: allowing {} is forbidden by the administrator ({m}:1: deny_read)",
            f.home.join(".ssh").display()
        )
    );
    write(&f.user, "[env]\nkeep = [\"GITHUB_PAT\"]\n");
    assert_eq!(
        f.err(),
        format!("{u}:2: env.keep: \"GITHUB_PAT\" matches secret pattern \"*_PAT\", so keeping it is forbidden by the administrator ({m}:4: env.secret_patterns)")
    );
    fs::remove_file(&f.user).unwrap();
    assert_eq!(
        f.err_with(Overrides { no_protected_paths: true, ..Default::default() }),
        format!("command line: --no-protected-paths: dropping protected paths is forbidden by the administrator ({m}:2: protected_paths)")
    );
}
