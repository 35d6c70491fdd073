//! `palisade cleanup`: what the library removed of what sandboxes keep between commands, and
//! what it could not.

use super::{fail, Failure};

pub(super) fn cleanup() -> Result<i32, Failure> {
    let report = palisade::cleanup()?;
    if cfg!(windows) {
        outln!("removed {} recorded permission entries ({} were already gone)", report.removed, report.already_gone);
    }
    for n in &report.notes {
        outln!("note: {n}");
    }
    if report.failed.is_empty() {
        return Ok(0);
    }
    for f in &report.failed {
        outln!("not removed: {f}");
    }
    Err(fail(format!(
        "{} entries could not be removed; they stay recorded: run `palisade cleanup` again",
        report.failed.len()
    )))
}
