//! Layering of defaults, user file, project file and command line.

use super::*;

#[test]
fn defaults_without_any_file() {
    let f = fixture();
    let r = f.load();
    assert_eq!(r.policy, Policy::new(f.ws.clone(), Some(&f.home)));
    assert_eq!(r.source("mode"), Some(&Source::default_layer()));
    assert_eq!(r.source("deny_read[0]"), Some(&Source::default_layer()));
    assert_eq!(r.linux, LinuxSettings::default());
    assert_eq!(r.windows, WindowsSettings::default());
}

#[test]
fn user_file_overrides_defaults_with_line_numbers() {
    let f = fixture();
    f.dir("home/.cargo");
    write(
        &f.user,
        "# my settings\nmode = \"full-access\"\nnetwork = \"on\"\nwritable_roots = [\n  \"~/.cargo\",\n]\nkeep_processes = true\n\n[env]\nkeep = [\"GITHUB_TOKEN\"]\n[linux]\nallow_landlock_only = true\n[windows]\nmode = \"elevated\"\nprivate_desktop = false\n",
    );
    let r = f.load();
    assert_eq!(r.policy.mode, Mode::FullAccess);
    assert_eq!(r.policy.network, Network::On);
    assert_eq!(r.policy.writable_roots, vec![f.home.join(".cargo")]);
    assert!(r.policy.keep_processes);
    assert_eq!(r.policy.env.keep, vec!["GITHUB_TOKEN".to_string()]);
    assert!(r.linux.allow_landlock_only);
    assert_eq!(r.windows, WindowsSettings { mode: WindowsMode::Elevated, private_desktop: false });
    assert_eq!(r.source("mode"), Some(&user(&f, 2)));
    assert_eq!(r.source("network"), Some(&user(&f, 3)));
    assert_eq!(r.source("writable_roots[0]"), Some(&user(&f, 5)));
    assert_eq!(r.source("keep_processes"), Some(&user(&f, 7)));
    assert_eq!(r.source("env.keep[0]"), Some(&user(&f, 10)));
    assert_eq!(r.source("linux.allow_landlock_only"), Some(&user(&f, 12)));
    assert_eq!(r.source("windows.mode"), Some(&user(&f, 14)));
    assert_eq!(r.source("windows.private_desktop"), Some(&user(&f, 15)));
    assert_eq!(user(&f, 3).to_string(), format!("user ({}:3)", f.user.display()));
}

#[test]
#[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
fn lists_add_up_across_layers_without_duplicates() {
    let f = fixture();
    write(
        &f.user,
        "deny_read = [\"~/private\", \"~/.ssh\"]\nprotected_paths = [\".husky\"]\nenv.secret_patterns = [\"*_PAT\"]\n",
    );
    write(&f.project, "deny_read = [\"secrets\", \"/opt/keys\"]\nprotected_paths = [\".husky\", \"ci/*\"]\n");
    write(&f.managed, "deny_read = [\"/srv/secret\"]\nprotected_paths = [\".github/workflows\"]\n[env]\nsecret_patterns = [\"*COOKIE*\", \"*_SSN\"]\n");
    let r = f.load();
    let p = &r.policy;
    let n = crate::DEFAULT_DENY_READ_IN_HOME.len();
    assert_eq!(
        p.deny_read[n..],
        [f.home.join("private"), f.ws.join("secrets"), PathBuf::from("/opt/keys"), PathBuf::from("/srv/secret")]
    );
    assert_eq!(p.deny_read.iter().filter(|d| **d == f.home.join(".ssh")).count(), 1);
    assert_eq!(r.source(&format!("deny_read[{n}]")), Some(&user(&f, 1)));
    assert_eq!(r.source(&format!("deny_read[{}]", n + 1)), Some(&project(&f, 1)));
    assert_eq!(r.source(&format!("deny_read[{}]", n + 3)), Some(&managed(&f, 1)));
    let d = protected::DEFAULT_PATTERNS.len();
    assert_eq!(p.protected_paths[d..], [".husky".to_string(), "ci/*".into(), ".github/workflows".into()]);
    assert_eq!(r.source(&format!("protected_paths[{d}]")), Some(&user(&f, 2)));
    assert_eq!(r.source(&format!("protected_paths[{}]", d + 1)), Some(&project(&f, 2)));
    assert_eq!(p.env.secret_patterns.last().map(String::as_str), Some("*_SSN"));
    assert_eq!(p.env.secret_patterns.iter().filter(|s| *s == "*COOKIE*").count(), 1);
    assert!(p.env.secret_patterns.contains(&"*_PAT".to_string()));
}

