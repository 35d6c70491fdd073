//! Optional per-sandbox credentials a client must present (issue 12, Windows elevated mode).
//!
//! On Linux the proxy's port lives inside the command's own network namespace, so no other
//! process can reach it and no credentials are asked for ([`crate::Config::credentials`] is
//! `None`). On Windows the proxy listens on the host's loopback, which every local process and
//! every other sandbox can reach; there the backend gives each sandbox a random secret and puts
//! it into the proxy URLs (`http://palisade:SECRET@127.0.0.1:PORT`), and the proxy serves only
//! clients that present it:
//!
//! * HTTP (CONNECT and forwarding): `Proxy-Authorization: Basic base64(user:secret)`, else
//!   `407 Proxy Authentication Required` with a `Basic` challenge (the header is never
//!   forwarded to an origin: it is hop-by-hop, see `head::forwarded_head`);
//! * SOCKS5: the username/password method (RFC 1929), else no acceptable method.
//!
//! The user name and secret are restricted to ASCII letters and digits, so that they need no
//! escaping in a URL and every client encodes them the same way. Pure and bounded.

use std::fmt;

/// The SOCKS5 username/password method (RFC 1929).
pub const SOCKS_METHOD_USER_PASSWORD: u8 = 2;
/// The version byte of the RFC 1929 sub-negotiation.
pub const SOCKS_AUTH_VERSION: u8 = 1;
/// Shortest secret accepted (a secret guessed over loopback must be out of reach).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest user name or secret (RFC 1929 gives each at most 255 bytes).
pub const MAX_FIELD_LEN: usize = 255;

/// The user name and secret a client must present. `Debug` does not show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    secret: String,
    /// `base64(user:secret)`, what a `Basic` header carries.
    basic: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("secret", &"<hidden>").finish()
    }
}

impl Credentials {
    /// Fails with one line if the user name or secret is empty, too long, has anything but
    /// ASCII letters and digits, or the secret is shorter than [`MIN_SECRET_LEN`].
    pub fn new(user: &str, secret: &str) -> Result<Credentials, String> {
        for (what, v) in [("user name", user), ("secret", secret)] {
            if v.is_empty() || v.len() > MAX_FIELD_LEN || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "proxy {what} must be 1 to {MAX_FIELD_LEN} ASCII letters and digits (got {} bytes)",
                    v.len()
                ));
            }
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!("proxy secret must be at least {MIN_SECRET_LEN} characters (got {})", secret.len()));
        }
        let basic = base64(format!("{user}:{secret}").as_bytes());
        Ok(Credentials { user: user.to_string(), secret: secret.to_string(), basic })
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether the `Proxy-Authorization` values of a request carry these credentials: exactly
    /// one value, scheme `Basic` (any case), the token equal to ours.
    pub fn http_accepts(&self, values: &[&[u8]]) -> bool {
        let [value] = values else { return false };
        let value = value.trim_ascii();
        let Some(split) = value.iter().position(|b| *b == b' ') else { return false };
        let (scheme, token) = value.split_at(split);
        scheme.eq_ignore_ascii_case(b"basic") && same(token.trim_ascii(), self.basic.as_bytes())
    }

    /// Whether an RFC 1929 request carries these credentials.
    pub fn socks_accepts(&self, request: &SocksUserPassword) -> bool {
        // Both compared whatever the first says, so the time taken does not tell which was wrong.
        let user_ok = same(&request.user, self.user.as_bytes());
        let secret_ok = same(&request.password, self.secret.as_bytes());
        user_ok & secret_ok
    }
}

/// Equality whose time depends on the lengths only, not on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 with padding (RFC 4648 section 4), what `Basic` uses.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An RFC 1929 username/password request.
#[derive(Debug, PartialEq, Eq)]
pub struct SocksUserPassword {
    pub user: Vec<u8>,
    pub password: Vec<u8>,
}

/// Parses an RFC 1929 request from the start of `buf` (at most 513 bytes).
pub fn parse_socks_user_password(buf: &[u8]) -> crate::socks::Parsed<SocksUserPassword> {
    use crate::socks::Parsed;
    let [version, ulen, ..] = *buf else { return Parsed::NeedMore };
    if version != SOCKS_AUTH_VERSION {
        return Parsed::Invalid(None, format!("SOCKS username/password version {version} (only 1 is served)"));
    }
    let user_end = 2 + usize::from(ulen);
    let Some(user) = buf.get(2..user_end) else { return Parsed::NeedMore };
    let Some(&plen) = buf.get(user_end) else { return Parsed::NeedMore };
    let end = user_end + 1 + usize::from(plen);
    let Some(password) = buf.get(user_end + 1..end) else { return Parsed::NeedMore };
    Parsed::Done(SocksUserPassword { user: user.to_vec(), password: password.to_vec() }, end)
}

