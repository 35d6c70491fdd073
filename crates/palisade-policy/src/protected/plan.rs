//! The plan of actions for one root, and the walk of one pattern from an existing directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Action, FsView, Kind, ProtectError};

/// What [`resolve`] has decided for one path so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    Pin,
    Placeholder { dir: bool },
    ReadOnly,
}

#[derive(Default)]
pub(super) struct Plan(BTreeMap<PathBuf, Decision>);

impl Plan {
    pub(super) fn add(&mut self, path: PathBuf, d: Decision) {
        use Decision::*;
        let merged = match (self.0.get(&path).copied(), d) {
            (None, d) => d,
            (Some(ReadOnly), _) | (_, ReadOnly) => ReadOnly,
            // A file placeholder blocks both the file and anything beneath it.
            (Some(Placeholder { dir: a }), Placeholder { dir: b }) => Placeholder { dir: a && b },
            (Some(Placeholder { dir }), Pin) | (Some(Pin), Placeholder { dir }) => Placeholder { dir },
            (Some(Pin), Pin) => Pin,
        };
        self.0.insert(path, merged);
    }

    pub(super) fn into_actions(self) -> Vec<Action> {
        // Anything beneath a read-only path or a placeholder is covered by it. Paths are
        // ordered component by component, so everything beneath a path directly follows it:
        // one pass, remembering the last covering path kept.
        let mut actions: Vec<Action> = Vec::with_capacity(self.0.len());
        let mut cover: Option<PathBuf> = None;
        for (p, d) in self.0 {
            if cover.as_ref().is_some_and(|c| p.starts_with(c)) {
                continue;
            }
            if !matches!(d, Decision::Pin) {
                cover = Some(p.clone());
            }
            actions.push(match d {
                Decision::Pin => Action::Pin(p),
                Decision::ReadOnly => Action::ReadOnly(p),
                Decision::Placeholder { dir } => Action::Placeholder { path: p, dir },
            });
        }
        // Shallow first; a stable sort keeps the path order among paths of the same depth.
        actions.sort_by_cached_key(|a| a.path().components().count());
        actions
    }
}

/// One pattern being walked.
pub(super) struct Walk<'a> {
    pub(super) pattern: &'a str,
    pub(super) file_like: bool,
}

impl Walk<'_> {
    pub(super) fn symlink(&self, path: PathBuf) -> ProtectError {
        ProtectError::Symlink { path, pattern: self.pattern.to_string() }
    }

    /// Walks `comps` from the existing directory `base`.
    pub(super) fn walk(
        &self,
        base: &Path,
        comps: &[&str],
        fs: &dyn FsView,
        plan: &mut Plan,
    ) -> Result<(), ProtectError> {
        let Some((first, rest)) = comps.split_first() else {
            return Ok(());
        };
        let last = rest.is_empty();
        if *first == "*" {
            let mut names = fs.list_dir(base);
            names.sort();
            names.dedup();
            for name in names {
                if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
                    continue;
                }
                let path = base.join(&name);
                match fs.kind(&path) {
                    Kind::Symlink => return Err(self.symlink(path)),
                    Kind::Missing => {}
                    // A file cannot hold the rest of the pattern; it protects nothing.
                    Kind::File if !last => {}
                    Kind::File => plan.add(path, Decision::ReadOnly),
                    Kind::Dir if last => plan.add(path, Decision::ReadOnly),
                    Kind::Dir => {
                        plan.add(path.clone(), Decision::Pin);
                        self.walk(&path, rest, fs, plan)?;
                    }
                }
            }
            return Ok(());
        }
        let path = base.join(first);
        match fs.kind(&path) {
            Kind::Symlink => Err(self.symlink(path)),
            Kind::Missing => {
                plan.add(path, Decision::Placeholder { dir: !(last && self.file_like) });
                Ok(())
            }
            Kind::File => {
                plan.add(path, Decision::ReadOnly);
                Ok(())
            }
            Kind::Dir if last => {
                plan.add(path, Decision::ReadOnly);
                Ok(())
            }
            Kind::Dir => {
                plan.add(path.clone(), Decision::Pin);
                self.walk(&path, rest, fs, plan)
            }
        }
    }
}