#[test]
fn project_may_tighten_mode_and_network() {
    let f = fixture();
    write(&f.user, "mode = \"full-access\"\nnetwork = \"on\"\n");
    write(&f.project, "\nmode = \"read-only\"\nnetwork = \"off\"\nkeep_processes = false\n");
    let r = f.load();
    assert_eq!(r.policy.mode, Mode::ReadOnly);
    assert_eq!(r.policy.network, Network::Off);
    assert!(!r.windows.private_desktop);
    assert_eq!(r.source("mode"), Some(&project(&f, 2)));
    assert_eq!(r.source("network"), Some(&project(&f, 3)));
    // Equal is not looser.
    write(&f.project, "mode = \"full-access\"\n");
    assert_eq!(f.load().policy.mode, Mode::FullAccess);
}

#[test]
fn project_may_not_loosen() {
    let f = fixture();
    let p = f.project.display().to_string();
    let cases: &[(&str, &str)] = &[
        ("mode = \"full-access\"", "mode: project config may only tighten the policy; \"full-access\" is looser than \"workspace-write\" (set by default)"),
        ("network = \"on\"", "network: project config may only tighten the policy"),
        ("writable_roots = [\"/tmp\"]", "writable_roots: project config may only tighten the policy"),
        ("allow_read = [\"~/.ssh\"]", "allow_read: project config may only tighten the policy"),
        ("keep_processes = true", "keep_processes: project config may only tighten the policy"),
        ("[env]\nkeep = [\"X\"]", "env.keep: project config may only tighten the policy"),
        ("[linux]\nallow_landlock_only = true", "linux.allow_landlock_only: project config may only tighten the policy"),
        ("[linux]\nallow_unprotected_paths = true", "linux.allow_unprotected_paths: project config may only tighten the policy"),
        ("[linux]\nallow_landlock_only_as_root = true", "linux.allow_landlock_only_as_root: project config may only tighten the policy"),
        ("[windows]\nmode = \"elevated\"", "windows.mode: project config may only tighten the policy"),
        ("[windows]\nprivate_desktop = false", "windows.private_desktop: project config may only tighten the policy"),
    ];
    for (text, want) in cases {
        write(&f.project, &format!("# project\n{text}\n"));
        let line = text.lines().count() + 1;
        assert_prefix(&f.err(), &format!("{p}:{line}: {want}"));
    }
    // Looser than the user's choice.
    write(&f.user, "mode = \"read-only\"\n");
    write(&f.project, "mode = \"workspace-write\"\n");
    assert_prefix(
        &f.err(),
        &format!("{p}:1: mode: project config may only tighten the policy; \"workspace-write\" is looser than \"read-only\" (set by user ({}:1))", f.user.display()),
    );
}

#[test]
fn command_line_overrides_user_and_defaults() {
    let f = fixture();
    let extra = f.dir("extra");
    write(&f.user, "mode = \"read-only\"\nnetwork = \"off\"\nkeep_processes = true\n");
    let r = f.load_with(Overrides {
        mode: Some(Mode::WorkspaceWrite),
        network: Some(Network::On),
        writable: vec![extra.clone()],
        keep_env: vec!["NPM_TOKEN".into()],
        keep_processes: Some(false),
        no_protected_paths: false,
        allow_net: vec![],
        no_audit: false,
    });
    assert_eq!(r.policy.mode, Mode::WorkspaceWrite);
    assert_eq!(r.policy.network, Network::On);
    assert!(!r.policy.keep_processes);
    assert_eq!(r.policy.writable_roots, vec![extra]);
    assert_eq!(r.policy.env.keep, vec!["NPM_TOKEN".to_string()]);
    for key in ["mode", "network", "keep_processes", "writable_roots[0]", "env.keep[0]"] {
        assert_eq!(r.source(key), Some(&Source::command_line()), "{key}");
    }
    assert_eq!(Source::command_line().to_string(), "command line");
}

