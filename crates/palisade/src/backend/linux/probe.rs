//! `palisade check` on Linux: find out what this host can enforce by really trying each
//! mechanism in a throw-away child process, not by reading version numbers.

use super::rules;
use super::sys;
use crate::report::HostReport;

/// Runs `f` in a forked child and returns its exit code (0 = it worked), or the errno the child
/// reported. Only used by `check`, which is single-threaded.
fn try_in_child(f: impl FnOnce() -> Result<(), i32>) -> Result<(), i32> {
    let pid = sys::fork_process()?;
    if pid == 0 {
        let code = match f() {
            Ok(()) => 0,
            Err(e) => e.clamp(1, 255),
        };
        sys::exit(code);
    }
    let status = sys::wait_pid(pid, false)?.unwrap_or(0);
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(libc::WEXITSTATUS(status))
    } else {
        Err(libc::EINTR)
    }
}

fn unshare(flags: libc::c_int) -> Result<(), i32> {
    // SAFETY: unshare only changes the calling (child) process.
    if unsafe { libc::unshare(flags) } < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL))
    } else {
        Ok(())
    }
}

fn errno_text(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

fn read_trim(p: &str) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// Why creating a user namespace failed, in words a user can act on.
pub fn userns_denial_reason(errno: i32) -> String {
    if read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return "AppArmor restricts unprivileged user namespaces on this host (kernel.apparmor_restrict_unprivileged_userns = 1)".into();
    }
    if read_trim("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)".into();
    }
    if read_trim("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return "user namespaces are disabled (user.max_user_namespaces = 0)".into();
    }
    format!(
        "creating a user namespace failed ({}); a container runtime's seccomp profile may forbid it",
        errno_text(errno)
    )
}

/// The command that installs Palisade's AppArmor profile, with this binary's full path when it
/// is the `palisade` CLI: `sudo` does not search `~/.local/bin`, where a user install puts it.
pub fn sudo_setup() -> String {
    let exe = std::env::current_exe().ok().filter(|p| p.file_name().is_some_and(|n| n == "palisade"));
    match exe {
        Some(p) => format!("sudo {} setup", p.display()),
        None => "sudo palisade setup".into(),
    }
}

pub fn host_report() -> HostReport {
    let mut r = HostReport::default();
    let uid = sys::geteuid();
    r.facts.push(("user".into(), if uid == 0 { "root".into() } else { format!("uid {uid}") }));
    if let Some(k) = read_trim("/proc/sys/kernel/osrelease") {
        r.facts.push(("kernel".into(), k));
    }

    let userns = try_in_child(|| unshare(libc::CLONE_NEWUSER));
    r.push(
        "user namespaces",
        userns.is_ok(),
        match userns {
            Ok(()) => "available".into(),
            Err(e) => userns_denial_reason(e),
        },
    );
    let full = try_in_child(|| {
        unshare(
            libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWIPC,
        )?;
        sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
        sys::set_mount_readonly(c"/", true, true)?;
        sys::clone_mount_tree(c"/").map(drop)?;
        // The sandbox's /dev/pts is a new devpts instance.
        sys::mount(
            Some(c"devpts"),
            c"/dev/pts",
            Some(c"devpts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=0620"),
        )
    });
    r.push(
        "mount, pid, net, ipc namespaces",
        full.is_ok(),
        match full {
            Ok(()) => "available (recursive read-only remount, mount-tree cloning and a private devpts work)".into(),
            Err(e) => format!("failed: {}", errno_text(e)),
        },
    );
    let proc_ok = try_in_child(|| {
        unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID)?;
        let pid = sys::fork_process()?;
        if pid == 0 {
            let r = sys::mount(
                Some(c"proc"),
                c"/proc",
                Some(c"proc"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                None,
            );
            sys::exit(match r {
                Ok(()) => 0,
                Err(e) => e.clamp(1, 255),
            });
        }
        let st = sys::wait_pid(pid, false)?.unwrap_or(1);
        if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
            Ok(())
        } else {
            Err(libc::WEXITSTATUS(st).max(1))
        }
    });
    r.push(
        "private /proc",
        proc_ok.is_ok(),
        match proc_ok {
            Ok(()) => "a fresh /proc can be mounted in a pid namespace".into(),
            Err(e) => format!(
                "failed: {} (outside processes stay visible; Landlock still blocks access to them)",
                errno_text(e)
            ),
        },
    );

    let abi = rules::kernel_abi();
    let landlock_ok = abi > 0
        && try_in_child(|| {
            let spec = rules::RulesetSpec {
                abi: rules::abi_from_version(abi).ok_or(libc::ENOSYS)?,
                read: &[],
                write: &[],
                write_per_command: &[],
                handle_reads: true,
                block_tcp: abi >= 4,
                scope_abstract_unix: abi >= 6,
                scope_signals: abi >= 6,
            };
            let rs = rules::build(&spec, None).map_err(|_| libc::EINVAL)?.ok_or(libc::ENOSYS)?;
            sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)?;
            sys::landlock_restrict_self(std::os::fd::AsRawFd::as_raw_fd(&rs))
        })
        .is_ok();
    r.push(
        "landlock",
        landlock_ok,
        if abi <= 0 {
            "not available (needs Linux 5.13+ with landlock in the lsm= list)".into()
        } else {
            let mut parts = vec![format!("ABI {abi}: filesystem")];
            if abi >= 4 {
                parts.push("TCP bind/connect".into());
            }
            if abi >= 5 {
                parts.push("device ioctls".into());
            }
            if abi >= 6 {
                parts.push("abstract-socket and signal scoping".into());
            }
            parts.join(", ")
        },
    );

    let seccomp_ok = try_in_child(|| {
        let prog = super::seccomp::build(super::seccomp::FilterOptions {
            unix_sockets_only: true,
            namespaced_families_only: false,
            foreground_fixed: false,
        })
        .map_err(|_| libc::EINVAL)?;
        seccompiler::apply_filter(&prog).map_err(|_| libc::EPERM)
    });
    r.push(
        "seccomp",
        seccomp_ok.is_ok(),
        match seccomp_ok {
            Ok(()) => "the filter applies".into(),
            Err(e) => format!("failed: {}", errno_text(e)),
        },
    );

    let listing = super::host_sockets::listing_by_inode();
    r.push("host unix socket listing", listing.is_ok(), match listing {
        Ok(n) => format!("socket diagnostics (netlink): {n} bound pathname sockets, each found by its file (device, inode), not only by the name it was bound under"),
        Err(e) => format!("netlink sock_diag failed ({}): offline sandboxes cover host sockets by the name they were bound under only (from /proc/net/unix), not sockets linked or renamed since", errno_text(e)),
    });

    if read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        r.notes.push(format!("AppArmor restricts unprivileged user namespaces: `{}` installs a profile for Palisade (as distributions do for bwrap).", sudo_setup()));
    }
    r.notes.extend(super::leftover_notes());
    r.namespaces = userns.is_ok() && full.is_ok();
    r.landlock_abi = abi.max(0) as u32;
    r
}
