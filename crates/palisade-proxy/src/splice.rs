//! Linux: moving one direction of opaque bytes (a tunnel after its first bytes were checked, a
//! forwarded response) with splice(2), socket → pipe → socket, so the bytes never pass through
//! the proxy's memory. The profile of the buffered relay showed the proxy's thread busy mostly
//! copying each 64 KiB into user space and back out; splice leaves the pages in the kernel.
//!
//! Each direction owns one pipe of the kernel's default size (16 pages: 64 KiB on 4 KiB pages),
//! never enlarged, so a connection holds at most what the buffered relay held (128 KiB) and two
//! pipes (four descriptors; past three quarters of the process's descriptor limit a connection
//! relays through buffers instead, so accepting and connecting keep descriptors). The pipe is filled only when empty and drained before the next
//! read, so it never blocks: only the sockets are waited on, through tokio's readiness.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::net::Shutdown;
use rustix::pipe::{fcntl_getpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
use rustix::process::{getrlimit, Resource};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::relay::Counters;

pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe, or the reason none could be made (descriptors running low, or the
    /// user's pipe quota spent); the caller then relays through a buffer instead.
    pub(crate) fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        // New descriptors take the lowest free numbers, so the number says about how many are open.
        if !leaves_headroom(write.as_raw_fd(), getrlimit(Resource::Nofile).current) {
            return Err(io::Error::other("descriptors running low"));
        }
        let capacity = fcntl_getpipe_size(&read)?;
        Ok(Pipe { read, write, capacity })
    }

    /// Moves `from`'s bytes to `to` until `from` ends (then half-closes `to`) or either fails;
    /// `count` gets the bytes delivered to `to`.
    pub(crate) async fn pump(
        &self,
        from: &TcpStream,
        to: &TcpStream,
        count: &AtomicU64,
        counters: &Counters,
    ) -> Result<(), String> {
        loop {
            let n = self.fill(from).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                // Pass the half-close on; the other direction may still be running.
                let _ = rustix::net::shutdown(to, Shutdown::Write);
                return Ok(());
            }
            let mut left = n;
            while left > 0 {
                let k = self.drain(to, left).await.map_err(|e| format!("write: {e}"))?;
                left -= k;
                count.fetch_add(k as u64, Ordering::Relaxed);
                counters.touch();
            }
        }
    }

    /// From the socket into the (empty) pipe; 0 at end of stream.
    async fn fill(&self, from: &TcpStream) -> io::Result<usize> {
        loop {
            from.readable().await?;
            let moved = from.try_io(Interest::READABLE, || {
                Ok(splice(from, None, &self.write, None, self.capacity, SpliceFlags::MOVE | SpliceFlags::NONBLOCK)?)
            });
            match moved {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    /// From the pipe (holding at least `left` bytes) into the socket; at least one byte.
    async fn drain(&self, to: &TcpStream, left: usize) -> io::Result<usize> {
        loop {
            to.writable().await?;
            let moved = to.try_io(Interest::WRITABLE, || {
                Ok(splice(&self.read, None, to, None, left, SpliceFlags::MOVE | SpliceFlags::NONBLOCK)?)
            });
            match moved {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the pipe emptied unexpectedly")),
                other => return other,
            }
        }
    }
}

/// Blocks SIGPIPE in the calling thread (the proxy's, where every relay runs). splice(2) into a
/// socket whose peer is gone raises SIGPIPE (unlike `send`, it cannot pass MSG_NOSIGNAL), which
/// would end the whole process if its embedder left SIGPIPE at the default; blocked, it stays
/// pending on this thread and the relay sees EPIPE, as the buffered relay does.
pub(crate) fn block_sigpipe_in_this_thread() {
    // SAFETY: `set` is initialised by sigemptyset before use; pthread_sigmask changes only the
    // calling thread's mask and is given a valid set and a null old-set pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Whether a descriptor numbered `fd` stays below three quarters of the limit (`None`: none).
fn leaves_headroom(fd: i32, limit: Option<u64>) -> bool {
    limit.is_none_or(|limit| (fd.max(0) as u64) < limit / 4 * 3)
}

#[cfg(test)]
mod tests {
    use super::leaves_headroom;

    #[test]
    fn pipes_leave_a_quarter_of_the_descriptors() {
        assert!(leaves_headroom(10, Some(1024)));
        assert!(leaves_headroom(767, Some(1024)));
        assert!(!leaves_headroom(768, Some(1024)));
        assert!(!leaves_headroom(5000, Some(1024)));
        assert!(leaves_headroom(5000, None));
    }
}
