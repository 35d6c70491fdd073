//! Denial reports (`--report-denials`): a seccomp user-notification observer.
//!
//! The child loads one more seccomp filter (observer_filter.rs) with a new listener, after the
//! sandbox's own filter, and sends the listener here over a unix socket (like the proxy's port,
//! see network.rs). A supervisor thread receives each watched call (a write by path, or a
//! `connect`), reads its path or address from the caller's memory (/proc/PID/mem) while the
//! caller waits, checks that the notification is still live (its pid names the caller), and
//! always answers "continue": the kernel then runs the call with every other check in place.
//! Only afterwards is the call judged, with the policy's pure functions
//! (palisade_policy::denials): a call the policy refuses becomes a [`DenialRecord`].
//!
//! The observer never decides anything, so it cannot weaken the sandbox: a call that Landlock,
//! a read-only mount or the network namespace refuses is refused by the kernel whatever the
//! observer does. If the observer stops (its thread ends, the listener is closed), the kernel
//! answers every watched call ENOSYS: the command fails, it is not let through. Calls the
//! sandbox's own seccomp filter refuses never reach the observer (ERRNO outranks USER_NOTIF).
//!
//! What the observer sees is the call and its arguments, not its result: a record says "the
//! command attempted this, and the policy refuses it", which is what the kernel enforces. A
//! process that changes its own memory between the call and the read (another thread) can
//! only make its own report wrong.

use super::observer_filter::{self, Base, Target, Watched};
use super::sys;
use crate::error::Error;
use crate::status::{DenialKind, DenialRecord};
use palisade_policy::denials::{self, NetworkScope, WriteScope};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Distinct records kept per command (the count of each keeps growing); more are dropped.
const MAX_RECORDS: usize = 1000;
/// How long the end of a command waits for the observer to see the last process go.
const FINISH_WAIT: Duration = Duration::from_secs(2);

/// What the policy lets a command do, for judging observed calls.
#[derive(Clone, Debug)]
pub struct Scope {
    pub write: WriteScope,
    pub network: NetworkScope,
}

impl Scope {
    fn watched(&self) -> Vec<Watched> {
        observer_filter::watched(self.network != NetworkScope::On)
    }
}

/// The network setting as far as connections go.
pub fn network_scope(network: &palisade_policy::Network) -> NetworkScope {
    if network.is_off() {
        NetworkScope::Off
    } else if network.allowlist().is_some() {
        NetworkScope::ProxyOnly
    } else {
        NetworkScope::On
    }
}

/// The calls to watch under `network`: writes always; `connect` unless the network is on.
pub fn scope_watched(network: &palisade_policy::Network) -> Vec<Watched> {
    observer_filter::watched(network_scope(network) != NetworkScope::On)
}

/// One command's observer: the channel the child sends its listener on, the supervisor
/// thread, and the records it made.
pub struct Observer {
    records: Arc<Mutex<Records>>,
    /// Dropping it (closing the pipe) stops the supervisor.
    stop: Option<OwnedFd>,
    done: mpsc::Receiver<()>,
    /// The child's end of the channel (closed here once the child has its copy).
    child_end: Option<OwnedFd>,
    /// The number of the supervisor's end (which the child closes).
    parent_fd: RawFd,
    /// The supervisor has ended (or was stopped on purpose).
    ended: bool,
}

impl Observer {
    /// Starts the supervisor, waiting for the listener (before the child is cloned: without a
    /// pid namespace, the cloning thread is suspended until the command execs, and the child
    /// makes watched calls before that).
    pub fn start(scope: Scope) -> Result<Observer, Error> {
        let io_err = |e| Error::Io { context: "starting the denial observer".into(), source: e };
        let (parent, child) = sys::socketpair().map_err(io_err)?;
        let parent_fd = parent.as_raw_fd();
        let (stop_r, stop_w) = sys::pipe().map_err(io_err)?;
        let records = Arc::new(Mutex::new(Records::default()));
        let (done_tx, done) = mpsc::channel();
        let shared = records.clone();
        // The signals palisade passes on stay blocked in this thread (see network.rs).
        let old_mask = sys::block_signals(&sys::sigset_of(super::signals::FORWARDED));
        let spawned = std::thread::Builder::new().name("palisade-denials".into()).spawn(move || {
            if let Some(listener) = receive_listener(&parent, &stop_r) {
                drop(parent);
                serve(&listener, &stop_r, &scope, &shared);
            }
            let _ = done_tx.send(());
        });
        sys::set_signal_mask(&old_mask);
        spawned.map_err(io_err)?;
        Ok(Observer { records, stop: Some(stop_w), done, child_end: Some(child), parent_fd, ended: false })
    }

