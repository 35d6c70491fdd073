//! Palisade's host-side network proxy: the only way out for a sandboxed command whose network
//! is limited to an allowlist. See README.md beside this crate for the design and its limits.
//!
//! The caller (a platform backend) binds the listening sockets where the sandbox can reach them
//! and hands them over; [`Proxy::start`] serves them on a thread of its own with a
//! single-threaded tokio runtime. Per connection, the first byte picks the protocol (0x05:
//! SOCKS5, anything else: HTTP). Every connection yields one [`Record`].

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use palisade_policy::net_rules::Allowlist;
use tokio::sync::Semaphore;

pub mod auth;
pub mod body;
mod conn;
mod credential_book;
pub mod head;
pub mod inspect;
mod relay;
pub mod resolver;
pub mod socks;
#[cfg(target_os = "linux")]
mod splice;
pub mod tls;
pub mod vet;

pub use auth::Credentials;
pub use credential_book::CredentialBook;
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
    /// The host's own addresses (its interfaces'): a name leading to one is refused like one
    /// leading to loopback (services listening on every address would be reached), unless that
    /// address is allowed as an address.
    pub host_addresses: Vec<std::net::IpAddr>,
    /// The host's directly connected networks (interface address, prefix length): a name
    /// leading into one reaches the LAN (its neighbours, its gateway), refused likewise unless
    /// the address is allowed.
    pub host_networks: Vec<(std::net::IpAddr, u8)>,
    /// Credentials every client must present (see `auth.rs`), one entry per command, each
    /// with its tag (see `credential_book.rs`); `None` serves any client that reaches the
    /// listener (Linux: the port lives inside the command's own network namespace).
    pub credentials: Option<Arc<CredentialBook>>,
}

impl Config {
    pub fn new(allowlist: Allowlist) -> Config {
        Config {
            allowlist,
            resolver: Resolver::system(),
            limits: Limits::default(),
            on_record: None,
            host_addresses: Vec::new(),
            host_networks: Vec::new(),
            credentials: None,
        }
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
    /// The tag of the listener the connection came in on (0 for those given to
    /// [`Proxy::start`]; see [`ProxyHandle::add_listener`]), or, once the client presented
    /// credentials, the tag of their [`CredentialBook`] entry.
    pub listener: u64,
}

struct Shared {
    config: Config,
    kept: Mutex<VecDeque<Record>>,
    dropped_records: AtomicU64,
    slots: Arc<Semaphore>,
    /// Connections not yet recorded, by tag; `settled` is told when one is.
    open: Mutex<HashMap<u64, usize>>,
    settled: Condvar,
}

impl Shared {
    fn count_open(&self, tag: u64, opened: bool) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(tag).or_default();
        if opened {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&tag);
            }
            self.settled.notify_all();
        }
    }
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
    fn new(shared: Arc<Shared>, client: Option<SocketAddr>, listener: u64) -> Tracker {
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
            listener,
        };
        shared.count_open(listener, true);
        Tracker { shared, record, counters: relay::Counters::new(), start: Instant::now(), finished: false }
    }

    /// The connection belongs to `tag` from now on (the client presented its credentials).
    pub(crate) fn set_tag(&mut self, tag: u64) {
        self.shared.count_open(tag, true);
        self.shared.count_open(self.record.listener, false);
        self.record.listener = tag;
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
        // After the delivery: whoever waits for the tag to settle then finds the record.
        self.shared.count_open(self.record.listener, false);
    }
}

pub struct Proxy;

impl Proxy {
    /// Serves already-bound listeners (tagged 0) until the handle is shut down or dropped; more
    /// can be added and removed while it runs ([`ProxyHandle::add_listener`]).
    pub fn start(config: Config, listeners: Vec<std::net::TcpListener>) -> io::Result<ProxyHandle> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(config.limits.max_connections.max(1))),
            config,
            kept: Mutex::new(VecDeque::new()),
            dropped_records: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            settled: Condvar::new(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime_handle = runtime.handle().clone();
        let thread = std::thread::Builder::new().name("palisade-proxy".into()).spawn(move || {
            #[cfg(target_os = "linux")]
            splice::block_sigpipe_in_this_thread();
            runtime.block_on(async move {
                let _ = stopped.await;
            });
            // Dropping the tasks closes their sockets and delivers their records.
            runtime.shutdown_timeout(Duration::from_secs(2));
        })?;
        let handle = ProxyHandle {
            stop: Some(stop),
            thread: Some(thread),
            shared,
            runtime: runtime_handle,
            listeners: Mutex::new(HashMap::new()),
        };
        for listener in listeners {
            handle.serve(listener, 0)?;
        }
        Ok(handle)
    }
}

