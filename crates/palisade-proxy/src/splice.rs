//! Linux: moving one direction of opaque bytes (a tunnel after its first bytes were checked, a
//! forwarded response) with splice(2), socket → pipe → socket, so the bytes never pass through
//! the proxy's memory. The profile of the buffered relay showed the proxy's thread busy mostly
//! copying each 64 KiB into user space and back out; splice leaves the pages in the kernel.
//!
//! Each direction owns one pipe of the kernel's default size (16 pages: 64 KiB on 4 KiB pages),
//! never enlarged, so a connection holds at most what the buffered relay held (128 KiB) and two
//! pipes (four descriptors). The pipe is filled only when empty and drained before the next
//! read, so it never blocks: only the sockets are waited on, through tokio's readiness.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::net::Shutdown;
use rustix::pipe::{fcntl_getpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::relay::Counters;

pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe, or the reason none could be made (out of descriptors, or the
    /// user's pipe quota spent); the caller then relays through a buffer instead.
    pub(crate) fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
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
