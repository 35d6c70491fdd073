//! Tests of configuration loading, by concern; the fixture and helpers are shared.

use super::parse::{MAX_PROJECT_PATTERNS, MAX_PROJECT_PATTERN_DEPTH};
use super::*;
use crate::protected;
use std::fs;

mod audit;
mod errors;
mod layering;
mod managed;
mod network;
mod paths;
mod render;

/// A temporary home with a project inside, a user file and a managed file location.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    ws: PathBuf,
    user: PathBuf,
    managed: PathBuf,
    project: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    let home = root.join("home");
    let ws = home.join("proj");
    fs::create_dir_all(&ws).unwrap();
    Fixture {
        user: home.join(".config/palisade/config.toml"),
        managed: root.join("etc/palisade/managed.toml"),
        project: ws.join(".palisade/config.toml"),
        _dir: dir,
        root,
        home,
        ws,
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

impl Fixture {
    fn req(&self, overrides: Overrides) -> LoadRequest {
        LoadRequest {
            workspace: self.ws.clone(),
            home: Some(self.home.clone()),
            user_config: Some(self.user.clone()),
            managed_config: Some(self.managed.clone()),
            audit_log: None,
            overrides,
        }
    }
    fn load(&self) -> Resolved {
        load(&self.req(Overrides::default())).unwrap()
    }
    fn load_with(&self, o: Overrides) -> Resolved {
        load(&self.req(o)).unwrap()
    }
    fn err(&self) -> String {
        self.err_with(Overrides::default())
    }
    fn err_with(&self, o: Overrides) -> String {
        let e = load(&self.req(o)).unwrap_err().to_string();
        assert!(!e.contains('\n'), "not one line: {e}");
        e
    }
    fn dir(&self, rel: &str) -> PathBuf {
        let p = self.root.join(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

fn user(f: &Fixture, line: usize) -> Source {
    Source { layer: Layer::User(f.user.clone()), line: Some(line) }
}
fn project(f: &Fixture, line: usize) -> Source {
    Source { layer: Layer::Project(f.project.clone()), line: Some(line) }
}
fn managed(f: &Fixture, line: usize) -> Source {
    Source { layer: Layer::Managed(f.managed.clone()), line: Some(line) }
}

#[track_caller]
fn assert_prefix(err: &str, prefix: &str) {
    assert!(err.starts_with(prefix), "\n  error: {err}\n expected prefix: {prefix}");
}