/// One served listener: stopping it ends its accept loop and every connection accepted on it;
/// `done` reports (by disconnecting) that all of them have delivered their records.
struct Served {
    stop: tokio::sync::watch::Sender<bool>,
    done: std::sync::mpsc::Receiver<()>,
}

/// Resolves when the listener's stop was asked for (or its sender is gone).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    tag: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
    done: std::sync::mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => None,
            accepted = listener.accept() => Some(accepted),
        };
        let Some(accepted) = accepted else {
            // Closed before `done` is let go: the remover may rely on the port being shut.
            drop(listener);
            drop(done);
            return;
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of descriptors or a connection reset before accept: back off briefly
                // rather than spin, and keep serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut tracker = Tracker::new(shared.clone(), Some(peer), tag);
        match shared.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let shared = shared.clone();
                let mut stop = stop.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let served = tokio::select! {
                        _ = conn::serve(stream, &shared, &mut tracker) => true,
                        _ = stopped(&mut stop) => false,
                    };
                    if served {
                        tracker.finish();
                    } else {
                        tracker.note("interrupted: its listener was closed (the command ended)".into());
                    }
                    // The record is delivered before `done` is let go.
                    drop(tracker);
                    drop(done);
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
    runtime: tokio::runtime::Handle,
    /// The served listeners by tag (several may share one).
    listeners: Mutex<HashMap<u64, Vec<Served>>>,
}

impl ProxyHandle {
    /// Serves one more listener (already bound and listening); the records of its connections
    /// carry `tag`. Fails if the proxy is no longer running (then the listener is closed: a
    /// client finds nothing there, fail closed).
    pub fn add_listener(&self, listener: std::net::TcpListener, tag: u64) -> io::Result<()> {
        self.serve(listener, tag)
    }

    /// Stops serving the listeners tagged `tag`: closes them and every connection accepted on
    /// them, and returns once those connections' records are delivered (or after 5 s).
    pub fn remove_listener(&self, tag: u64) {
        let served = self.listeners.lock().unwrap_or_else(|p| p.into_inner()).remove(&tag).unwrap_or_default();
        for s in &served {
            let _ = s.stop.send(true);
        }
        for s in served {
            // Disconnected once the accept loop and all its connections are gone.
            let _ = s.done.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Whether the proxy's thread is still serving (false once it ended, for whatever reason).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn serve(&self, listener: std::net::TcpListener, tag: u64) -> io::Result<()> {
        if !self.is_running() {
            return Err(io::Error::other("the network proxy is not running"));
        }
        listener.set_nonblocking(true)?;
        let listener = {
            let _guard = self.runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (done_tx, done) = std::sync::mpsc::channel();
        self.runtime.spawn(accept_loop(listener, self.shared.clone(), tag, stop_rx, done_tx));
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).entry(tag).or_default().push(Served { stop, done });
        Ok(())
    }

    /// Waits until no connection tagged `tag` is open (every one recorded), for at most
    /// `timeout`; whether that happened. For credentials' tags, after
    /// [`CredentialBook::revoke`] (which ends their connections) and before
    /// [`take_records_for`](Self::take_records_for).
    pub fn settle(&self, tag: u64, timeout: Duration) -> bool {
        let open = self.shared.open.lock().unwrap_or_else(|p| p.into_inner());
        let (open, _) = self
            .shared
            .settled
            .wait_timeout_while(open, timeout, |open| open.get(&tag).is_some_and(|n| *n > 0))
            .unwrap_or_else(|p| p.into_inner());
        open.get(&tag).is_none_or(|n| *n == 0)
    }

    /// The records of ended connections that came in on listeners tagged `tag` (oldest first),
    /// removed from the handle; the others stay.
    pub fn take_records_for(&self, tag: u64) -> Vec<Record> {
        let mut kept = self.shared.kept.lock().unwrap_or_else(|p| p.into_inner());
        let (mine, others): (VecDeque<Record>, VecDeque<Record>) = kept.drain(..).partition(|r| r.listener == tag);
        *kept = others;
        mine.into()
    }

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

    /// Stops serving (every listener and connection is closed, their records kept for
    /// [`take_records`](Self::take_records)); later [`add_listener`](Self::add_listener) calls
    /// fail.
    pub fn stop(&mut self) {
        self.stop_and_join();
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
