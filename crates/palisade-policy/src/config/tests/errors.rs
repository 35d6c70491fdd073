//! Malformed and unreadable files: one-line errors with file, line and key.

use super::*;

#[test]
fn a_project_file_may_ask_for_only_so_many_protected_paths() {
    let f = fixture();
    let many: Vec<String> = (0..MAX_PROJECT_PATTERNS + 1).map(|i| format!("\"gen/p{i}\"")).collect();
    write(&f.project, &format!("protected_paths = [{}]\n", many.join(", ")));
    let e = f.err();
    assert!(
        e.starts_with(&format!(
            "{}:1: protected_paths: {} patterns; a project file may add at most",
            f.project.display(),
            MAX_PROJECT_PATTERNS + 1
        )),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);
    let deep = vec!["d"; MAX_PROJECT_PATTERN_DEPTH + 1].join("/");
    write(&f.project, &format!("protected_paths = [\n\"{deep}\"]\n"));
    assert!(f.err().starts_with(&format!("{}:2: protected_paths: pattern", f.project.display())), "{}", f.err());
    // The user's own file is not bounded, and the bound itself is fine in a project file.
    write(&f.project, &format!("protected_paths = [{}]\n", many[..MAX_PROJECT_PATTERNS].join(", ")));
    assert_eq!(f.load().policy.protected_paths.iter().filter(|p| p.starts_with("gen/")).count(), MAX_PROJECT_PATTERNS);
    fs::remove_file(&f.project).unwrap();
    write(&f.user, &format!("protected_paths = [{}]\n", many.join(", ")));
    assert!(f.load().policy.protected_paths.len() > MAX_PROJECT_PATTERNS);
}

#[test]
fn malformed_files_are_one_line_errors_with_file_and_line() {
    let f = fixture();
    let u = f.user.display().to_string();
    let cases: &[(&str, String)] = &[
        ("mode = \"workspace-write\"\nmodes = 1\n", format!("{u}:2: modes: unknown key (known keys: mode, network,")),
        ("[env]\nkeeps = []\n", format!("{u}:2: env.keeps: unknown key (known keys: keep, secret_patterns)")),
        ("[linux]\nlandlock = true\n", format!("{u}:2: linux.landlock: unknown key")),
        ("[macos]\nx = 1\n", format!("{u}:1: macos: unknown key")),
        ("mode = 1\n", format!("{u}:1: mode: expected a string (\"read-only\", \"workspace-write\", \"full-access\"), found an integer")),
        ("[windows]\nprivate_desktop = true\n", format!("{u}:2: windows.private_desktop: true is not supported yet (no backend can run a command on a separate desktop); remove it or set it to false")),
        ("network = false\n", format!("{u}:1: network: expected a string (\"off\", \"allow\", \"on\"), found a boolean")),
        ("keep_processes = \"yes\"\n", format!("{u}:1: keep_processes: expected a boolean (true or false), found a string")),
        ("env = 3\n", format!("{u}:1: env: expected a table, found an integer")),
        ("deny_read = \"~/.x\"\n", format!("{u}:1: deny_read: expected an array of strings, found a string")),
        ("mode = \"readonly\"\n", format!("{u}:1: mode: expected one of \"read-only\", \"workspace-write\", \"full-access\", found \"readonly\"")),
        ("network = \"maybe\"\n", format!("{u}:1: network: expected one of \"off\", \"allow\", \"on\", found \"maybe\"")),
        ("[windows]\nmode = \"admin\"\n", format!("{u}:2: windows.mode: expected one of \"unelevated\", \"elevated\"")),
        ("\nmode = \"read-only\"\nmode = \"full-access\"\n", format!("{u}:3: mode: duplicate key")),
        ("[env]\nkeep = []\nkeep = []\n", format!("{u}:3: env.keep: duplicate key")),
        ("mode = \"read-only\n", format!("{u}:1: invalid TOML: ")),
        ("\n\nmode = = 1\n", format!("{u}:3: invalid TOML: ")),
        ("protected_paths = [\"../x\"]\n", format!("{u}:1: protected_paths: pattern \"../x\" may not contain a `..` component")),
        ("protected_paths = [\"/etc\"]\n", format!("{u}:1: protected_paths: pattern \"/etc\" must be relative")),
        ("deny_read = [\"\"]\n", format!("{u}:1: deny_read: empty path")),
        ("deny_read = [\"rel\"]\n", format!("{u}:1: deny_read: \"rel\" must be absolute or start with ~/")),
        ("[env]\nkeep = [\"A=B\"]\n", format!("{u}:2: env.keep: \"A=B\" is not an environment variable name")),
        ("[env]\nsecret_patterns = [\"\"]\n", format!("{u}:2: env.secret_patterns: \"\" is not a variable name pattern")),
    ];
    for (text, want) in cases {
        write(&f.user, text);
        assert_prefix(&f.err(), want);
    }
    fs::remove_file(&f.user).unwrap();
    assert_prefix(
        &f.err_with(Overrides { keep_env: vec!["".into()], ..Default::default() }),
        "command line: --keep-env: \"\" is not an environment variable name",
    );
}

