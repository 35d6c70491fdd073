//! Which folders may become writable roots, and protected-path matching on Windows paths.
//!
//! A writable root gets an inheriting grant that the sandbox keeps between commands, so a root
//! that is too broad is refused outright, with a message that says why:
//!
//! * a drive, share or volume root (`C:\`, `\\server\share`): the whole volume;
//! * any profile folder itself (`C:\Users\alice`, `C:\Users\Public`) or the profiles directory
//!   (`C:\Users`), or any folder that contains the user's profile: profiles hold the registry
//!   hive, credentials, startup folders and every tool's configuration;
//! * the Windows directory, a Program Files directory, `ProgramData` itself, anything beneath
//!   the first two, and anything that contains one of them;
//! * a registry hive file (`NTUSER.DAT`, `UsrClass.dat` and their logs), or a folder that
//!   contains the user's hives;
//! * a folder that contains Palisade's own state (its SID registry and ACL records);
//! * a path through a DOS device name (`C:\w\nul`);
//! * a root inside a protected path of another root (its explicit grant would come before the
//!   protected path's inherited deny and win).
//!
//! Beneath-ness is lexical here: callers pass canonical paths ([`crate::path::canonicalize`]).

use std::path::Path;

use palisade_policy::protected;

use crate::path::{fold, WinPath};

/// Where Windows keeps what must never become a writable root, for one user on one machine.
/// The backend fills it from the known-folder API; tests use [`SystemLayout::typical`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemLayout {
    /// `%SystemRoot%` (`C:\Windows`).
    pub windows_dir: WinPath,
    /// `C:\Program Files`, `C:\Program Files (x86)`, ...
    pub program_files: Vec<WinPath>,
    /// `%ProgramData%` (`C:\ProgramData`).
    pub program_data: Option<WinPath>,
    /// The profiles directory (`C:\Users`).
    pub users_dir: WinPath,
    /// The user's profile (`C:\Users\alice`).
    pub profile: WinPath,
    /// Palisade's state directory (SID registry, ACL records).
    pub state_dir: Option<WinPath>,
}

impl SystemLayout {
    /// The default layout of a Windows installation on `C:` for `user`.
    pub fn typical(user: &str) -> SystemLayout {
        let p = |s: &str| WinPath::parse(s).expect("valid layout path");
        SystemLayout {
            windows_dir: p(r"C:\Windows"),
            program_files: vec![p(r"C:\Program Files"), p(r"C:\Program Files (x86)")],
            program_data: Some(p(r"C:\ProgramData")),
            users_dir: p(r"C:\Users"),
            profile: p(&format!(r"C:\Users\{user}")),
            state_dir: Some(p(&format!(r"C:\Users\{user}\AppData\Local\palisade"))),
        }
    }

    /// The user's registry hive files.
    pub fn hive_files(&self) -> Vec<WinPath> {
        let mut out = Vec::new();
        if let Ok(p) = self.profile.join("NTUSER.DAT") {
            out.push(p);
        }
        if let Ok(p) = self.profile.join(r"AppData\Local\Microsoft\Windows\UsrClass.dat") {
            out.push(p);
        }
        out
    }
}

/// Whether a file name is a registry hive or one of its transaction logs (`NTUSER.DAT`,
/// `ntuser.dat.LOG1`, `NTUSER.MAN`, `UsrClass.dat`, `ntuser.dat{guid}.TM.blf`).
pub fn is_hive_file_name(name: &str) -> bool {
    let n = fold(name);
    n.starts_with("NTUSER.DAT") || n == "NTUSER.MAN" || n.starts_with("USRCLASS.DAT")
}

