//! The keys a git config file sets, read the way git's own parser reads them, and whether a
//! repository config holds only what git itself writes when it creates a repository
//! (`git init`, `git clone`, `git submodule add`).
//!
//! Used by the host-side check on nested repositories a command registered as gitlinks: the
//! host's git enters them (`git status` recurses into submodules), and any other key may run
//! a program there (`core.fsmonitor`, `core.hooksPath`, filters, `include.path`, ...). What
//! cannot be parsed is treated as not allowed: the check then quarantines, which deletes
//! nothing.

/// One key as git names it: section and key lowercased, the subsection as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub section: String,
    pub subsection: Option<String>,
    pub name: String,
    pub value: Option<String>,
}

impl Key {
    pub fn dotted(&self) -> String {
        match &self.subsection {
            Some(s) => format!("{}.{}.{}", self.section, s, self.name),
            None => format!("{}.{}", self.section, self.name),
        }
    }
}

/// Keys git writes into a new repository's config, as (section, has subsection, name), and a few
/// harmless ones users commonly set.
const ALLOWED: &[(&str, bool, &str)] = &[
    ("core", false, "repositoryformatversion"),
    ("core", false, "filemode"),
    ("core", false, "bare"),
    ("core", false, "logallrefupdates"),
    ("core", false, "worktree"),
    ("core", false, "ignorecase"),
    ("core", false, "precomposeunicode"),
    ("core", false, "symlinks"),
    ("core", false, "sparsecheckout"),
    ("remote", true, "url"),
    ("remote", true, "fetch"),
    ("remote", true, "promisor"),
    ("remote", true, "partialclonefilter"),
    ("branch", true, "remote"),
    ("branch", true, "merge"),
    ("submodule", true, "url"),
    ("submodule", true, "active"),
    ("extensions", false, "objectformat"),
    ("extensions", false, "refstorage"),
    ("extensions", false, "worktreeconfig"),
    ("extensions", false, "partialclone"),
    ("extensions", false, "noop"),
    // Not written by git, but set by users in their own nested repositories so often that a
    // quarantine for them would be noise; none of them can start a program.
    ("user", false, "name"),
    ("user", false, "email"),
    ("pull", false, "rebase"),
    ("pull", false, "ff"),
    ("push", false, "default"),
    ("fetch", false, "prune"),
    ("color", false, "ui"),
    ("core", false, "autocrlf"),
    ("core", false, "eol"),
    ("init", false, "defaultbranch"),
];

/// Whether git itself writes this key when it makes a repository, or it is one of the few
/// harmless ones users set (anything else, including `include.path` and `includeIf.*`, is not
/// allowed).
pub fn is_allowed(key: &Key) -> bool {
    ALLOWED.iter().any(|(s, sub, n)| key.section == *s && key.subsection.is_some() == *sub && key.name == *n)
}

/// The keys of a config file that are not allowed (empty: only git's own), or an error when the
/// text is not a config git would read the same way.
pub fn disallowed_keys(text: &[u8]) -> Result<Vec<String>, String> {
    Ok(parse(text)?.into_iter().filter(|k| !is_allowed(k)).map(|k| k.dotted()).collect())
}

/// The value of `section.name` (no subsection), the last one set.
pub fn value(keys: &[Key], section: &str, name: &str) -> Option<String> {
    keys.iter()
        .rev()
        .find(|k| k.section == section && k.subsection.is_none() && k.name == name)
        .map(|k| k.value.clone().unwrap_or_else(|| "true".into()))
}

