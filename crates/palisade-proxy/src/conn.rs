//! One client connection: read the request (HTTP or SOCKS5) within the head deadline, decide,
//! connect to the vetted addresses, check the first tunnel bytes, relay.

use std::net::IpAddr;
use std::time::Duration;

use palisade_policy::net_rules::RequestHost;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::BodyFramer;
use crate::head::{self, HeadError, RequestHead};
use crate::relay::{relay, Up};
use crate::socks::{self, Parsed};
use crate::vet::{display_host, vet, Refusal};
use crate::{auth, tls, Protocol, Shared, Tracker};

enum ReadError {
    Timeout,
    Full,
    Io(std::io::Error),
}

/// Reads once, appending at most up to `cap` bytes in all; `Ok(0)` is end of stream.
async fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, cap: usize, deadline: Instant) -> Result<usize, ReadError> {
    let room = cap.saturating_sub(buf.len()).min(8192);
    if room == 0 {
        return Err(ReadError::Full);
    }
    let mut chunk = [0u8; 8192];
    match tokio::time::timeout_at(deadline, s.read(&mut chunk[..room])).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(Err(e)) => Err(ReadError::Io(e)),
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
    }
}

pub(crate) async fn serve(mut client: TcpStream, shared: &Shared, t: &mut Tracker) {
    let _ = client.set_nodelay(true);
    let deadline = Instant::now() + shared.config.limits.head_timeout;
    let mut buf = Vec::new();
    match read_some(&mut client, &mut buf, 1, deadline).await {
        Ok(0) => return t.note("closed before sending anything".into()),
        Ok(_) => {}
        Err(ReadError::Timeout) => return t.refuse(head_timeout_message(shared)),
        Err(ReadError::Io(e)) => return t.note(format!("client read: {e}")),
        Err(ReadError::Full) => return t.note("internal: no room to read".into()),
    }
    if buf[0] == socks::VERSION {
        t.record.protocol = Protocol::Socks5;
        serve_socks(client, buf, deadline, shared, t).await
    } else {
        serve_http(client, buf, deadline, shared, t).await
    }
}

fn head_timeout_message(shared: &Shared) -> String {
    format!("palisade: request not received within {} s", shared.config.limits.head_timeout.as_secs_f32())
}

async fn refuse_http(client: &mut TcpStream, t: &mut Tracker, status: u16, line: String) {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let _ = client.write_all(&head::error_response(status, reason, &line)).await;
    let _ = client.shutdown().await;
    t.refuse(line);
}

async fn serve_http(mut client: TcpStream, mut buf: Vec<u8>, deadline: Instant, shared: &Shared, t: &mut Tracker) {
    let max = shared.config.limits.max_head_bytes;
    let head = loop {
        match head::parse_head(&buf, max) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(HeadError::TooLarge) => {
                let line = format!("palisade: request head larger than {max} bytes");
                return refuse_http(&mut client, t, 431, line).await;
            }
            Err(HeadError::Malformed(e)) => {
                return refuse_http(&mut client, t, 400, format!("palisade: malformed request: {e}")).await
            }
        }
        match read_some(&mut client, &mut buf, max, deadline).await {
            Ok(0) => return t.note("closed before the request head ended".into()),
            Ok(_) => {}
            Err(ReadError::Timeout) => return refuse_http(&mut client, t, 408, head_timeout_message(shared)).await,
            Err(ReadError::Full) => {
                let line = format!("palisade: request head larger than {max} bytes");
                return refuse_http(&mut client, t, 431, line).await;
            }
            Err(ReadError::Io(e)) => return t.note(format!("client read: {e}")),
        }
    };
    let rest = buf.split_off(head.len);
    if head.method == "CONNECT" {
        t.record.protocol = Protocol::HttpConnect;
    } else {
        t.record.protocol = Protocol::HttpForward;
    }
    let mut revoked = None;
    if let Some(book) = &shared.config.credentials {
        let values: Vec<&[u8]> = head.values("proxy-authorization").collect();
        let Some(admission) = book.admit_http(&values) else {
            let _ = client.write_all(&auth::proxy_auth_required_response()).await;
            let _ = client.shutdown().await;
            return t.refuse(auth::REFUSED_LINE.into());
        };
        t.set_tag(admission.tag);
        revoked = Some(admission.revoked);
    }
    let served = async {
        if head.method == "CONNECT" {
            http_connect(client, head, rest, shared, t).await
        } else {
            http_forward(client, head, rest, shared, t).await
        }
    };
    if !until_revoked(revoked, served).await {
        t.note(REVOKED_LINE.into());
    }
}

