//! Pattern syntax and matching: which relative paths a pattern protects (no filesystem).

use std::path::{Component, Path, PathBuf};

use super::FILE_NAMES;

/// Checks a pattern's syntax (see the module documentation); the error says what is wrong.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    split_pattern(pattern).map(|_| ())
}

/// A pattern's components, and whether it ends with `/`.
pub(super) fn split_pattern(pattern: &str) -> Result<(Vec<&str>, bool), String> {
    if pattern.is_empty() {
        return Err("is empty".into());
    }
    if pattern.contains('\\') {
        return Err("use `/` as the separator".into());
    }
    if pattern.starts_with('/') || pattern.as_bytes().get(1) == Some(&b':') {
        return Err("must be relative to the writable root".into());
    }
    let trailing_slash = pattern.ends_with('/');
    let body = pattern.strip_suffix('/').unwrap_or(pattern);
    let mut comps = Vec::new();
    for c in body.split('/') {
        match c {
            "" => return Err("has an empty component".into()),
            "." | ".." => return Err(format!("may not contain a `{c}` component")),
            _ if c.contains('*') && c != "*" => {
                return Err("`*` must be a whole component".into());
            }
            _ if c.contains('\0') => return Err("contains a NUL character".into()),
            _ => comps.push(c),
        }
    }
    Ok((comps, trailing_slash))
}

/// Whether a pattern's final component names a file, which decides whether a placeholder for a
/// missing final component is a file or a directory.
///
/// The rule: a pattern ending in `/` is a directory; otherwise its final component is a file
/// when it has an extension (a `.` after its first character: `.mcp.json`, `config.worktree`,
/// `settings.json`) or is one of [`FILE_NAMES`] (`config`, `attributes`, `.envrc`). Everything
/// else (`.git/hooks`, `.vscode`, `.palisade`, `*`) is a directory.
pub fn final_component_is_file(pattern: &str) -> bool {
    if pattern.ends_with('/') {
        return false;
    }
    let last = pattern.rsplit('/').next().unwrap_or(pattern);
    last != "*" && (last.char_indices().any(|(i, c)| i > 0 && c == '.') || FILE_NAMES.contains(&last))
}

/// The form in which Windows compares a path component: without an alternate data stream
/// suffix (`config:stream` and `config::$DATA` are the file `config`), without the trailing dots
/// and spaces Windows ignores (`config. ` is `config`), and lowercased.
///
/// `.` and `..` normalize to the empty string; callers handle them before normalizing.
pub fn normalize_windows_component(component: &str) -> String {
    let base = match component.find(':') {
        Some(i) => &component[..i],
        None => component,
    };
    base.trim_end_matches(['.', ' ']).chars().flat_map(char::to_lowercase).collect()
}

/// The components of a relative path, lexically normalized (`.` dropped, `..` removes the
/// previous component). `None` if the path climbs above its start.
fn rel_components(rel: &Path, case_insensitive: bool) -> Option<Vec<String>> {
    let text = rel.to_string_lossy();
    let mut out: Vec<String> = Vec::new();
    let separators: &[char] = if case_insensitive { &['/', '\\'] } else { &['/'] };
    for raw in text.split(separators) {
        if case_insensitive {
            // Windows drops trailing spaces before it looks at `.` and `..`.
            if raw.trim_end_matches(' ') == ".." {
                out.pop()?;
                continue;
            }
            let n = normalize_windows_component(raw);
            if !n.is_empty() {
                out.push(n);
            }
        } else {
            match raw {
                "" | "." => {}
                ".." => {
                    out.pop()?;
                }
                _ => out.push(raw.to_string()),
            }
        }
    }
    Some(out)
}

/// Whether `rel` (relative to a writable root) is the protected path `pattern` or lies beneath
/// it. `case_insensitive` selects Windows semantics: `\` is a separator too, and components are
/// compared in their [`normalize_windows_component`] form. An invalid pattern matches nothing
/// (configuration loading rejects invalid patterns); a path that climbs out of the root with
/// `..` matches nothing.
pub fn matches(pattern: &str, rel: &Path, case_insensitive: bool) -> bool {
    let Ok((pattern, _)) = split_pattern(pattern) else {
        return false;
    };
    let Some(rel) = rel_components(rel, case_insensitive) else {
        return false;
    };
    rel.len() >= pattern.len()
        && pattern
            .iter()
            .zip(&rel)
            .all(|(p, r)| *p == "*" || if case_insensitive { normalize_windows_component(p) == *r } else { p == r })
}

/// Whether `rel` matches any of the patterns (see [`matches()`]).
pub fn is_protected(patterns: &[String], rel: &Path, case_insensitive: bool) -> bool {
    patterns.iter().any(|p| matches(p, rel, case_insensitive))
}

/// Removes `.` components and resolves `..` against the previous component, without looking at
/// the filesystem (`..` at the root stays at the root; a leading `..` of a relative path stays).
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

/// Whether `path` is `root` or lies beneath it, comparing lexically normalized components (no
/// filesystem access, case-sensitive).
pub fn within(path: &Path, root: &Path) -> bool {
    normalize_lexically(path).starts_with(normalize_lexically(root))
}
