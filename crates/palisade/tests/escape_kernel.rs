//! What root still holds inside: kernel settings. A command started by root runs as uid 0 in
//! its user namespace, and sysctl files check the uid, not capabilities: writing them must
//! still fail (read-only /proc/sys, and Landlock's write rules), and the host's values must be
//! unchanged.
#![cfg(target_os = "linux")]

mod common;
use common::*;

#[test]
fn sysctl_and_sysrq_writes_do_not_reach_the_kernel() {
    let fx = Fixture::new();
    let files = ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname", "/proc/sys/vm/overcommit_memory"];
    let before: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect();
    let o = fx.sh(
        r#"echo '|/bin/false palisade-escape' > /proc/sys/kernel/core_pattern; echo palisade-escape > /proc/sys/kernel/hostname;
           echo 1 > /proc/sys/vm/overcommit_memory; echo 3 > /proc/sys/vm/drop_caches; echo s > /proc/sysrq-trigger; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    for (f, b) in files.iter().zip(&before) {
        let now = std::fs::read_to_string(f).unwrap_or_default();
        assert_eq!(&now, b, "SANDBOX ESCAPE: {f} changed on the host\nrun: {}", show(&o));
    }
    let err = stderr(&o);
    assert!(
        err.matches("Read-only file system").count() + err.matches("Permission denied").count() >= 4,
        "the writes did not fail as expected: {}",
        show(&o)
    );
}

/// Raw disks (and every other device but the few listed in the README) do not exist inside:
/// device nodes ignore read-only mounts, and root owns the disks. Reading one would bypass
/// deny-read, writing one would bypass everything.
#[test]
fn host_block_devices_are_absent_inside() {
    let fx = Fixture::new();
    let disks: Vec<String> = std::fs::read_dir("/sys/block")
        .map(|d| d.flatten().map(|e| format!("/dev/{}", e.file_name().to_string_lossy())).collect())
        .unwrap_or_default();
    let present: Vec<&String> = disks.iter().filter(|d| std::path::Path::new(d).exists()).collect();
    assert!(!present.is_empty(), "this host shows no block device under /dev to test with ({disks:?})");
    let script: String = present
        .iter()
        .map(|d| format!("[ -e {d} ] && echo VISIBLE {d}; head -c 1 {d} >/dev/null 2>&1 && echo READ {d}; "))
        .collect();
    let o = fx.sh(&format!("{script} echo done"));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(
        !stdout(&o).contains("VISIBLE") && !stdout(&o).contains("READ"),
        "SANDBOX ESCAPE: a host disk is reachable inside\n{}",
        show(&o)
    );
}

/// No new user namespace (and with it no capabilities, no mounts) from inside.
#[test]
fn no_new_user_namespace_or_mount_inside() {
    let fx = Fixture::new();
    let o = fx.sh(r#""$PAL_PY" -c 'import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000) == 0: print("UNSHARED")
else: print("unshare refused", ctypes.get_errno())
os.makedirs("m", exist_ok=True)
if libc.mount(b"none", b"m", b"tmpfs", 0, None) == 0: print("MOUNTED")
else: print("mount refused", ctypes.get_errno())'
           echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(stdout(&o).contains("unshare refused"), "a new user namespace was created inside:\n{}", show(&o));
    // The system call itself was made and refused (a missing `mount` program would prove nothing).
    assert!(
        stdout(&o).contains("mount refused") && !stdout(&o).contains("MOUNTED"),
        "a mount succeeded inside:\n{}",
        show(&o)
    );
}

/// The seccomp filter's two answers: `clone3` and `openat2` fail with ENOSYS (their flags are
/// out of a filter's reach, so callers must fall back to `clone` and `openat`, which it checks),
/// a blocked call such as `keyctl` fails with EPERM. Unfiltered, the same calls with these null
/// arguments fail with EFAULT or EINVAL instead.
#[test]
fn seccomp_answers_enosys_for_clone3_and_openat2_and_eperm_for_blocked_calls() {
    let fx = Fixture::new();
    let (clone3, openat2, keyctl) = if cfg!(target_arch = "x86_64") { (435, 437, 250) } else { (435, 437, 219) };
    let o = fx.sh(&format!(
        r#""$PAL_PY" -c 'import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, nr in (("clone3", {clone3}), ("openat2", {openat2}), ("keyctl", {keyctl})):
    rc = libc.syscall(nr, 0, 0, 0, 0)
    print(name, rc, ctypes.get_errno())'; echo done"#
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    let out = stdout(&o);
    for (name, errno) in [("clone3", libc::ENOSYS), ("openat2", libc::ENOSYS), ("keyctl", libc::EPERM)] {
        assert!(out.contains(&format!("{name} -1 {errno}\n")), "{name} did not fail with errno {errno}:\n{}", show(&o));
    }
}

/// Set-user-id and set-group-id files, every way a mode is set. A command running as root is
/// the host's root (uid 0 maps to uid 0), so such a file left in the workspace would be a
/// set-user-id-root program for any local user; as another user it is still refused.
const SH_SETUID: &str = r#"
cp /bin/sh sh-chmod && chmod 4755 sh-chmod
cp /bin/sh sh-chmodg && chmod g+s sh-chmodg
install -m 4755 /bin/sh sh-install
"$PAL_PY" - <<'PY'
import os, stat
def attempt(name, f):
    try:
        f()
        print(name, "ok")
    except OSError as e:
        print(name, "refused", e.errno)
attempt("open", lambda: os.close(os.open("py-open", os.O_CREAT | os.O_WRONLY, 0o6755)))
attempt("mknod", lambda: os.mknod("py-mknod", stat.S_IFREG | 0o4755))
def fchmod():
    fd = os.open("py-fchmod", os.O_CREAT | os.O_WRONLY, 0o755)
    os.fchmod(fd, 0o4755)
    os.close(fd)
attempt("fchmod", fchmod)
def tmpfile():
    fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o4755)
    os.link("/proc/self/fd/%d" % fd, "py-tmpfile")
attempt("tmpfile", tmpfile)
PY
echo done
"#;

#[test]
fn no_set_user_id_files_can_be_made() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let o = fx.sh(SH_SETUID);
    assert!(stdout(&o).contains("done"), "the script did not run: {}", show(&o));
    let mut special = Vec::new();
    for e in std::fs::read_dir(&fx.ws).unwrap() {
        let e = e.unwrap();
        let mode = e.metadata().unwrap().permissions().mode();
        if mode & 0o6000 != 0 {
            special.push(format!("{} {:o}", e.file_name().to_string_lossy(), mode));
        }
    }
    assert!(special.is_empty(), "SANDBOX ESCAPE: set-user-id/set-group-id files were made: {special:?}\n{}", show(&o));
    // Ordinary modes still work.
    let o = fx.sh("touch plain && chmod 750 plain && mkdir d && chmod 2775 d; stat -c %a plain");
    assert!(stdout(&o).contains("750"), "chmod of ordinary bits failed: {}", show(&o));
}

/// The device nodes inside are the host's: their metadata must not change (as root inside,
/// `chmod 000 /dev/null` would break every other user's programs).
#[test]
fn host_device_nodes_metadata_is_unchanged() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    let before = std::fs::metadata("/dev/full").unwrap();
    let o = fx.sh("chmod 600 /dev/full; chmod 4777 /dev/full; touch -d 2001-01-01 /dev/full; echo done");
    let after = std::fs::metadata("/dev/full").unwrap();
    let changed = (after.mode(), after.mtime()) != (before.mode(), before.mtime());
    if changed {
        // Put the host back as it was before failing.
        let _ =
            std::process::Command::new("chmod").arg(format!("{:o}", before.mode() & 0o7777)).arg("/dev/full").status();
        let _ =
            std::process::Command::new("touch").arg("-d").arg(format!("@{}", before.mtime())).arg("/dev/full").status();
    }
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(
        !changed,
        "SANDBOX ESCAPE: the host's /dev/full changed (mode {:o} -> {:o}, mtime {} -> {})\n{}",
        before.mode(),
        after.mode(),
        before.mtime(),
        after.mtime(),
        show(&o)
    );
}

/// procfs entries outside the process directories are global: a chmod through the sandbox's own
/// /proc changes them for every procfs instance (as root inside: `chmod 0222
/// /proc/sysrq-trigger` would let every host user reboot the machine). The host's own /proc
/// shows the global mode.
#[test]
fn global_proc_entries_keep_their_mode() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    // /proc/sysrq-trigger exists only on kernels built with magic SysRq.
    let mode = |p: &str| std::fs::metadata(p).ok().map(|m| m.mode() & 0o7777);
    let (before, before_sysrq) =
        (mode("/proc/kallsyms").expect("stat /proc/kallsyms on the host"), mode("/proc/sysrq-trigger"));
    let o = fx.sh("chmod 0666 /proc/kallsyms; chmod 0222 /proc/sysrq-trigger 2>/dev/null; echo done");
    let (after, after_sysrq) =
        (mode("/proc/kallsyms").expect("stat /proc/kallsyms on the host"), mode("/proc/sysrq-trigger"));
    for (path, b, a) in
        [("/proc/kallsyms", Some(before), Some(after)), ("/proc/sysrq-trigger", before_sysrq, after_sysrq)]
    {
        if let (Some(b), Some(a)) = (b, a) {
            if a != b {
                // Put the host back (the host's root may chmod its /proc) before failing below.
                let _ = std::process::Command::new("chmod").arg(format!("{b:o}")).arg(path).status();
            }
        }
    }
    assert_eq!(
        after_sysrq,
        before_sysrq,
        "SANDBOX ESCAPE: /proc/sysrq-trigger's mode changed on the host\n{}",
        show(&o)
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        after,
        before,
        "SANDBOX ESCAPE: a global /proc entry's mode changed for every procfs instance\n{}",
        show(&o)
    );
}

