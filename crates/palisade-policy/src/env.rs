//! Which environment variables reach the command: inherited, minus those that look like secrets,
//! by name (the patterns below) or by value ([`secret_in_value`]). A name the user keeps
//! explicitly (`env.keep`, `--keep-env`) passes whatever its value looks like.

use crate::EnvPolicy;
use std::ffi::{OsStr, OsString};

/// Name patterns (case-insensitive, `*` matches any run of characters) that mark a secret.
pub const DEFAULT_SECRET_PATTERNS: &[&str] = &[
    "*KEY*",
    "*SECRET*",
    "*TOKEN*",
    "*PASSWORD*",
    "*CREDENTIAL*",
    "*PASSWD*",
    "*PASSPHRASE*",
    "*_PAT",
    "*COOKIE*",
    // MYSQL_PWD (PWD and OLDPWD, the working directories, do not match).
    "*_PWD",
    // npm's `_auth` (NPM_CONFIG__AUTH) and similar; SSH_AUTH_SOCK and GIT_AUTHOR_* do not match.
    "*_AUTH",
    // CI_JOB_JWT, CI_JOB_JWT_V2, ...
    "*JWT*",
    // SENTRY_DSN and friends carry the project key as the URL's user name.
    "*_DSN",
    // Password managers' unlocked sessions (Bitwarden, 1Password).
    "BW_SESSION",
    "OP_SESSION_*",
];

impl EnvPolicy {
    /// Whether this variable is withheld from the command: its name is not kept explicitly and
    /// either matches a secret pattern or its value looks like a secret.
    pub fn is_withheld(&self, name: &OsStr, value: &OsStr) -> bool {
        let name = name.to_string_lossy();
        if self.keep.iter().any(|k| *k == name) {
            return false;
        }
        let upper = name.to_ascii_uppercase();
        self.secret_patterns.iter().any(|p| glob_match(&p.to_ascii_uppercase(), &upper))
            || secret_in_value(&value.to_string_lossy()).is_some()
    }

    /// The variables that pass, in the order given.
    pub fn filter<I>(&self, vars: I) -> Vec<(OsString, OsString)>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        vars.into_iter().filter(|(k, v)| !self.is_withheld(k, v)).collect()
    }
}

/// What kind of secret a value carries, if any: a URL with a password in it
/// (`scheme://user:pass@host`, whatever the variable's name), or a credential of a well-known
/// shape (GitHub, GitLab, Slack, OpenAI/Anthropic, Stripe, npm, PyPI, Hugging Face, Google API
/// keys, AWS access key ids and secret keys, JSON web tokens, PEM private keys).
///
/// Kept narrow on purpose: ordinary paths, `PATH`-like lists and URLs without a password pass.
pub fn secret_in_value(value: &str) -> Option<&'static str> {
    if url_with_password(value) {
        return Some("a URL with a password");
    }
    if value.contains("PRIVATE KEY-----") {
        return Some("a PEM private key");
    }
    if let Some(kind) = known_token(value) {
        return Some(kind);
    }
    if contains_jwt(value) {
        return Some("a JSON web token");
    }
    if looks_like_aws_secret_key(value) {
        return Some("an AWS secret access key");
    }
    None
}

/// Any `scheme://user:password@host` in the value (several URLs may be listed in one value).
/// The authority ends at the first `/`, `?`, `#` or white space, as in RFC 3986; the user
/// information is what comes before its last `@`; an empty password (`user:@host`) is none.
fn url_with_password(value: &str) -> bool {
    let mut rest = value;
    while let Some(i) = rest.find("://") {
        let scheme_ok = rest[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric());
        let after = &rest[i + 3..];
        let end = after.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(after.len());
        let authority = &after[..end];
        if let (true, Some(at)) = (scheme_ok, authority.rfind('@')) {
            if let Some((_, password)) = authority[..at].split_once(':') {
                if !password.is_empty() {
                    return true;
                }
            }
        }
        rest = after;
    }
    false
}