/// Recorded for a connection ended because the command whose credentials it presented ended.
const REVOKED_LINE: &str = "interrupted: the command whose credentials it presented ended";

/// Runs `served` to its end, or until `revoked` turns true (the credentials the client presented
/// were revoked: see `credential_book.rs`); false in that case.
async fn until_revoked(
    revoked: Option<tokio::sync::watch::Receiver<bool>>,
    served: impl std::future::Future<Output = ()>,
) -> bool {
    let Some(mut revoked) = revoked else {
        served.await;
        return true;
    };
    tokio::select! {
        _ = served => true,
        _ = crate::stopped(&mut revoked) => false,
    }
}

/// Parses a host the client sent; on error refuses with a one-line reason.
fn request_host(text: &str, port: u16, t: &mut Tracker) -> Result<RequestHost, String> {
    t.record.port = port;
    match RequestHost::parse(text) {
        Ok(h) => {
            t.record.host = display_host(&h);
            Ok(h)
        }
        Err(e) => {
            t.record.host = text.chars().take(255).collect();
            Err(format!("palisade: malformed request: {e}"))
        }
    }
}

async fn http_connect(mut client: TcpStream, head: RequestHead, rest: Vec<u8>, shared: &Shared, t: &mut Tracker) {
    let (host, port) = match head::parse_authority(&head.target) {
        Ok((h, Some(p))) => (h, p),
        Ok((_, None)) => return refuse_http(&mut client, t, 400, "palisade: CONNECT target needs a port".into()).await,
        Err(e) => return refuse_http(&mut client, t, 400, format!("palisade: malformed request: {e}")).await,
    };
    let host = match request_host(&host, port, t) {
        Ok(h) => h,
        Err(line) => return refuse_http(&mut client, t, 400, line).await,
    };
    let mut upstream = match decide_and_connect(&host, port, shared, t).await {
        Ok(s) => s,
        Err(r) => return refuse_http(&mut client, t, r.status, r.message).await,
    };
    if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
        return t.note("client went away".into());
    }
    tunnel(client, &mut upstream, rest, &host, port, shared, t).await
}

async fn http_forward(mut client: TcpStream, head: RequestHead, rest: Vec<u8>, shared: &Shared, t: &mut Tracker) {
    let target = match head::parse_absolute_http(&head.target) {
        Ok(target) => target,
        Err(e) => return refuse_http(&mut client, t, 400, format!("palisade: {e}")).await,
    };
    let host = match request_host(&target.host, target.port, t) {
        Ok(h) => h,
        Err(line) => return refuse_http(&mut client, t, 400, line).await,
    };
    let host_headers: Vec<&[u8]> = head.values("host").collect();
    let host_ok = match host_headers.as_slice() {
        [] => head.minor_version == 0,
        [one] => head::host_header_matches(one, &host),
        _ => false,
    };
    if !host_ok {
        let shown: Vec<String> = host_headers.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect();
        let line = format!(
            "palisade: the Host header ({}) does not match the request target's host {}",
            if shown.is_empty() { "missing".to_string() } else { shown.join(", ") },
            display_host(&host)
        );
        return refuse_http(&mut client, t, 403, line).await;
    }
    let framing = match head::body_framing(&head) {
        Ok(f) => f,
        Err(e) => return refuse_http(&mut client, t, 400, format!("palisade: malformed request: {e}")).await,
    };
    let mut upstream = match decide_and_connect(&host, target.port, shared, t).await {
        Ok(s) => s,
        Err(r) => return refuse_http(&mut client, t, r.status, r.message).await,
    };
    let mut framer = BodyFramer::new(framing);
    let mut first = head::forwarded_head(&head, &target);
    match framer.feed(&rest) {
        Ok(n) => first.extend_from_slice(&rest[..n]),
        Err(e) => return refuse_http(&mut client, t, 400, format!("palisade: malformed request body: {e}")).await,
    }
    if let Err(e) = upstream.write_all(&first).await {
        return t.note(format!("write to destination: {e}"));
    }
    t.counters.add_up(first.len());
    if let Err(e) =
        relay(&mut client, &mut upstream, Up::Body(framer), shared.config.limits.idle_timeout, &t.counters).await
    {
        t.note(e);
    }
}

