//! Network system calls: the private loopback, the sock_diag socket, and handing the proxy's
//! listening socket from the child to the parent (see network.rs).

use std::os::fd::RawFd;

use super::{check, check_int, close, Errno};

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: a datagram socket is only used as a handle for the interface ioctl.
    let sock = check_int(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    let rc = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) };
    let r = check_int(rc).map(drop);
    close(sock);
    r
}

/// A netlink socket for the kernel's socket-diagnostics interface (NETLINK_SOCK_DIAG), which
/// lists this network namespace's sockets.
pub fn sock_diag_socket() -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: socket has no memory arguments; a new descriptor is owned by the caller alone.
    let fd = check_int(unsafe {
        libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG)
    })?;
    // SAFETY: fd was just created and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Sends one datagram on a socket with a default destination (netlink: the kernel).
pub fn send_datagram(fd: RawFd, msg: &[u8]) -> Result<(), Errno> {
    // SAFETY: send reads msg.len() bytes from msg, which we own.
    let n = check(unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) } as libc::c_long)?;
    if n as usize == msg.len() {
        Ok(())
    } else {
        Err(libc::EMSGSIZE)
    }
}

/// Receives one datagram into `buf`, returning its full length: more than `buf.len()` means it
/// was cut short (MSG_TRUNC).
pub fn recv_datagram(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: recv writes at most buf.len() bytes into buf, which we own.
        match check(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) } as libc::c_long) {
            Err(libc::EINTR) => continue,
            r => return r.map(|n| n as usize),
        }
    }
}

/// A connected pair of unix stream sockets (close-on-exec), for handing a descriptor over.
pub fn socketpair() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socketpair just returned these two new descriptors, owned by nobody else.
    Ok(unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) })
}

/// A TCP socket (close-on-exec) listening on 127.0.0.1:`port` of this network namespace. Used
/// in the child: one system call at a time, nothing allocated.
pub fn listen_on_loopback(port: u16) -> Result<RawFd, Errno> {
    // SAFETY: socket has no memory arguments.
    let fd = check_int(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_in of the length passed.
    let r = check_int(unsafe { libc::bind(fd, &addr as *const libc::sockaddr_in as *const libc::sockaddr, len) })
        // SAFETY: listen has no memory arguments.
        .and_then(|_| check_int(unsafe { libc::listen(fd, 128) }));
    match r {
        Ok(_) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

/// Room for one control message carrying one descriptor (CMSG_SPACE(4) is 24 bytes on 64-bit
/// and 16 on 32-bit Linux), aligned for `cmsghdr`.
#[repr(C, align(8))]
struct OneFdControl([u8; 32]);

/// Sends `fd` over the unix socket `sock` (SCM_RIGHTS) with one byte of data. Used in the child:
/// everything is on the stack.
pub fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), Errno> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut control = OneFdControl([0; 32]);
    // SAFETY: msghdr is plain data; zeroed is a valid value, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: msg_control points at `control`, large and aligned enough for one cmsghdr and its
    // descriptor (msg_controllen says how much), so the first header and its data are inside.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::copy_nonoverlapping(
            (&fd as *const RawFd).cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of::<RawFd>(),
        );
    }
    loop {
        // SAFETY: msg and everything it points to outlive the call.
        match check(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } as libc::c_long) {
            Err(libc::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// Receives a descriptor sent with [`send_fd`] without waiting (close-on-exec); `None` when
/// nothing was sent (the peer closed, or has not sent yet).
pub fn try_recv_fd(sock: RawFd) -> Result<Option<std::os::fd::OwnedFd>, Errno> {
    use std::os::fd::FromRawFd;
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut control = OneFdControl([0; 32]);
    // SAFETY: msghdr is plain data; zeroed is a valid value, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
    // SAFETY: msg and the buffers it points to outlive the call; the kernel writes at most
    // their lengths.
    let n = match check(unsafe { libc::recvmsg(sock, &mut msg, flags) } as libc::c_long) {
        Ok(n) => n,
        Err(libc::EAGAIN) => return Ok(None),
        Err(e) => return Err(e),
    };
    if n == 0 {
        return Ok(None);
    }
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of control messages;
    // CMSG_FIRSTHDR returns null when there is none.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Ok(None);
        }
        let mut fd: RawFd = -1;
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(cmsg),
            (&mut fd as *mut RawFd).cast::<u8>(),
            std::mem::size_of::<RawFd>(),
        );
        // The descriptor is new in this process (SCM_RIGHTS installs a fresh one) and ours.
        Ok((fd >= 0).then(|| std::os::fd::OwnedFd::from_raw_fd(fd)))
    }
}

/// The addresses of this host's interfaces (IPv4 and IPv6) with their prefix lengths, as
/// `getifaddrs` lists them, except those of loopback interfaces (127.0.0.0/8 and ::1 are refused
/// as loopback anyway; other addresses put on `lo`, as the tests' fake internet does for lack of
/// veth and dummy devices, are not counted); empty if it fails (the caller's check then has the
/// fixed ranges only).
pub fn interface_addresses() -> Vec<(std::net::IpAddr, u8)> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list it allocated; it is read below and freed once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let node = unsafe { &*cur };
        if !node.ifa_addr.is_null() && node.ifa_flags & libc::IFF_LOOPBACK as libc::c_uint == 0 {
            // SAFETY: ifa_addr (and ifa_netmask, when set) point to sockaddrs of the family the
            // address says.
            if let Some(addr) = unsafe { ip_of(node.ifa_addr) } {
                // SAFETY: as above.
                let prefix = unsafe { ip_of(node.ifa_netmask) }.map(prefix_len).unwrap_or(0);
                out.push((addr, prefix));
            }
        }
        cur = node.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once, after the last read.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The IPv4 or IPv6 address in `sa`, if it is one.
///
/// # Safety
/// `sa` is null or points to a sockaddr whose family says which struct it is.
unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<std::net::IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller's promise.
    match unsafe { (*sa).sa_family } as libc::c_int {
        libc::AF_INET => {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            // SAFETY: an AF_INET6 address is a sockaddr_in6.
            let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
            Some(std::net::IpAddr::V6(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// The number of leading one bits of a netmask.
fn prefix_len(mask: std::net::IpAddr) -> u8 {
    match mask {
        std::net::IpAddr::V4(m) => u32::from(m).leading_ones() as u8,
        std::net::IpAddr::V6(m) => u128::from(m).leading_ones() as u8,
    }
}
