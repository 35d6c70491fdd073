//! network = allow on Linux: the sandbox's proxy (palisade-proxy, on the host side, so its
//! outbound connections use the host's network) and, per command, the listening socket the
//! child opens on 127.0.0.1 of its own network namespace and hands over (see child.rs, step
//! `OpenProxyPort`). The proxy lives as long as the sandbox and its commands; each command's
//! listener is served from the moment the command runs until it has ended (or its handle is
//! dropped), and then closed with every connection accepted on it, which frees the namespace.
//! If the proxy's thread has ended, a command's listener is closed unserved: the command has no
//! network at all (fail closed), and a notice says so.

use super::sys;
use crate::error::Error;
use crate::status::NetworkRecord;
use palisade_policy::net_rules::Allowlist;
use palisade_proxy::{Config, Proxy, ProxyHandle, Resolver};
use std::ffi::OsString;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The notice of a command whose proxy was gone.
const PROXY_GONE: &str =
    "the network proxy was not running, so this command had no network at all (fail closed); run it again";

/// The sandbox's proxy, shared with its running commands.
pub struct SandboxProxy {
    handle: ProxyHandle,
    /// Tags of the commands' listeners (records are told apart by them).
    next_tag: AtomicU64,
}

impl SandboxProxy {
    /// Starts the proxy for `allowlist`, resolving names from `hosts_file` (only the names it
    /// lists) when one is given, otherwise with the system resolver.
    pub fn start(allowlist: &Allowlist, hosts_file: Option<&Path>) -> Result<Arc<SandboxProxy>, Error> {
        let mut config = Config::new(allowlist.clone());
        // A name leading to one of this host's own addresses would reach its services listening
        // on every address: refused like loopback (see palisade-proxy's vet).
        let interfaces = sys::interface_addresses();
        config.host_addresses = interfaces.iter().map(|(a, _)| *a).collect();
        // The networks they are on: a name may not lead to the host's LAN neighbours either.
        config.host_networks = interfaces;
        if let Some(path) = hosts_file {
            config.resolver = Resolver::with_hosts_file(path)
                .map_err(|e| Error::InvalidInput(format!("the network hosts file {}: {e}", path.display())))?;
        }
        // The proxy's thread (and the resolver threads it starts) inherit this mask: with the
        // signals palisade passes on blocked there, a SIGTERM or SIGINT sent to the process
        // cannot land on the proxy's thread and end palisade at once (the sandbox is usually
        // made before the signal forwarder is installed).
        let old_mask = sys::block_signals(&sys::sigset_of(super::signals::FORWARDED));
        let started = Proxy::start(config, Vec::new());
        sys::set_signal_mask(&old_mask);
        let handle = started.map_err(|e| Error::Io { context: "starting the network proxy".into(), source: e })?;
        Ok(Arc::new(SandboxProxy { handle, next_tag: AtomicU64::new(1) }))
    }
}

/// The unix socket pair over which one child sends its proxy listener.
pub struct PortChannel {
    parent: OwnedFd,
    child: Option<OwnedFd>,
}

impl PortChannel {
    pub fn open() -> Result<PortChannel, Error> {
        let (parent, child) = sys::socketpair()
            .map_err(|e| Error::Io { context: "creating the network proxy's channel".into(), source: e })?;
        Ok(PortChannel { parent, child: Some(child) })
    }

