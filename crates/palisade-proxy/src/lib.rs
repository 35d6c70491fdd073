//! Palisade's host-side network proxy: the only way out for a sandboxed command whose network
//! is limited to an allowlist. See README.md beside this crate for the design and its limits.
//!
//! The caller (a platform backend) binds the listening sockets where the sandbox can reach them
//! and hands them over; [`Proxy::start`] serves them on a thread of its own with a
//! single-threaded tokio runtime. Per connection, the first byte picks the protocol (0x05:
//! SOCKS5, anything else: HTTP). Every connection yields one [`Record`].

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use palisade_policy::net_rules::Allowlist;
use tokio::sync::Semaphore;

pub mod body;
mod conn;
pub mod head;
pub mod inspect;
mod relay;
pub mod resolver;
pub mod socks;
pub mod tls;
pub mod vet;

pub use resolver::Resolver;

/// Bounds on what one client can make the proxy hold or wait for.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest HTTP request head (request line and headers); larger gets 431.
    pub max_head_bytes: usize,
    /// Time a client has to send its whole request head (or SOCKS greeting and request).
    pub head_timeout: Duration,
    /// Time a client has, once a tunnel is open, to send the bytes the proxy inspects (a TLS
    /// ClientHello or an HTTP request head). A client that sends nothing is disconnected:
    /// server-speaks-first protocols are not served.
    pub first_bytes_timeout: Duration,
    /// Time for resolving a name, and separately for connecting to its addresses.
    pub connect_timeout: Duration,
    /// A tunnel or forwarded request with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more are closed at once (and recorded).
    pub max_connections: usize,
    /// Records kept for [`ProxyHandle::take_records`]; older ones are dropped (and counted).
    pub max_kept_records: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head_bytes: 16 * 1024,
            head_timeout: Duration::from_secs(10),
            first_bytes_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 256,
            max_kept_records: 10_000,
        }
    }
}

/// Called with every record as its connection ends (on the proxy's thread: keep it quick).
pub type RecordSink = Arc<dyn Fn(&Record) + Send + Sync>;

#[derive(Clone)]
pub struct Config {
    pub allowlist: Allowlist,
    pub resolver: Resolver,
    pub limits: Limits,
    pub on_record: Option<RecordSink>,
}

impl Config {
    pub fn new(allowlist: Allowlist) -> Config {
        Config { allowlist, resolver: Resolver::system(), limits: Limits::default(), on_record: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Closed before the protocol was known.
    Unknown,
    HttpConnect,
    HttpForward,
    Socks5,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Unknown => "unknown",
            Protocol::HttpConnect => "http-connect",
            Protocol::HttpForward => "http",
            Protocol::Socks5 => "socks5",
        }
    }
}

/// What happened on one client connection.
#[derive(Clone, Debug)]
pub struct Record {
    pub protocol: Protocol,
    /// The host the client asked for (normalized; empty if it never said), IPv6 in brackets.
    pub host: String,
    pub port: u16,
    /// Whether traffic was let through to the destination.
    pub allowed: bool,
    /// The allowlist entry that decided, if one did.
    pub rule: Option<String>,
    /// Why it was refused or how it ended abnormally (one line); `None` for a clean allowed run.
    pub reason: Option<String>,
    /// Bytes sent to the destination (forwarded request head and body, or tunnel data).
    pub bytes_up: u64,
    /// Bytes sent from the destination to the client.
    pub bytes_down: u64,
    pub started: SystemTime,
    pub duration: Duration,
    pub client: Option<SocketAddr>,
}

struct Shared {
    config: Config,
    kept: Mutex<VecDeque<Record>>,
    dropped_records: AtomicU64,
    slots: Arc<Semaphore>,
}