    /// The descriptor the child sends its listener on.
    pub fn child_fd(&self) -> RawFd {
        self.child_end.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// The supervisor's end, for the child to close.
    pub fn parent_fd(&self) -> RawFd {
        self.parent_fd
    }

    /// Once the child has its copy (so that its end of the channel closes when it does).
    pub fn close_child_end(&mut self) {
        self.child_end = None;
    }

    /// Closes the listener: from then on the kernel answers the command's watched calls
    /// ENOSYS (fail closed). For tests of exactly that.
    pub fn stop(&mut self) {
        self.stop = None;
        self.ended = true;
        let _ = self.done.recv_timeout(FINISH_WAIT);
    }

    /// The records, once the command has ended (waits briefly for the supervisor to see the
    /// last sandboxed process go; calls it has not answered yet are still answered after).
    pub fn finish(&mut self) -> Vec<DenialRecord> {
        self.ended = self.done.recv_timeout(FINISH_WAIT).is_ok();
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.list.clone()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        if !self.ended {
            // Processes still use the filter (a command dropped while it runs): the supervisor
            // must keep answering them until they are gone, or their writes would fail. Its
            // stop pipe stays open for that (one descriptor, until this process ends).
            std::mem::forget(self.stop.take());
        }
    }
}

/// The records of one command, one per (kind, target, rule, system call), oldest first.
#[derive(Default)]
struct Records {
    list: Vec<DenialRecord>,
    index: HashMap<(DenialKind, String, denials::Rule, &'static str), usize>,
}

impl Records {
    fn add(&mut self, kind: DenialKind, target: String, rule: denials::Rule, syscall: &'static str) {
        let key = (kind, target, rule, syscall);
        if let Some(&i) = self.index.get(&key) {
            self.list[i].count += 1;
        } else if self.list.len() < MAX_RECORDS {
            self.index.insert(key.clone(), self.list.len());
            self.list.push(DenialRecord { kind, target: key.1, rule, syscall: syscall.to_string(), count: 1 });
        }
    }
}

/// Waits for the child's listener; `None` if the child ended (or failed) before sending it, or
/// the observer was stopped.
fn receive_listener(channel: &OwnedFd, stop: &OwnedFd) -> Option<OwnedFd> {
    loop {
        let [ch, st] = sys::poll_readable([channel.as_raw_fd(), stop.as_raw_fd()]).ok()?;
        if st.readable || st.hung_up {
            return None;
        }
        if ch.readable || ch.hung_up {
            return sys::try_recv_fd(channel.as_raw_fd()).ok().flatten();
        }
    }
}

/// Answers the listener's notifications until no process uses the filter any more, or the
/// observer is stopped. Returning closes the listener.
fn serve(listener: &OwnedFd, stop: &OwnedFd, scope: &Scope, records: &Mutex<Records>) {
    let watched = scope.watched();
    let mut root: Option<OwnedFd> = None;
    loop {
        let Ok([l, st]) = sys::poll_readable([listener.as_raw_fd(), stop.as_raw_fd()]) else { return };
        if st.readable || st.hung_up {
            return;
        }
        if !l.readable {
            if l.hung_up {
                return;
            }
            continue;
        }
        let n = match sys::notif_recv(listener.as_raw_fd()) {
            Ok(n) => n,
            Err(libc::ENOENT | libc::EINTR) => continue,
            Err(_) => return,
        };
        let call = observer_filter::lookup(&watched, n.nr);
        let seen = call.and_then(|c| observe(listener, &n, c, &mut root));
        // Whatever was seen: the kernel decides (ENOENT: the caller is gone).
        let _ = sys::notif_continue(listener.as_raw_fd(), n.id);
        if let (Some(call), Some(seen)) = (call, seen) {
            judge(scope, call, seen, root.as_ref(), &mut records.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

/// What a call touches, read while its caller waits.
enum Seen {
    /// Absolute paths, lexically (links resolved later).
    Paths(Vec<PathBuf>),
    Address(SocketAddr),
}

fn observe(listener: &OwnedFd, n: &sys::Notification, call: &Watched, root: &mut Option<OwnedFd>) -> Option<Seen> {
    let pid = n.pid;
    let mem = File::open(format!("/proc/{pid}/mem")).ok()?;
    let seen = match call.targets.first()? {
        Target::Address { arg, len_arg } => Seen::Address(read_address(&mem, n.args[*arg], n.args[*len_arg])?),
        Target::Path { .. } => {
            let mut paths = Vec::new();
            for t in call.targets {
                let Target::Path { base, arg } = *t else { continue };
                paths.push(read_path(pid, &mem, base, n, arg)?);
            }
            Seen::Paths(paths)
        }
    };
    if root.is_none() {
        // Every sandboxed process shares one root (none can make another mount namespace).
        *root = File::open(format!("/proc/{pid}/root")).ok().map(OwnedFd::from);
    }
    // Still pending: the pid was the caller's while the memory was read.
    sys::notif_id_valid(listener.as_raw_fd(), n.id).then_some(seen)
}

/// The absolute path argument `arg` names (lexically, as the caller sees it).
fn read_path(pid: u32, mem: &File, base: Base, n: &sys::Notification, arg: usize) -> Option<PathBuf> {
    let dir = |fd: Option<i32>| -> Option<PathBuf> {
        let link = match fd {
            None | Some(libc::AT_FDCWD) => format!("/proc/{pid}/cwd"),
            Some(fd) => format!("/proc/{pid}/fd/{fd}"),
        };
        std::fs::read_link(link).ok().filter(|p| p.is_absolute())
    };
    let dirfd = match base {
        Base::Cwd => None,
        // The kernel takes the descriptor as an int.
        Base::DirFd(i) => Some(n.args[i] as u32 as i32),
    };
    if n.args[arg] == 0 {
        // utimensat(fd, NULL, ...): the descriptor's own file. Any other NULL path fails
        // (EFAULT) and touches nothing.
        return match dirfd {
            Some(fd) if fd != libc::AT_FDCWD => dir(Some(fd)),
            _ => None,
        };
    }
    let bytes = read_c_string(mem, n.args[arg])?;
    let path = Path::new(OsStr::from_bytes(&bytes));
    if path.is_absolute() {
        Some(path.to_path_buf())
    } else {
        Some(dir(dirfd)?.join(path))
    }
}

/// A NUL-terminated string of at most PATH_MAX bytes at `addr`, read page by page (the string
/// may end just before an unmapped page).
fn read_c_string(mem: &File, addr: u64) -> Option<Vec<u8>> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < libc::PATH_MAX as usize {
        let mut buf = [0u8; PAGE as usize];
        let len = (PAGE - at % PAGE) as usize;
        let got = mem.read_at(&mut buf[..len], at).ok().filter(|&g| g > 0)?;
        if let Some(end) = buf[..got].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..got]);
        at += got as u64;
    }
    None
}

/// An IPv4 or IPv6 socket address at `addr` (`len` bytes); other families are not judged.
fn read_address(mem: &File, addr: u64, len: u64) -> Option<SocketAddr> {
    let mut buf = [0u8; 28];
    let len = (len as usize).min(buf.len());
    let got = mem.read_at(&mut buf[..len], addr).ok()?;
    let b = &buf[..got];
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match i32::from(family) {
        libc::AF_INET => Some(SocketAddr::new(Ipv4Addr::from(<[u8; 4]>::try_from(b.get(4..8)?).ok()?).into(), port)),
        libc::AF_INET6 => Some(SocketAddr::new(Ipv6Addr::from(<[u8; 16]>::try_from(b.get(8..24)?).ok()?).into(), port)),
        _ => None,
    }
}

/// Records what the policy refuses of a call already answered.
fn judge(scope: &Scope, call: &Watched, seen: Seen, root: Option<&OwnedFd>, records: &mut Records) {
    match seen {
        Seen::Address(addr) => {
            if let Some(rule) = denials::refused_connect(scope.network, addr) {
                records.add(DenialKind::Connect, addr.to_string(), rule, call.name);
            }
        }
        Seen::Paths(paths) => {
            for p in paths {
                let real = root.map_or_else(|| p.clone(), |r| resolve_inside(r, &p, call.follows));
                if let Some(rule) = denials::refused_write(&scope.write, &real) {
                    records.add(DenialKind::Write, real.to_string_lossy().into_owned(), rule, call.name);
                }
            }
        }
    }
}

/// `path` with the links on the way resolved as the sandbox sees them (under its root; the
/// last component too if the call follows it), as far as the path exists; the rest is kept
/// as written.
fn resolve_inside(root: &OwnedFd, path: &Path, follows: bool) -> PathBuf {
    let path = palisade_policy::protected::normalize_lexically(path);
    let mut rest: Vec<&OsStr> = Vec::new();
    let mut existing: &Path = &path;
    if !follows {
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            rest.push(name);
            existing = parent;
        }
    }
    while let Ok(c) = CString::new(existing.as_os_str().as_bytes()) {
        if let Ok(fd) = sys::open_in_root(root.as_raw_fd(), &c) {
            match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
                Ok(real) if real.is_absolute() => return rest.iter().rev().fold(real, |acc, c| acc.join(c)),
                _ => break,
            }
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => break,
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_count_repeats_and_stop_growing_at_the_limit() {
        let mut r = Records::default();
        r.add(DenialKind::Write, "/x".into(), denials::Rule::WritableRoots, "openat");
        r.add(DenialKind::Write, "/x".into(), denials::Rule::WritableRoots, "openat");
        r.add(DenialKind::Write, "/x".into(), denials::Rule::WritableRoots, "mkdirat");
        assert_eq!(r.list.len(), 2);
        assert_eq!(r.list[0].count, 2);
        for i in 0..2 * MAX_RECORDS {
            r.add(DenialKind::Write, format!("/y{i}"), denials::Rule::WritableRoots, "openat");
        }
        assert_eq!(r.list.len(), MAX_RECORDS);
    }

    #[test]
    fn paths_resolve_through_links_in_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("d")).unwrap();
        std::os::unix::fs::symlink(real.join("d"), real.join("link")).unwrap();
        let root = OwnedFd::from(File::open("/").unwrap());
        assert_eq!(resolve_inside(&root, &real.join("link/new"), true), real.join("d/new"));
        // The last component itself when the call acts on links (unlink, rename).
        assert_eq!(resolve_inside(&root, &real.join("link"), false), real.join("link"));
        assert_eq!(resolve_inside(&root, &real.join("link"), true), real.join("d"));
        assert_eq!(resolve_inside(&root, &real.join("a/b/../c"), true), real.join("a/c"));
    }
}