#[test]
fn malformed_managed_file() {
    let f = fixture();
    let m = f.managed.display().to_string();
    for (text, want) in [
        ("allowed_modes = []\n", format!("{m}:1: allowed_modes: must allow at least one mode")),
        ("allowed_modes = [\"sudo\"]\n", format!("{m}:1: allowed_modes: expected one of")),
        ("mode = \"read-only\"\n", format!("{m}:1: mode: unknown key (known keys: allowed_modes,")),
        ("[env]\nkeep = []\n", format!("{m}:2: env.keep: unknown key")),
        ("deny_read = [\"relative\"]\n", format!("{m}:1: deny_read: \"relative\" must be absolute")),
    ] {
        write(&f.managed, text);
        assert_prefix(&f.err(), &want);
    }
}

#[test]
fn unreadable_files_are_errors_missing_ones_are_not() {
    let f = fixture();
    fs::create_dir_all(&f.user).unwrap(); // a directory where the file should be
    assert_prefix(&f.err(), &format!("{}: cannot read: ", f.user.display()));
    assert_prefix(&f.err(), &format!("{}: cannot read: it is a directory, not a regular file", f.user.display()));
    fs::remove_dir(&f.user).unwrap();
    let r = load(&LoadRequest { user_config: Some(f.root.join("none.toml")), ..f.req(Overrides::default()) }).unwrap();
    assert_eq!(r.policy.mode, Mode::WorkspaceWrite);
    // Too large to be a configuration: an error, not an unbounded read.
    write(&f.project, &format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES as usize)));
    assert_prefix(&f.err(), &format!("{}: cannot read: larger than", f.project.display()));
    fs::remove_file(&f.project).unwrap();
    #[cfg(unix)]
    {
        // A repository's project file that is a FIFO (the open would wait for a writer
        // forever) or a link to /dev/zero (read until memory runs out) is refused at once.
        std::os::unix::fs::symlink("/dev/zero", &f.project).unwrap();
        assert_prefix(&f.err(), &format!("{}: cannot read: it is a special file", f.project.display()));
        fs::remove_file(&f.project).unwrap();
        let st = std::process::Command::new("mkfifo").arg(&f.project).status().unwrap();
        assert!(st.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let req = f.req(Overrides::default());
        std::thread::spawn(move || tx.send(load(&req).map(|_| ()).unwrap_err().to_string()));
        let e = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("loading a FIFO project file hangs");
        assert_prefix(&e, &format!("{}: cannot read: it is a special file", f.project.display()));
    }
}

#[test]
fn inline_and_dotted_tables_work() {
    let f = fixture();
    write(&f.user, "env.keep = [\"A\"]\nlinux = { allow_landlock_only = true }\n");
    let r = f.load();
    assert_eq!(r.policy.env.keep, vec!["A".to_string()]);
    assert!(r.linux.allow_landlock_only);
    assert_eq!(r.source("env.keep[0]"), Some(&user(&f, 1)));
    assert_eq!(r.source("linux.allow_landlock_only"), Some(&user(&f, 2)));
}
