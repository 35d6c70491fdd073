//! Tests of protected paths, by concern; the fixture filesystem and helpers are shared.

use super::git_text::git_config_value;
use super::plan::{Decision, Plan};
use super::*;
use std::collections::BTreeMap;

mod modules;
mod pattern;
mod real_fs;
mod resolve;

#[derive(Clone, Debug)]
enum Node {
    Dir,
    File(String),
    Symlink,
}

/// An in-memory filesystem: absolute paths to nodes; parents are created as directories.
#[derive(Default)]
struct Fixture(BTreeMap<PathBuf, Node>);

impl Fixture {
    fn new() -> Fixture {
        Fixture::default().dir("/w")
    }
    fn put(mut self, path: &str, node: Node) -> Fixture {
        let path = PathBuf::from(path);
        for a in path.ancestors().skip(1) {
            self.0.entry(a.to_path_buf()).or_insert(Node::Dir);
        }
        self.0.insert(path, node);
        self
    }
    fn dir(self, path: &str) -> Fixture {
        self.put(path, Node::Dir)
    }
    fn file(self, path: &str, content: &str) -> Fixture {
        self.put(path, Node::File(content.into()))
    }
    fn link(self, path: &str) -> Fixture {
        self.put(path, Node::Symlink)
    }
}

impl FsView for Fixture {
    fn kind(&self, path: &Path) -> Kind {
        match self.0.get(path) {
            None => Kind::Missing,
            Some(Node::Dir) => Kind::Dir,
            Some(Node::File(_)) => Kind::File,
            Some(Node::Symlink) => Kind::Symlink,
        }
    }
    fn list_dir(&self, path: &Path) -> Vec<String> {
        self.0
            .keys()
            .filter(|p| p.parent() == Some(path))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }
    fn read_small(&self, path: &Path) -> Option<String> {
        match self.0.get(path) {
            Some(Node::File(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

fn defaults() -> Vec<String> {
    DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect()
}

fn pats(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

fn pin(p: &str) -> Action {
    Action::Pin(p.into())
}
fn ro(p: &str) -> Action {
    Action::ReadOnly(p.into())
}
fn ph_dir(p: &str) -> Action {
    Action::Placeholder { path: p.into(), dir: true }
}
fn ph_file(p: &str) -> Action {
    Action::Placeholder { path: p.into(), dir: false }
}

fn resolve_w(fs: &Fixture, patterns: &[String]) -> Vec<Action> {
    resolve(Path::new("/w"), patterns, fs).unwrap()
}

/// The placeholders for the non-git default patterns in an empty workspace.
/// `a` with its path written with `/` only.
fn slashed(a: Action) -> Action {
    let fix = |p: &Path| PathBuf::from(p.to_string_lossy().replace('\\', "/"));
    match a {
        Action::Pin(p) => Action::Pin(fix(&p)),
        Action::ReadOnly(p) => Action::ReadOnly(fix(&p)),
        Action::Placeholder { path, dir } => Action::Placeholder { path: fix(&path), dir },
    }
}

fn non_git_placeholders() -> Vec<Action> {
    DEFAULT_PATTERNS
        .iter()
        .filter(|p| !p.starts_with(".git/"))
        .map(|p| Action::Placeholder { path: PathBuf::from(format!("/w/{p}")), dir: true })
        .collect()
}

fn sorted(mut v: Vec<Action>) -> Vec<Action> {
    v.sort_by(|a, b| {
        let (a, b) = (a.path(), b.path());
        a.components().count().cmp(&b.components().count()).then_with(|| a.cmp(b))
    });
    v
}
