//! Pattern syntax, matching and the git config reader.

use super::*;

#[test]
fn invalid_patterns_are_errors() {
    for (p, why) in [
        ("", "is empty"),
        ("/etc", "must be relative"),
        (".git\\hooks", "separator"),
        ("a//b", "empty component"),
        ("../x", "`..`"),
        ("a/./b", "`.`"),
        ("a*/b", "whole component"),
    ] {
        let err = validate_pattern(p).unwrap_err();
        assert!(err.contains(why), "{p}: {err}");
        assert!(resolve(Path::new("/w"), &pats(&[p]), &Fixture::new()).is_err());
        assert!(!matches(p, Path::new("x"), false));
    }
    for p in DEFAULT_PATTERNS {
        validate_pattern(p).unwrap();
    }
}

#[test]
fn file_like_rule() {
    for p in
        [".envrc", ".mcp.json", ".git/config", ".git/config.worktree", ".git/info/attributes", ".vscode/settings.json"]
    {
        assert!(final_component_is_file(p), "{p}");
    }
    for p in [".git/hooks", ".vscode", ".palisade", ".idea", ".git/modules/*", "build.d/", ".git"] {
        assert!(!final_component_is_file(p), "{p}");
    }
}

#[test]
fn matching_is_exact_on_linux() {
    let d = defaults();
    for p in [
        ".git/hooks",
        ".git/hooks/pre-commit",
        ".git/config",
        ".git/modules/x/hooks/post-checkout",
        ".envrc",
        ".vscode/settings.json",
        "./.git/./hooks",
        "src/../.git/config",
    ] {
        assert!(is_protected(&d, Path::new(p), false), "{p}");
    }
    for p in [
        "src/main.rs",
        ".github/x",
        ".gitignore",
        ".git",
        ".git/HEAD",
        ".git/modules/x",
        ".GIT/hooks",
        ".git/config.",
        ".git\\hooks",
        "../w/.git/hooks",
        ".git/configs",
        "x/.git/hooks",
    ] {
        assert!(!is_protected(&d, Path::new(p), false), "{p}");
    }
}

#[test]
fn matching_on_windows_is_case_insensitive_and_normalized() {
    let d = defaults();
    for p in [
        ".GiT/HOOKS",
        ".GiT\\hooks\\x",
        ".git\\config:stream",
        ".git\\config::$DATA",
        ".git\\CONFIG.",
        ".git\\config. . ",
        ".git::$INDEX_ALLOCATION\\hooks",
        ".VSCode\\settings.json",
        ".git\\modules\\Sub\\Hooks\\pre-commit",
        "src\\..\\.git\\config",
    ] {
        assert!(is_protected(&d, Path::new(p), true), "{p}");
    }
    for p in ["src\\main.rs", ".github\\x", ".gitignore", ".git", ".git\\HEAD", "..\\.git\\hooks"] {
        assert!(!is_protected(&d, Path::new(p), true), "{p}");
    }
}

#[test]
fn windows_component_normalization() {
    assert_eq!(normalize_windows_component("config:stream"), "config");
    assert_eq!(normalize_windows_component("config::$DATA"), "config");
    assert_eq!(normalize_windows_component("CONFIG. "), "config");
    assert_eq!(normalize_windows_component(".Git"), ".git");
    assert_eq!(normalize_windows_component(".."), "");
}

#[test]
fn within_is_lexical_and_component_wise() {
    assert!(within(Path::new("/w/.git/hooks"), Path::new("/w")));
    assert!(within(Path::new("/w"), Path::new("/w")));
    assert!(within(Path::new("/w/./a"), Path::new("/w/")));
    assert!(!within(Path::new("/wx/a"), Path::new("/w")));
    assert!(!within(Path::new("/w/../etc"), Path::new("/w")));
}

#[test]
fn git_config_value_reads_the_last_core_setting() {
    let text =
        "[core]\n\tbare = false\n[remote \"core\"]\n\thooksPath = no\n[Core]\n  HooksPath = \".husky/_\" ; husky\n";
    assert_eq!(git_config_value(text, "core", "hookspath").as_deref(), Some(".husky/_"));
    assert_eq!(git_config_value("[core]\nhooksPath=a # x\nhookspath = b\n", "core", "hookspath").as_deref(), Some("b"));
    assert_eq!(git_config_value("[user]\nhooksPath = a\n", "core", "hookspath"), None);
}
