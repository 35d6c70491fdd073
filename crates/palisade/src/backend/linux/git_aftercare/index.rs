//! The index: gitlinks and hidden entries, and the check (and quarantine) of each gitlink's
//! repository.

use super::*;

fn object_format(gd: RawFd) -> Result<ObjectFormat, String> {
    let text = read_small(gd, &c("config"), 1 << 20).unwrap_or_default();
    let keys = git_config_keys::parse(&text).map_err(|e| format!("its config cannot be read ({e})"))?;
    let v = git_config_keys::value(&keys, "extensions", "objectformat");
    ObjectFormat::from_config(v.as_deref()).ok_or_else(|| format!("unknown extensions.objectformat {v:?}"))
}

/// Reads the index through a small buffer (a large index is never held whole: touching
/// megabytes of fresh memory would cost more than parsing them). A split index (`git
/// update-index --split-index`) keeps most entries in `sharedindex.<id>` next to it (`gd`):
/// those are read too.
fn summarize(file: &File, size: i64, format: ObjectFormat, gd: RawFd) -> Result<IndexSummary, String> {
    let mut s = IndexSummary::default();
    let shared = read_entries(file, size, format, &mut s)?;
    if let Some(name) = shared {
        let fd = dirfd::open_file_at(gd, &c(&name))
            .map_err(|e| format!("its shared index {name}: {}", std::io::Error::from_raw_os_error(e)))?;
        let st =
            dirfd::stat_at(fd.as_raw_fd(), &c("")).map_err(|e| std::io::Error::from_raw_os_error(e).to_string())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(format!("its shared index {name} is not a regular file"));
        }
        if read_entries(&File::from(fd), st.st_size, format, &mut s)?.is_some() {
            return Err(format!("its shared index {name} is itself split"));
        }
    }
    Ok(s)
}

