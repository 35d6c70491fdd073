//! The sandbox's mount plan (see child::NamespacePlan, which the child carries out): the
//! private /tmp and /dev/shm, the writable roots, protected paths, hidden socket folders and
//! host sockets when offline, deny-read masks.

use super::child::{MountOp, NamespacePlan};
use super::private_tmp::PrivateTmp;
use super::program::cstring;
use super::strategy::Strategy;
use super::timeline::{self, Mark};
use super::{socket_dirs, streams, Prepared, SharedPlaceholders};
use crate::error::Error;
use crate::spec::CommandSpec;
use palisade_policy::protected::Action;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

impl Prepared {
    /// With namespaces: the mount plan of this command, and the workspace's placeholder lock it
    /// holds while it runs. Nothing without namespaces.
    pub(super) fn mount_plan(
        &self,
        spec: &CommandSpec,
        env: &[(OsString, OsString)],
        tmp: &PrivateTmp,
    ) -> Result<(Option<NamespacePlan>, Option<SharedPlaceholders>), Error> {
        if !matches!(self.plan.strategy, Strategy::Namespaces { .. }) {
            return Ok((None, None));
        }
        let (actions, lock) = self.protected_actions(env)?;
        timeline::mark(Mark::ProtectedPathsResolved);
        let mut plan = self.namespace_plan(&actions, tmp, &self.command_dir(&spec.cwd))?;
        plan.console = streams::caller_terminal(spec).map(cstring).transpose()?;
        timeline::mark(Mark::MountPlanBuilt);
        Ok((Some(plan), Some(lock)))
    }

    /// The command's working directory, with links resolved when it lies outside the writable
    /// roots and the workspace (the usual case, the workspace itself, costs nothing).
    fn command_dir(&self, cwd: &Path) -> PathBuf {
        let known = self.write_roots.iter().chain(std::iter::once(&self.policy.workspace)).any(|r| cwd.starts_with(r));
        if known {
            cwd.to_path_buf()
        } else {
            std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf())
        }
    }

    fn namespace_plan(&self, actions: &[Action], tmp: &PrivateTmp, cwd: &Path) -> Result<NamespacePlan, Error> {
        let pid = matches!(self.plan.strategy, Strategy::Namespaces { pid: true });
        let network = &self.plan.network;
        let mut writable_sources = vec![cstring(tmp.shm_dir())?, cstring(tmp.tmp_dir())?];
        let mut ops = vec![
            MountOp::AttachWritable { tree_index: 0, target: cstring("/dev/shm")? },
            MountOp::AttachWritable { tree_index: 1, target: cstring("/tmp")? },
        ];
        // (path, writable): the writable roots, and the workspace and working directory where
        // the private /tmp would cover them (read-only there), outermost first.
        let mut roots: Vec<(PathBuf, bool)> = self.write_roots.iter().map(|r| (r.clone(), true)).collect();
        for view in [&self.policy.workspace, &cwd.to_path_buf()] {
            let shown = roots.iter().any(|(r, _)| view.starts_with(r));
            if view.starts_with("/tmp") && !shown && view.is_dir() {
                roots.push((view.clone(), false));
            }
        }
        roots.sort_by_key(|(r, _)| r.components().count());
        for (root, writable) in &roots {
            let (tree_index, target) = (writable_sources.len(), cstring(root)?);
            ops.push(if *writable {
                MountOp::AttachWritable { tree_index, target }
            } else {
                MountOp::AttachReadOnly { tree_index, target }
            });
            writable_sources.push(cstring(root)?);
        }
        if pid {
            // Kernel settings stay read-only even for a command that runs as uid 0 (as root's
            // do: sysctl files check the uid, not capabilities); Landlock denies it as well.
            ops.push(MountOp::ReadOnly { path: cstring("/proc/sys")? });
        }
        for a in actions {
            ops.push(match a {
                Action::Pin(p) => MountOp::Pin { path: cstring(p)? },
                Action::ReadOnly(p) | Action::Placeholder { path: p, .. } => MountOp::ReadOnly { path: cstring(p)? },
            });
        }
        for p in network.hidden_socket_dirs() {
            if cwd.starts_with(p) {
                // Hiding it would hide the working directory: its sockets are covered one by one.
                for s in socket_dirs::sockets_in(p) {
                    ops.push(MountOp::MaskFile { path: cstring(s)?, unreachable_ok: true });
                }
                continue;
            }
            ops.push(MountOp::Hide { path: cstring(p)? });
        }
        if network.masks_host_sockets() {
            // Sockets bound elsewhere (a folder under the home directory, say) are covered one
            // by one: connecting needs no write access to their folder, so the read-only
            // mount alone would not stop it.
            let hidden: Vec<&Path> = [Path::new("/tmp"), Path::new("/dev")]
                .into_iter()
                .chain(network.hidden_socket_dirs().iter().map(PathBuf::as_path))
                .chain(self.deny_read.iter().map(|(d, _)| d.as_path()))
                .collect();
            // Sockets inside writable roots are covered too: a listed one is bound by a host
            // process (a sandbox's own sockets live in its network namespace, whose list this
            // is not), e.g. a database or daemon socket in the workspace or in a writable
            // ~/.cache, and offline means no host service.
            for p in self.host_sockets.names(&hidden) {
                ops.push(MountOp::MaskFile { path: cstring(p)?, unreachable_ok: true });
            }
        }
        for (p, dir) in &self.deny_read {
            let path = cstring(p)?;
            ops.push(if *dir { MountOp::MaskDir { path } } else { MountOp::MaskFile { path, unreachable_ok: false } });
        }
        Ok(NamespacePlan {
            uid_map: format!("{0} {0} 1\n", self.host.euid).into_bytes(),
            gid_map: format!("{0} {0} 1\n", self.host.egid).into_bytes(),
            writable_sources,
            ops,
            minimal_dev: true,
            console: None,
            mount_proc: pid,
            loopback_up: network.new_namespace(),
        })
    }
}