    /// The descriptor the child sends on.
    pub fn child_fd(&self) -> RawFd {
        self.child.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// This side's descriptor (the child closes its copy at once).
    pub fn parent_fd(&self) -> RawFd {
        self.parent.as_raw_fd()
    }

    /// Once the child has its copy.
    pub fn close_child_end(&mut self) {
        self.child = None;
    }

    /// Once the command runs (it sent the listener before exec): serves the listener with the
    /// proxy. A proxy that is gone leaves the command offline, with a notice.
    pub fn serve(self, proxy: &Arc<SandboxProxy>) -> Result<CommandNetwork, Error> {
        let received = sys::try_recv_fd(self.parent.as_raw_fd()).map_err(|e| Error::Io {
            context: "receiving the network proxy's port from the sandbox".into(),
            source: io::Error::from_raw_os_error(e),
        })?;
        let Some(fd) = received else {
            return Err(Error::Io {
                context: "receiving the network proxy's port from the sandbox".into(),
                source: io::Error::new(io::ErrorKind::UnexpectedEof, "the sandbox sent none"),
            });
        };
        let tag = proxy.next_tag.fetch_add(1, Ordering::Relaxed);
        let served = proxy.handle.add_listener(TcpListener::from(fd), tag).is_ok();
        Ok(CommandNetwork { proxy: proxy.clone(), tag, served, ended: false })
    }
}

/// One command's way out through the proxy.
pub struct CommandNetwork {
    proxy: Arc<SandboxProxy>,
    tag: u64,
    /// The proxy took the listener (false: it was not running).
    served: bool,
    ended: bool,
}

impl CommandNetwork {
    /// Closes the command's listener and its connections; returns their records, and a notice
    /// if the proxy was gone (at the start, or since).
    pub fn finish(&mut self) -> (Vec<NetworkRecord>, Option<String>) {
        self.ended = true;
        let running = self.proxy.handle.is_running();
        self.proxy.handle.remove_listener(self.tag);
        let records = self.proxy.handle.take_records_for(self.tag).into_iter().map(NetworkRecord::from).collect();
        let notice = (!self.served || !running).then(|| {
            if self.served {
                "the network proxy stopped while the command ran: its connections were cut and it had no network since (fail closed)".to_string()
            } else {
                PROXY_GONE.to_string()
            }
        });
        (records, notice)
    }
}

impl Drop for CommandNetwork {
    fn drop(&mut self) {
        if !self.ended {
            // A handle dropped while its command runs: the command goes offline.
            self.proxy.handle.remove_listener(self.tag);
            let _ = self.proxy.handle.take_records_for(self.tag);
        }
    }
}

/// The variables that point a command's tools at the proxy at 127.0.0.1:`port` (they replace
/// any the caller passed):
/// - `http_proxy`, `https_proxy` and their upper-case forms: curl (and so git over HTTPS, and
///   cargo, which also read `https_proxy`), wget, pip and Python's urllib/requests, Go, Ruby,
///   npm (its `proxy`/`https-proxy` settings default to them). curl ignores upper-case
///   `HTTP_PROXY` (a CGI header could set it), so both forms are needed.
/// - `ALL_PROXY`/`all_proxy` = `socks5h://` (names resolved by the proxy): curl for other
///   schemes, and tools that only speak SOCKS; the proxy tells SOCKS from HTTP by the first byte.
/// - `NO_PROXY`/`no_proxy`: the command's own private loopback (its own test servers).
/// - `NODE_USE_ENV_PROXY=1`: Node.js 24+ (fetch, http) reads the variables above only then.
/// - `CARGO_HTTP_PROXY`: cargo's own setting, which also covers its git fetches (libgit2).
/// - `npm_config_proxy`/`npm_config_https_proxy`: npm, even where a user `.npmrc`
///   names another proxy.
///
/// Tools with no proxy support (or one not taken from the environment: Java needs
/// `-Dhttps.proxyHost`, ssh a ProxyCommand) get no network: they see only the private loopback.
pub fn proxy_env(port: u16) -> Vec<(OsString, OsString)> {
    let http = format!("http://127.0.0.1:{port}");
    let socks = format!("socks5h://127.0.0.1:{port}");
    let local = "localhost,127.0.0.1,::1".to_string();
    [
        ("http_proxy", &http),
        ("HTTP_PROXY", &http),
        ("https_proxy", &http),
        ("HTTPS_PROXY", &http),
        ("ALL_PROXY", &socks),
        ("all_proxy", &socks),
        ("NO_PROXY", &local),
        ("no_proxy", &local),
        ("NODE_USE_ENV_PROXY", &"1".to_string()),
        ("CARGO_HTTP_PROXY", &http),
        ("npm_config_proxy", &http),
        ("npm_config_https_proxy", &http),
    ]
    .into_iter()
    .map(|(k, v)| (OsString::from(k), OsString::from(v)))
    .collect()
}