/// Adds one index file's gitlinks and hidden entries to `s`; returns the shared index a split
/// index names.
fn read_entries(file: &File, size: i64, format: ObjectFormat, s: &mut IndexSummary) -> Result<Option<String>, String> {
    use std::os::unix::fs::FileExt;
    if size < 0 || size as u64 > MAX_INDEX_BYTES {
        return Err(format!("it is larger than {} MiB", MAX_INDEX_BYTES >> 20));
    }
    let mut v = git_index::Visitor::new(format);
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut filled, mut offset) = (0usize, 0u64);
    let mut replaced_by_gitlink = false;
    while !v.done() {
        if filled == buf.len() {
            // One entry larger than the buffer (a very long path): grow, within the bound.
            if buf.len() as u64 >= MAX_INDEX_BYTES {
                return Err("an index entry is too large".into());
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read_at(&mut buf[filled..], offset).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        filled += n;
        let used = v.feed(&buf[..filled], |e| {
            if e.path.is_empty() {
                // A split index's replacement of a shared entry: its path is in the shared
                // index, by position (not worth decoding: git never replaces an entry by a
                // gitlink this way in ordinary work; `git add` of a new path adds a named entry).
                replaced_by_gitlink |= e.is_gitlink();
                return;
            }
            if e.is_gitlink() {
                s.gitlinks.insert(e.path.to_vec());
            }
            if e.skip_worktree || e.assume_valid {
                s.hidden.insert(e.path.to_vec());
            }
        })?;
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
    v.finish()?;
    let entries_end = offset - filled as u64;
    let exts = git_index::extensions(size as u64, entries_end, format, |at, b| file.read_exact_at(b, at).is_ok())?;
    let mut shared = None;
    for (sig, at, len) in exts {
        if &sig == b"link" {
            let mut data = vec![0u8; (len as usize).min(4096)];
            file.read_exact_at(&mut data, at).map_err(|e| e.to_string())?;
            shared = Some(git_index::split_index_link(&data, format).ok_or("its split-index link is cut short")?);
        }
    }
    if replaced_by_gitlink {
        return Err(
            "it is a split index that turns an entry into a submodule without naming its path; make it whole with \
                    `git update-index --no-split-index`"
                .into(),
        );
    }
    Ok(shared)
}

fn name_paths<'a>(paths: impl Iterator<Item = &'a Vec<u8>>) -> String {
    let all: Vec<String> = paths.map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let mut s = all.iter().take(NAMED_PATHS).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > NAMED_PATHS {
        s.push_str(&format!(" and {} more", all.len() - NAMED_PATHS));
    }
    s
}

pub(super) fn check_index(
    before: &Before,
    rb: &RootBefore,
    gd: &OwnedFd,
    gd_path: &Path,
    config_dir: RawFd,
    notices: &mut Vec<String>,
) {
    let ws = &before.workspace;
    let Ok(fd) = dirfd::open_file_at(gd.as_raw_fd(), &c("index")) else { return };
    let Ok(st) = dirfd::stat_at(fd.as_raw_fd(), &c("")) else { return };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return;
    }
    let now = stamp(&st);
    let changed = rb.index.as_ref().is_none_or(|(_, s)| *s != now);
    let cached = before.memory.indexes.lock().unwrap_or_else(|e| e.into_inner()).get(&rb.root).cloned();
    let after = match cached {
        Some((s, summary)) if s == now => summary,
        _ => {
            let parsed = object_format(config_dir)
                .and_then(|f| summarize(&File::from(fd), st.st_size, f, gd.as_raw_fd()).map(|s| (s, f)));
            match parsed {
                Ok((s, _)) => {
                    let s = Arc::new(s);
                    before
                        .memory
                        .indexes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(rb.root.clone(), (now, s.clone()));
                    s
                }
                Err(e) => {
                    notices.push(format!(
                        "could not read {} ({e}), so its submodules were not checked: do not run git there before \
                         you have looked at it (`git -c core.fsmonitor= -c submodule.recurse=false status --ignore-submodules=all`)",
                        shown(ws, &gd_path.join("index"))
                    ));
                    return;
                }
            }
        }
    };
    // The index as it was before the command, when it can be trusted: git replaces the index by
    // renaming (the old inode, held open, is intact); one rewritten in place is not known.
    let before_summary: Option<IndexSummary> = if !changed {
        Some((*after).clone())
    } else {
        rb.index.as_ref().and_then(|(f, s)| {
            let st_old = dirfd::stat_at(f.as_raw_fd(), &c("")).ok()?;
            // Unlinking the old index (git renames the new one over it) changes its ctime, so
            // the ctime is compared only while it is still linked. (A command that rewrote it in
            // place and reset its mtime before replacing it would go unnoticed here; its new
            // gitlinks are then checked only if their git directory changed.)
            let same = (st_old.st_dev, st_old.st_ino, st_old.st_size, st_old.st_mtime, st_old.st_mtime_nsec)
                == (s.0, s.1, s.2, s.3, s.4);
            let ctime_ok = st_old.st_nlink == 0 || (st_old.st_ctime, st_old.st_ctime_nsec) == (s.5, s.6);
            if !same || !ctime_ok || st_old.st_ino == st.st_ino {
                return None;
            }
            let format = object_format(config_dir).ok()?;
            summarize(f, st_old.st_size, format, gd.as_raw_fd()).ok()
        })
    };
    if changed {
        let newly_hidden: Vec<&Vec<u8>> =
            after.hidden.iter().filter(|p| before_summary.as_ref().is_none_or(|b| !b.hidden.contains(*p))).collect();
        if !newly_hidden.is_empty() {
            notices.push(format!(
                "the command marked {} index entr{} skip-worktree or assume-unchanged ({}): git status and git diff no longer \
                 show changes to them; review with `git ls-files -v | grep -v '^H'` and undo with \
                 `git update-index --no-skip-worktree --no-assume-unchanged <path>`",
                newly_hidden.len(),
                if newly_hidden.len() == 1 { "y" } else { "ies" },
                name_paths(newly_hidden.into_iter())
            ));
        }
    }
    let root_git_dir = gd_path.canonicalize().unwrap_or_else(|_| gd_path.to_path_buf());
    for link in &after.gitlinks {
        let new = before_summary.as_ref().is_none_or(|b| !b.gitlinks.contains(link));
        check_gitlink(before, &rb.root, &root_git_dir, link, new, notices);
    }
}

