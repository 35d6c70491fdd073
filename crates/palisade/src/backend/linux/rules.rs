//! The Landlock ruleset: which hierarchies the command may read and write, which devices it may
//! use, and (where no network namespace fences it) that it may not bind or connect TCP.
//!
//! Landlock rules are tied to inodes, not mount points, so a rule on a writable root also
//! covers that root where the mount namespace attaches it.

use landlock::{Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, Ruleset, RulesetAttr, Scope, ABI};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Device nodes every command may read, write and use ioctls on (terminals included).
pub const DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts"];

#[derive(Debug)]
pub struct RulesetSpec<'a> {
    pub abi: ABI,
    /// Hierarchies readable and executable (the whole filesystem but /dev, minus deny-read
    /// where Landlock must enforce it).
    pub read: &'a [PathBuf],
    /// Hierarchies writable (and readable).
    pub write: &'a [PathBuf],
    /// Writable paths made for one command (its private tmp): their handles are not kept.
    pub write_per_command: &'a [PathBuf],
    /// Whether Landlock enforces reads too (Landlock-only mode). In the mount namespace the
    /// masks and the minimal /dev do, and Landlock guards writes only (a fresh /proc has no
    /// inode a rule made beforehand could name).
    pub handle_reads: bool,
    pub block_tcp: bool,
    pub scope_abstract_unix: bool,
    pub scope_signals: bool,
}

/// The Landlock ABI the running kernel offers (0 if none).
pub fn kernel_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and size 0 this call only returns the ABI version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

pub fn abi_from_version(v: i32) -> Option<ABI> {
    Some(match v {
        ..=0 => return None,
        1 => ABI::V1,
        2 => ABI::V2,
        3 => ABI::V3,
        4 => ABI::V4,
        5 => ABI::V5,
        _ => ABI::V6,
    })
}

/// An `O_PATH` handle of a rule's path, with what it was opened on.
struct Handle {
    fd: OwnedFd,
    id: super::sys::Identity,
}

fn open_handle(path: &Path) -> Option<Handle> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_PATH follows a final link, as the landlock crate's PathFd does.
    let fd: OwnedFd = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH).open(path).ok()?.into();
    let id = super::sys::identity(fd.as_raw_fd(), c"").ok()?;
    Some(Handle { fd, id })
}

/// Handles of the rule paths that belong to a sandbox (read roots, writable roots, devices),
/// kept between its commands: opening one costs an open, a stat and a close per path and
/// command. A kept handle is used only while the path still names the same inode (one stat
/// per command; the handle keeps its inode alive, so the number cannot be reused meanwhile),
/// so the rule is exactly the one a fresh open would give; otherwise it is opened again.
/// Only handles on the root's or /dev's mount are kept (a handle pins its mount: `umount`
/// of a separate /boot, /home or removable workspace must not fail while a sandbox lives).
pub struct PathHandles {
    kept: Mutex<HashMap<PathBuf, Handle>>,
    /// Mounts that stay for the life of the system: those of / and /dev.
    lasting_mounts: Vec<u64>,
}

impl PathHandles {
    pub fn new() -> PathHandles {
        let lasting_mounts =
            [c"/", c"/dev"].iter().filter_map(|p| super::sys::identity(libc::AT_FDCWD, p).ok()?.mount).collect();
        PathHandles { kept: Mutex::new(HashMap::new()), lasting_mounts }
    }
}

/// Adds a path-beneath rule for what `path` names now. `kept`: reuse and keep its handle.
fn add(
    ruleset: RawFd,
    abi: ABI,
    path: &Path,
    access: BitFlags<AccessFs>,
    handles: Option<&PathHandles>,
) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let rule = |h: &Handle| {
        // Directory-only rights (listing, creating, removing) do not apply to a file.
        let access = if h.id.dir { access } else { access & AccessFs::from_file(abi) };
        super::sys::landlock_add_path_rule(ruleset, h.fd.as_raw_fd(), access.bits())
            .map_err(|e| format!("adding the rule for {}: {}", path.display(), std::io::Error::from_raw_os_error(e)))
    };
    // A path that vanished (or never existed) grants nothing.
    let Some(handles) = handles else {
        return open_handle(path).map_or(Ok(()), |h| rule(&h));
    };
    let mut kept = handles.kept.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = kept.get(path) {
        if std::fs::metadata(path).is_ok_and(|m| m.dev() == h.id.dev && m.ino() == h.id.ino) {
            return rule(h);
        }
        kept.remove(path);
    }
    let Some(h) = open_handle(path) else { return Ok(()) };
    let r = rule(&h);
    if h.id.mount.is_some_and(|m| handles.lasting_mounts.contains(&m)) {
        kept.insert(path.to_path_buf(), h);
    }
    r
}

