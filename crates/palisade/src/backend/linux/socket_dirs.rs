//! Which folders of host unix sockets an offline sandbox hides, and what it must keep visible.
//!
//! Connecting to a unix socket needs no write access to its folder, so a read-only mount does
//! not stop it: offline, the well-known socket folders (/run with the user's runtime folder,
//! docker's and dbus's sockets; /var/run and /var/tmp when they are real folders;
//! `$XDG_RUNTIME_DIR` wherever it is) are covered by an empty tmpfs. Hiding must never hide
//! the workspace, a writable root or the working directory, whatever folder they are in (a
//! workspace under /var/tmp, or under /run/user/N); a folder under /tmp or /dev is covered by
//! the private /tmp and /dev already (and mounting there would fail: it no longer exists
//! inside); a folder inside another hidden one is hidden with it.

use std::path::{Path, PathBuf};

/// The well-known socket folders on this host (real directories only; `$XDG_RUNTIME_DIR` with
/// links resolved, since mounts refuse links).
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/run", "/var/run", "/var/tmp"].iter().map(PathBuf::from).collect();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        dirs.push(std::fs::canonicalize(&x).unwrap_or(x));
    }
    dirs.retain(|d| std::fs::symlink_metadata(d).map(|m| m.is_dir()).unwrap_or(false));
    dirs
}

/// Of `candidates`, the folders to hide: none under the private /tmp or /dev, none holding a
/// path of `keep_visible` (workspace, writable roots, working directory), none inside another
/// one that is hidden.
pub fn to_hide(candidates: &[PathBuf], keep_visible: &[&Path]) -> Vec<PathBuf> {
    let private = |d: &Path| d.starts_with("/tmp") || d.starts_with("/dev");
    let kept: Vec<&PathBuf> =
        candidates.iter().filter(|d| !private(d) && !keep_visible.iter().any(|v| v.starts_with(d))).collect();
    let mut hide: Vec<PathBuf> = kept
        .iter()
        .filter(|d| !kept.iter().any(|other| other != *d && d.starts_with(other)))
        .map(|d| d.to_path_buf())
        .collect();
    hide.sort();
    hide.dedup();
    hide
}

/// The folders an offline sandbox hides on this host when `keep_visible` (the writable roots
/// and the workspace) must stay visible. Public for `palisade-bench`, whose bubblewrap row
/// hides the same folders; not an API.
pub fn hidden_offline(keep_visible: &[&Path]) -> Vec<PathBuf> {
    to_hide(&candidates(), keep_visible)
}

/// The host's bound pathname sockets (as /proc/net/unix lists them) inside `dir`: for a socket
/// folder left visible because the working directory is in it, each socket is covered instead.
pub fn sockets_in(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let mut found: Vec<PathBuf> = table
        .lines()
        .skip(1)
        // Num RefCount Protocol Flags Type St Inode Path: the path is the eighth field.
        .filter_map(|line| line.split_whitespace().nth(7))
        .filter(|p| p.starts_with('/'))
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter(|p| p.starts_with(dir))
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()))
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn hiding_skips_private_folders_nested_ones_and_never_hides_the_workspace() {
        let all = [p("/run"), p("/var/tmp"), p("/tmp/runtime-root")];
        assert_eq!(to_hide(&all, &[Path::new("/home/u/ws")]), vec![p("/run"), p("/var/tmp")]);
        // XDG_RUNTIME_DIR under /var/tmp: hidden with /var/tmp, not once more.
        let all = [p("/run"), p("/var/tmp"), p("/var/tmp/runtime-x")];
        assert_eq!(to_hide(&all, &[Path::new("/home/u/ws")]), vec![p("/run"), p("/var/tmp")]);
        // ... unless the workspace is in /var/tmp: then only the runtime folder is hidden.
        assert_eq!(to_hide(&all, &[Path::new("/var/tmp/ws")]), vec![p("/run"), p("/var/tmp/runtime-x")]);
        assert_eq!(to_hide(&all, &[Path::new("/var/tmp/runtime-x/ws")]), vec![p("/run")]);
        // A workspace in /run/user/0 keeps /run visible, and the runtime folder too.
        let all = [p("/run"), p("/var/tmp"), p("/run/user/0")];
        assert_eq!(to_hide(&all, &[Path::new("/run/user/0/ws")]), vec![p("/var/tmp")]);
        assert_eq!(to_hide(&all, &[Path::new("/run/other/ws")]), vec![p("/run/user/0"), p("/var/tmp")]);
        // The workspace itself being a socket folder.
        assert_eq!(to_hide(&all, &[Path::new("/var/tmp")]), vec![p("/run")]);
    }
}
