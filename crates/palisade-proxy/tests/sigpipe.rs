//! A program embedding the proxy with SIGPIPE at its default (Rust programs ignore it, others
//! need not): a client vanishing mid-download must not end the process. splice(2) into a reset
//! socket raises SIGPIPE; the proxy's thread blocks it. Alone in its test binary, because it
//! changes the process's disposition.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};

use common::*;
use palisade_proxy::Limits;

#[test]
fn a_vanished_client_does_not_end_a_process_that_keeps_sigpipe_default() {
    // SAFETY: restores the default disposition of one signal; no handler is installed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let origin = http_origin();
    let port = origin.port();
    let p = proxy(
        &[format!("origin.test:{port}"), format!("127.0.0.1:{port}")],
        &[],
        "127.0.0.1 origin.test\n",
        Limits::default(),
    );
    for _ in 0..5 {
        let (mut c, _) = connect_tunnel(p.addr, &format!("origin.test:{port}"));
        write!(c, "GET /big/{} HTTP/1.1\r\nHost: origin.test:{port}\r\n\r\n", 1u64 << 32).unwrap();
        // Half-closed first, so the proxy's socket is in CLOSE_WAIT when the reset comes: the
        // kernel then reports EPIPE (rather than ECONNRESET), the error that raises SIGPIPE.
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut first = vec![0u8; 1 << 20];
        c.read_exact(&mut first).unwrap();
        drop(c); // unread bytes pending: reset
    }
    let records = p.records(5);
    assert!(
        records
            .iter()
            .all(|r| r.reason.as_deref().is_some_and(|r| r.starts_with("write: ") || r.starts_with("read: "))),
        "{records:?}"
    );
}