/// The rights every command has on device nodes (and terminals).
pub fn device_access(abi: ABI, handle_reads: bool) -> landlock::BitFlags<AccessFs> {
    let handled =
        if handle_reads { AccessFs::from_all(abi) } else { AccessFs::from_all(abi) & !AccessFs::from_read(abi) };
    let mut device = (AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::ReadDir) & handled;
    if abi >= ABI::V3 {
        device |= AccessFs::Truncate;
    }
    if abi >= ABI::V5 {
        device |= AccessFs::IoctlDev;
    }
    device
}

/// The ruleset's descriptor (`None` where the kernel made none). `kept`: the sandbox's kept
/// handles, used for every rule path except `spec.write_per_command`.
pub fn build(spec: &RulesetSpec<'_>, kept: Option<&PathHandles>) -> Result<Option<OwnedFd>, String> {
    let e = |e: landlock::RulesetError| e.to_string();
    let abi = spec.abi;
    let handled =
        if spec.handle_reads { AccessFs::from_all(abi) } else { AccessFs::from_all(abi) & !AccessFs::from_read(abi) };
    let mut ruleset =
        Ruleset::default().set_compatibility(CompatLevel::HardRequirement).handle_access(handled).map_err(e)?;
    if spec.block_tcp {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi)).map_err(e)?;
    }
    if abi >= ABI::V6 {
        let mut scopes = landlock::BitFlags::<Scope>::empty();
        if spec.scope_abstract_unix {
            scopes |= Scope::AbstractUnixSocket;
        }
        if spec.scope_signals {
            scopes |= Scope::Signal;
        }
        if !scopes.is_empty() {
            ruleset = ruleset.scope(scopes).map_err(e)?;
        }
    }
    let read = AccessFs::from_read(abi) & handled;
    let write = handled;
    let device = device_access(abi, spec.handle_reads);
    let Some(fd) = Option::<OwnedFd>::from(ruleset.create().map_err(e)?) else { return Ok(None) };
    let rs = fd.as_raw_fd();
    // Listing directories is allowed everywhere (file contents are what deny-read protects).
    if spec.handle_reads {
        add(rs, abi, Path::new("/"), AccessFs::ReadDir.into(), kept)?;
        for p in spec.read {
            add(rs, abi, p, read, kept)?;
        }
    }
    for p in spec.write {
        add(rs, abi, p, write, kept)?;
    }
    for p in spec.write_per_command {
        add(rs, abi, p, write, None)?;
    }
    for d in DEVICES {
        add(rs, abi, Path::new(d), device, kept)?;
    }
    Ok(Some(fd))
}

/// The hierarchies to grant read on: every entry of `/` except `/dev`, with each existing
/// deny-read path carved out by replacing its ancestors with their other children.
pub fn read_roots(deny_read: &[PathBuf], list_dir: &dyn Fn(&Path) -> Vec<PathBuf>) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = list_dir(Path::new("/")).into_iter().filter(|p| p != Path::new("/dev")).collect();
    for deny in deny_read {
        // Walk down from the granted ancestor of `deny`, replacing it by its other children.
        while let Some(i) = roots.iter().position(|r| deny.starts_with(r)) {
            let ancestor = roots.swap_remove(i);
            if &ancestor == deny {
                break;
            }
            roots.extend(list_dir(&ancestor));
        }
    }
    roots.sort();
    roots
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fake_fs() -> BTreeMap<PathBuf, Vec<PathBuf>> {
        let mut m = BTreeMap::new();
        let p = |s: &str| PathBuf::from(s);
        m.insert(p("/"), vec![p("/usr"), p("/dev"), p("/home"), p("/etc")]);
        m.insert(p("/home"), vec![p("/home/u"), p("/home/v")]);
        m.insert(p("/home/u"), vec![p("/home/u/.ssh"), p("/home/u/src"), p("/home/u/.docker")]);
        m.insert(p("/home/u/.docker"), vec![p("/home/u/.docker/config.json"), p("/home/u/.docker/run")]);
        m
    }

    #[test]
    fn read_roots_exclude_dev_and_carve_out_deny_paths() {
        let fs = fake_fs();
        let list = |p: &Path| fs.get(p).cloned().unwrap_or_default();
        let roots = read_roots(&[PathBuf::from("/home/u/.ssh"), PathBuf::from("/home/u/.docker/config.json")], &list);
        let want: Vec<PathBuf> =
            ["/etc", "/home/u/.docker/run", "/home/u/src", "/home/v", "/usr"].iter().map(PathBuf::from).collect();
        assert_eq!(roots, want);
    }

    #[test]
    fn read_roots_ignore_deny_paths_outside_granted_tree() {
        let fs = fake_fs();
        let list = |p: &Path| fs.get(p).cloned().unwrap_or_default();
        let roots = read_roots(&[PathBuf::from("/dev/sda")], &list);
        assert_eq!(roots.len(), 3);
    }
}
