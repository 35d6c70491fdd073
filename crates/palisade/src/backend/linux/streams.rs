//! The command's standard streams: pipes for `Stdio::piped`, what the child opens for
//! `Stdio::null`, and for inherited streams the reroutes and relays of stdio_relay.rs; plus
//! the caller's terminal, which the sandbox shows at /dev/console.

use super::child::{NamespacePlan, StdioFd};
use super::stdio_relay::{InheritedStdio, Relays};
use super::sys;
use crate::error::Error;
use crate::spec::{CommandSpec, Stdio};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The three streams of one command: this process's ends, the child's, and the relays of the
/// inherited ones (started once the command runs).
pub struct Streams {
    inherited: InheritedStdio,
    /// Per stream, this process's end of its pipe (`Stdio::piped`).
    parent: [Option<OwnedFd>; 3],
    /// Per stream, the command's end (closed here once the child has its copy).
    child: [Option<OwnedFd>; 3],
    kinds: [Stdio; 3],
}

impl Streams {
    /// Inherited streams: no host inode whose metadata the command could change (see
    /// stdio_relay). `mounts`: the sandbox's mount plan (for the caller's terminal at
    /// /dev/console); `confine`: whether to reroute at all (not in full-access mode).
    pub fn open(spec: &CommandSpec, mounts: Option<&NamespacePlan>, confine: bool) -> Result<Streams, Error> {
        let console_rdev = mounts.and_then(|n| n.console.as_ref()).and_then(|c| {
            std::fs::metadata(OsStr::from_bytes(c.to_bytes())).ok().map(|m| std::os::unix::fs::MetadataExt::rdev(&m))
        });
        let kinds = [spec.stdin, spec.stdout, spec.stderr];
        let inherited = InheritedStdio::prepare(kinds.map(|s| s == Stdio::Inherit), console_rdev, confine)
            .map_err(|e| Error::Io { context: "setting up standard streams".into(), source: e })?;
        let (stdin, child_stdin) = pipe_for(&kinds[0], true)?;
        let (stdout, child_stdout) = pipe_for(&kinds[1], false)?;
        let (stderr, child_stderr) = pipe_for(&kinds[2], false)?;
        Ok(Streams {
            inherited,
            parent: [stdin, stdout, stderr],
            child: [child_stdin, child_stdout, child_stderr],
            kinds,
        })
    }

    /// What the child makes of each stream.
    pub fn for_child(&self) -> [StdioFd; 3] {
        std::array::from_fn(|i| match self.kinds[i] {
            // Opened inside, where /dev/null is a read-only bind (not the host's node).
            Stdio::Null => StdioFd::Reopen {
                path: c"/dev/null",
                flags: if i == 0 { libc::O_RDONLY } else { libc::O_WRONLY },
                or_inherit: false,
            },
            Stdio::Inherit => self.inherited.child_stdio(i).unwrap_or(StdioFd::Inherit),
            Stdio::Piped => self.child[i].as_ref().map_or(StdioFd::Inherit, |f| StdioFd::Fd(f.as_raw_fd())),
        })
    }

    /// This process's descriptors, which the child closes right away.
    pub fn parent_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.parent.iter().filter_map(|p| p.as_ref().map(|f| f.as_raw_fd())).chain(self.inherited.parent_fds())
    }

    /// Closes the command's ends here (the child has its copies).
    pub fn close_child_ends(&mut self) {
        self.child = [None, None, None];
    }

    /// Once the command runs: starts the relays; this process's pipe ends become the child's
    /// `stdin`, `stdout` and `stderr` files.
    pub fn start(self) -> io::Result<(Relays, [Option<File>; 3])> {
        let relays = self.inherited.start()?;
        Ok((relays, self.parent.map(|p| p.map(File::from))))
    }
}

fn pipe_for(s: &Stdio, input: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>), Error> {
    let io_err = |e| Error::Io { context: "setting up standard streams".into(), source: e };
    match s {
        Stdio::Inherit => Ok((None, None)),
        // The child opens /dev/null inside the sandbox (StdioFd::Reopen).
        Stdio::Null => Ok((None, None)),
        Stdio::Piped => {
            let (r, w) = sys::pipe().map_err(io_err)?;
            Ok(if input { (Some(w), Some(r)) } else { (Some(r), Some(w)) })
        }
    }
}

/// The caller's terminal (a host pty) when the command inherits it as a standard stream: the
/// private /dev/pts does not hold it, so it is shown as /dev/console (for `tty` and ttyname).
pub fn caller_terminal(spec: &CommandSpec) -> Option<PathBuf> {
    let streams = [&spec.stdin, &spec.stdout, &spec.stderr];
    streams.iter().enumerate().filter(|(_, s)| matches!(s, Stdio::Inherit)).find_map(|(fd, _)| {
        let mut buf = [0u8; 256];
        // SAFETY: ttyname_r writes a NUL-terminated name into buf (of the given length).
        if unsafe { libc::ttyname_r(fd as RawFd, buf.as_mut_ptr().cast(), buf.len()) } != 0 {
            return None;
        }
        let name = std::ffi::CStr::from_bytes_until_nul(&buf).ok()?;
        let path = PathBuf::from(OsStr::from_bytes(name.to_bytes()));
        path.starts_with("/dev/pts/").then_some(path)
    })
}

/// Whether a standard stream the command inherits is a terminal.
pub fn has_terminal(spec: &CommandSpec) -> bool {
    let streams = [&spec.stdin, &spec.stdout, &spec.stderr];
    // SAFETY: isatty only inspects the descriptor.
    streams.iter().enumerate().any(|(fd, s)| matches!(s, Stdio::Inherit) && unsafe { libc::isatty(fd as RawFd) } == 1)
}
