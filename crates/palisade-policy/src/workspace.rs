//! Which directory is the workspace when the user does not say (`--workspace`).
//!
//! Running from a subdirectory of a project must not make the subdirectory the workspace: git
//! writes `.git/index.lock` at the top, and the project's `.palisade/config.toml` lives there.
//! The rule: the nearest directory, from the current one upwards, that holds
//! `.palisade/config.toml` or is a git working tree's top level (a `.git` directory or file),
//! else the current directory. The walk never picks the home directory or `/` (making either
//! writable is refused later anyway): it stops below them. A submodule's top level (a `.git`
//! file naming `<super>/.git/modules/...`) gives way to its superproject, whose `.git` holds
//! the submodule's git directory; otherwise git inside could not write its own files.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a directory was chosen as the workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkspaceRule {
    /// `--workspace` said so.
    Flag,
    /// The nearest directory holding `.palisade/config.toml`.
    ProjectConfig,
    /// The nearest git working tree's top level.
    GitTopLevel,
    /// The superproject of the submodule whose top level is the given directory.
    Superproject(PathBuf),
    /// Nothing marked a project above the current directory.
    CurrentDirectory,
}

impl fmt::Display for WorkspaceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkspaceRule::Flag => f.write_str("--workspace"),
            WorkspaceRule::ProjectConfig => f.write_str("the nearest directory with .palisade/config.toml"),
            WorkspaceRule::GitTopLevel => f.write_str("the nearest git working tree's top level"),
            WorkspaceRule::Superproject(sub) => {
                write!(f, "the superproject of the git submodule at {}", sub.display())
            }
            WorkspaceRule::CurrentDirectory => {
                f.write_str("the current directory (no .palisade/config.toml or .git above it)")
            }
        }
    }
}

impl WorkspaceRule {
    /// A short stable name for JSON output.
    pub fn as_str(&self) -> &'static str {
        match self {
            WorkspaceRule::Flag => "flag",
            WorkspaceRule::ProjectConfig => "project-config",
            WorkspaceRule::GitTopLevel => "git-top-level",
            WorkspaceRule::Superproject(_) => "git-superproject",
            WorkspaceRule::CurrentDirectory => "current-directory",
        }
    }
}

/// What marks a directory as a project's top, as seen by [`discover`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// `.palisade/config.toml` is there.
    ProjectConfig,
    /// `.git` is a directory.
    GitDir,
    /// `.git` is a file; the text after `gitdir:` on its first line, if any.
    GitFile(Option<String>),
}

/// The workspace for a command started in `cwd` (absolute), given `markers(dir)`: what marks
/// `dir` (a `.palisade/config.toml` counts before a `.git` in the same directory).
pub fn discover(
    cwd: &Path,
    home: Option<&Path>,
    markers: impl Fn(&Path) -> Option<Marker>,
) -> (PathBuf, WorkspaceRule) {
    for dir in cwd.ancestors() {
        if dir.parent().is_none() || Some(dir) == home {
            break;
        }
        match markers(dir) {
            None => continue,
            Some(Marker::ProjectConfig) => return (dir.to_path_buf(), WorkspaceRule::ProjectConfig),
            Some(Marker::GitDir) | Some(Marker::GitFile(None)) => {
                return (dir.to_path_buf(), WorkspaceRule::GitTopLevel)
            }
            Some(Marker::GitFile(Some(target))) => {
                if let Some(sup) =
                    superproject(dir, &target).filter(|s| Some(s.as_path()) != home && s.parent().is_some())
                {
                    return (sup, WorkspaceRule::Superproject(dir.to_path_buf()));
                }
                return (dir.to_path_buf(), WorkspaceRule::GitTopLevel);
            }
        }
    }
    (cwd.to_path_buf(), WorkspaceRule::CurrentDirectory)
}

/// For a submodule at `dir` whose `.git` file names `target`: the superproject's top level, an
/// ancestor of `dir` whose `.git/modules/` holds the target.
fn superproject(dir: &Path, target: &str) -> Option<PathBuf> {
    let target = crate::protected::normalize_lexically(&dir.join(target.trim()));
    // Compared by components, whatever the separator (`\` on Windows).
    let comps: Vec<std::path::Component<'_>> = target.components().collect();
    let at = comps.windows(2).position(|w| w[0].as_os_str() == ".git" && w[1].as_os_str() == "modules")?;
    let sup: PathBuf = comps[..at].iter().collect();
    (dir.starts_with(&sup) && dir != sup).then_some(sup)
}

