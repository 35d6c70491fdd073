//! Files that hide changes from review (`info/exclude`, `info/grafts`, replace refs, alternates).

use super::*;

pub(super) fn report_hiding_files(
    gd: &OwnedFd,
    gd_path: &Path,
    ws: &Path,
    start: (i64, i64),
    notices: &mut Vec<String>,
) {
    let fd = gd.as_raw_fd();
    // An empty file says nothing (and is what Palisade's placeholder for a missing one is).
    let changed = |parent: &str, name: &str| -> bool {
        let Ok(p) = dirfd::open_dir_at(fd, &c(parent)) else { return false };
        dirfd::stat_at(p.as_raw_fd(), &c(name)).is_ok_and(|st| st.st_size > 0 && changed_since(&st, start))
    };
    // Grafts rewrite history as git log shows it (git push sends the real one). Git never
    // writes the file itself, and a read-only placeholder would make git warn at every command,
    // so one the command made or changed is set aside instead (renamed, not deleted).
    if let Ok(info) = dirfd::open_dir_at(fd, &c("info")) {
        let grafts = c("grafts");
        if dirfd::stat_at(info.as_raw_fd(), &grafts).is_ok_and(|st| changed_since(&st, start)) {
            let shown_g = shown(ws, &gd_path.join("info/grafts"));
            let to = c("grafts.palisade-quarantine");
            match dirfd::rename_noreplace_at(info.as_raw_fd(), &grafts, &to) {
                Ok(()) => notices.push(format!(
                    "the command wrote {shown_g}, which makes git log show a different history than git push sends: \
                     renamed it to {shown_g}.palisade-quarantine (nothing deleted); review it"
                )),
                Err(e) => notices.push(format!(
                    "the command wrote {shown_g}, which makes git log show a different history than git push sends, and it \
                     could not be set aside ({}): remove it before you trust git log",
                    std::io::Error::from_raw_os_error(e)
                )),
            }
        }
    }
    for (parent, name, what) in [
        ("info", "exclude", "makes git status ignore files"),
        ("objects/info", "alternates", "makes git read objects from another repository"),
        // A shallow boundary git log stops at (`git fetch --depth` writes it too, so it stays
        // writable): commits below it disappear from the history you review.
        (".", "shallow", "makes git log stop at the commits it names, hiding older history"),
    ] {
        if changed(parent, name) {
            notices.push(format!(
                "the command changed {}: it {what}; review it",
                shown(ws, &if parent == "." { gd_path.join(name) } else { gd_path.join(parent).join(name) })
            ));
        }
    }
    remove_written_commit_graphs(fd, start);
    // Replace refs: loose (refs/replace/*) or packed.
    if let Ok(refs) = dirfd::open_dir_at(fd, &c("refs")) {
        if let Ok(replace) = dirfd::open_dir_at(refs.as_raw_fd(), &c("replace")) {
            let any = dirfd::entries(replace.as_raw_fd()).is_ok_and(|e| !e.is_empty());
            let st = dirfd::stat_at(replace.as_raw_fd(), &c(""));
            if any && st.is_ok_and(|st| changed_since(&st, start)) {
                notices.push(format!(
                    "the command added replace refs ({}): git log shows the replacement while git push sends the original; \
                     review with `git replace -l`",
                    shown(ws, &gd_path.join("refs/replace"))
                ));
            }
        }
    }
    if dirfd::stat_at(fd, &c("packed-refs")).is_ok_and(|st| changed_since(&st, start)) {
        let text = read_small(fd, &c("packed-refs"), 64 << 20).unwrap_or_default();
        if text.windows(14).any(|w| w == b" refs/replace/") {
            notices.push(format!(
                "{} names replace refs: git log shows the replacement while git push sends the original; review with `git replace -l`",
                shown(ws, &gd_path.join("packed-refs"))
            ));
        }
    }
}
