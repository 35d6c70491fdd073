//! `network = allow` in the elevated mode, as data (issue 12): how a command's only way out is
//! Palisade's proxy, which runs inside the (unelevated) CLI.
//!
//! The route (design in docs/ARCHITECTURE.md, "The network allowlist on Windows"):
//!
//! * setup creates a third account, `PalisadeProxied` ([`crate::SandboxUser::Proxied`]), whose
//!   firewall rules block every address but loopback and whose WFP filters permit TCP to
//!   127.0.0.1 / ::1 on a small fixed set of ports ([`DEFAULT_PROXY_PORTS`], or those given to
//!   setup, recorded in the marker) and block every other connect
//!   ([`crate::firewall::proxied_fence`]); `PalisadeOffline` keeps no port at all, and
//!   `PalisadeOnline` (`network = on`) stays unfenced;
//! * per `Sandbox`, the CLI binds the first free port of that set on 127.0.0.1
//!   ([`choose_port`]) and serves it with `palisade-proxy`, which asks each command for a
//!   secret of its own ([`secret_from_random`]): every local process and every other sandbox
//!   can reach that port, only the command knows its secret;
//! * the command gets the proxy URLs with the secret in them ([`proxy_environment`]);
//! * before each command the runner proves the fence as `PalisadeProxied`: an outside connect
//!   and one to another loopback port are blocked, and the proxy's port is not
//!   ([`crate::fence_probe::proxied_verdict`]).

use std::io;

/// The proxy's user name in the URLs (the secret is what matters).
pub const PROXY_USER: &str = "palisade";

/// The loopback ports setup opens for `PalisadeProxied` when it is given none: below Windows'
/// dynamic range (49152-65535, where a bind can collide with outgoing connections' local ports)
/// and away from well-known proxy ports (3128, 8080, 1080) other software listens on. Four
/// sandboxes with `network = allow` can run at once.
pub const DEFAULT_PROXY_PORTS: [u16; 4] = [47_310, 47_311, 47_312, 47_313];

/// The ports setup opens: those asked for, else the defaults.
pub fn setup_ports(requested: &[u16]) -> Vec<u16> {
    if requested.is_empty() {
        DEFAULT_PROXY_PORTS.to_vec()
    } else {
        requested.to_vec()
    }
}

/// The ports `palisade setup --elevated` asks for: `given` (`--proxy-ports`), checked as the
/// fence will check them (no 0, no repeats, not too many) so a bad list is refused before any
/// approval is asked for; else the ones the current setup recorded (`marker`), so running setup
/// again keeps a choice made before; else none (setup then opens [`DEFAULT_PROXY_PORTS`]).
pub fn ports_to_request(given: &[u16], marker: Option<&[u16]>) -> Result<Vec<u16>, String> {
    if !given.is_empty() {
        crate::firewall::proxied_fence(given).map_err(|e| format!("--proxy-ports: {e}"))?;
        return Ok(given.to_vec());
    }
    Ok(marker.map(<[u16]>::to_vec).unwrap_or_default())
}

/// Why a bind attempt failed, as [`choose_port`] sees it.
#[derive(Debug)]
pub enum BindFailure {
    /// Taken (`WSAEADDRINUSE`), or reserved by the system (`WSAEACCES`: Hyper-V and WinNAT
    /// exclude port ranges): try the next port.
    Busy,
    /// Anything else: give up.
    Other(io::Error),
}

/// Binds the first port of `ports` that `bind` can take, in order. Errors are one line naming
/// the ports and the fix.
pub fn choose_port<L>(ports: &[u16], mut bind: impl FnMut(u16) -> Result<L, BindFailure>) -> Result<(u16, L), String> {
    if ports.is_empty() {
        return Err("the elevated setup opened no proxy port for network = allow; run `palisade setup --elevated` again (as an administrator)".into());
    }
    for &port in ports {
        match bind(port) {
            Ok(l) => return Ok((port, l)),
            Err(BindFailure::Busy) => continue,
            Err(BindFailure::Other(e)) => {
                return Err(format!("binding the network proxy to 127.0.0.1:{port}: {e}"));
            }
        }
    }
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    Err(format!(
        "every proxy port the elevated setup opened for network = allow is in use on 127.0.0.1 ({}): end another palisade session with network = allow, or free a port (`netsh interface ipv4 show excludedportrange protocol=tcp` lists those Windows reserved)",
        list.join(", ")
    ))
}