/// x32 syscalls (bit 30 set in the number, same audit architecture on x86_64) must meet the
/// seccomp filter too: on kernels that enable the x32 ABI they would otherwise reach
/// `keyctl`, `ptrace` and the rest that the filter refuses by number. This kernel may not
/// enable x32; the filter answers before the kernel looks, so EPERM (the filter) is told apart
/// from ENOSYS (no x32 here, no filter in the way).
#[cfg(target_arch = "x86_64")]
#[test]
fn x32_abi_syscalls_are_refused_by_the_filter() {
    let fx = Fixture::new();
    let o = fx.py(
        r#"import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, nr in (("getpid", 39), ("keyctl", 250)):
    r = libc.syscall(ctypes.c_long(0x40000000 + nr), 0, 0, 0, 0, 0)
    print(name, r, ctypes.get_errno() if r == -1 else 0)
"#,
        &[],
    );
    ok(&o);
    let out = stdout(&o);
    for name in ["getpid", "keyctl"] {
        assert!(
            out.lines().any(|l| l == format!("{name} -1 1")),
            "SANDBOX ESCAPE (or filter gap): the x32 {name} call was not refused with EPERM by the seccomp filter\n{}",
            show(&o)
        );
    }
}

/// Every system call the filter always refuses, made from inside with harmless arguments: each
/// must fail with EPERM, the filter's answer. The list is written out here, not taken from the
/// filter's own (a call dropped from it must fail this test). Control: the host (unconfined)
/// gives other answers to the same calls (EFAULT, EINVAL, ...), so EPERM inside is the filter's
/// doing; as an ordinary user the host also says EPERM to a few (capability checks), which are
/// named in a note and still required to be EPERM inside.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_always_blocked_call_is_refused_inside() {
    let fx = Fixture::new();
    let answers = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
            .filter(|(a, _)| a != "done")
            .collect()
    };
    let o = fx.py(PY_BLOCKED_CALLS, &[]);
    assert!(stdout(&o).contains("done"), "the script did not run: {}", show(&o));
    let inside = answers(&stdout(&o));
    assert!(inside.len() >= 36, "{}", show(&o));
    let not_refused: Vec<_> = inside.iter().filter(|(_, e)| e != "1").collect();
    assert!(
        not_refused.is_empty(),
        "SANDBOX ESCAPE: these calls were not refused by the filter: {not_refused:?}\n{}",
        show(&o)
    );
    let host = std::process::Command::new(require_tool("python3")).args(["-c", PY_BLOCKED_CALLS]).output().unwrap();
    let host = answers(&stdout(&host));
    let eperm_on_host: Vec<&String> = host.iter().filter(|(_, e)| e == "1").map(|(n, _)| n).collect();
    if is_root() {
        assert!(eperm_on_host.is_empty(), "control: the host already refuses {eperm_on_host:?} with EPERM, so the test cannot tell the filter's answer");
    } else {
        assert!(
            eperm_on_host.len() < host.len() / 2,
            "control: the host refuses most of these itself: {eperm_on_host:?}"
        );
    }
}

