//! `network = allow` in the elevated mode (issue 12; never run on real Windows yet): the
//! sandbox's proxy (`palisade-proxy`), in this unelevated process, on one of the loopback ports
//! setup opened for `PalisadeProxied` (the marker's `proxy_ports`), asking every client for a
//! running command's secret. The decisions (port choice, secret, variables) are
//! `palisade_windows_elevated::proxy_route`'s; the fence that makes the proxy the command's only
//! way out is setup's (`firewall::proxied_fence`), proved by the runner before each command.
//!
//! The port lives on the host's loopback, where every local process and every other sandbox
//! reaches it: hence the secret, one per command ([`CommandRoute`]), which also tells the
//! commands' connections apart for their records and stops working when the command ends. Another account cannot take the port over while the proxy
//! holds it (Windows refuses to rebind a port bound by another account: its "enhanced socket
//! security"), and a port someone else holds is skipped.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use palisade_policy::net_rules::Allowlist;
use palisade_proxy::{Config, CredentialBook, Credentials, Proxy, ProxyHandle, Resolver};
use palisade_win32::ffi;
use palisade_windows_elevated::proxy_route::{self, BindFailure};

use crate::error::Error;
use crate::status::NetworkRecord;

/// The sandbox's proxy and what its commands need to reach it.
pub struct SandboxProxy {
    handle: ProxyHandle,
    port: u16,
    /// The secrets of the commands running now.
    book: Arc<CredentialBook>,
    /// The next command's tag (0 is the listener's own: clients that presented no secret).
    next_tag: AtomicU64,
}

/// How long a command's connections may take to end and be recorded after it ended (the job
/// is gone by then, so its sockets are closed; this only covers the proxy noticing).
const SETTLE: Duration = Duration::from_secs(2);

fn refused(why: String) -> Error {
    Error::Unenforceable {
        what: "network = allow (the network allowlist)".into(),
        why,
        fix: "see `palisade check`; `--network off` or `--network on` need no proxy".into(),
    }
}

/// This host's addresses (GetAdaptersAddresses, through `if-addrs`). A name leading to one of
/// them would reach the host's services listening on every address, which the fence keeps
/// PalisadeProxied from: palisade-proxy's vet refuses it like loopback. Refused outright when the
/// host cannot list them, except under Wine, whose GetAdaptersAddresses fails while other Wine
/// processes share the prefix (seen here: error 3, for seconds at a time) and which enforces no
/// fence anyway (a plumbing host: see docs/windows.md).
fn this_hosts_addresses() -> Result<Vec<(std::net::IpAddr, u8)>, Error> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => Ok(interfaces
            .into_iter()
            .map(|i| {
                let prefix = match &i.addr {
                    if_addrs::IfAddr::V4(a) => a.prefixlen,
                    if_addrs::IfAddr::V6(a) => a.prefixlen,
                };
                (i.ip(), prefix)
            })
            .collect()),
        Err(_) if ffi::wine_version().is_some() => Ok(Vec::new()),
        Err(e) => Err(Error::Io { context: "listing this host's network addresses".into(), source: e }),
    }
}

impl SandboxProxy {
    /// Binds the first free port of `ports` on 127.0.0.1 and serves it with a proxy for
    /// `allowlist` that serves the commands' secrets ([`Self::route_command`]); names resolve from `hosts_file` (only the names
    /// it lists) when one is given.
    pub fn start(allowlist: &Allowlist, ports: &[u16], hosts_file: Option<&Path>) -> Result<SandboxProxy, Error> {
        let (port, listener) = proxy_route::choose_port(ports, |p| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).map_err(|e| match e.kind() {
                // Taken, or in a range Windows reserved (WSAEACCES).
                io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied => BindFailure::Busy,
                _ => BindFailure::Other(e),
            })
        })
        .map_err(refused)?;
        let host_addresses = this_hosts_addresses()?;
        let book = Arc::new(CredentialBook::new());
        let mut config = Config::new(allowlist.clone());
        config.credentials = Some(book.clone());
        config.host_addresses = host_addresses.iter().map(|(a, _)| *a).collect();
        // The networks they are on (loopback's included, refused anyway): a name may not lead
        // to the host's LAN neighbours either.
        config.host_networks = host_addresses;
        if let Some(path) = hosts_file {
            config.resolver = Resolver::with_hosts_file(path)
                .map_err(|e| Error::InvalidInput(format!("the network hosts file {}: {e}", path.display())))?;
        }
        let handle = Proxy::start(config, vec![listener])
            .map_err(|e| Error::Io { context: "starting the network proxy".into(), source: e })?;
        Ok(SandboxProxy { handle, port, book, next_tag: AtomicU64::new(1) })
    }

    /// The proxy's port on 127.0.0.1 (the fence probe's third connect).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A way through the proxy for one command: a fresh secret, accepted until the command
    /// ends. Refused when the proxy's thread has ended: its port would be closed, and a command
    /// with no way out is better refused than started.
    pub fn route_command(self: &Arc<Self>) -> Result<CommandRoute, Error> {
        if !self.handle.is_running() {
            return Err(refused("the sandbox's network proxy is no longer running; make a new sandbox".into()));
        }
        let random = ffi::random16()
            .map_err(|e| Error::Io { context: "making the command's proxy secret".into(), source: e })?;
        let secret = proxy_route::secret_from_random(&random).expect("16 bytes");
        let credentials = Credentials::new(proxy_route::PROXY_USER, &secret)
            .map_err(|e| Error::InvalidInput(format!("proxy: {e}")))?;
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        self.book.insert(credentials, tag);
        Ok(CommandRoute { proxy: self.clone(), tag, secret, finished: false })
    }
}

/// One command's way through the sandbox's proxy. Dropping it (or [`finish`](Self::finish))
/// revokes the secret: new connections with it are refused and open ones end.
pub struct CommandRoute {
    proxy: Arc<SandboxProxy>,
    tag: u64,
    secret: String,
    finished: bool,
}

impl CommandRoute {
    /// The command's environment with the proxy's variables (its secret included).
    pub fn environment(&self, env: &[(String, String)]) -> Vec<(String, String)> {
        proxy_route::proxy_environment(env, self.proxy.port, &self.secret)
    }

    /// Once the command ended: revokes its secret and returns its connections' records.
    pub fn finish(&mut self) -> Vec<NetworkRecord> {
        self.finished = true;
        self.proxy.book.revoke(self.tag);
        self.proxy.handle.settle(self.tag, SETTLE);
        self.proxy.handle.take_records_for(self.tag).into_iter().map(NetworkRecord::from).collect()
    }
}

impl Drop for CommandRoute {
    fn drop(&mut self) {
        if !self.finished {
            self.proxy.book.revoke(self.tag);
            self.proxy.handle.settle(self.tag, SETTLE);
            let _ = self.proxy.handle.take_records_for(self.tag);
        }
    }
}
