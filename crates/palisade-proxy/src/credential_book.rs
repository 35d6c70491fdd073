//! The credentials a proxy on a shared port accepts (Windows elevated mode, issue 12): one entry
//! per command, each with the tag its connections' records carry, so that each command gets its
//! own connections back ([`crate::ProxyHandle::take_records_for`]) and its credentials stop
//! working when it ends.
//!
//! On Linux each command has a listener of its own inside its network namespace and needs none
//! of this. On Windows the proxy listens on the host's loopback, one port per sandbox, and every
//! command of the sandbox reaches that port as the same account: what tells commands apart is
//! the secret each one's proxy variables carry. Revoking a command's entry refuses new
//! connections with its secret and ends the ones still open (a process the command left behind
//! loses the network, as on Linux).

use std::sync::RwLock;

use tokio::sync::watch;

use crate::auth::{Credentials, SocksUserPassword};

struct Entry {
    credentials: Credentials,
    tag: u64,
    /// Set to true (and dropped) when the entry is revoked; connections watch it.
    revoked: watch::Sender<bool>,
}

/// What a client that presented an entry's credentials gets: the entry's tag, and a watch that
/// turns true once the entry is revoked.
pub(crate) struct Admission {
    pub(crate) tag: u64,
    pub(crate) revoked: watch::Receiver<bool>,
}

/// The accepted credentials. Cheap to check (a few entries: the commands of one sandbox running
/// at once); every entry is compared in time that depends only on the lengths.
#[derive(Default)]
pub struct CredentialBook {
    entries: RwLock<Vec<Entry>>,
}

impl CredentialBook {
    pub fn new() -> CredentialBook {
        CredentialBook::default()
    }

    /// Accepts `credentials` from now on; their connections' records carry `tag`. Credentials
    /// equal to an entry's already there replace it (that entry is revoked).
    pub fn insert(&self, credentials: Credentials, tag: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|e| {
            let same = e.credentials == credentials;
            if same {
                let _ = e.revoked.send(true);
            }
            !same
        });
        let (revoked, _) = watch::channel(false);
        entries.push(Entry { credentials, tag, revoked });
    }

    /// Stops accepting the credentials tagged `tag` and ends their open connections.
    pub fn revoke(&self, tag: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|e| {
            if e.tag == tag {
                let _ = e.revoked.send(true);
            }
            e.tag != tag
        });
    }

    /// How many entries are accepted now.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry whose credentials the `Proxy-Authorization` values carry.
    pub(crate) fn admit_http(&self, values: &[&[u8]]) -> Option<Admission> {
        self.admit(|c| c.http_accepts(values))
    }

    /// The entry whose credentials an RFC 1929 request carries.
    pub(crate) fn admit_socks(&self, request: &SocksUserPassword) -> Option<Admission> {
        self.admit(|c| c.socks_accepts(request))
    }

    fn admit(&self, accepts: impl Fn(&Credentials) -> bool) -> Option<Admission> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        // Every entry is compared, so the time taken does not tell which one matched.
        let mut found = None;
        for e in entries.iter() {
            if accepts(&e.credentials) && found.is_none() {
                found = Some(Admission { tag: e.tag, revoked: e.revoked.subscribe() });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, secret: &str) -> Vec<u8> {
        format!("Basic {}", crate::auth::base64(format!("{user}:{secret}").as_bytes())).into_bytes()
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn each_secret_admits_with_its_own_tag_until_revoked() {
        let book = CredentialBook::new();
        book.insert(Credentials::new("palisade", A).unwrap(), 1);
        book.insert(Credentials::new("palisade", B).unwrap(), 2);
        assert_eq!(book.admit_http(&[&basic("palisade", A)]).map(|a| a.tag), Some(1));
        assert_eq!(book.admit_http(&[&basic("palisade", B)]).map(|a| a.tag), Some(2));
        let socks = SocksUserPassword { user: b"palisade".to_vec(), password: B.as_bytes().to_vec() };
        assert_eq!(book.admit_socks(&socks).map(|a| a.tag), Some(2));
        assert!(book.admit_http(&[&basic("palisade", "cccccccccccccccccccc")]).is_none());

        let mut open = book.admit_http(&[&basic("palisade", A)]).unwrap();
        assert!(!*open.revoked.borrow_and_update());
        book.revoke(1);
        assert!(book.admit_http(&[&basic("palisade", A)]).is_none(), "a revoked secret still admits");
        assert!(open.revoked.has_changed().unwrap_or(true), "an open connection is not told");
        assert_eq!(book.admit_http(&[&basic("palisade", B)]).map(|a| a.tag), Some(2));
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn the_same_credentials_inserted_again_take_the_new_tag() {
        let book = CredentialBook::new();
        book.insert(Credentials::new("palisade", A).unwrap(), 1);
        book.insert(Credentials::new("palisade", A).unwrap(), 7);
        assert_eq!(book.len(), 1);
        assert_eq!(book.admit_http(&[&basic("palisade", A)]).map(|a| a.tag), Some(7));
    }
}
