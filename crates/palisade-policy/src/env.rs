//! Which environment variables reach the command: inherited, minus names that look like secrets.

use crate::EnvPolicy;
use std::ffi::{OsStr, OsString};

/// Name patterns (case-insensitive, `*` matches any run of characters) that mark a secret.
pub const DEFAULT_SECRET_PATTERNS: &[&str] =
    &["*KEY*", "*SECRET*", "*TOKEN*", "*PASSWORD*", "*CREDENTIAL*", "*PASSWD*", "*PASSPHRASE*", "*_PAT", "*COOKIE*"];

impl EnvPolicy {
    /// Whether a variable of this name is withheld from the command.
    pub fn is_withheld(&self, name: &OsStr) -> bool {
        let name = name.to_string_lossy();
        if self.keep.iter().any(|k| *k == name) {
            return false;
        }
        let upper = name.to_ascii_uppercase();
        self.secret_patterns.iter().any(|p| glob_match(&p.to_ascii_uppercase(), &upper))
    }

    /// The variables that pass, in the order given.
    pub fn filter<I>(&self, vars: I) -> Vec<(OsString, OsString)>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        vars.into_iter().filter(|(k, _)| !self.is_withheld(k)).collect()
    }
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
        for name in ["AWS_SECRET_ACCESS_KEY", "github_token", "DB_Password", "MY_CREDENTIALS", "apikey", "GITHUB_PAT", "PGPASSWD", "GPG_PASSPHRASE", "SESSION_COOKIE"] {
            assert!(p.is_withheld(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "HOME", "TERM", "LANG", "CARGO_HOME", "PATCH_LEVEL", "PYTHONPATH"] {
            assert!(!p.is_withheld(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn keep_lets_a_named_secret_through() {
        let p = policy(&["GITHUB_TOKEN"]);
        assert!(!p.is_withheld(OsStr::new("GITHUB_TOKEN")));
        assert!(p.is_withheld(OsStr::new("GITLAB_TOKEN")));
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