/// The RFC 1929 reply: status 0 is success, anything else failure (the server then closes).
pub fn socks_auth_reply(ok: bool) -> [u8; 2] {
    [SOCKS_AUTH_VERSION, if ok { 0 } else { 1 }]
}

/// `407 Proxy Authentication Required` with a `Basic` challenge and [`REFUSED_LINE`] as its body.
pub fn proxy_auth_required_response() -> Vec<u8> {
    let body = format!("{REFUSED_LINE}\n");
    format!(
        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"palisade\"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The one line recorded (and sent in a 407's body) when a client did not authenticate.
pub const REFUSED_LINE: &str =
    "palisade: this proxy serves one sandbox; the client did not present its credentials (use the proxy URL from the command's environment, user and secret included)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socks::Parsed;

    fn creds() -> Credentials {
        Credentials::new("palisade", "0123456789abcdefXYZ").unwrap()
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        // What curl sends for `-x http://Aladdin:open@...` style credentials (RFC 7617's example).
        assert_eq!(base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn bad_credentials_are_refused_with_one_line() {
        for (user, secret) in [
            ("", "0123456789abcdef"),
            ("palisade", ""),
            ("pali:sade", "0123456789abcdef"),
            ("palisade", "0123456789abcde@"),
            ("palisade", "0123456789abcde\u{e9}"),
            ("palisade", "short"),
        ] {
            let e = Credentials::new(user, secret).unwrap_err();
            assert!(e.starts_with("proxy ") && !e.contains('\n'), "{e}");
            assert!(!e.contains(secret) || secret.is_empty(), "the secret is not echoed: {e}");
        }
        assert!(Credentials::new(&"u".repeat(256), "0123456789abcdef").is_err());
        assert!(Credentials::new("u", &"s".repeat(255)).is_ok());
        assert!(!format!("{:?}", creds()).contains("0123456789"));
    }

    #[test]
    fn http_header_checks() {
        let c = creds();
        let good = format!("Basic {}", base64(b"palisade:0123456789abcdefXYZ"));
        assert!(c.http_accepts(&[good.as_bytes()]));
        let lower = good.replacen("Basic", "basic", 1);
        assert!(c.http_accepts(&[lower.as_bytes()]));
        let spaced = format!("  {good}  ");
        assert!(c.http_accepts(&[spaced.as_bytes()]));
        let wrong_secret = format!("Basic {}", base64(b"palisade:0123456789abcdefXYz"));
        let wrong_user = format!("Basic {}", base64(b"Palisade:0123456789abcdefXYZ"));
        let bearer = format!("Bearer {}", base64(b"palisade:0123456789abcdefXYZ"));
        let no_pad = good.trim_end_matches('=').to_string();
        for bad in [wrong_secret.as_str(), wrong_user.as_str(), bearer.as_str(), "Basic", "", "Basic "] {
            assert!(!c.http_accepts(&[bad.as_bytes()]), "{bad:?}");
        }
        if no_pad != good {
            assert!(!c.http_accepts(&[no_pad.as_bytes()]));
        }
        // No header, or two (even two good ones: a request is ambiguous then).
        assert!(!c.http_accepts(&[]));
        assert!(!c.http_accepts(&[good.as_bytes(), good.as_bytes()]));
    }

    #[test]
    fn socks_user_password_parsing() {
        let req = [&[1u8, 8][..], b"palisade", &[3], b"abc"].concat();
        for cut in 0..req.len() {
            assert_eq!(parse_socks_user_password(&req[..cut]), Parsed::NeedMore, "{cut}");
        }
        let mut longer = req.clone();
        longer.extend_from_slice(&[5, 1, 0]);
        assert_eq!(
            parse_socks_user_password(&longer),
            Parsed::Done(SocksUserPassword { user: b"palisade".to_vec(), password: b"abc".to_vec() }, req.len())
        );
        assert!(matches!(parse_socks_user_password(&[5, 0, 0]), Parsed::Invalid(None, _)));
        assert_eq!(
            parse_socks_user_password(&[1, 0, 0]),
            Parsed::Done(SocksUserPassword { user: vec![], password: vec![] }, 3)
        );
    }

    #[test]
    fn socks_credentials_checks() {
        let c = creds();
        let ok = SocksUserPassword { user: b"palisade".to_vec(), password: b"0123456789abcdefXYZ".to_vec() };
        assert!(c.socks_accepts(&ok));
        for (user, password) in [
            (&b"palisade"[..], &b"0123456789abcdefXY"[..]),
            (b"palisade", b"0123456789abcdefXYZ0"),
            (b"palisadE", b"0123456789abcdefXYZ"),
            (b"", b""),
        ] {
            assert!(!c.socks_accepts(&SocksUserPassword { user: user.to_vec(), password: password.to_vec() }));
        }
        assert_eq!(socks_auth_reply(true), [1, 0]);
        assert_eq!(socks_auth_reply(false), [1, 1]);
    }
}