/// A command's secret: 16 random bytes as 32 lower-case hex digits (128 bits; letters and
/// digits only, so it needs no escaping in a URL). `None` if fewer than 16 bytes are given.
pub fn secret_from_random(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.get(..16)?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The variables the command's tools read a proxy from. Windows compares variable names without
/// regard to case, so each name appears once (`http_proxy` is also `HTTP_PROXY`).
const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "NODE_USE_ENV_PROXY",
    "CARGO_HTTP_PROXY",
    "npm_config_proxy",
    "npm_config_https_proxy",
    "NO_PROXY",
];

/// The command's environment with the proxy's variables: any the caller passed with one of
/// these names (in any case) is replaced, and `NO_PROXY` is removed (on Windows the command's
/// loopback is the host's, and the fence blocks every loopback port but the proxy's, so going
/// around the proxy only fails, with a less helpful error). Tools and the variables:
/// `http_proxy`/`https_proxy` (curl, git, pip and Python, Go, npm, cargo), `ALL_PROXY` as
/// `socks5h://` (curl for other schemes, SOCKS-only tools; names resolved by the proxy),
/// `NODE_USE_ENV_PROXY=1` (Node 24+), `CARGO_HTTP_PROXY` (cargo's git fetches), npm's own.
/// Every URL carries [`PROXY_USER`] and the secret.
pub fn proxy_environment(env: &[(String, String)], port: u16, secret: &str) -> Vec<(String, String)> {
    let http = format!("http://{PROXY_USER}:{secret}@127.0.0.1:{port}");
    let socks = format!("socks5h://{PROXY_USER}:{secret}@127.0.0.1:{port}");
    let mut out: Vec<(String, String)> =
        env.iter().filter(|(k, _)| !PROXY_VARIABLES.iter().any(|p| p.eq_ignore_ascii_case(k))).cloned().collect();
    for (k, v) in [
        ("http_proxy", &http),
        ("https_proxy", &http),
        ("ALL_PROXY", &socks),
        ("NODE_USE_ENV_PROXY", &"1".to_string()),
        ("CARGO_HTTP_PROXY", &http),
        ("npm_config_proxy", &http),
        ("npm_config_https_proxy", &http),
    ] {
        out.push((k.to_string(), v.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_asks_for_the_given_ports_else_keeps_the_recorded_ones() {
        assert_eq!(ports_to_request(&[9000, 9001], Some(&[47_310])), Ok(vec![9000, 9001]));
        assert_eq!(ports_to_request(&[], Some(&[9000])), Ok(vec![9000]));
        assert_eq!(ports_to_request(&[], None), Ok(vec![]));
        for bad in [&[0u16][..], &[9000, 9000][..]] {
            let e = ports_to_request(bad, None).unwrap_err();
            assert!(e.starts_with("--proxy-ports: ") && !e.contains('\n'), "{e}");
        }
        let many: Vec<u16> = (1..=200).collect();
        assert!(ports_to_request(&many, None).is_err());
    }

    #[test]
    fn setup_ports_default_and_given() {
        assert_eq!(setup_ports(&[]), DEFAULT_PROXY_PORTS.to_vec());
        assert_eq!(setup_ports(&[9000, 9001]), vec![9000, 9001]);
        assert!(DEFAULT_PROXY_PORTS.iter().all(|p| *p < 49_152 && ![1080, 3128, 8080].contains(p)));
        assert!(crate::firewall::proxied_fence(&DEFAULT_PROXY_PORTS).is_ok());
    }

    #[test]
    fn the_first_free_port_is_taken() {
        let mut tried = Vec::new();
        let got = choose_port(&[1, 2, 3], |p| {
            tried.push(p);
            if p < 3 {
                Err(BindFailure::Busy)
            } else {
                Ok(format!("listener {p}"))
            }
        });
        assert_eq!(got, Ok((3, "listener 3".to_string())));
        assert_eq!(tried, [1, 2, 3]);
        assert_eq!(choose_port(&[7, 8], Ok::<u16, BindFailure>), Ok((7, 7)));
    }

    #[test]
    fn no_free_port_is_one_line_with_the_fix() {
        let e = choose_port::<()>(&[47_310, 47_311], |_| Err(BindFailure::Busy)).unwrap_err();
        assert!(e.contains("(47310, 47311)") && e.contains("end another palisade session") && !e.contains('\n'), "{e}");
        let e = choose_port::<()>(&[], |_| unreachable!()).unwrap_err();
        assert!(e.contains("palisade setup --elevated"), "{e}");
        // Another error stops at once, naming the port.
        let mut tried = 0;
        let e = choose_port::<()>(&[5, 6], |_| {
            tried += 1;
            Err(BindFailure::Other(io::Error::other("no loopback")))
        })
        .unwrap_err();
        assert_eq!(tried, 1);
        assert!(e.contains("127.0.0.1:5") && e.contains("no loopback"), "{e}");
    }

    #[test]
    fn secrets_are_hex_of_sixteen_bytes() {
        let s = secret_from_random(&[0xab; 16]).unwrap();
        assert_eq!(s, "ab".repeat(16));
        let s = secret_from_random(&(0u8..20).collect::<Vec<_>>()).unwrap();
        assert_eq!(s, "000102030405060708090a0b0c0d0e0f");
        assert_eq!(secret_from_random(&[1; 15]), None);
        // What the proxy accepts as a secret.
        let s = secret_from_random(&[0x5a; 16]).unwrap();
        assert!(s.len() >= 16 && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn environment_replaces_the_callers_proxies_whatever_their_case() {
        let env: Vec<(String, String)> = [
            ("PATH", "C:\\Windows"),
            ("HTTP_PROXY", "http://corp:8080"),
            ("Https_Proxy", "http://corp:8080"),
            ("all_proxy", "socks5://corp:1080"),
            ("no_proxy", "*.corp"),
            ("NPM_CONFIG_PROXY", "http://corp"),
            ("HOME", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let out = proxy_environment(&env, 47_311, "00112233445566778899aabbccddeeff");
        let url = "http://palisade:00112233445566778899aabbccddeeff@127.0.0.1:47311";
        let socks = "socks5h://palisade:00112233445566778899aabbccddeeff@127.0.0.1:47311";
        let get = |name: &str| -> Vec<&str> {
            out.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
        };
        assert_eq!(get("path"), ["C:\\Windows"]);
        assert_eq!(get("home"), ["x"]);
        assert_eq!(get("http_proxy"), [url]);
        assert_eq!(get("https_proxy"), [url]);
        assert_eq!(get("all_proxy"), [socks]);
        assert_eq!(get("no_proxy"), Vec::<&str>::new());
        assert_eq!(get("node_use_env_proxy"), ["1"]);
        assert_eq!(get("cargo_http_proxy"), [url]);
        assert_eq!(get("npm_config_proxy"), [url]);
        assert_eq!(get("npm_config_https_proxy"), [url]);
        // Each name once, case-insensitively (a Windows environment block has no duplicates).
        let mut names: Vec<String> = out.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        // The user name and secret are what the proxy accepts.
        let creds = (PROXY_USER, "00112233445566778899aabbccddeeff");
        assert!(creds.0.bytes().chain(creds.1.bytes()).all(|b| b.is_ascii_alphanumeric()));
    }
}