/// Why a folder cannot be a writable root.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RootRefusal {
    #[error("refusing to make {root} writable: it is the root of a drive or share, so the whole volume would be writable; choose a project folder")]
    VolumeRoot { root: WinPath },
    #[error("refusing to make {root} writable: it is the profiles directory, which holds every user's profile")]
    UsersDir { root: WinPath },
    #[error("refusing to make {root} writable: it is a user profile folder, which holds the registry hive, credentials and every tool's settings; choose a project folder inside it")]
    ProfileRoot { root: WinPath },
    #[error("refusing to make {root} writable: it contains the user profile {profile}")]
    ContainsProfile { root: WinPath, profile: WinPath },
    #[error("refusing to make {root} writable: it is or lies inside the system folder {system}")]
    SystemDir { root: WinPath, system: WinPath },
    #[error("refusing to make {root} writable: it contains the system folder {system}")]
    ContainsSystemDir { root: WinPath, system: WinPath },
    #[error("refusing to make {root} writable: it is a registry hive file")]
    HiveFile { root: WinPath },
    #[error("refusing to make {root} writable: it contains the registry hive {hive}")]
    ContainsHive { root: WinPath, hive: WinPath },
    #[error("refusing to make {root} writable: it contains palisade's own state in {state}, which a sandboxed command must not change")]
    ContainsState { root: WinPath, state: WinPath },
    #[error("refusing to make {root} writable: `{component}` is a DOS device name, not a folder")]
    DeviceName { root: WinPath, component: String },
    #[error("refusing to make {root} writable: it lies inside the protected path {protected} of the writable root {other}, which must stay read-only")]
    InsideProtected { root: WinPath, other: WinPath, protected: WinPath },
}

/// Checks one writable root (canonical) against the rules in the module documentation.
pub fn check_writable_root(root: &WinPath, layout: &SystemLayout) -> Result<(), RootRefusal> {
    let root = root.without_stream();
    let r = || root.clone();
    if root.is_root() {
        return Err(RootRefusal::VolumeRoot { root: r() });
    }
    if let Some(c) = root.dos_device_component() {
        return Err(RootRefusal::DeviceName { root: r(), component: c.to_string() });
    }
    if root == layout.users_dir {
        return Err(RootRefusal::UsersDir { root: r() });
    }
    if root == layout.profile || root.parent().as_ref() == Some(&layout.users_dir) {
        return Err(RootRefusal::ProfileRoot { root: r() });
    }
    if layout.profile.is_beneath(&root) || layout.users_dir.is_beneath(&root) {
        return Err(RootRefusal::ContainsProfile { root: r(), profile: layout.profile.clone() });
    }
    for system in std::iter::once(&layout.windows_dir).chain(&layout.program_files) {
        if root.is_beneath(system) {
            return Err(RootRefusal::SystemDir { root: r(), system: system.clone() });
        }
        if system.is_beneath(&root) {
            return Err(RootRefusal::ContainsSystemDir { root: r(), system: system.clone() });
        }
    }
    if let Some(pd) = &layout.program_data {
        // Folders beneath ProgramData may be chosen explicitly; ProgramData itself may not.
        if pd.is_beneath(&root) {
            return Err(RootRefusal::ContainsSystemDir { root: r(), system: pd.clone() });
        }
    }
    if root.file_name().is_some_and(is_hive_file_name) {
        return Err(RootRefusal::HiveFile { root: r() });
    }
    for hive in layout.hive_files() {
        if hive.is_beneath(&root) {
            return Err(RootRefusal::ContainsHive { root: r(), hive });
        }
    }
    if let Some(state) = &layout.state_dir {
        if state.is_beneath(&root) {
            return Err(RootRefusal::ContainsState { root: r(), state: state.clone() });
        }
    }
    Ok(())
}

/// The `\`-joined relative path of `path` beneath `root`, if it is beneath it.
pub fn relative_path(path: &WinPath, root: &WinPath) -> Option<String> {
    path.relative_to(root).map(|c| c.join("\\"))
}

/// Whether `path` is, or lies inside, one of `patterns`' protected paths under `root`, with
/// Windows semantics (letter case, streams, trailing dots and spaces do not matter). Uses
/// [`protected::is_protected`], so the rules are the policy crate's.
pub fn is_protected_under(root: &WinPath, path: &WinPath, patterns: &[String]) -> bool {
    match relative_path(path, root) {
        Some(rel) if !rel.is_empty() => protected::is_protected(patterns, Path::new(&rel), true),
        _ => false,
    }
}

