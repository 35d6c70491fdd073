//! `palisade cleanup` and `palisade check`'s notes about what killed runs left behind.

use super::{placeholders, private_tmp};
use crate::error::Error;

/// `palisade cleanup`: what runs that were killed before they could clean up left behind: in
/// workspaces, empty placeholders for missing protected paths (see `placeholders`) and the lock
/// files of workspaces nobody uses; on /dev/shm or in the temporary folder, their private
/// temporary folders (see `private_tmp`). What a running sandbox or a kept process relies on
/// stays.
pub(crate) fn cleanup() -> Result<crate::report::CleanupReport, Error> {
    // One part that cannot be done (its folder unusable) must not keep the other from running:
    // it is reported as a failure, and cleanup exits non-zero.
    let (stale, stale_failure) = match placeholders::remove_stale() {
        Ok(s) => (s, None),
        Err(e) => (Default::default(), Some(format!("placeholders: {e}"))),
    };
    let tmps = private_tmp::remove_leftovers().map_err(|e| Error::Io {
        context: "cleaning palisade's records of private temporary folders".into(),
        source: e,
    })?;
    let mut r = crate::report::CleanupReport {
        removed: stale.removed + tmps.removed.len(),
        failed: tmps.failed,
        ..Default::default()
    };
    r.failed.extend(stale_failure);
    r.notes.push(format!("{} placeholders left by interrupted runs removed", stale.removed));
    if stale.in_use > 0 {
        r.notes.push(format!(
            "{} writable root(s) in use by a running sandbox or a --keep-processes leftover: their placeholders stay",
            stale.in_use
        ));
    }
    if tmps.removed.is_empty() {
        r.notes.push("no private temporary folders left by killed runs".into());
    }
    for l in &tmps.removed {
        r.notes.push(format!(
            "removed {} ({}), the private temporary folder of a run that was killed (or whose --keep-processes leftovers have ended)",
            l.dir.display(),
            private_tmp::human_size(l.bytes)
        ));
    }
    if tmps.in_use > 0 {
        r.notes.push(format!("{} private temporary folder(s) of running commands stay", tmps.in_use));
    }
    r.notes.extend(tmps.left_alone.iter().cloned());
    r.temp_folders = tmps.removed.into_iter().map(|l| (l.dir, l.bytes)).collect();
    Ok(r)
}

/// `palisade check`'s lines about what killed runs left (removed by `palisade cleanup`).
pub(crate) fn leftover_notes() -> Vec<String> {
    let left = private_tmp::leftovers();
    if left.is_empty() {
        return Vec::new();
    }
    let bytes = left.iter().map(|l| l.bytes).sum();
    let names: Vec<String> = left.iter().map(|l| l.dir.display().to_string()).collect();
    vec![format!(
        "{} private temporary folder(s) left by killed runs ({}: {}): `palisade cleanup` removes them",
        left.len(),
        private_tmp::human_size(bytes),
        names.join(", ")
    )]
}
