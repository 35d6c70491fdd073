//! What the Linux plan needs to know about this host, gathered in one step (the only system
//! calls behind the decision), so that `plan::decide` stays a pure function of plain data.
//!
//! User namespaces and seccomp are not probed here: probing costs a fork per sandbox, and the
//! first command finds out anyway (a refused clone becomes the "namespaces" refusal, see
//! `process::clone_error`; a seccomp failure is a named setup step in the child).

use super::{rules, socket_dirs, sys};
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct HostFacts {
    /// The effective uid (root's commands need Landlock's device rules, and Landlock-only mode
    /// refuses root without an opt-in) and gid; the user namespace maps both to themselves.
    pub euid: u32,
    pub egid: u32,
    /// The Landlock ABI version the kernel reports (0: none), as shown in the layers.
    pub landlock_version: i32,
    /// The highest capability number of this kernel (the child drops them all).
    pub last_capability: u32,
    /// The well-known folders of unix sockets that exist here (see `socket_dirs::candidates`).
    pub socket_dirs: Vec<PathBuf>,
}

impl HostFacts {
    pub fn gather() -> HostFacts {
        HostFacts {
            euid: sys::geteuid(),
            egid: sys::getegid(),
            landlock_version: rules::kernel_abi(),
            last_capability: sys::last_capability(),
            socket_dirs: socket_dirs::candidates(),
        }
    }

    /// The Landlock ABI this kernel offers, if any.
    pub fn landlock(&self) -> Option<landlock::ABI> {
        rules::abi_from_version(self.landlock_version)
    }
}