/// The protected path (as `root` joined with the matching prefix of `path`) that `path` lies in,
/// if any.
fn protected_ancestor(root: &WinPath, path: &WinPath, patterns: &[String]) -> Option<WinPath> {
    let rel = path.relative_to(root)?;
    (1..=rel.len()).find_map(|n| {
        let prefix = rel[..n].join("\\");
        if protected::is_protected(patterns, Path::new(&prefix), true) {
            root.join(&prefix).ok()
        } else {
            None
        }
    })
}

/// Checks a whole set of writable roots: each one alone ([`check_writable_root`]), and no root
/// inside another root's protected paths.
pub fn check_writable_roots(roots: &[WinPath], layout: &SystemLayout, patterns: &[String]) -> Result<(), RootRefusal> {
    for root in roots {
        check_writable_root(root, layout)?;
    }
    for root in roots {
        for other in roots {
            if root == other {
                continue;
            }
            if let Some(protected) = protected_ancestor(other, root, patterns) {
                return Err(RootRefusal::InsideProtected { root: root.clone(), other: other.clone(), protected });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> WinPath {
        WinPath::parse(s).unwrap()
    }

    fn check(s: &str) -> Result<(), RootRefusal> {
        check_writable_root(&p(s), &SystemLayout::typical("alice"))
    }

    fn defaults() -> Vec<String> {
        protected::DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ordinary_project_folders_are_fine() {
        for ok in [
            r"C:\Users\alice\src\project",
            r"C:\Users\alice\AppData\Local\Temp\palisade-1234",
            r"D:\work\project",
            r"C:\dev",
            r"\\server\share\project",
            r"C:\ProgramData\some-tool\cache",
            r"C:\Users\alice\Documents",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn volume_roots() {
        for root in [r"C:\", r"d:/", r"\\?\E:\", r"\\server\share", r"\\?\Volume{1234}\", r"C:\x\.."] {
            assert!(matches!(check(root), Err(RootRefusal::VolumeRoot { .. })), "{root}");
        }
        let msg = check(r"C:\").unwrap_err().to_string();
        assert!(msg.contains(r"C:\") && msg.contains("whole volume"), "{msg}");
    }

    #[test]
    fn profiles() {
        assert!(matches!(check(r"C:\Users"), Err(RootRefusal::UsersDir { .. })));
        assert!(matches!(check(r"c:\users\ALICE"), Err(RootRefusal::ProfileRoot { .. })));
        assert!(matches!(check(r"C:\Users\alice\."), Err(RootRefusal::ProfileRoot { .. })));
        assert!(matches!(check(r"C:\Users\bob"), Err(RootRefusal::ProfileRoot { .. })));
        assert!(matches!(check(r"C:\Users\Public"), Err(RootRefusal::ProfileRoot { .. })));
        // A profile in an unusual place is still protected by containment.
        let mut layout = SystemLayout::typical("alice");
        layout.users_dir = p(r"D:\Homes");
        layout.profile = p(r"D:\Homes\alice");
        assert!(matches!(check_writable_root(&p(r"D:\Homes"), &layout), Err(RootRefusal::UsersDir { .. })));
        layout.profile = p(r"D:\Elsewhere\deep\alice");
        assert!(matches!(check_writable_root(&p(r"D:\Elsewhere"), &layout), Err(RootRefusal::ContainsProfile { .. })));
    }

    #[test]
    fn system_folders() {
        for root in [r"C:\Windows", r"C:\WINDOWS\System32", r"C:\Windows\Temp", r"C:\Program Files\Git", r"C:\PROGRA~1"]
        {
            let r = check(root);
            // `PROGRA~1` is an 8.3 name: lexically it is not Program Files. Callers canonicalize
            // first (see `path::canonicalize`); this asserts the lexical rule only.
            if root.contains('~') {
                assert_eq!(r, Ok(()));
            } else {
                assert!(matches!(r, Err(RootRefusal::SystemDir { .. })), "{root}: {r:?}");
            }
        }
        assert!(matches!(check(r"C:\Program Files (x86)\x"), Err(RootRefusal::SystemDir { .. })));
        assert!(matches!(check(r"C:\ProgramData"), Err(RootRefusal::ContainsSystemDir { .. })));
        let mut layout = SystemLayout::typical("alice");
        layout.program_files = vec![p(r"D:\Apps\Program Files")];
        assert!(matches!(check_writable_root(&p(r"D:\Apps"), &layout), Err(RootRefusal::ContainsSystemDir { .. })));
    }

    #[test]
    fn registry_hives() {
        assert!(is_hive_file_name("NTUSER.DAT"));
        assert!(is_hive_file_name("ntuser.dat.LOG1"));
        assert!(is_hive_file_name("NTUSER.DAT{016888bd-6c6f-11de-8d1d-001e0bcde3ec}.TM.blf"));
        assert!(is_hive_file_name("UsrClass.dat"));
        assert!(is_hive_file_name("ntuser.man"));
        assert!(!is_hive_file_name("ntuser.ini"));
        assert!(matches!(check(r"D:\backup\NTUSER.DAT"), Err(RootRefusal::HiveFile { .. })));
        assert!(matches!(check(r"D:\backup\ntuser.dat:stream"), Err(RootRefusal::HiveFile { .. })));
        assert!(matches!(
            check(r"C:\Users\alice\AppData\Local\Microsoft\Windows"),
            Err(RootRefusal::ContainsHive { .. })
        ));
        assert!(matches!(check(r"C:\Users\alice\AppData"), Err(RootRefusal::ContainsHive { .. })));
        assert_eq!(check(r"C:\Users\alice\AppData\Local\Microsoft\Windows\INetCache"), Ok(()));
    }

    #[test]
    fn palisade_state_and_devices() {
        // AppData\Local contains UsrClass.dat too; the hive rule fires first.
        assert!(check(r"C:\Users\alice\AppData\Local").is_err());
        let mut layout = SystemLayout::typical("alice");
        layout.state_dir = Some(p(r"D:\tools\palisade\state"));
        assert!(matches!(check_writable_root(&p(r"D:\tools"), &layout), Err(RootRefusal::ContainsState { .. })));
        assert!(matches!(check(r"C:\dev\NUL"), Err(RootRefusal::DeviceName { .. })));
        assert!(matches!(check(r"C:\dev\com1.txt\x"), Err(RootRefusal::DeviceName { .. })));
    }

    #[test]
    fn protected_matching_is_windows_aware() {
        let root = p(r"C:\Work");
        let pats = defaults();
        for yes in [
            r"C:\Work\.git\hooks",
            r"c:\work\.GIT\Hooks\pre-commit",
            r"C:\Work\.git\config:evil:$DATA",
            r"C:\Work\.git\config.",
            r"C:\Work\.git\config  ",
            r"C:\Work\.git::$INDEX_ALLOCATION\hooks\x",
            r"C:\Work\.VSCODE\settings.json",
            r"C:\Work\.git\modules\sub\HOOKS",
            r"C:\Work\src\..\.envrc",
        ] {
            assert!(is_protected_under(&root, &p(yes), &pats), "{yes}");
        }
        for no in
            [r"C:\Work\.git\HEAD", r"C:\Work\src\.git\hooks", r"C:\Work", r"C:\Other\.git\hooks", r"C:\Work\.gitignore"]
        {
            assert!(!is_protected_under(&root, &p(no), &pats), "{no}");
        }
    }

    #[test]
    fn root_inside_another_roots_protected_path() {
        let layout = SystemLayout::typical("alice");
        let pats = defaults();
        let roots = [p(r"C:\Work"), p(r"C:\work\.Git\HOOKS\sub")];
        let e = check_writable_roots(&roots, &layout, &pats).unwrap_err();
        assert_eq!(
            e,
            RootRefusal::InsideProtected {
                root: p(r"C:\work\.Git\HOOKS\sub"),
                other: p(r"C:\Work"),
                protected: p(r"C:\Work\.git\hooks"),
            }
        );
        // Nested roots are fine when the inner one is not protected.
        assert_eq!(check_writable_roots(&[p(r"C:\Work"), p(r"C:\Work\target")], &layout, &pats), Ok(()));
        // A single bad root is reported by the set check too.
        assert!(check_writable_roots(&[p(r"C:\Work"), p(r"C:\")], &layout, &pats).is_err());
    }
}
