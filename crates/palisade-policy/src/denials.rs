//! Denial reports: which rule of the policy refuses a write or a connection the command was
//! observed to attempt. Pure functions over plain data; a backend observes the calls (on Linux,
//! a seccomp user-notification observer: see the palisade crate's `observer.rs`) and the kernel
//! enforces them. These functions never decide what is allowed: they only name the rule that
//! makes the kernel refuse a call it was seen to make.

use crate::protected::{normalize_lexically, within};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The rule of the policy that refuses a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A write outside the writable roots (and the private temporary directory).
    WritableRoots,
    /// A write to a protected path (`.git/hooks`, agent folders...) inside a writable root.
    Protected,
    /// A write under a deny-read path (hidden: an empty read-only folder or /dev/null there).
    DenyRead,
    /// A connection with network = off.
    NetworkOff,
    /// A connection with network = allow that does not go to Palisade's proxy (the command's
    /// network namespace has nothing else).
    NetworkProxyOnly,
}

impl Rule {
    /// The name in status records and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::WritableRoots => "writable-roots",
            Rule::Protected => "protected",
            Rule::DenyRead => "deny-read",
            Rule::NetworkOff => "network-off",
            Rule::NetworkProxyOnly => "network-proxy-only",
        }
    }

    /// How a summary line says it ("2 writes refused outside the writable roots").
    pub fn describe(self) -> &'static str {
        match self {
            Rule::WritableRoots => "outside the writable roots",
            Rule::Protected => "to protected paths",
            Rule::DenyRead => "under deny-read paths",
            Rule::NetworkOff => "with the network off",
            Rule::NetworkProxyOnly => "that do not go through the network proxy",
        }
    }
}

/// What the command may write, as paths seen inside the sandbox (the writable roots are bound
/// at their own paths there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteScope {
    /// The writable roots and the private temporary folders (`/tmp` and `/dev/shm` inside a
    /// mount namespace, the private folder's host path without one).
    pub writable: Vec<PathBuf>,
    /// Paths kept read-only inside the writable roots (protected paths and their placeholders).
    pub protected: Vec<PathBuf>,
    /// Deny-read paths (hidden).
    pub deny_read: Vec<PathBuf>,
}

/// Device nodes every command may open for writing (the minimal /dev's, and terminals).
const WRITABLE_DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/console"];

/// The rule that refuses a write to the absolute `path` (`None`: the policy lets it through,
/// or the path names something else than itself, which is not judged here: `/proc` entries
/// such as `/proc/self/fd/1` and the /dev links to them stand for already open files).
pub fn refused_write(scope: &WriteScope, path: &Path) -> Option<Rule> {
    let path = normalize_lexically(path);
    if !path.is_absolute() || path.starts_with("/proc") || is_open_file_alias(&path) {
        return None;
    }
    if scope.deny_read.iter().any(|d| within(&path, d)) {
        return Some(Rule::DenyRead);
    }
    if WRITABLE_DEVICES.iter().any(|d| path == Path::new(d)) || path.starts_with("/dev/pts") {
        return None;
    }
    if !scope.writable.iter().any(|r| within(&path, r)) {
        return Some(Rule::WritableRoots);
    }
    if scope.protected.iter().any(|p| within(&path, p)) {
        return Some(Rule::Protected);
    }
    None
}

fn is_open_file_alias(path: &Path) -> bool {
    path.starts_with("/dev/fd") || ["/dev/stdin", "/dev/stdout", "/dev/stderr"].iter().any(|p| path == Path::new(p))
}

/// The network setting, as far as connections are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkScope {
    /// Only the command's own loopback.
    Off,
    /// Only the command's own loopback, where Palisade's proxy listens.
    ProxyOnly,
    /// Anything.
    On,
}

/// The rule that refuses a connection to `addr` (loopback is the command's own, always there).
pub fn refused_connect(scope: NetworkScope, addr: SocketAddr) -> Option<Rule> {
    if is_loopback(addr.ip()) {
        return None;
    }
    match scope {
        NetworkScope::Off => Some(Rule::NetworkOff),
        NetworkScope::ProxyOnly => Some(Rule::NetworkProxyOnly),
        NetworkScope::On => None,
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

// Unix paths (`/home/u/...`): only the Linux backend reports denials, and on Windows these
// paths are not absolute.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn scope() -> WriteScope {
        WriteScope {
            writable: vec!["/w".into(), "/tmp".into()],
            protected: vec!["/w/.git/hooks".into(), "/w/.git/config".into()],
            deny_read: vec!["/home/u/.ssh".into()],
        }
    }

    #[test]
    fn writes_are_judged_by_the_first_rule_that_refuses_them() {
        let s = scope();
        assert_eq!(refused_write(&s, Path::new("/w/src/main.rs")), None);
        assert_eq!(refused_write(&s, Path::new("/tmp/x")), None);
        assert_eq!(refused_write(&s, Path::new("/home/u/.bashrc")), Some(Rule::WritableRoots));
        assert_eq!(refused_write(&s, Path::new("/w/../etc/passwd")), Some(Rule::WritableRoots));
        assert_eq!(refused_write(&s, Path::new("/w2/x")), Some(Rule::WritableRoots));
        assert_eq!(refused_write(&s, Path::new("/w/.git/hooks/pre-commit")), Some(Rule::Protected));
        assert_eq!(refused_write(&s, Path::new("/w/.git/config")), Some(Rule::Protected));
        assert_eq!(refused_write(&s, Path::new("/w/.git/configx")), None);
        assert_eq!(refused_write(&s, Path::new("/home/u/.ssh/id_ed25519")), Some(Rule::DenyRead));
    }

    #[test]
    fn devices_and_open_file_aliases_are_not_refusals() {
        let s = scope();
        for p in ["/dev/null", "/dev/tty", "/dev/pts/3", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
            assert_eq!(refused_write(&s, Path::new(p)), None, "{p}");
        }
        assert_eq!(refused_write(&s, Path::new("/dev/sda")), Some(Rule::WritableRoots));
        assert_eq!(refused_write(&s, Path::new("relative")), None);
    }

    #[test]
    fn connections_other_than_loopback_are_refused_unless_the_network_is_on() {
        let out: SocketAddr = "192.0.2.1:443".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:3128".parse().unwrap();
        let lo6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(refused_connect(NetworkScope::Off, out), Some(Rule::NetworkOff));
        assert_eq!(refused_connect(NetworkScope::ProxyOnly, out), Some(Rule::NetworkProxyOnly));
        assert_eq!(refused_connect(NetworkScope::On, out), None);
        assert_eq!(refused_connect(NetworkScope::Off, lo), None);
        assert_eq!(refused_connect(NetworkScope::Off, lo6), None);
    }
}