async fn serve_socks(mut client: TcpStream, mut buf: Vec<u8>, deadline: Instant, shared: &Shared, t: &mut Tracker) {
    const CAP: usize = 600;
    let methods = loop {
        match socks::parse_greeting_methods(&buf) {
            Parsed::Done(methods, used) => {
                buf.drain(..used);
                break methods;
            }
            Parsed::Invalid(_, e) => return t.refuse(format!("palisade: {e}")),
            Parsed::NeedMore => {}
        }
        if let Err(reason) = socks_read(&mut client, &mut buf, CAP, deadline, shared).await {
            return t.refuse(reason);
        }
    };
    let (wanted, missing) = match shared.config.credentials {
        None => (socks::METHOD_NONE, "palisade: the SOCKS client offers no 'no authentication' method"),
        Some(_) => (auth::SOCKS_METHOD_USER_PASSWORD, auth::REFUSED_LINE),
    };
    if !methods.contains(&wanted) {
        let _ = client.write_all(&[socks::VERSION, socks::METHOD_UNACCEPTABLE]).await;
        return t.refuse(missing.into());
    }
    if client.write_all(&[socks::VERSION, wanted]).await.is_err() {
        return t.note("client went away".into());
    }
    let mut revoked = None;
    if let Some(book) = &shared.config.credentials {
        let offered = loop {
            match auth::parse_socks_user_password(&buf) {
                Parsed::Done(offered, used) => {
                    buf.drain(..used);
                    break offered;
                }
                Parsed::Invalid(_, e) => return t.refuse(format!("palisade: {e}")),
                Parsed::NeedMore => {}
            }
            if let Err(reason) = socks_read(&mut client, &mut buf, CAP, deadline, shared).await {
                return t.refuse(reason);
            }
        };
        let admission = book.admit_socks(&offered);
        let ok = admission.is_some();
        if client.write_all(&auth::socks_auth_reply(ok)).await.is_err() || !ok {
            let _ = client.shutdown().await;
            return t.refuse(auth::REFUSED_LINE.into());
        }
        if let Some(admission) = admission {
            t.set_tag(admission.tag);
            revoked = Some(admission.revoked);
        }
    }
    let served = socks_request(client, buf, deadline, shared, t);
    if !until_revoked(revoked, served).await {
        t.note(REVOKED_LINE.into());
    }
}

/// The SOCKS5 request after the greeting (and authentication): decide, connect, relay.
async fn socks_request(mut client: TcpStream, mut buf: Vec<u8>, deadline: Instant, shared: &Shared, t: &mut Tracker) {
    const CAP: usize = 600;
    let request = loop {
        match socks::parse_request(&buf) {
            Parsed::Done(request, used) => {
                buf.drain(..used);
                break request;
            }
            Parsed::Invalid(code, e) => {
                if let Some(code) = code {
                    let _ = client.write_all(&socks::reply(code)).await;
                }
                return t.refuse(format!("palisade: {e}"));
            }
            Parsed::NeedMore => {}
        }
        if let Err(reason) = socks_read(&mut client, &mut buf, CAP, deadline, shared).await {
            return t.refuse(reason);
        }
    };
    let host = match request_host(&request.host, request.port, t) {
        Ok(h) => h,
        Err(line) => {
            let _ = client.write_all(&socks::reply(socks::REPLY_GENERAL_FAILURE)).await;
            return t.refuse(line);
        }
    };
    if request.command != 1 {
        let _ = client.write_all(&socks::reply(socks::REPLY_COMMAND_NOT_SUPPORTED)).await;
        let name = socks::command_name(request.command);
        return t.refuse(format!("palisade: SOCKS {name} is not supported (only CONNECT)"));
    }
    let mut upstream = match decide_and_connect(&host, request.port, shared, t).await {
        Ok(s) => s,
        Err(r) => {
            let _ = client.write_all(&socks::reply(r.socks)).await;
            return t.refuse(r.message);
        }
    };
    if client.write_all(&socks::reply(socks::REPLY_OK)).await.is_err() {
        return t.note("client went away".into());
    }
    tunnel(client, &mut upstream, buf, &host, request.port, shared, t).await
}

