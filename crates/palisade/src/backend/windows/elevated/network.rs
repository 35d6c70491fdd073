//! `network = allow` in the elevated mode (issue 12; never run on real Windows yet): the
//! sandbox's proxy (`palisade-proxy`), in this unelevated process, on one of the loopback ports
//! setup opened for `PalisadeProxied` (the marker's `proxy_ports`), asking every client for the
//! sandbox's secret. The decisions (port choice, secret, variables) are
//! `palisade_windows_elevated::proxy_route`'s; the fence that makes the proxy the command's only
//! way out is setup's (`firewall::proxied_fence`), proved by the runner before each command.
//!
//! The port lives on the host's loopback, where every local process and every other sandbox
//! reaches it: hence the secret. Another account cannot take the port over while the proxy
//! holds it (Windows refuses to rebind a port bound by another account: its "enhanced socket
//! security"), and a port someone else holds is skipped.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use palisade_policy::net_rules::Allowlist;
use palisade_proxy::{Config, Credentials, Proxy, ProxyHandle, Resolver};
use palisade_win32::ffi;
use palisade_windows_elevated::proxy_route::{self, BindFailure};

use crate::error::Error;

/// The sandbox's proxy and what its commands need to reach it.
pub struct SandboxProxy {
    handle: ProxyHandle,
    port: u16,
    secret: String,
}

fn refused(why: String) -> Error {
    Error::Unenforceable {
        what: "network = allow (the network allowlist)".into(),
        why,
        fix: "see `palisade check`; `--network off` or `--network on` need no proxy".into(),
    }
}

impl SandboxProxy {
    /// Binds the first free port of `ports` on 127.0.0.1 and serves it with a proxy for
    /// `allowlist` that asks for a fresh secret; names resolve from `hosts_file` (only the names
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
        let random =
            ffi::random16().map_err(|e| Error::Io { context: "making the proxy's secret".into(), source: e })?;
        let secret = proxy_route::secret_from_random(&random).expect("16 bytes");
        let mut config = Config::new(allowlist.clone());
        config.credentials = Some(
            Credentials::new(proxy_route::PROXY_USER, &secret)
                .map_err(|e| Error::InvalidInput(format!("proxy: {e}")))?,
        );
        if let Some(path) = hosts_file {
            config.resolver = Resolver::with_hosts_file(path)
                .map_err(|e| Error::InvalidInput(format!("the network hosts file {}: {e}", path.display())))?;
        }
        let handle = Proxy::start(config, vec![listener])
            .map_err(|e| Error::Io { context: "starting the network proxy".into(), source: e })?;
        Ok(SandboxProxy { handle, port, secret })
    }

    /// The proxy's port on 127.0.0.1 (the fence probe's third connect).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The command's environment with the proxy's variables (credentials included).
    pub fn environment(&self, env: &[(String, String)]) -> Vec<(String, String)> {
        proxy_route::proxy_environment(env, self.port, &self.secret)
    }

    /// Refuses a command when the proxy's thread has ended: its port would be closed, and a
    /// command with no way out is better refused than started.
    pub fn check_running(&self) -> Result<(), Error> {
        if self.handle.is_running() {
            Ok(())
        } else {
            Err(refused("the sandbox's network proxy is no longer running; make a new sandbox".into()))
        }
    }
}