impl Shared {
    fn deliver(&self, record: Record) {
        if let Some(sink) = &self.config.on_record {
            sink(&record);
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= self.config.limits.max_kept_records {
            kept.pop_front();
            self.dropped_records.fetch_add(1, Ordering::Relaxed);
        }
        kept.push_back(record);
    }
}

/// Collects one connection's record and delivers it when dropped, whatever way the connection
/// ended (including the runtime being shut down under it).
pub(crate) struct Tracker {
    shared: Arc<Shared>,
    pub(crate) record: Record,
    pub(crate) counters: relay::Counters,
    start: Instant,
    finished: bool,
}

impl Tracker {
    fn new(shared: Arc<Shared>, client: Option<SocketAddr>) -> Tracker {
        let record = Record {
            protocol: Protocol::Unknown,
            host: String::new(),
            port: 0,
            allowed: false,
            rule: None,
            reason: None,
            bytes_up: 0,
            bytes_down: 0,
            started: SystemTime::now(),
            duration: Duration::ZERO,
            client,
        };
        Tracker { shared, record, counters: relay::Counters::new(), start: Instant::now(), finished: false }
    }

    pub(crate) fn refuse(&mut self, reason: String) {
        self.record.allowed = false;
        self.record.reason = Some(reason);
    }

    fn finish(&mut self) {
        self.finished = true;
    }

    pub(crate) fn note(&mut self, reason: String) {
        if self.record.reason.is_none() {
            self.record.reason = Some(reason);
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.finished && self.record.reason.is_none() {
            self.record.reason = Some("interrupted: the proxy stopped".into());
        }
        self.record.duration = self.start.elapsed();
        self.record.bytes_up = self.counters.up.load(Ordering::Relaxed);
        self.record.bytes_down = self.counters.down.load(Ordering::Relaxed);
        let record = self.record.clone();
        self.shared.deliver(record);
    }
}

pub struct Proxy;

impl Proxy {
    /// Serves already-bound listeners until the handle is shut down or dropped.
    pub fn start(config: Config, listeners: Vec<std::net::TcpListener>) -> io::Result<ProxyHandle> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let listeners = {
            let _guard = runtime.enter();
            listeners
                .into_iter()
                .map(|l| {
                    l.set_nonblocking(true)?;
                    tokio::net::TcpListener::from_std(l)
                })
                .collect::<io::Result<Vec<_>>>()?
        };
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(config.limits.max_connections.max(1))),
            config,
            kept: Mutex::new(VecDeque::new()),
            dropped_records: AtomicU64::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new().name("palisade-proxy".into()).spawn(move || {
            runtime.block_on(async move {
                for listener in listeners {
                    tokio::spawn(accept_loop(listener, serving.clone()));
                }
                let _ = stopped.await;
            });
            // Dropping the tasks closes their sockets and delivers their records.
            runtime.shutdown_timeout(Duration::from_secs(2));
        })?;
        Ok(ProxyHandle { stop: Some(stop), thread: Some(thread), shared })
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of descriptors or a connection reset before accept: back off briefly
                // rather than spin, and keep serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut tracker = Tracker::new(shared.clone(), Some(peer));
        match shared.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    conn::serve(stream, &shared, &mut tracker).await;
                    tracker.finish();
                });
            }
            Err(_) => {
                let max = shared.config.limits.max_connections;
                tracker.refuse(format!("palisade: more than {max} proxy connections at once"));
                tracker.finish();
                drop(stream);
            }
        }
    }
}

/// A running proxy. Dropping it stops the proxy (like [`shutdown`](Self::shutdown)).
pub struct ProxyHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl ProxyHandle {
    /// The records of connections that have ended so far (oldest first), removed from the handle.
    pub fn take_records(&self) -> Vec<Record> {
        let mut kept = self.shared.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.drain(..).collect()
    }

    /// Records dropped because more than `max_kept_records` were waiting.
    pub fn dropped_records(&self) -> u64 {
        self.shared.dropped_records.load(Ordering::Relaxed)
    }

    /// Stops accepting, closes every connection, and returns the records not yet taken.
    pub fn shutdown(mut self) -> Vec<Record> {
        self.stop_and_join();
        self.take_records()
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