async fn socks_read(
    c: &mut TcpStream,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
    shared: &Shared,
) -> Result<(), String> {
    match read_some(c, buf, cap, deadline).await {
        Ok(0) => Err("the SOCKS client closed before finishing its request".into()),
        Ok(_) => Ok(()),
        Err(ReadError::Timeout) => Err(head_timeout_message(shared)),
        Err(ReadError::Full) => Err("palisade: SOCKS request too long".into()),
        Err(ReadError::Io(e)) => Err(format!("client read: {e}")),
    }
}

/// The allowlist and address checks, then a connection to the first vetted address that answers.
async fn decide_and_connect(
    host: &RequestHost,
    port: u16,
    shared: &Shared,
    t: &mut Tracker,
) -> Result<TcpStream, Refusal> {
    let limits = &shared.config.limits;
    let (addrs, rule) = match vet(
        &shared.config.allowlist,
        &shared.config.resolver,
        host,
        port,
        limits.connect_timeout,
        &shared.config.host_addresses,
        &shared.config.host_networks,
    )
    .await
    {
        Ok(ok) => ok,
        Err(r) => {
            t.record.rule = r.rule.clone();
            return Err(r);
        }
    };
    t.record.rule = rule;
    let deadline = Instant::now() + limits.connect_timeout;
    let mut last = String::from("no address");
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect((addr, port))).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                t.record.allowed = true;
                return Ok(stream);
            }
            Ok(Err(e)) => last = format!("{}: {e}", shown_addr(addr, port)),
            Err(_) => {
                let msg = format!(
                    "palisade: connecting to {}:{port} took longer than {} s",
                    display_host(host),
                    secs(limits.connect_timeout)
                );
                let mut r = Refusal::new(504, socks::REPLY_TTL_EXPIRED, msg);
                r.rule = t.record.rule.clone();
                return Err(r);
            }
        }
    }
    let msg = format!("palisade: could not connect to {}:{port} ({last})", display_host(host));
    let mut r = Refusal::new(502, socks::REPLY_CONNECTION_REFUSED, msg);
    r.rule = t.record.rule.clone();
    Err(r)
}

fn shown_addr(addr: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(addr, port).to_string()
}

fn secs(d: Duration) -> f32 {
    d.as_secs_f32()
}

/// Inspects the first bytes of an open tunnel, then relays.
async fn tunnel(
    mut client: TcpStream,
    upstream: &mut TcpStream,
    mut first: Vec<u8>,
    host: &RequestHost,
    port: u16,
    shared: &Shared,
    t: &mut Tracker,
) {
    let limits = &shared.config.limits;
    let cap = tls::MAX_RECORD_BYTES.max(limits.max_head_bytes);
    let deadline = Instant::now() + limits.first_bytes_timeout;
    loop {
        match crate::inspect::inspect(&first, host, limits.max_head_bytes) {
            Some(Ok(())) => break,
            Some(Err(reason)) => {
                let _ = client.shutdown().await;
                return t.refuse(reason);
            }
            None => {}
        }
        match read_some(&mut client, &mut first, cap, deadline).await {
            Ok(0) => {
                return t.note("the client closed the tunnel before sending anything it could be checked by".into())
            }
            Ok(_) => {}
            Err(ReadError::Timeout) => {
                let secs = secs(limits.first_bytes_timeout);
                return t.refuse(format!(
                    "palisade: nothing to check from the client within {secs} s after the tunnel to {}:{port} opened (protocols where the server speaks first are not supported)",
                    display_host(host)
                ));
            }
            Err(ReadError::Full) => return t.refuse("palisade: first bytes in the tunnel too large to check".into()),
            Err(ReadError::Io(e)) => return t.note(format!("client read: {e}")),
        }
    }
    if let Err(e) = upstream.write_all(&first).await {
        return t.note(format!("write to destination: {e}"));
    }
    t.counters.add_up(first.len());
    if let Err(e) = relay(&mut client, upstream, Up::Tunnel, limits.idle_timeout, &t.counters).await {
        t.note(e);
    }
}
