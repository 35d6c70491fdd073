//! Filesystem checks of configured paths: reading a configuration file safely, expanding `~`,
//! resolving symbolic links, and refusing writable roots and workspaces that would open too
//! much (`/`, the home directory, the kernel's filesystems, a path through a link the sandbox
//! controls).

use std::io;
use std::path::{Path, PathBuf};

use super::ConfigError;
use crate::protected::normalize_lexically;

/// The largest configuration file read; a longer one is an error, not a memory exhaustion.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The file's text, or `None` if it does not exist.
pub(super) fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    use std::io::Read;
    let err = |source: io::Error| ConfigError::Read { path: path.to_path_buf(), source };
    let not_file = |kind: &str| err(io::Error::other(format!("it is {kind}, not a regular file")));
    // A project file comes with the repository: a FIFO there would block the open forever, and
    // a link to /dev/zero would be read until memory runs out. Only regular files are read.
    let kind_of = |m: &std::fs::Metadata| -> Option<&'static str> {
        if m.is_file() {
            None
        } else if m.is_dir() {
            Some("a directory")
        } else {
            Some("a special file (FIFO, socket or device)")
        }
    };
    match std::fs::metadata(path) {
        Ok(m) => {
            if let Some(kind) = kind_of(&m) {
                return Err(not_file(kind));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    if let Some(kind) = kind_of(&file.metadata().map_err(err)?) {
        return Err(not_file(kind));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(err(io::Error::other(format!("larger than {} bytes", MAX_CONFIG_BYTES))));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| err(io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8")))
}

/// `~` and `~/...` expanded; relative paths resolved against `base` (or refused without one);
/// lexically normalized.
pub(super) fn expand_path(raw: &str, home: Option<&Path>, base: Option<&Path>) -> Result<PathBuf, String> {
    if raw.is_empty() {
        return Err("empty path".into());
    }
    if raw.contains('\0') {
        return Err(format!("path \"{}\" contains a NUL character", raw.escape_default()));
    }
    let tilde_rest = if raw == "~" {
        Some("")
    } else {
        raw.strip_prefix("~/").or_else(|| if cfg!(windows) { raw.strip_prefix("~\\") } else { None })
    };
    let path = if let Some(rest) = tilde_rest {
        let home = home.ok_or_else(|| format!("cannot expand \"{raw}\": the home directory is unknown"))?;
        if rest.is_empty() {
            home.to_path_buf()
        } else {
            home.join(rest)
        }
    } else if raw.starts_with('~') {
        return Err(format!("\"{raw}\": only ~ and ~/ are expanded (not ~user)"));
    } else {
        let p = PathBuf::from(raw);
        if p.is_absolute() {
            p
        } else if let Some(base) = base {
            base.join(p)
        } else {
            return Err(format!(
                "\"{raw}\" must be absolute or start with ~/ (relative paths are only allowed in a project config)"
            ));
        }
    };
    Ok(normalize_lexically(&path))
}

/// `path` with the symbolic links of its existing part resolved.
pub(super) fn real_path(path: &Path) -> PathBuf {
    for existing in path.ancestors() {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return match path.strip_prefix(existing) {
                Ok(rest) if !rest.as_os_str().is_empty() => real.join(rest),
                _ => real,
            };
        }
    }
    path.to_path_buf()
}

/// The first symbolic link on the way to `path` that lies inside `workspace` (where any
/// sandboxed command may have planted it), if any.
fn link_inside(path: &Path, workspace: &Path) -> Option<PathBuf> {
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().ok()?.join(path) };
    let mut cur = PathBuf::new();
    for c in normalize_lexically(&abs).components() {
        cur.push(c);
        if std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) {
            let dir = cur.parent().and_then(|d| std::fs::canonicalize(d).ok())?;
            if dir.starts_with(workspace) {
                return Some(cur);
            }
            cur = std::fs::canonicalize(&cur).ok()?;
        }
    }
    None
}

/// A canonical, existing directory that is neither `/` nor the home directory, and not reached
/// through a symbolic link inside the workspace: a command in an earlier sandbox could have
/// replaced `<workspace>/out` by a link to `~/.config`, making the next sandbox's "writable
/// root in the workspace" a folder outside it.
pub(super) fn check_writable_root(path: &Path, home: Option<&Path>, workspace: &Path) -> Result<PathBuf, String> {
    if let Some(link) = link_inside(path, workspace) {
        return Err(format!(
            "{} is reached through the symbolic link {} inside the workspace (which sandboxed commands can change); name the real directory instead",
            path.display(),
            link.display()
        ));
    }
    let real = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("{}: {e}", path.display()),
    })?;
    if !real.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    if real.parent().is_none() {
        return Err(format!("refusing to make {} writable", real.display()));
    }
    if let Some(why) = kernel_filesystem(&real) {
        return Err(format!("refusing to make {} writable: {why}", real.display()));
    }
    if home.is_some_and(|h| real_path(h) == real) {
        return Err(format!("refusing to make the home directory {} writable", real.display()));
    }
    if home.is_some_and(|h| real_path(h).starts_with(&real)) {
        return Err(format!("refusing to make {} writable: it contains the home directory", real.display()));
    }
    Ok(real)
}

/// Whether a canonical path lies in `/proc`, `/sys` or `/dev`: the sandbox gives the command its
/// own `/proc` and a minimal `/dev`, and making the host's writable would bypass them (and put
/// protected-path placeholders into the kernel's filesystems). `None` where that is fine.
fn kernel_filesystem(real: &Path) -> Option<&'static str> {
    if cfg!(unix) && ["/proc", "/sys", "/dev"].iter().any(|k| real.starts_with(k)) {
        return Some("it is in /proc, /sys or /dev, which the sandbox replaces with its own");
    }
    None
}

/// Why `workspace` may not be made writable (it is `/`, in the kernel's filesystems, the home
/// directory or contains it), or `None` if it may. `home` is canonical.
pub(super) fn refuse_writable_workspace(workspace: &Path, home: Option<&Path>) -> Option<String> {
    if workspace.parent().is_none() {
        Some(format!("refusing to make {} writable (pass --workspace with a project directory)", workspace.display()))
    } else if let Some(why) = kernel_filesystem(workspace) {
        Some(format!("refusing to make it writable: {why} (use --mode read-only)"))
    } else if home == Some(workspace) {
        Some("is the home directory; refusing to make all of it writable (pass --workspace with a project directory, or use --mode read-only)".to_string())
    } else if home.is_some_and(|h| h.starts_with(workspace)) {
        // ~/.bashrc, ~/.gitconfig and ~/.config would be writable: code the user runs later.
        Some("contains the home directory; refusing to make it writable (pass --workspace with a project directory, or use --mode read-only)".to_string())
    } else {
        None
    }
}
