//! Every decision of Palisade's unelevated Windows sandbox, as platform-free data and pure
//! functions: this crate compiles and is unit-tested on any host, and the Windows backend only
//! carries its answers out.
//!
//! | module | decides |
//! | --- | --- |
//! | [`path`] | what a Windows path means: `C:\x`, `\\?\C:\x`, `\\server\share\x`, `/`, `..`, trailing dots and spaces, `file:stream:$DATA`, letter case; [`path::is_beneath`]; the [`path::LongPathResolver`] seam for 8.3 names and links |
//! | [`roots`] | which folders may not become writable roots ([`roots::RootRefusal`]), protected-path matching on Windows paths |
//! | [`sid`] | SID strings, Palisade's synthetic write and sandbox SIDs, the per-root [`sid::SidRegistry`] |
//! | [`ace`] | access masks, inheritance flags and ACEs as data |
//! | [`acl`] | the ACEs the sandbox keeps on disk, the record of what was applied, and [`acl::plan`] / [`acl::cleanup_plan`] |
//! | [`token`] | the write-restricted token: restricting SIDs, deny-only administrative groups, kept privileges, default DACL |
//! | [`command_identity`] | the elevated mode's per-command identity: the command SID, the restricting SIDs without the account, the default DACL, the private temporary folder's name and DACL |
//! | [`audit`] | which folders a broad group may write, where to look, within a time bound |
//! | [`grant_target`] | whether the object the elevated setup opened by handle is the one its read grant names (no reparse point, one name, the expected final path) |
//!
//! The flow for one command in `workspace-write` mode:
//!
//! 1. [`policy_roots`] → canonicalize each with [`path::canonicalize`] →
//!    [`roots::check_writable_roots`];
//! 2. a write SID per root from the [`sid::SidRegistry`]; the policy crate's
//!    [`palisade_policy::protected::resolve`] per root, converted with
//!    [`acl::protected_items`];
//! 3. the audit ([`audit::audit_candidates`], [`audit::run_audit`]) for folders to deny;
//! 4. [`acl::desired_acl`] → [`acl::plan`] against the [`acl::RecordedAcl`]; nothing to do when
//!    the policy did not change;
//! 5. [`token::token_plan`] for the command's token.

#![forbid(unsafe_code)]

pub mod ace;
pub mod acl;
pub mod audit;
pub mod command_identity;
pub mod console;
pub mod grant_target;
pub mod path;
pub mod roots;
pub mod sid;
pub mod token;

pub use ace::{Ace, AceKind};
pub use acl::{cleanup_plan, desired_acl, plan, AclChange, DesiredAcl, RecordedAcl, RootSpec};
pub use path::{is_beneath, WinPath};
pub use roots::{check_writable_root, check_writable_roots, RootRefusal, SystemLayout};
pub use sid::{Sid, SidRegistry, SidString};
pub use token::{token_plan, TokenPlan};

use palisade_policy::{Mode, Policy};