/// The calls of [`every_always_blocked_call_is_refused_inside`] (x86_64 numbers), with
/// arguments that do nothing on the host: invalid descriptors, null pointers, bad flags (no
/// `acct(NULL)`, which would turn accounting off; no `kexec_load` with no segments, which would
/// unload a loaded kernel; ptrace asks to peek at pid 0).
const PY_BLOCKED_CALLS: &str = r#"import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
M = 0xffffffff
calls = [
 ("ptrace", 101, (2, 0, 0, 0)), ("process_vm_readv", 310, (0, 0, 0, 0, 0, 0)), ("process_vm_writev", 311, (0, 0, 0, 0, 0, 0)),
 ("io_uring_setup", 425, (0, 0)), ("io_uring_enter", 426, (-1, 0, 0, 0, 0, 0)), ("io_uring_register", 427, (-1, 0, 0, 0)),
 ("keyctl", 250, (-1, 0, 0, 0, 0)), ("add_key", 248, (0, 0, 0, 0, 0)), ("request_key", 249, (0, 0, 0, 0)),
 ("bpf", 321, (-1, 0, 0)), ("perf_event_open", 298, (0, 0, 0, 0, 0)), ("userfaultfd", 323, (-1,)),
 ("setns", 308, (-1, 0)), ("mount", 165, (0, 0, 0, 0, 0)), ("umount2", 166, (0, 0)), ("pivot_root", 155, (0, 0)),
 ("open_tree", 428, (-1, 0, 0)), ("move_mount", 429, (-1, 0, -1, 0, 0)), ("fsopen", 430, (0, 0)),
 ("fsconfig", 431, (-1, 0, 0, 0, 0)), ("fsmount", 432, (-1, 0, 0)), ("fspick", 433, (-1, 0, 0)),
 ("mount_setattr", 442, (-1, 0, 0, 0, 0)), ("kexec_load", 246, (0, 0, 0, M)), ("kexec_file_load", 320, (-1, -1, 0, 0, M)),
 ("init_module", 175, (0, 0, 0)), ("finit_module", 313, (-1, 0, 0)), ("delete_module", 176, (0, 0)),
 ("swapon", 167, (0, 0)), ("swapoff", 168, (0,)), ("reboot", 169, (0, 0, 0, 0)), ("acct", 163, (1,)),
 ("quotactl", 179, (0, 0, 0, 0)), ("lookup_dcookie", 212, (0, 0, 0)), ("open_by_handle_at", 304, (-1, 0, 0)),
 ("name_to_handle_at", 303, (-1, 0, 0, 0, 0)),
]
for name, nr, args in calls:
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    print(name, "ok" if r != -1 else ctypes.get_errno())
print("done")
"#;