#[test]
fn command_line_may_not_undo_project_tightenings() {
    let f = fixture();
    let p = f.project.display().to_string();
    write(&f.project, "mode = \"read-only\"\nnetwork = \"off\"\nkeep_processes = false\nprotected_paths = [\"x\"]\n");
    assert_prefix(
        &f.err_with(Overrides { network: Some(Network::On), ..Default::default() }),
        &format!("command line: --network: project config {p}:2 sets network = \"off\", which the command line may not loosen"),
    );
    assert_prefix(
        &f.err_with(Overrides { mode: Some(Mode::WorkspaceWrite), ..Default::default() }),
        &format!("command line: --mode: project config {p}:1 sets mode = \"read-only\""),
    );
    assert_prefix(
        &f.err_with(Overrides { keep_processes: Some(true), ..Default::default() }),
        &format!("command line: --keep-processes: project config {p}:3 sets keep_processes = false"),
    );
    assert_prefix(
        &f.err_with(Overrides { no_protected_paths: true, ..Default::default() }),
        &format!("command line: --no-protected-paths: project config {p}:4 adds protected_paths"),
    );
    // Agreeing with the project, or stricter, is fine.
    let r = f.load_with(Overrides { mode: Some(Mode::ReadOnly), network: Some(Network::Off), ..Default::default() });
    assert_eq!(r.policy.mode, Mode::ReadOnly);
    assert_eq!(r.source("mode"), Some(&Source::command_line()));
}

#[test]
fn no_protected_paths_drops_defaults_and_user_patterns() {
    let f = fixture();
    write(&f.user, "protected_paths = [\".husky\"]\n");
    let r = f.load_with(Overrides { no_protected_paths: true, ..Default::default() });
    assert!(r.policy.protected_paths.is_empty());
    assert_eq!(r.source("protected_paths"), Some(&Source::command_line()));
    assert!(r
        .render()
        .lines()
        .any(|l| l.starts_with("protected_paths") && l.contains("(none)") && l.ends_with("command line")));
}

#[test]
#[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
fn writable_with_read_only_is_an_error() {
    let f = fixture();
    let extra = f.dir("extra");
    assert_eq!(
        f.err_with(Overrides { mode: Some(Mode::ReadOnly), writable: vec![extra.clone()], ..Default::default() }),
        "command line: --writable: has no effect with --mode read-only"
    );
    write(&f.user, "mode = \"read-only\"\n");
    assert_prefix(
        &f.err_with(Overrides { writable: vec![extra.clone()], ..Default::default() }),
        &format!(
            "command line: --writable: has no effect: the mode is read-only (set by user ({}:1))",
            f.user.display()
        ),
    );
    write(
        &f.user,
        "mode = \"read-only\"\nwritable_roots = [\"{}\"]\n".replace("{}", &extra.display().to_string()).as_str(),
    );
    assert_eq!(
        f.err(),
        format!("{}:2: writable_roots: has no effect with mode = \"read-only\" (line 1)", f.user.display())
    );
}

#[test]
fn allow_read_removes_default_entries_only() {
    let f = fixture();
    write(&f.user, "allow_read = [\"~/.config/gh\"]\n");
    let r = f.load();
    assert!(!r.policy.deny_read.contains(&f.home.join(".config/gh")));
    assert!(r.policy.deny_read.contains(&f.home.join(".ssh")));
    // It changes the effective policy, so `palisade policy` shows it with its file and line.
    let gh = f.home.join(".config/gh").display().to_string();
    let line = r.render().lines().find(|l| l.starts_with("allow_read")).map(str::to_string).unwrap_or_default();
    assert!(line.contains(&gh) && line.contains(&format!("{}:1", f.user.display())), "{}", r.render());
    assert_eq!(r.to_json()["allow_read"][0]["value"], serde_json::json!(gh));
    write(&f.user, "allow_read = [\n\"~/.ssh\",\n\"~/.nothing\"]\n");
    assert_eq!(
        f.err(),
        format!(
            "{}:3: allow_read: {} is not one of the default deny_read entries",
            f.user.display(),
            f.home.join(".nothing").display()
        )
    );
}