/// Well-known credential prefixes: (prefix, allowed characters after it, minimum length after it).
const TOKEN_SHAPES: &[(&str, Chars, usize, &str)] = &[
    ("ghp_", Chars::Alnum, 36, "a GitHub token"),
    ("gho_", Chars::Alnum, 36, "a GitHub token"),
    ("ghu_", Chars::Alnum, 36, "a GitHub token"),
    ("ghs_", Chars::Alnum, 36, "a GitHub token"),
    ("ghr_", Chars::Alnum, 36, "a GitHub token"),
    ("github_pat_", Chars::Word, 22, "a GitHub token"),
    ("glpat-", Chars::WordDash, 20, "a GitLab token"),
    ("glptt-", Chars::WordDash, 20, "a GitLab token"),
    ("xoxb-", Chars::WordDash, 10, "a Slack token"),
    ("xoxp-", Chars::WordDash, 10, "a Slack token"),
    ("xoxa-", Chars::WordDash, 10, "a Slack token"),
    ("xoxr-", Chars::WordDash, 10, "a Slack token"),
    ("xoxs-", Chars::WordDash, 10, "a Slack token"),
    ("xapp-", Chars::WordDash, 10, "a Slack token"),
    ("sk-", Chars::WordDash, 20, "an API key (sk-...)"),
    ("sk_live_", Chars::Alnum, 16, "a Stripe key"),
    ("rk_live_", Chars::Alnum, 16, "a Stripe key"),
    ("npm_", Chars::Alnum, 36, "an npm token"),
    ("pypi-", Chars::WordDash, 50, "a PyPI token"),
    ("hf_", Chars::Alnum, 30, "a Hugging Face token"),
    ("AIza", Chars::WordDash, 35, "a Google API key"),
    ("AKIA", Chars::UpperDigit, 16, "an AWS access key id"),
    ("ASIA", Chars::UpperDigit, 16, "an AWS access key id"),
];

#[derive(Clone, Copy)]
enum Chars {
    Alnum,
    UpperDigit,
    /// Letters, digits, `_`.
    Word,
    /// Letters, digits, `_`, `-`.
    WordDash,
}

impl Chars {
    fn allows(self, c: u8) -> bool {
        match self {
            Chars::Alnum => c.is_ascii_alphanumeric(),
            Chars::UpperDigit => c.is_ascii_uppercase() || c.is_ascii_digit(),
            Chars::Word => c.is_ascii_alphanumeric() || c == b'_',
            Chars::WordDash => c.is_ascii_alphanumeric() || c == b'_' || c == b'-',
        }
    }
}

/// A token prefix at the start of a word (not inside one, kebab-case included: `desk-...` and
/// `--mask-sk-...` are no `sk-` key)
/// followed by enough characters of the token's alphabet.
fn known_token(value: &str) -> Option<&'static str> {
    let b = value.as_bytes();
    for &(prefix, chars, min, kind) in TOKEN_SHAPES {
        let mut from = 0;
        while let Some(i) = value[from..].find(prefix).map(|i| i + from) {
            let at_word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b'-'));
            let tail = b[i + prefix.len()..].iter().take_while(|&&c| chars.allows(c)).count();
            if at_word_start && tail >= min {
                return Some(kind);
            }
            from = i + prefix.len();
        }
    }
    None
}

/// `eyJ<header>.eyJ<payload>.`: a JSON web token (its first two parts are base64url JSON).
fn contains_jwt(value: &str) -> bool {
    let b64url = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let mut from = 0;
    while let Some(i) = value[from..].find("eyJ").map(|i| i + from) {
        let b = &value.as_bytes()[i..];
        let header = b.iter().take_while(|&&c| b64url(c)).count();
        if header >= 10 && b.get(header) == Some(&b'.') {
            let rest = &b[header + 1..];
            let payload = rest.iter().take_while(|&&c| b64url(c)).count();
            if rest.starts_with(b"eyJ") && payload >= 10 && rest.get(payload) == Some(&b'.') {
                return true;
            }
        }
        from = i + 3;
    }
    false
}