/// Opens `rel` (a plain relative path) below `root` one component at a time, refusing links.
/// Git follows a link on the way to a gitlink's folder (an index written by hand can name
/// `link/sub`), so where a component is a link the folder is opened where it really is, if that
/// lies in a writable root (elsewhere the command could not have made its `.git`).
fn open_below(root: &Path, rel: &[u8], write_roots: &[PathBuf]) -> Option<OwnedFd> {
    let mut fd = dirfd::open_dir(&cpath(root)?).ok()?;
    for comp in rel.split(|&b| b == b'/') {
        match dirfd::open_dir_at(fd.as_raw_fd(), &CString::new(comp).ok()?) {
            Ok(next) => fd = next,
            Err(libc::ELOOP | libc::ENOTDIR) => {
                let real = root.join(OsStr::from_bytes(rel)).canonicalize().ok()?;
                if !write_roots.iter().any(|r| real.starts_with(r)) {
                    return None;
                }
                return dirfd::open_dir(&cpath(&real)?).ok();
            }
            Err(_) => return None,
        }
    }
    Some(fd)
}

fn check_gitlink(before: &Before, root: &Path, root_git_dir: &Path, rel: &[u8], new: bool, notices: &mut Vec<String>) {
    if !git_index::is_plain_relative_path(rel) {
        return;
    }
    let ws = &before.workspace;
    let p_path = root.join(OsStr::from_bytes(rel));
    let write_roots: Vec<PathBuf> = before.roots.iter().map(|r| r.root.clone()).collect();
    let Some(p) = open_below(root, rel, &write_roots) else { return };
    let dotgit = c(".git");
    let Ok(st_dotgit) = dirfd::stat_at(p.as_raw_fd(), &dotgit) else { return };
    let start = before.start;
    // Changed during the command: new in the index, `.git` (re)made or renamed in, or (below)
    // the config, hooks or commondir of its git directory. A move of the whole work tree `P`
    // changes only P's own ctime, which also changes whenever a file in P is saved: it counts
    // only where the git directory is not a `modules/` folder of the root's own git directory
    // (whose config and hooks the sandbox keeps read-only).
    let mut changed = new || changed_since(&st_dotgit, start);
    let p_moved = dirfd::stat_at(p.as_raw_fd(), &c("")).is_ok_and(|st| changed_since(&st, start));
    let mut findings: Vec<String> = Vec::new();
    let kind = st_dotgit.st_mode & libc::S_IFMT;
    // The git directory a `.git` file names, when it is one of the root's `modules/`:
    // quarantined with `.git` (git submodule update would otherwise reuse it).
    let mut named_dir: Option<PathBuf> = None;
    // The git directory's path, to tell Palisade's placeholders in it from the command's doing.
    let mut gd_path: Option<PathBuf> = None;
    let gd = if kind == libc::S_IFLNK {
        findings.push(".git is a symbolic link".into());
        changed |= p_moved;
        None
    } else if kind == libc::S_IFDIR {
        changed |= p_moved;
        gd_path = Some(p_path.join(".git"));
        dirfd::open_dir_at(p.as_raw_fd(), &dotgit).ok()
    } else if kind == libc::S_IFREG {
        let target = read_gitfile(p.as_raw_fd(), &dotgit, &p_path).and_then(|t| t.canonicalize().ok());
        let in_modules = target.as_ref().is_some_and(|t| t.starts_with(root_git_dir.join("modules")));
        changed |= p_moved && !in_modules;
        // Only a folder strictly inside the root's `modules/` (what git submodule update
        // reuses), never the root's own git directory or anything holding it.
        let modules = root_git_dir.join("modules");
        named_dir = target.clone().filter(|t| t.starts_with(&modules) && *t != modules && !root_git_dir.starts_with(t));
        gd_path = target.clone();
        target.and_then(|t| dirfd::open_dir(&cpath(&t)?).ok())
    } else {
        None
    };
    if let Some(gd) = &gd {
        let fd = gd.as_raw_fd();
        for name in ["config", "hooks", "commondir"] {
            if gd_path.as_ref().is_some_and(|g| before.placeholders.contains(&g.join(name))) {
                continue;
            }
            if dirfd::stat_at(fd, &c(name)).is_ok_and(|st| changed_since(&st, start)) {
                changed = true;
            }
        }
        if !changed {
            return;
        }
        match read_small(fd, &c("config"), 1 << 20) {
            Some(text) => match git_config_keys::disallowed_keys(&text) {
                Ok(keys) if keys.is_empty() => {}
                Ok(keys) => findings.push(format!("its config sets {}", keys.join(", "))),
                Err(e) => findings.push(format!("its config cannot be read safely ({e})")),
            },
            // An empty folder is Palisade's placeholder for a missing config: git reads nothing.
            None if dirfd::open_dir_at(fd, &c("config"))
                .is_ok_and(|d| dirfd::entries(d.as_raw_fd()).is_ok_and(|e| e.is_empty())) => {}
            None if dirfd::stat_at(fd, &c("config")).is_ok() => {
                findings.push("its config is not a regular file".into())
            }
            None => {}
        }
        if let Ok(hooks) = dirfd::open_dir_at(fd, &c("hooks")) {
            let active: Vec<Vec<u8>> = dirfd::entries(hooks.as_raw_fd())
                .unwrap_or_default()
                .into_iter()
                .map(|(n, _)| n.into_bytes())
                .filter(|n| !n.ends_with(b".sample"))
                .collect();
            if !active.is_empty() {
                findings.push(format!("it has hooks ({})", name_paths(active.iter())));
            }
        } else if dirfd::stat_at(fd, &c("hooks")).is_ok() {
            findings.push("its hooks entry is not a plain folder".into());
        }
        // Palisade's own placeholder for a missing commondir names the git directory itself.
        let commondir = dirfd::stat_at(fd, &c("commondir")).ok().map(|_| read_small(fd, &c("commondir"), 4096));
        if let Some(text) = commondir {
            if text.as_deref().map(|t| String::from_utf8_lossy(t).trim().to_string()).as_deref() != Some(".") {
                findings.push("it has a commondir (config and hooks come from elsewhere)".into());
            }
        }
    } else if !changed {
        return;
    }
    if findings.is_empty() {
        return;
    }
    let shown_p = shown(ws, &p_path);
    let quarantined = rename_aside(p.as_raw_fd(), &dotgit, QUARANTINE_NAME);
    let why = findings.join("; ");
    match quarantined {
        Ok(to) => {
            let mut also = String::new();
            if let Some(dir) = &named_dir {
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let parent = dir.parent().and_then(|p| dirfd::open_dir(&cpath(p)?).ok());
                let aside = match (parent, CString::new(name.clone())) {
                    (Some(parent), Ok(cname)) => rename_aside(parent.as_raw_fd(), &cname, &format!("{name}.palisade-quarantine")),
                    _ => Err(libc::ENOENT),
                };
                let shown_d = shown(ws, dir);
                also = match aside {
                    Ok(to_d) => format!(", and the git directory it names, {shown_d}, to {}", shown(ws, &dir.with_file_name(to_d))),
                    Err(e) => format!(
                        "; the git directory it names, {shown_d}, could not be set aside ({}): remove it before `git submodule update`",
                        std::io::Error::from_raw_os_error(e)
                    ),
                };
            }
            notices.push(format!(
                "quarantined the nested repository {shown_p}: it is a submodule in the index that git would enter, the command \
                 created or changed its git directory, and {why}. Renamed {shown_p}/.git to {shown_p}/{to}{also} (nothing \
                 deleted); inspect it, and restore with `mv {shown_p}/{to} {shown_p}/.git` only if you trust it"
            ))
        }
        Err(e) => notices.push(format!(
            "DANGER: the nested repository {shown_p} is a submodule in the index that git would enter, and {why}; it could not \
             be quarantined ({}). Do not run git in this workspace before you have removed {shown_p}/.git",
            std::io::Error::from_raw_os_error(e)
        )),
    }
}

/// Renames `name` in `dir` to `base` (or `base.1` ... `base.9` if taken), never replacing
/// anything; returns the name used.
fn rename_aside(dir: RawFd, name: &CStr, base: &str) -> Result<String, i32> {
    for i in 0..10 {
        let to = if i == 0 { base.to_string() } else { format!("{base}.{i}") };
        match dirfd::rename_noreplace_at(dir, name, &c(&to)) {
            Ok(()) => return Ok(to),
            Err(libc::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(libc::EEXIST)
}