/// The writable roots of a policy as Windows paths, the workspace first, followed by `extra`
/// (the command's private temporary folder), without duplicates (letter case ignored).
/// Empty in `read-only` mode and in `full-access` mode (which runs without a sandbox).
pub fn policy_roots(policy: &Policy, extra: &[WinPath]) -> Result<Vec<WinPath>, path::PathError> {
    if policy.mode != Mode::WorkspaceWrite {
        return Ok(Vec::new());
    }
    let mut out: Vec<WinPath> = Vec::new();
    let parsed: Result<Vec<WinPath>, _> =
        policy.write_roots().iter().map(|r| WinPath::parse(&r.to_string_lossy())).collect();
    for r in parsed?.into_iter().chain(extra.iter().cloned()) {
        let r = r.without_stream();
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> WinPath {
        WinPath::parse(s).unwrap()
    }

    #[test]
    fn roots_of_a_policy() {
        let mut policy = Policy::new(r"C:\Users\alice\src\app", None);
        policy.writable_roots = vec![r"D:\cache".into(), r"c:\users\ALICE\src\app".into()];
        let tmp = p(r"C:\Users\alice\AppData\Local\Temp\palisade-42");
        let roots = policy_roots(&policy, &[tmp.clone(), p(r"d:\CACHE")]).unwrap();
        assert_eq!(roots, [p(r"C:\Users\alice\src\app"), p(r"D:\cache"), tmp]);

        policy.mode = Mode::ReadOnly;
        assert_eq!(policy_roots(&policy, &[]).unwrap(), vec![]);
        policy.mode = Mode::FullAccess;
        assert_eq!(policy_roots(&policy, &[]).unwrap(), vec![]);

        policy.mode = Mode::WorkspaceWrite;
        policy.writable_roots = vec!["relative".into()];
        assert!(policy_roots(&policy, &[]).is_err());
    }

    /// A Windows file system fixture for the policy crate's resolver, keyed by [`WinPath`] so
    /// that the `C:\Work/.git` paths `std::path` builds on a Unix host still match. `None` is a
    /// directory, `Some(text)` a file.
    struct WinFs(std::collections::BTreeMap<WinPath, Option<String>>);

    impl WinFs {
        fn new(dirs: &[&str], files: &[&str]) -> WinFs {
            let mut fs = WinFs(std::collections::BTreeMap::new());
            for d in dirs {
                fs.0.insert(p(d), None);
            }
            for f in files {
                fs.0.insert(p(f), Some(String::new()));
            }
            fs
        }
        fn get(&self, path: &std::path::Path) -> Option<&Option<String>> {
            self.0.get(&WinPath::parse(&path.to_string_lossy()).ok()?)
        }
        fn is_dir(&self, path: &WinPath) -> bool {
            self.0.get(path) == Some(&None)
        }
        /// Carries out the placeholder changes of a plan.
        fn apply(&mut self, changes: &[AclChange]) {
            for c in changes {
                if let AclChange::CreatePlaceholder { path, dir } = c {
                    self.0.entry(path.clone()).or_insert(if *dir { None } else { Some(String::new()) });
                }
            }
        }
    }

    impl palisade_policy::protected::FsView for WinFs {
        fn kind(&self, path: &std::path::Path) -> palisade_policy::protected::Kind {
            use palisade_policy::protected::Kind;
            match self.get(path) {
                None => Kind::Missing,
                Some(None) => Kind::Dir,
                Some(Some(_)) => Kind::File,
            }
        }
        fn list_dir(&self, path: &std::path::Path) -> Vec<String> {
            let Ok(dir) = WinPath::parse(&path.to_string_lossy()) else {
                return Vec::new();
            };
            self.0
                .keys()
                .filter(|k| k.parent().as_ref() == Some(&dir))
                .filter_map(|k| k.file_name().map(String::from))
                .collect()
        }
        fn read_small(&self, path: &std::path::Path) -> Option<String> {
            self.get(path).cloned().flatten()
        }
    }

    /// What the backend does before every command: policy → roots → SIDs → protected paths →
    /// desired ACEs.
    fn desired_for(policy: &Policy, fs: &WinFs, registry: &mut SidRegistry, recorded: &RecordedAcl) -> DesiredAcl {
        let roots = policy_roots(policy, &[]).unwrap();
        check_writable_roots(&roots, &SystemLayout::typical("alice"), &policy.protected_paths).unwrap();
        let mut next = registry.roots.len() as u8;
        let specs: Vec<RootSpec> = roots
            .iter()
            .map(|root| {
                let sid = registry.assign(root, 1_700_000_000, || {
                    next += 1;
                    [next; 16]
                });
                let root_path = root.to_string();
                let actions =
                    palisade_policy::protected::resolve(std::path::Path::new(&root_path), &policy.protected_paths, fs)
                        .unwrap();
                let items = acl::protected_items(&actions, |p| fs.is_dir(p)).unwrap();
                RootSpec { root: root.clone(), sid, protected: acl::stabilize_items(items, &recorded.placeholders) }
            })
            .collect();
        let sandbox = registry.sandbox_sid(|| [0xEE; 16]);
        desired_acl("host-1", &specs, &[], &sandbox).unwrap()
    }

    /// Applies a plan like the backend: write-ahead, changes, commit.
    fn apply(desired: &DesiredAcl, recorded: &mut RecordedAcl, fs: &mut WinFs) -> Vec<AclChange> {
        let changes = plan(desired, recorded);
        recorded.begin(&changes);
        fs.apply(&changes);
        recorded.commit(desired);
        changes
    }

    #[test]
    fn whole_flow_from_a_policy_settles_after_one_run() {
        let mut fs = WinFs::new(
            &[r"C:\Work", r"C:\Work\.git", r"C:\Work\.git\hooks", r"C:\Work\src", r"D:\cache"],
            &[r"C:\Work\.git\config", r"C:\Work\.git\HEAD"],
        );
        let mut registry = SidRegistry::new();
        let mut recorded = RecordedAcl::new();
        let mut policy = Policy::new(r"C:\Work", None);

        let first = apply(&desired_for(&policy, &fs, &mut registry, &recorded), &mut recorded, &mut fs);
        // Placeholders for the missing default paths come first, and are then denied.
        for (path, dir) in [
            (r"C:\Work\.vscode", true),
            // In the work tree every placeholder is a folder (git does not list empty ones).
            (r"C:\Work\.envrc", true),
            (r"C:\Work\.git\info", true),
            (r"C:\Work\.git\modules", true),
        ] {
            assert!(first.contains(&AclChange::CreatePlaceholder { path: p(path), dir }), "{path}: {first:#?}");
        }
        assert!(!first.iter().any(|c| c.path() == &p(r"C:\Work\.git\HEAD")));

        // The placeholders exist now, and the policy crate sees .git\info and .git\modules as
        // ordinary directories; the desired state is the same all the same.
        for _ in 0..3 {
            let again = desired_for(&policy, &fs, &mut registry, &recorded);
            assert_eq!(plan(&again, &recorded), vec![]);
        }

        // One more writable root: its two grants, and the placeholders and denies of its own
        // protected paths; nothing elsewhere.
        policy.writable_roots.push(r"D:\cache".into());
        let changes = apply(&desired_for(&policy, &fs, &mut registry, &recorded), &mut recorded, &mut fs);
        assert!(changes.iter().all(|c| c.path().is_beneath(&p(r"D:\cache"))), "{changes:#?}");
        let grants =
            changes.iter().filter(|c| matches!(c, AclChange::Add { ace, .. } if ace.kind == AceKind::Allow)).count();
        assert_eq!(grants, 2);
        assert_eq!(plan(&desired_for(&policy, &fs, &mut registry, &recorded), &recorded), vec![]);

        // Uninstall: every ACE goes, then the placeholders, deepest first.
        let cleanup = cleanup_plan(&recorded);
        let removes = cleanup.iter().filter(|c| matches!(c, AclChange::Remove { .. })).count();
        assert_eq!(removes, recorded.entries.len());
        let placeholders: Vec<&AclChange> =
            cleanup.iter().filter(|c| matches!(c, AclChange::RemovePlaceholder { .. })).collect();
        assert_eq!(placeholders.len(), recorded.placeholders.len());
        assert!(cleanup
            .iter()
            .rev()
            .take(placeholders.len())
            .all(|c| matches!(c, AclChange::RemovePlaceholder { .. })));
    }

    #[test]
    fn default_patterns_refuse_a_root_inside_dot_git() {
        let mut policy = Policy::new(r"C:\src\app", None);
        policy.writable_roots = vec![r"C:\src\app\.git\hooks\x".into()];
        let roots = policy_roots(&policy, &[]).unwrap();
        let e = check_writable_roots(&roots, &SystemLayout::typical("alice"), &policy.protected_paths).unwrap_err();
        assert!(matches!(e, RootRefusal::InsideProtected { .. }), "{e}");
    }
}
