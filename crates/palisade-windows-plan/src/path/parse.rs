//! Turning text into a [`WinPath`]: the forms and normalization rules of the module
//! documentation of [`crate::path`] ([`WinPath::parse`]), and the exact form ([`WinPath::parse_exact`]).

use super::*;

/// Refuses a name that Windows would not store as written (see [`WinPath::parse_exact`]).
pub(super) fn check_exact_component(path: &str, comp: &str) -> Result<(), PathError> {
    let bad = |why| PathError::BadComponent { path: path.to_string(), component: comp.to_string(), why };
    if comp.is_empty() {
        return Err(bad("empty"));
    }
    if comp == "." || comp == ".." {
        return Err(bad("relative component"));
    }
    if comp.ends_with('.') || comp.ends_with(' ') {
        return Err(bad("ends with a dot or a space, which Windows strips"));
    }
    if let Some(c) = comp.chars().find(|c| (*c as u32) < 0x20 || "<>:\"|?*".contains(*c)) {
        return Err(if c == ':' {
            bad("a stream or drive separator")
        } else {
            bad("a character Windows does not allow")
        });
    }
    if comp.chars().count() > 255 {
        return Err(bad("longer than 255 characters"));
    }
    Ok(())
}

/// Splits a component into its name and its alternate-data-stream suffix, dropping the trailing
/// dots and spaces Windows ignores. `None` for `.`-like components that vanish.
fn split_component(raw: &str) -> (String, Option<String>) {
    let (name, stream) = match raw.find(':') {
        Some(i) => (&raw[..i], Some(raw[i + 1..].to_string())),
        None => (raw, None),
    };
    (name.trim_end_matches(['.', ' ']).to_string(), stream)
}

impl WinPath {
    /// Parses and normalizes an absolute Windows path (see the module documentation).
    pub fn parse(text: &str) -> Result<WinPath, PathError> {
        let original = text;
        if text.is_empty() {
            return Err(PathError::Empty(original.into()));
        }
        if text.contains('\0') {
            return Err(PathError::InvalidChar { path: original.into(), component: text.into(), ch: '\0' });
        }
        let s = text.replace('/', "\\");

        // Strip the namespace prefixes; `verbatim_or_device` is the part after `\\?\`, `\??\`
        // or `\\.\`.
        let rest: &str;
        let prefix: Prefix;
        let after_ns = s
            .strip_prefix("\\\\?\\")
            .or_else(|| s.strip_prefix("\\??\\"))
            .map(|r| (r, false))
            .or_else(|| s.strip_prefix("\\\\.\\").map(|r| (r, true)));
        if let Some((ns_rest, device_ns)) = after_ns {
            let (first, tail) = ns_rest.split_once('\\').unwrap_or((ns_rest, ""));
            if let Some(letter) = drive_letter(first) {
                prefix = Prefix::Drive(letter);
                rest = tail;
            } else if first.eq_ignore_ascii_case("UNC") {
                let (p, r) = unc(tail, original)?;
                prefix = p;
                rest = r;
            } else if let Some(guid) = volume_guid(first).filter(|_| !device_ns) {
                prefix = Prefix::Volume(guid.to_string());
                rest = tail;
            } else {
                return Err(PathError::Device(original.into()));
            }
        } else if let Some(unc_rest) = s.strip_prefix("\\\\") {
            let (p, r) = unc(unc_rest, original)?;
            prefix = p;
            rest = r;
        } else if let Some(letter) = s.get(..2).and_then(drive_letter) {
            match s.as_bytes().get(2) {
                Some(b'\\') => {
                    prefix = Prefix::Drive(letter);
                    rest = &s[3..];
                }
                _ => return Err(PathError::DriveRelative(original.into(), letter)),
            }
        } else if s.starts_with('\\') {
            return Err(PathError::RootRelative(original.into()));
        } else {
            return Err(PathError::Relative(original.into()));
        }

        let mut components: Vec<String> = Vec::new();
        let mut stream = None;
        for raw in rest.split('\\') {
            // `..` and `.` are recognized after Windows drops trailing spaces (`.. ` is `..`).
            let trimmed = raw.trim_end_matches(' ');
            if trimmed == ".." {
                components.pop();
                stream = None;
                continue;
            }
            let (name, st) = split_component(raw);
            if name.is_empty() {
                if st.is_some() {
                    return Err(PathError::InvalidComponent { path: original.into(), component: raw.into() });
                }
                // Empty, `.`, or only dots and spaces: Windows treats these as the current directory.
                continue;
            }
            if let Some(ch) = name.chars().find(|c| INVALID_CHARS.contains(c) || (*c as u32) < 0x20) {
                return Err(PathError::InvalidChar { path: original.into(), component: raw.into(), ch });
            }
            components.push(name);
            // `file::$DATA` is the file's main stream, i.e. the file.
            stream = st.filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case(":$DATA"));
        }
        Ok(WinPath::from_parts(prefix, components, stream))
    }

    /// Parses `X:\a\b` (with `/` read as `\`, one trailing separator allowed) exactly as written:
    /// refuses relative, UNC and device (`\\?\`, `\\.\`) paths, `.` and `..`, empty components,
    /// names ending in a dot or a space, streams, characters Windows does not allow and names
    /// longer than 255 characters, so that the name planned is the name on disk.
    pub fn parse_exact(text: &str) -> Result<WinPath, PathError> {
        let b = text.as_bytes();
        if b.len() < 3 || !b[0].is_ascii_alphabetic() || b[1] != b':' || !matches!(b[2], b'\\' | b'/') {
            return Err(PathError::NotDriveAbsolute(text.to_string()));
        }
        let drive = Prefix::Drive(b[0].to_ascii_uppercase() as char);
        let rest = &text[3..];
        let rest = rest.strip_suffix(['\\', '/']).unwrap_or(rest);
        let mut components = Vec::new();
        if !rest.is_empty() || text.len() > 3 {
            for comp in rest.split(['\\', '/']) {
                check_exact_component(text, comp)?;
                components.push(comp.to_string());
            }
        }
        Ok(WinPath::from_parts(drive, components, None))
    }
}

fn drive_letter(s: &str) -> Option<char> {
    let b = s.as_bytes();
    if b.len() == 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        Some(b[0].to_ascii_uppercase() as char)
    } else {
        None
    }
}

/// The GUID text of a `Volume{guid}` component.
fn volume_guid(s: &str) -> Option<&str> {
    let head = s.get(..7)?;
    let guid = s.get(7..)?.strip_suffix('}')?;
    (head.eq_ignore_ascii_case("Volume{") && !guid.is_empty()).then_some(guid)
}

/// `server\share\rest` after the leading `\\` (or `\\?\UNC\`).
fn unc<'a>(s: &'a str, original: &str) -> Result<(Prefix, &'a str), PathError> {
    let mut parts = s.splitn(3, '\\');
    let server = parts.next().unwrap_or("");
    let share = parts.next().unwrap_or("");
    let rest = parts.next().unwrap_or("");
    if server.is_empty() || share.is_empty() {
        return Err(PathError::IncompleteUnc(original.into()));
    }
    if server == "." || server == "?" {
        return Err(PathError::Device(original.into()));
    }
    Ok((Prefix::Unc { server: server.to_string(), share: share.to_string() }, rest))
}
