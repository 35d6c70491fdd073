//! Host-side name resolution for the proxy. By default the system resolver (getaddrinfo on a
//! blocking thread); for tests a hosts-file override that resolves only the names it lists
//! and nothing else (so a test can never send traffic to a real address by mistake).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct Resolver {
    hosts: Option<Arc<HashMap<String, Vec<IpAddr>>>>,
}

impl Resolver {
    /// The system resolver.
    pub fn system() -> Resolver {
        Resolver { hosts: None }
    }

    /// Resolves only the names in a hosts-format file (`address name...`, `#` comments).
    pub fn with_hosts_file(path: &Path) -> io::Result<Resolver> {
        let text = std::fs::read_to_string(path)?;
        Self::from_hosts_text(&text)
            .map_err(|(line, e)| io::Error::new(io::ErrorKind::InvalidData, format!("{}:{line}: {e}", path.display())))
    }

    /// Like [`with_hosts_file`](Self::with_hosts_file), from the file's text; the error names
    /// the line.
    pub fn from_hosts_text(text: &str) -> Result<Resolver, (usize, String)> {
        let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(addr) = words.next() else { continue };
            let addr: IpAddr = addr.parse().map_err(|_| (i + 1, format!("{addr:?} is not an IP address")))?;
            let mut any = false;
            for name in words {
                any = true;
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let addrs = map.entry(name).or_default();
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            if !any {
                return Err((i + 1, "an address without a name".into()));
            }
        }
        Ok(Resolver { hosts: Some(Arc::new(map)) })
    }

    /// The addresses of `name` (already normalized: lowercase, no trailing dot), no duplicates.
    pub async fn resolve(&self, name: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        let addrs = match &self.hosts {
            Some(map) => map.get(name).cloned().unwrap_or_default(),
            None => {
                let mut out = Vec::new();
                for sa in tokio::net::lookup_host((name, port)).await? {
                    if !out.contains(&sa.ip()) {
                        out.push(sa.ip());
                    }
                }
                out
            }
        };
        if addrs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses found"));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_text() {
        let r = Resolver::from_hosts_text("# c\n127.0.0.1 A.test b.test.\n\n::1 a.test # x\n").unwrap();
        let map = r.hosts.unwrap();
        assert_eq!(map["a.test"], vec!["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
        assert_eq!(map["b.test"].len(), 1);
        assert_eq!(Resolver::from_hosts_text("x a.test").unwrap_err().0, 1);
        assert_eq!(Resolver::from_hosts_text("\n127.0.0.1\n").unwrap_err().0, 2);
    }
}
