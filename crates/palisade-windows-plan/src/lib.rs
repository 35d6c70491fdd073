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
//! | [`token`] | the write-restricted token: restricting SIDs, kept privileges, default DACL |
//! | [`audit`] | which folders a broad group may write, where to look, within a time bound |
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

pub mod ace;
pub mod acl;
pub mod audit;
pub mod path;
pub mod roots;
pub mod sid;
pub mod token;

pub use ace::{Ace, AceKind};
pub use acl::{cleanup_plan, desired_acl, plan, AclChange, DesiredAcl, RecordedAcl, RootSpec};
pub use path::{is_beneath, WinPath};
pub use roots::{check_writable_root, check_writable_roots, RootRefusal, SystemLayout};
pub use sid::{SidRegistry, SidString};
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

    #[test]
    fn default_patterns_refuse_a_root_inside_dot_git() {
        let mut policy = Policy::new(r"C:\src\app", None);
        policy.writable_roots = vec![r"C:\src\app\.git\hooks\x".into()];
        let roots = policy_roots(&policy, &[]).unwrap();
        let e = check_writable_roots(&roots, &SystemLayout::typical("alice"), &policy.protected_paths).unwrap_err();
        assert!(matches!(e, RootRefusal::InsideProtected { .. }), "{e}");
    }
}
