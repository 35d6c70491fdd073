//! Symbolic links, FIFOs and sockets in git directories: the walk that finds them, and their
//! removal when the command made them.

use super::*;

struct Walk<'a> {
    entries: usize,
    bound_hit: bool,
    start: (i64, i64),
    ws: &'a Path,
    notices: &'a mut Vec<String>,
}

pub(super) fn remove_symlinks(gd: &OwnedFd, gd_path: &Path, ws: &Path, start: (i64, i64), notices: &mut Vec<String>) {
    let mut w = Walk { entries: 0, bound_hit: false, start, ws, notices };
    walk(&mut w, gd.as_raw_fd(), gd_path, 0, false);
    if w.bound_hit {
        w.notices.push(format!(
            "stopped looking for symbolic links in {} after {MAX_WALK_ENTRIES} entries or {MAX_WALK_DEPTH} levels: \
             check it yourself (`find {} -type l`) before running git there",
            shown(ws, gd_path),
            gd_path.display()
        ));
    }
}

fn walk(w: &mut Walk<'_>, dir: RawFd, path: &Path, depth: usize, in_objects: bool) {
    let Ok(entries) = dirfd::entries(dir) else { return };
    for (name, mut kind) in entries {
        w.entries += 1;
        if w.entries > MAX_WALK_ENTRIES {
            w.bound_hit = true;
            return;
        }
        if kind == libc::DT_UNKNOWN {
            kind = match dirfd::stat_at(dir, &name).map(|st| st.st_mode & libc::S_IFMT) {
                Ok(libc::S_IFLNK) => libc::DT_LNK,
                Ok(libc::S_IFDIR) => libc::DT_DIR,
                Ok(libc::S_IFIFO) => libc::DT_FIFO,
                Ok(libc::S_IFSOCK) => libc::DT_SOCK,
                _ => libc::DT_REG,
            };
        }
        let child = path.join(OsStr::from_bytes(name.to_bytes()));
        if matches!(kind, libc::DT_LNK | libc::DT_FIFO | libc::DT_SOCK) {
            remove_special(w, dir, &name, &child, kind);
            continue;
        }
        if kind != libc::DT_DIR {
            continue;
        }
        // Loose objects (objects/xx/, lfs/objects/xx/...) are many and only ever read: their
        // folders are checked as entries, their contents are not walked.
        if in_objects && name.to_bytes() != b"info" && name.to_bytes() != b"pack" {
            continue;
        }
        if depth + 1 > MAX_WALK_DEPTH {
            w.bound_hit = true;
            continue;
        }
        if let Ok(sub) = dirfd::open_dir_at(dir, &name) {
            walk(w, sub.as_raw_fd(), &child, depth + 1, name.to_bytes() == b"objects");
        }
    }
}

/// A symbolic link (git writes through it), FIFO or socket (git blocks on it) in a git
/// directory: removed if the command made it, reported either way. Git never makes them, except
/// a symbolic `HEAD`-style ref (`core.preferSymlinkRefs`), which points into the git directory
/// itself and is left alone.
fn remove_special(w: &mut Walk<'_>, dir: RawFd, name: &CStr, child: &Path, kind: u8) {
    let (what, arrow) = match kind {
        libc::DT_LNK => {
            let target = dirfd::read_link_at(dir, name)
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_else(|_| "?".into());
            let own_symref =
                target.starts_with("refs/") && !target.split('/').any(|c| c == ".." || c == "." || c.is_empty());
            if own_symref {
                return;
            }
            ("symbolic link", format!(" -> {target}"))
        }
        libc::DT_FIFO => ("FIFO", String::new()),
        _ => ("socket", String::new()),
    };
    let shown_c = shown(w.ws, child);
    let why = if kind == libc::DT_LNK { "git would have written through it" } else { "git would block on it" };
    // Only what this command made is removed: one that was there before it started (the
    // user's own, or one made while no check ran) is reported at every command.
    let made_now = dirfd::stat_at(dir, name).map_or(true, |st| changed_since(&st, w.start));
    if !made_now {
        w.notices.push(format!(
            "there is a {what} in .git: {shown_c}{arrow} ({why}): remove it unless you made it on purpose"
        ));
        return;
    }
    match dirfd::unlink_at(dir, name) {
        Ok(()) => w.notices.push(format!("removed a {what} the command left in .git: {shown_c}{arrow} ({why})")),
        Err(e) => w.notices.push(format!(
            "could not remove the {what} {shown_c}{arrow} the command left in .git ({}; {why}): remove it before running git there",
            std::io::Error::from_raw_os_error(e)
        )),
    }
}