/// Parses a config file like git's `config.c`: sections `[s]`, `[s "sub"]` and the old
/// `[s.sub]`, `name = value` lines (or a bare `name`, meaning true), `#`/`;` comments, quoted
/// values with escapes, and backslash-newline continuations.
pub fn parse(text: &[u8]) -> Result<Vec<Key>, String> {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let mut p = Parser { b: text, pos: 0 };
    let mut keys = Vec::new();
    let mut section: Option<(String, Option<String>)> = None;
    let mut comment = false;
    while let Some(c) = p.next() {
        if c == b'\n' {
            comment = false;
            continue;
        }
        if comment || c.is_ascii_whitespace() {
            continue;
        }
        if c == b'#' || c == b';' {
            comment = true;
            continue;
        }
        if c == b'[' {
            section = Some(p.section_header()?);
            continue;
        }
        if !c.is_ascii_alphabetic() {
            return Err(format!("unexpected character {:?} in the config", c as char));
        }
        let (sec, sub) = section.clone().ok_or("a config key comes before any section")?;
        let mut name = String::from((c as char).to_ascii_lowercase());
        loop {
            match p.peek() {
                Some(c) if c.is_ascii_alphanumeric() || c == b'-' => {
                    p.pos += 1;
                    name.push((c as char).to_ascii_lowercase());
                }
                _ => break,
            }
        }
        while matches!(p.peek(), Some(b' ' | b'\t')) {
            p.pos += 1;
        }
        let value = match p.peek() {
            None | Some(b'\n') => None,
            Some(b'#' | b';') => {
                comment = true;
                None
            }
            Some(b'=') => {
                p.pos += 1;
                Some(p.value()?)
            }
            Some(c) => return Err(format!("unexpected character {:?} after config key {name}", c as char)),
        };
        keys.push(Key { section: sec, subsection: sub, name, value });
    }
    Ok(keys)
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    /// The next byte, with `\r\n` read as `\n` (as git does).
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.pos)?;
        self.pos += 1;
        if c == b'\r' && self.b.get(self.pos) == Some(&b'\n') {
            self.pos += 1;
            return Some(b'\n');
        }
        Some(c)
    }
    fn peek(&self) -> Option<u8> {
        let c = *self.b.get(self.pos)?;
        if c == b'\r' && self.b.get(self.pos + 1) == Some(&b'\n') {
            return Some(b'\n');
        }
        Some(c)
    }

    fn section_header(&mut self) -> Result<(String, Option<String>), String> {
        let mut name = String::new();
        loop {
            let c = self.next().ok_or("a config section header is not closed")?;
            match c {
                b']' => {
                    if name.is_empty() {
                        return Err("an empty config section name".into());
                    }
                    // The old `[section.sub]` form: everything lowercased by git too.
                    return Ok(match name.split_once('.') {
                        Some((s, sub)) => (s.to_string(), Some(sub.to_string())),
                        None => (name, None),
                    });
                }
                b' ' | b'\t' => return self.subsection(name),
                c if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' => name.push((c as char).to_ascii_lowercase()),
                _ => return Err(format!("unexpected character {:?} in a config section name", c as char)),
            }
        }
    }

    /// `[section "sub"]` after the section name: the quoted subsection, then `]`.
    fn subsection(&mut self, section: String) -> Result<(String, Option<String>), String> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        if self.next() != Some(b'"') {
            return Err("a config subsection is not quoted".into());
        }
        let mut sub = Vec::new();
        loop {
            match self.next() {
                None | Some(b'\n') => return Err("a config subsection is not closed".into()),
                Some(b'"') => break,
                Some(b'\\') => match self.next() {
                    None | Some(b'\n') => return Err("a config subsection is not closed".into()),
                    Some(c) => sub.push(c),
                },
                Some(c) => sub.push(c),
            }
        }
        if self.next() != Some(b']') {
            return Err("a config section header is not closed".into());
        }
        if section.is_empty() || section.contains('.') {
            return Err("a config section name is malformed".into());
        }
        Ok((section, Some(String::from_utf8_lossy(&sub).into_owned())))
    }

    /// A value up to the end of its line: quotes, escapes, comments, continuations.
    fn value(&mut self) -> Result<String, String> {
        let mut out = Vec::new();
        let mut quoted = false;
        let mut comment = false;
        let mut pending_space = 0usize;
        loop {
            let Some(c) = self.next() else {
                if quoted {
                    return Err("a config value's quote is not closed".into());
                }
                break;
            };
            if c == b'\n' {
                if quoted {
                    return Err("a config value's quote is not closed".into());
                }
                break;
            }
            if comment {
                continue;
            }
            if c.is_ascii_whitespace() && !quoted {
                if !out.is_empty() {
                    pending_space += 1;
                }
                continue;
            }
            if !quoted && (c == b'#' || c == b';') {
                comment = true;
                continue;
            }
            out.resize(out.len() + pending_space, b' ');
            pending_space = 0;
            match c {
                b'\\' => match self.next() {
                    Some(b'\n') => continue,
                    Some(b't') => out.push(b'\t'),
                    Some(b'b') => out.push(0x08),
                    Some(b'n') => out.push(b'\n'),
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'"') => out.push(b'"'),
                    _ => return Err("a config value has an invalid escape".into()),
                },
                b'"' => quoted = !quoted,
                c => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_git_init_and_clone_write_is_allowed() {
        let init =
            b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n";
        assert_eq!(disallowed_keys(init).unwrap(), Vec::<String>::new());
        let clone = b"[core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n\
            \tworktree = ../../../sub\n[remote \"origin\"]\n\turl = /src/repo\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n\
            [branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n[extensions]\n\tobjectformat = sha256\n";
        assert_eq!(disallowed_keys(clone).unwrap(), Vec::<String>::new());
        let user = b"[user]\n\tname = A\n\temail = a@b\n[pull]\n\trebase = true\n";
        assert_eq!(disallowed_keys(user).unwrap(), Vec::<String>::new());
        // Keys that start programs stay out, even in the sections some harmless keys share.
        let code =
            b"[core]\n\teditor = x\n\tpager = x\n\tsshCommand = x\n[user]\n\tsigningkey = k\n[alias]\n\tst = !sh\n";
        assert_eq!(disallowed_keys(code).unwrap().len(), 5);
        let keys = parse(clone).unwrap();
        assert_eq!(value(&keys, "extensions", "objectformat").as_deref(), Some("sha256"));
        assert_eq!(value(&keys, "core", "worktree").as_deref(), Some("../../../sub"));
    }

    #[test]
    fn keys_that_run_programs_are_not_allowed() {
        for (text, key) in [
            (&b"[core]\n\tfsmonitor = touch /tmp/x\n"[..], "core.fsmonitor"),
            (b"[CORE]\n  FSMonitor=x", "core.fsmonitor"),
            (b"[core]\nhooksPath = /tmp", "core.hookspath"),
            (b"[include]\npath = ../evil", "include.path"),
            (b"[includeIf \"gitdir:/\"]\npath = ../evil", "includeif.gitdir:/.path"),
            (b"[filter \"x\"]\nclean = sh -c id", "filter.x.clean"),
            (b"[core.sub]\nfsmonitor = x", "core.sub.fsmonitor"),
            (b"[core]\nfsmonitor", "core.fsmonitor"),
            (b"[core]\r\nbare = false\r\nfsmonitor = x\r\n", "core.fsmonitor"),
            (b"[core]\nbare = \"a\\\n\" \nfsmonitor = x", "core.fsmonitor"),
            (b"[core] fsmonitor = x", "core.fsmonitor"),
            (b"# c\n[core] ; c\n  fsmonitor = x # c", "core.fsmonitor"),
            // A subsection on an allowed name does not make a section-level key allowed.
            (b"[core \"x\"]\nbare = true", "core.x.bare"),
        ] {
            let found = disallowed_keys(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(found, vec![key.to_string()], "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn a_continuation_does_not_hide_a_key() {
        // `x = a\` continues the value onto the next line: git reads no key there.
        let keys = parse(b"[remote \"o\"]\nurl = a\\\nfsmonitor = b\n").unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].value.as_deref(), Some("afsmonitor = b"));
        // A backslash in a comment does not continue.
        let keys = parse(b"[core]\nbare = false # \\\nfsmonitor = b\n").unwrap();
        assert_eq!(keys.len(), 2);
        // A quoted `#` is not a comment.
        let keys = parse(b"[remote \"o\"]\nurl = \"a#b\"\n").unwrap();
        assert_eq!(keys[0].value.as_deref(), Some("a#b"));
    }

    #[test]
    fn malformed_text_is_an_error() {
        for text in [
            &b"fsmonitor = x"[..],
            b"[core\nbare = 1",
            b"[core]\n!x = 1",
            b"[core]\nx = \"open",
            b"[a \"b]\n",
            b"[core]\nx y",
        ] {
            assert!(parse(text).is_err(), "{}", String::from_utf8_lossy(text));
        }
    }
}
