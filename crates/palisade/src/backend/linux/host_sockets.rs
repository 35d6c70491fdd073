//! The host's pathname unix sockets, for offline sandboxes: connecting to one crosses network
//! namespaces and ignores read-only mounts, so each is covered with /dev/null wherever the
//! command could reach it.
//!
//! A socket is found by what it is, not by the name it was bound under: the kernel's
//! socket-diagnostics interface (NETLINK_SOCK_DIAG, UNIX_DIAG) lists every bound socket with the
//! filesystem device and inode of its file as well as the name it was bound under. That name may
//! be stale: OpenSSH's ControlMaster binds `<ControlPath>.<random>`, links it to `<ControlPath>`
//! and removes the temporary name; a socket can be renamed, or its folder renamed, or linked
//! under a second name. So a socket file's names are those of its (device, inode), looked for
//! at the bound name, among the sockets of the bound name's folder, and, when that folder is
//! gone (renamed), under the bound file name one level down from the folder above it (only
//! real folders, no links). Where they were found is remembered per sandbox:
//! while every remembered name still holds the file and there are as many as the file has links,
//! a command costs one `lstat` per name.
//!
//! Not found (see docs/ARCHITECTURE.md, "Offline sockets"): a socket whose file was removed
//! (unreachable: nothing names it), and one moved farther than that, which stays reachable.

use super::sys;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A socket's file: the device as `stat` reports it, and the inode number's low 32 bits (all
/// that UNIX_DIAG reports).
pub(super) type FileId = (u64, u32);

/// A bound pathname socket of the host's network namespace, as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BoundSocket {
    /// The name as bound: absolute, or relative to the binder's directory at the time.
    pub name: PathBuf,
    /// Its file, unless the list came from /proc/net/unix (which does not say).
    pub file: Option<FileId>,
}

/// Where the host's socket files were found, kept between the commands of one sandbox.
#[derive(Default)]
pub(super) struct HostSockets {
    found: Mutex<HashMap<FileId, Vec<PathBuf>>>,
}