/// For a workspace that is a linked git worktree (`git worktree add`: a `.git` file naming
/// `<common>/worktrees/<name>`, whose `commondir` names `<common>`), the repository's common git
/// directory, canonical: git writes objects, refs and the worktree's index lock there, so a
/// command can commit only if it is writable.
pub fn linked_worktree_common_dir(ws: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(ws.join(".git")).ok()?;
    let gitdir = ws.join(text.lines().next()?.strip_prefix("gitdir:")?.trim());
    let common = std::fs::read_to_string(gitdir.join("commondir")).ok()?;
    std::fs::canonicalize(gitdir.join(common.trim())).ok()
}

/// The markers of `dir` on the real filesystem.
pub fn real_markers(dir: &Path) -> Option<Marker> {
    if dir.join(".palisade").join("config.toml").is_file() {
        return Some(Marker::ProjectConfig);
    }
    let git = dir.join(".git");
    let meta = std::fs::symlink_metadata(&git).ok()?;
    if meta.is_dir() {
        return Some(Marker::GitDir);
    }
    if !meta.is_file() {
        return None;
    }
    let mut head = [0u8; 512];
    let n = std::fs::File::open(&git).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]);
    let target = text.lines().next().and_then(|l| l.strip_prefix("gitdir:")).map(|t| t.trim().to_string());
    Some(Marker::GitFile(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn with(marks: &[(&str, Marker)]) -> impl Fn(&Path) -> Option<Marker> {
        let m: BTreeMap<PathBuf, Marker> = marks.iter().map(|(p, k)| (PathBuf::from(p), k.clone())).collect();
        move |d: &Path| m.get(d).cloned()
    }

    #[test]
    fn the_nearest_git_top_level_above_a_subdirectory() {
        let (ws, rule) = discover(
            Path::new("/home/u/proj/src/a"),
            Some(Path::new("/home/u")),
            with(&[("/home/u/proj", Marker::GitDir)]),
        );
        assert_eq!((ws.as_path(), rule), (Path::new("/home/u/proj"), WorkspaceRule::GitTopLevel));
    }

    #[test]
    fn a_project_config_nearer_than_the_repository_wins() {
        let marks = with(&[("/w/repo", Marker::GitDir), ("/w/repo/sub", Marker::ProjectConfig)]);
        assert_eq!(
            discover(Path::new("/w/repo/sub/x"), None, marks),
            (PathBuf::from("/w/repo/sub"), WorkspaceRule::ProjectConfig)
        );
    }

    #[test]
    fn without_a_marker_the_current_directory() {
        assert_eq!(
            discover(Path::new("/w/a/b"), None, with(&[])),
            (PathBuf::from("/w/a/b"), WorkspaceRule::CurrentDirectory)
        );
    }

    #[test]
    fn never_the_home_directory_or_the_root_even_when_marked() {
        // A dotfiles repository at the home directory, a `.git` at `/`.
        let marks = with(&[("/home/u", Marker::GitDir), ("/", Marker::GitDir)]);
        let (ws, rule) = discover(Path::new("/home/u/notes/x"), Some(Path::new("/home/u")), &marks);
        assert_eq!((ws, rule), (PathBuf::from("/home/u/notes/x"), WorkspaceRule::CurrentDirectory));
        let (ws, _) = discover(Path::new("/srv/x"), None, &marks);
        assert_eq!(ws, PathBuf::from("/srv/x"));
    }

    #[test]
    fn a_submodule_gives_way_to_its_superproject() {
        let marks = with(&[
            ("/w/proj", Marker::GitDir),
            ("/w/proj/libs/foo", Marker::GitFile(Some("../../.git/modules/libs/foo".into()))),
        ]);
        let (ws, rule) = discover(Path::new("/w/proj/libs/foo/src"), None, marks);
        assert_eq!(ws, PathBuf::from("/w/proj"));
        assert_eq!(rule, WorkspaceRule::Superproject(PathBuf::from("/w/proj/libs/foo")));
    }

    #[test]
    fn a_linked_worktree_is_its_own_workspace() {
        let marks = with(&[("/w/wt", Marker::GitFile(Some("/w/main/.git/worktrees/wt".into())))]);
        assert_eq!(discover(Path::new("/w/wt/src"), None, marks), (PathBuf::from("/w/wt"), WorkspaceRule::GitTopLevel));
    }
}
