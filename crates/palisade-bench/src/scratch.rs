//! The throw-away workspace and fake home the benchmark runs in.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A temporary root holding `ws/` (a workspace shaped like a git checkout) and `home/` (a fake
/// home with one secrets folder, `.ssh`, so the default deny-read list masks one path, as on most
/// developers' machines). Removed on drop unless kept.
pub struct Scratch {
    pub root: PathBuf,
    pub workspace: PathBuf,
    pub home: PathBuf,
    pub keep: bool,
}

impl Scratch {
    /// Creates the scratch folder in `parent`: by default /var/tmp (outside /tmp, like a real
    /// checkout, so the fake home's `.ssh` is really masked rather than hidden by the private
    /// /tmp), else the temporary directory.
    pub fn create(parent: Option<&Path>, keep: bool) -> io::Result<Scratch> {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let parent = match parent {
            Some(p) => p.to_path_buf(),
            None if Path::new("/var/tmp").is_dir() => PathBuf::from("/var/tmp"),
            None => std::env::temp_dir(),
        };
        let root = parent.join(format!("palisade-bench-{}-{nanos:08x}", std::process::id()));
        fs::DirBuilder::new().mode(0o700).create(&root)?;
        // The canonical path: Palisade compares writable roots against real paths.
        let root = fs::canonicalize(&root)?;
        let workspace = root.join("ws");
        let home = root.join("home");
        populate_workspace(&workspace)?;
        fs::create_dir_all(home.join(".config"))?;
        let ssh = home.join(".ssh");
        fs::create_dir(&ssh)?;
        fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700))?;
        fs::write(ssh.join("id_ed25519"), "not a key\n")?;
        Ok(Scratch { root, workspace, home, keep })
    }

    /// Paths under the workspace that exist and that Palisade keeps read-only (for the
    /// bubblewrap command line, which can only bind what exists).
    pub fn existing_protected(&self) -> Vec<PathBuf> {
        [".git/hooks", ".git/config"].iter().map(|p| self.workspace.join(p)).filter(|p| p.exists()).collect()
    }

    /// Deny-read folders that exist in the fake home (masked by Palisade's defaults).
    pub fn existing_deny_read_dirs(&self) -> Vec<PathBuf> {
        palisade::policy::default_deny_read(&self.home).into_iter().filter(|p| p.is_dir()).collect()
    }
}

/// A workspace shaped like a fresh git checkout: .git/{HEAD,config,hooks,info,objects,refs} and
/// two source files. Missing protected paths (.vscode, .claude, .git/info/attributes, ...) get
/// placeholders from Palisade, as in most real checkouts.
pub fn populate_workspace(ws: &Path) -> io::Result<()> {
    for d in [".git/hooks", ".git/info", ".git/objects", ".git/refs/heads", "src"] {
        fs::create_dir_all(ws.join(d))?;
    }
    fs::write(ws.join(".git/HEAD"), "ref: refs/heads/main\n")?;
    fs::write(ws.join(".git/config"), "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n")?;
    fs::write(ws.join("README.md"), "benchmark workspace\n")?;
    fs::write(ws.join("src/main.rs"), "fn main() {}\n")?;
    Ok(())
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

pub fn is_executable(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Finds `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}