impl HostSockets {
    /// Every name the host's bound pathname sockets have now, except those under `hidden`
    /// (folders the sandbox hides or replaces anyway).
    pub fn names(&self, hidden: &[&Path]) -> Vec<PathBuf> {
        let listed = match list_by_diag() {
            Ok(l) => l,
            Err(_) => list_from_proc(),
        };
        let mut by_file: HashMap<FileId, Vec<&Path>> = HashMap::new();
        let mut names: Vec<PathBuf> = Vec::new();
        let mut search = Search::default();
        let mut relative_unknown: Vec<&Path> = Vec::new();
        for s in &listed {
            match s.file {
                Some(id) => by_file.entry(id).or_default().push(&s.name),
                // From /proc/net/unix: by bound name only.
                None if s.name.is_absolute() => names.extend(search.socket_at_name(&s.name).map(|(p, _)| p)),
                None => relative_unknown.push(&s.name),
            }
        }
        if !relative_unknown.is_empty() {
            let procs = search.processes().to_vec();
            names.extend(relative_unknown.iter().flat_map(|rel| sockets_from_each_cwd(&procs, rel)).map(|(p, _)| p));
        }
        // A server's accepted connections are listed with its name and file as well.
        for bound in by_file.values_mut() {
            bound.sort();
            bound.dedup();
        }
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        // Only live sockets are listed: forget the rest. (A new socket file that reuses an
        // inode number is the same key: its remembered names are kept only while they hold it.)
        found.retain(|id, _| by_file.contains_key(id));
        for (id, bound) in &by_file {
            let known = found.remove(id).unwrap_or_default();
            if still_complete(*id, &known) {
                names.extend(known.iter().cloned());
                found.insert(*id, known);
                continue;
            }
            let mut here: Vec<Found> =
                known.into_iter().filter(|p| holds(p, *id).is_some()).map(|p| Found { path: p, exact: true }).collect();
            for name in bound {
                here.extend(search.names_of(*id, name));
            }
            // Names found by the bound name alone (a socket there of another inode: the inode
            // numbers of some overlay file systems differ) are covered but not remembered.
            let mut exact: Vec<PathBuf> = here.iter().filter(|f| f.exact).map(|f| f.path.clone()).collect();
            exact.sort();
            exact.dedup();
            if !exact.is_empty() {
                found.insert(*id, exact);
            }
            names.extend(here.into_iter().map(|f| f.path));
        }
        drop(found);
        let mut names: Vec<PathBuf> = names.into_iter().filter(|p| !hidden.iter().any(|d| p.starts_with(d))).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Whether the diagnostics interface lists sockets here (for `palisade check`).
pub fn listing_by_inode() -> Result<usize, sys::Errno> {
    list_by_diag().map(|l| l.len())
}

/// Whether the remembered names all still hold the file and are all its links.
fn still_complete(id: FileId, known: &[PathBuf]) -> bool {
    let mut links = 0;
    for p in known {
        match holds(p, id) {
            Some(n) => links = n,
            None => return false,
        }
    }
    !known.is_empty() && known.len() as u64 >= links
}

/// The file's link count if `p` (not followed if it is a link) is the socket `id`.
fn holds(p: &Path, id: FileId) -> Option<u64> {
    let m = std::fs::symlink_metadata(p).ok()?;
    (file_of(&m) == Some(id)).then(|| m.nlink())
}

fn file_of(m: &std::fs::Metadata) -> Option<FileId> {
    m.file_type().is_socket().then(|| (m.dev(), m.ino() as u32))
}

/// A name of a socket: `exact` if it is the file looked for, not only a socket at its bound name.
struct Found {
    path: PathBuf,
    exact: bool,
}

/// One command's look-ups: each folder is resolved and listed at most once.
#[derive(Default)]
struct Search {
    /// Folder -> where it really is (links resolved), if it exists.
    real: HashMap<PathBuf, Option<PathBuf>>,
    /// Folder -> its sockets (path, file).
    sockets_in: HashMap<PathBuf, Vec<(PathBuf, FileId)>>,
    /// Folder -> its subfolders (not links to folders).
    subdirs_of: HashMap<PathBuf, Vec<PathBuf>>,
    /// Relative names -> the sockets they name from some process's directory.
    relative: HashMap<PathBuf, Vec<(PathBuf, FileId)>>,
    /// The `/proc/<pid>` folders, listed once.
    processes: Option<Vec<PathBuf>>,
}

impl Search {
    fn processes(&mut self) -> &[PathBuf] {
        self.processes.get_or_insert_with(|| {
            std::fs::read_dir("/proc")
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn real_dir(&mut self, dir: &Path) -> Option<PathBuf> {
        self.real.entry(dir.to_path_buf()).or_insert_with(|| std::fs::canonicalize(dir).ok()).clone()
    }

    /// The bound name where it names a socket now (any socket: the name alone is enough to
    /// cover it), with the links leading to its folder resolved, and that socket's metadata.
    fn socket_at_name(&mut self, name: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
        let (dir, base) = (name.parent()?, name.file_name()?);
        let p = self.real_dir(dir)?.join(base);
        let m = std::fs::symlink_metadata(&p).ok()?;
        m.file_type().is_socket().then_some((p, m))
    }

    /// The names of socket file `id` bound as `bound`: the bound name if it still names a
    /// socket; unless that is the file's only link, every name of the file in the bound name's
    /// folder (linked or renamed into place, a second link); if that folder is gone (renamed),
    /// the bound file name in each folder next to it.
    fn names_of(&mut self, id: FileId, bound: &Path) -> Vec<Found> {
        if !bound.is_absolute() {
            return self.relative_names(id, bound);
        }
        let (Some(dir), Some(base)) = (bound.parent(), bound.file_name()) else { return Vec::new() };
        let Some(real_dir) = self.real_dir(dir) else {
            let Some(up) = dir.parent().and_then(|u| self.real_dir(u)) else { return Vec::new() };
            let subdirs = self.subdirs_of(&up).to_vec();
            return subdirs
                .into_iter()
                .map(|d| d.join(base))
                .filter(|p| holds(p, id).is_some())
                .map(|path| Found { path, exact: true })
                .collect();
        };
        let mut out = Vec::new();
        if let Some((path, m)) = self.socket_at_name(bound) {
            let exact = file_of(&m) == Some(id);
            out.push(Found { path, exact });
            if exact && m.nlink() == 1 {
                return out;
            }
        }
        out.extend(
            self.sockets_in(&real_dir)
                .iter()
                .filter(|(_, f)| *f == id)
                .map(|(p, _)| Found { path: p.clone(), exact: true }),
        );
        out
    }

    fn sockets_in(&mut self, dir: &Path) -> &[(PathBuf, FileId)] {
        self.sockets_in.entry(dir.to_path_buf()).or_insert_with(|| {
            let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
            rd.filter_map(Result::ok)
                // The entry's type comes from the directory listing: no stat per entry.
                .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
                .filter_map(|e| {
                    let m = std::fs::symlink_metadata(e.path()).ok()?;
                    file_of(&m).map(|f| (e.path(), f))
                })
                .collect()
        })
    }

    fn subdirs_of(&mut self, dir: &Path) -> &[PathBuf] {
        self.subdirs_of.entry(dir.to_path_buf()).or_insert_with(|| {
            let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
            rd.filter_map(Result::ok).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect()
        })
    }

    /// A socket bound with a relative name: where that name, taken from some process's
    /// directory, holds the file, and every other name of the file in the same folder.
    fn relative_names(&mut self, id: FileId, bound: &Path) -> Vec<Found> {
        if !self.relative.contains_key(bound) {
            let procs = self.processes().to_vec();
            let found = sockets_from_each_cwd(&procs, bound);
            self.relative.insert(bound.to_path_buf(), found);
        }
        let here: Vec<PathBuf> =
            self.relative[bound].iter().filter(|(_, f)| *f == id).map(|(p, _)| p.clone()).collect();
        let mut out: Vec<Found> = Vec::new();
        for p in here {
            if holds(&p, id).is_some_and(|links| links > 1) {
                if let Some(d) = p.parent() {
                    out.extend(
                        self.sockets_in(d)
                            .iter()
                            .filter(|(_, f)| *f == id)
                            .map(|(p, _)| Found { path: p.clone(), exact: true }),
                    );
                }
            }
            out.push(Found { path: p, exact: true });
        }
        out
    }
}

/// Where sockets bound with a relative path are, as far as this user may look: the path taken
/// from the working directory of every process (through `/proc/<pid>/cwd`, which reaches it in
/// the process's own mount namespace), where it names a socket. The binder usually still sits
/// where it bound, and so does any process it handed the socket to: looking from every
/// process's directory finds at least the sockets that looking from the holders' directories
/// would, for one `stat` per process instead of one `readlink` per open descriptor of every
/// process.
fn sockets_from_each_cwd(procs: &[PathBuf], rel: &Path) -> Vec<(PathBuf, FileId)> {
    let mut out: Vec<(PathBuf, FileId)> = Vec::new();
    for d in procs {
        let p = d.join("cwd").join(rel);
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        let Some(file) = file_of(&m) else { continue };
        // As a mount target the socket must be named by where it really is.
        if let Ok(real) = std::fs::canonicalize(&p) {
            if !out.iter().any(|(q, _)| *q == real) {
                out.push((real, file));
            }
        }
    }
    out
}

// ---- Listing the sockets ----

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const UDIAG_SHOW_NAME: u32 = 0x1;
const UDIAG_SHOW_VFS: u32 = 0x2;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDRLEN: usize = 16;
/// struct unix_diag_msg: family, type, state, pad (one byte each), inode, cookie[2].
const UNIX_DIAG_MSG_LEN: usize = 16;

/// A dump request for every unix socket (all states) with its name and file.
fn diag_request(seq: u32) -> [u8; 40] {
    let mut m = [0u8; 40];
    m[0..4].copy_from_slice(&40u32.to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel. Then struct unix_diag_req.
    m[16] = libc::AF_UNIX as u8;
    m[20..24].copy_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: all
    m[28..32].copy_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS).to_ne_bytes());
    m[32..40].copy_from_slice(&[0xff; 8]); // no cookie
    m
}

fn list_by_diag() -> Result<Vec<BoundSocket>, sys::Errno> {
    use std::os::fd::AsRawFd;
    let sock = sys::sock_diag_socket()?;
    let seq = 0x5041_4c49; // any value: the socket is ours alone
    sys::send_datagram(sock.as_raw_fd(), &diag_request(seq))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let n = sys::recv_datagram(sock.as_raw_fd(), &mut buf)?;
        if n > buf.len() {
            return Err(libc::EMSGSIZE);
        }
        if parse_diag(&buf[..n], seq, &mut out)? {
            return Ok(out);
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses one datagram of the dump into `out`; true when the dump is complete. Malformed input
/// is an error (EPROTO), never a panic.
pub(super) fn parse_diag(buf: &[u8], seq: u32, out: &mut Vec<BoundSocket>) -> Result<bool, sys::Errno> {
    let mut off = 0;
    while off < buf.len() {
        let len = u32_at(buf, off).ok_or(libc::EPROTO)? as usize;
        let kind = u16_at(buf, off + 4).ok_or(libc::EPROTO)?;
        let msg_seq = u32_at(buf, off + 8).ok_or(libc::EPROTO)?;
        if len < NLMSG_HDRLEN || len > buf.len() - off {
            return Err(libc::EPROTO);
        }
        let body = &buf[off + NLMSG_HDRLEN..off + len];
        if msg_seq == seq {
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let e = u32_at(body, 0).ok_or(libc::EPROTO)? as i32;
                    return Err(if e < 0 { -e } else { libc::EPROTO });
                }
                SOCK_DIAG_BY_FAMILY => out.extend(parse_socket(body)),
                _ => {}
            }
        }
        off += align4(len).min(buf.len() - off);
    }
    Ok(false)
}

/// One socket's message: its name if it is a pathname socket, and its file.
fn parse_socket(body: &[u8]) -> Option<BoundSocket> {
    let mut at = UNIX_DIAG_MSG_LEN;
    let (mut name, mut file) = (None, None);
    while at + 4 <= body.len() {
        let len = u16_at(body, at)? as usize;
        let kind = u16_at(body, at + 2)? & NLA_TYPE_MASK;
        if len < 4 || len > body.len() - at {
            return None;
        }
        let value = &body[at + 4..at + len];
        match kind {
            UNIX_DIAG_NAME => name = Some(value),
            UNIX_DIAG_VFS => {
                let (ino, dev) = (u32_at(value, 0)?, u32_at(value, 4)?);
                // The kernel's own encoding (major in the top 12 bits, minor in the low 20).
                file = Some((libc::makedev(dev >> 20, dev & 0xf_ffff), ino));
            }
            _ => {}
        }
        at += align4(len);
    }
    // Abstract names start with a NUL byte; a pathname ends at its first NUL.
    let name = name?;
    if name.first().is_none_or(|b| *b == 0) {
        return None;
    }
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    Some(BoundSocket { name: PathBuf::from(OsStr::from_bytes(&name[..end])), file })
}

/// The bound pathname sockets from /proc/net/unix (without their files), where the diagnostics
/// interface is missing.
fn list_from_proc() -> Vec<BoundSocket> {
    let table = std::fs::read(Path::new("/proc/net/unix")).unwrap_or_default();
    parse_proc_net_unix(&table)
}

/// Num RefCount Protocol Flags Type St Inode Path: the path is what follows the seventh field;
/// abstract names start with '@', unnamed sockets have none.
pub(super) fn parse_proc_net_unix(table: &[u8]) -> Vec<BoundSocket> {
    table
        .split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let mut rest = line;
            for _ in 0..7 {
                let start = rest.iter().position(|b| *b != b' ')?;
                rest = &rest[start..];
                let end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
                rest = &rest[end..];
            }
            let start = rest.iter().position(|b| *b != b' ')?;
            let path = &rest[start..];
            (!path.starts_with(b"@")).then(|| BoundSocket { name: PathBuf::from(OsStr::from_bytes(path)), file: None })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(((16 + body.len()) as u32).to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend(2u16.to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend(((4 + value.len()) as u16).to_ne_bytes());
        a.extend(kind.to_ne_bytes());
        a.extend(value);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn socket_body(name: &[u8], vfs: Option<(u32, u32)>) -> Vec<u8> {
        let mut b = vec![1u8, 1, 10, 0];
        b.extend([0u8; 12]);
        b.extend(attr(UNIX_DIAG_NAME, name));
        if let Some((ino, dev)) = vfs {
            let mut v = ino.to_ne_bytes().to_vec();
            v.extend(dev.to_ne_bytes());
            b.extend(attr(UNIX_DIAG_VFS, &v));
        }
        b
    }

    #[test]
    fn diag_messages_give_pathname_sockets_with_their_files() {
        let mut buf = nlmsg(
            SOCK_DIAG_BY_FAMILY,
            7,
            &socket_body(b"/home/u/.cache/ssh/cm.x1\0", Some((1065030, (254 << 20) | 3))),
        );
        buf.extend(nlmsg(SOCK_DIAG_BY_FAMILY, 7, &socket_body(b"\0abstract", None)));
        buf.extend(nlmsg(SOCK_DIAG_BY_FAMILY, 7, &socket_body(b"rel.sock", Some((5, 0)))));
        let mut out = Vec::new();
        assert_eq!(parse_diag(&buf, 7, &mut out), Ok(false));
        assert_eq!(
            out,
            vec![
                BoundSocket { name: "/home/u/.cache/ssh/cm.x1".into(), file: Some((libc::makedev(254, 3), 1065030)) },
                BoundSocket { name: "rel.sock".into(), file: Some((libc::makedev(0, 0), 5)) },
            ]
        );
        assert_eq!(parse_diag(&nlmsg(NLMSG_DONE, 7, &[0; 4]), 7, &mut out), Ok(true));
        let mut err = Vec::new();
        assert_eq!(parse_diag(&nlmsg(NLMSG_ERROR, 7, &(-libc::EINVAL).to_ne_bytes()), 7, &mut err), Err(libc::EINVAL));
    }

    #[test]
    fn odd_diag_input_is_an_error_or_ignored_never_a_panic() {
        let good = nlmsg(SOCK_DIAG_BY_FAMILY, 1, &socket_body(b"/a/b", Some((1, 2))));
        // Every truncation and every corrupted byte of a valid message.
        for cut in 0..good.len() {
            let _ = parse_diag(&good[..cut], 1, &mut Vec::new());
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = parse_diag(&b, 1, &mut Vec::new());
            }
        }
        assert_eq!(parse_diag(&[0xff; 3], 1, &mut Vec::new()), Err(libc::EPROTO));
        assert_eq!(parse_diag(&nlmsg(SOCK_DIAG_BY_FAMILY, 1, &[0; 4]), 1, &mut Vec::new()), Ok(false));
    }

    #[test]
    fn proc_net_unix_lines_give_pathnames_only() {
        let t = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000091e9a110: 00000003 00000000 00000000 0001 03 14244\n\
0000000091e9a111: 00000002 00000000 00010000 0001 01  1263 /run/a b.sock\n\
0000000091e9a112: 00000002 00000000 00010000 0001 01  1264 @abstract\n\
0000000091e9a113: 00000002 00000000 00010000 0001 01  1265 rel.sock\n\
garbage\n";
        let names: Vec<PathBuf> = parse_proc_net_unix(t).into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec![PathBuf::from("/run/a b.sock"), PathBuf::from("rel.sock")]);
    }
}