/// A whole value of exactly 40 base64 characters mixing upper case, lower case and digits,
/// as AWS secret access keys are (a hex commit id has no upper case; a path starts with `/`
/// or has many of them).
fn looks_like_aws_secret_key(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 40
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'/' || c == b'+')
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_digit)
        && b[0] != b'/'
        && b.iter().filter(|&&c| c == b'/').count() < 3
}

/// A `*`-only glob match (no `?`, no classes), iterative so it cannot blow the stack.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(keep: &[&str]) -> EnvPolicy {
        EnvPolicy {
            secret_patterns: DEFAULT_SECRET_PATTERNS.iter().map(|s| s.to_string()).collect(),
            keep: keep.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn secret_names_are_withheld_case_insensitively() {
        let p = policy(&[]);
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "github_token",
            "DB_Password",
            "MY_CREDENTIALS",
            "apikey",
            "GITHUB_PAT",
            "PGPASSWD",
            "GPG_PASSPHRASE",
            "SESSION_COOKIE",
        ] {
            assert!(p.is_withheld(OsStr::new(name), OsStr::new("x")), "{name}");
        }
        for name in ["PATH", "HOME", "TERM", "LANG", "CARGO_HOME", "PATCH_LEVEL", "PYTHONPATH"] {
            assert!(!p.is_withheld(OsStr::new(name), OsStr::new("x")), "{name}");
        }
    }

    #[test]
    fn keep_lets_a_named_secret_through() {
        let p = policy(&["GITHUB_TOKEN"]);
        assert!(!p.is_withheld(OsStr::new("GITHUB_TOKEN"), OsStr::new("x")));
        assert!(p.is_withheld(OsStr::new("GITLAB_TOKEN"), OsStr::new("x")));
    }

    #[test]
    fn reported_secret_names_are_withheld_whatever_their_value() {
        let p = policy(&[]);
        for name in [
            "MYSQL_PWD",
            "BW_SESSION",
            "OP_SESSION_my",
            "OP_SESSION_team_x",
            "NPM_CONFIG__AUTH",
            "npm_config__auth",
            "npm_config_//registry.npmjs.org/:_authToken",
            "NPM_CONFIG_//npm.example.com/:_auth",
            "SENTRY_DSN",
            "CI_JOB_JWT",
            "CI_JOB_JWT_V2",
        ] {
            assert!(p.is_withheld(OsStr::new(name), OsStr::new("plain")), "{name}");
        }
        for name in [
            "PWD",
            "OLDPWD",
            "SSH_AUTH_SOCK",
            "GIT_AUTHOR_NAME",
            "DESKTOP_SESSION",
            "XDG_SESSION_TYPE",
            "DBUS_SESSION_BUS_ADDRESS",
        ] {
            assert!(!p.is_withheld(OsStr::new(name), OsStr::new("plain")), "{name}");
        }
    }

    #[test]
    fn urls_with_a_password_are_withheld_whatever_their_name() {
        let p = policy(&[]);
        for (name, value) in [
            ("DATABASE_URL", "postgres://app:hunter2@db.example.com:5432/app"),
            ("PIP_INDEX_URL", "https://user:s3cret@pypi.example.com/simple"),
            ("PIP_EXTRA_INDEX_URL", "https://pypi.org/simple https://ci:pw@mirror.example.com/simple"),
            ("REDIS_URL", "redis://:onlypass@localhost:6379/0"),
            ("HTTPS_PROXY", "http://me:p%40ss@proxy:3128"),
            ("X", "mysql://root:pw@127.0.0.1"),
        ] {
            assert!(p.is_withheld(OsStr::new(name), OsStr::new(value)), "{name}={value}");
            assert_eq!(secret_in_value(value), Some("a URL with a password"), "{value}");
        }
        for value in [
            "postgres://localhost/db",
            "postgres://app@db.example.com/app",
            "https://pypi.org/simple",
            "ssh://git@github.com/org/repo.git",
            "https://example.com:8443/path?user=a@b.com",
            "https://example.com/a:b@c",
            "https://user:@host/",
            "/usr/local/bin:/usr/bin:/bin",
            "unix:path=/run/user/1000/bus",
        ] {
            assert_eq!(secret_in_value(value), None, "{value}");
            assert!(!p.is_withheld(OsStr::new("DATABASE_URL"), OsStr::new(value)), "{value}");
        }
    }

    #[test]
    fn well_known_token_shapes_are_withheld_whatever_their_name() {
        let p = policy(&[]);
        let a36 = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
        for value in [
            format!("ghp_{a36}"),
            format!("gho_{a36}"),
            format!("github_pat_11ABCDEFG0123456789_{a36}"),
            "glpat-xxxxXXXX1234yyyyZZZZ".to_string(),
            "xoxb-1234567890-abcdefghij".to_string(),
            "xoxp-1234567890-abcdefghij".to_string(),
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345".to_string(),
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz".to_string(),
            "sk_live_abcdefghijklmnop1234".to_string(),
            format!("npm_{a36}"),
            "AKIAIOSFODNN7EXAMPLE".to_string(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
            "AIzaSyA1234567890abcdefghijklmnopqrstuv".to_string(),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig".to_string(),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc".to_string(),
            format!("Authorization: token ghp_{a36}"),
        ] {
            assert!(secret_in_value(&value).is_some(), "{value}");
            assert!(p.is_withheld(OsStr::new("SOME_VAR"), OsStr::new(&value)), "{value}");
        }
        for value in [
            "/home/alice/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
            "/home/alice",
            "en_US.UTF-8",
            "xterm-256color",
            "/home/alice/desk-organizer-project-files",
            "task-runner-abcdefghijklmnopqrstuvwxyz",
            "ghp_short",
            "0123456789abcdef0123456789abcdef01234567",
            "src/Components/Button123/index.tsx/foo/b",
            "/usr/share/Foo/Bar/Baz123/abcdefghijklmn",
            "AKIA",
            "--mask-sk-abcdefghijklmnopqrstuvwxyz",
            "local/host:@/tmp/.ICE-unix/1234,unix/host:/tmp/.ICE-unix/1234",
            "rs=0:di=01;34:ln=01;36:mh=00:pi=40;33:so=01;35:do=01;35:bd=40;33;01:*.tar=01;31",
            "3f2a9c1e-7b4d-4e8a-9f1c-2d3e4f5a6b7c",
            "http://proxy.example.com:3128/",
            "git@github.com:org/repo.git",
        ] {
            assert_eq!(secret_in_value(value), None, "{value}");
        }
        assert!(!p.is_withheld(OsStr::new("PATH"), OsStr::new("/usr/bin:/bin")));
        assert!(!p.is_withheld(OsStr::new("HOME"), OsStr::new("/home/alice")));
        assert!(!p.is_withheld(OsStr::new("LANG"), OsStr::new("C.UTF-8")));
    }

    #[test]
    fn keep_wins_over_value_matching() {
        let p = policy(&["DATABASE_URL", "MY_CONF"]);
        assert!(!p.is_withheld(OsStr::new("DATABASE_URL"), OsStr::new("postgres://a:b@h/db")));
        assert!(!p.is_withheld(OsStr::new("MY_CONF"), OsStr::new("ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")));
        assert!(p.is_withheld(OsStr::new("OTHER_URL"), OsStr::new("postgres://a:b@h/db")));
        let kept: Vec<_> = p
            .filter([
                ("DATABASE_URL".into(), "postgres://a:b@h/db".into()),
                ("X_URL".into(), "postgres://a:b@h/db".into()),
                ("PATH".into(), "/bin".into()),
            ])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kept, [OsString::from("DATABASE_URL"), OsString::from("PATH")]);
    }

    #[test]
    fn glob_matches_stars_only() {
        assert!(glob_match("*KEY*", "KEY"));
        assert!(glob_match("A*B*C", "AxxBxxC"));
        assert!(!glob_match("A*B", "AxxC"));
        assert!(glob_match("**", ""));
        assert!(!glob_match("", "x"));
    }
}
