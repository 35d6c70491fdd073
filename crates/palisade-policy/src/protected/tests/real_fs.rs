//! Resolution through the real filesystem.

use super::*;

#[test]
fn real_fs_resolves_a_temporary_repository() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
    std::fs::write(root.join(".git/config"), "").unwrap();
    std::fs::write(root.join(".envrc"), "").unwrap();
    let got = resolve(&root, &pats(&[".git/hooks", ".git/config", ".envrc", ".vscode"]), &RealFs).unwrap();
    assert_eq!(
        got,
        vec![
            Action::ReadOnly(root.join(".envrc")),
            Action::Pin(root.join(".git")),
            Action::Placeholder { path: root.join(".vscode"), dir: true },
            Action::ReadOnly(root.join(".git/config")),
            Action::ReadOnly(root.join(".git/hooks")),
        ]
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join(".git/hooks"), root.join(".claude")).unwrap();
        assert!(matches!(resolve(&root, &pats(&[".claude"]), &RealFs), Err(ProtectError::Symlink { .. })));
    }
}

/// A setting past the first 4 KiB of a git config (many remotes, then an `[include]`) is
/// seen too.
#[test]
fn real_fs_reads_a_long_config_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let mut config = String::new();
    for i in 0..200 {
        config.push_str(&format!("[remote \"r{i}\"]\n\turl = https://example.invalid/{i}.git\n"));
    }
    config.push_str("[include]\n\tpath = ../.gitconfig.local\n");
    assert!(config.len() > 8192);
    std::fs::write(root.join(".git/config"), &config).unwrap();
    assert_eq!(RealFs.read_small(&root.join(".git/config")).unwrap(), config);
    let got = resolve(&root, &pats(&[".git/config"]), &RealFs).unwrap();
    assert!(
        got.contains(&Action::Placeholder { path: root.join(".gitconfig.local"), dir: false }) || cfg!(windows),
        "{got:#?}"
    );
}
