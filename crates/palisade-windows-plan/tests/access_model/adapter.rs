//! The tiny bridge from the plan's types to the model's: ACEs, changes, the token, and a
//! file-system view of a model tree for the policy crate's protected-path resolver.

use std::collections::BTreeMap;
use std::path::Path;

use palisade_policy::protected::{FsView, Kind};
use palisade_windows_plan::ace::{Ace, AceKind};
use palisade_windows_plan::token::{TokenPlan, WRITE_RESTRICTED};
use palisade_windows_plan::AclChange;

use super::model::{GroupState, ModelAce, Token, Tree, WRITE_BITS_MODIFYING};

pub fn key(path: &str) -> String {
    path.replace('/', "\\").to_lowercase()
}

pub fn model_ace(ace: &Ace) -> ModelAce {
    ModelAce {
        allow: ace.kind == AceKind::Allow,
        sid: ace.trustee.as_str().to_string(),
        mask: ace.mask,
        flags: ace.flags,
    }
}

/// Carries out a plan's changes on the tree the way the backend does (adding an ACE that is
/// there leaves it alone; removing one that is not there succeeds; a placeholder is removed
/// only if empty). New placeholders are owned by `owner`.
pub fn apply(tree: &mut Tree, changes: &[AclChange], owner: &str) {
    for c in changes {
        match c {
            AclChange::CreatePlaceholder { path, dir } => tree.add(path.as_str(), *dir, owner),
            AclChange::Add { path, ace } => {
                let node = tree.nodes.get_mut(&key(path.as_str())).unwrap_or_else(|| panic!("{c}: no such path"));
                let ace = model_ace(ace);
                if !node.explicit.contains(&ace) {
                    node.explicit.push(ace);
                }
            }
            AclChange::Remove { path, ace } => {
                if let Some(node) = tree.nodes.get_mut(&key(path.as_str())) {
                    let ace = model_ace(ace);
                    node.explicit.retain(|a| *a != ace);
                }
            }
            AclChange::RemovePlaceholder { path, .. } => {
                let k = key(path.as_str());
                let prefix = format!("{k}\\");
                if !tree.nodes.keys().any(|n| n.starts_with(&prefix)) {
                    tree.nodes.remove(&k);
                }
            }
        }
    }
}

/// The token a plan describes, made from the user's own token.
pub fn restricted_token(user: &Token, plan: &TokenPlan) -> Token {
    let mut t = user.clone();
    t.restricting = plan.sids().iter().map(|s| s.as_str().to_string()).collect();
    t.write_restricted = plan.flags & WRITE_RESTRICTED != 0;
    t.write_checked = WRITE_BITS_MODIFYING;
    t
}

/// The calling user's (UAC-filtered) token: Administrators deny-only.
pub fn user_token(user: &str, logon: &str) -> Token {
    Token::plain(
        user,
        &[
            ("S-1-1-0", GroupState::Enabled),
            ("S-1-5-32-545", GroupState::Enabled),
            ("S-1-5-4", GroupState::Enabled),
            ("S-1-5-11", GroupState::Enabled),
            (logon, GroupState::Enabled),
            ("S-1-5-32-544", GroupState::DenyOnly),
        ],
    )
}

/// A view of the tree for [`palisade_policy::protected::resolve`], keeping names' letter case.
pub struct TreeFs<'a> {
    pub tree: &'a Tree,
    pub names: &'a BTreeMap<String, String>,
}

impl FsView for TreeFs<'_> {
    fn kind(&self, path: &Path) -> Kind {
        match self.tree.nodes.get(&key(&path.to_string_lossy())) {
            None => Kind::Missing,
            Some(n) if n.dir => Kind::Dir,
            Some(_) => Kind::File,
        }
    }
    fn list_dir(&self, path: &Path) -> Vec<String> {
        let prefix = format!("{}\\", key(&path.to_string_lossy()));
        self.tree
            .nodes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('\\'))
            .map(|rest| {
                let full = format!("{prefix}{rest}");
                self.names.get(&full).map_or(rest.to_string(), |n| n.rsplit('\\').next().unwrap().to_string())
            })
            .collect()
    }
    fn read_small(&self, _path: &Path) -> Option<String> {
        None
    }
}
