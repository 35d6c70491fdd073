//! Windows paths as data: parsing, normalization and case-insensitive comparison, without any
//! Windows API.
//!
//! A [`WinPath`] is always absolute. Parsing accepts the forms Windows programs hand around —
//! `C:\x`, `C:/x`, `\\?\C:\x`, `\??\C:\x`, `\\.\C:\x`, `\\server\share\x`,
//! `\\?\UNC\server\share\x` and `\\?\Volume{guid}\x` — and normalizes them the way the Win32
//! layer does before a file system ever sees the name:
//!
//! * `/` is a separator like `\`, and repeated separators collapse;
//! * `.` components vanish and `..` removes the previous component (never climbing above the
//!   drive or share root);
//! * trailing dots and spaces of a component are dropped (`config. ` is `config`);
//! * an alternate data stream suffix (`file:stream:$DATA`, `dir::$INDEX_ALLOCATION`) is split
//!   off: a stream shares its file's security descriptor, so for every decision here the path
//!   *is* the file. The final component's stream is kept for display only;
//! * `\\localhost\C$\x` and `\\127.0.0.1\C$\x` are `C:\x`.
//!
//! Verbatim (`\\?\`) paths are normalized in the same way although Win32 passes them through
//! untouched. That errs on the side of treating `\\?\C:\w\.git.` as `.git`, which is what the
//! protected-path rules want; the on-disk resolver ([`LongPathResolver`]) has the last word.
//!
//! Comparison ([`PartialEq`], [`Ord`], [`is_beneath`]) ignores letter case: every character is
//! mapped to its single-character uppercase form when it has one, which is what NTFS's upcase
//! table does (no `ß` → `SS` expansion). 8.3 short names (`PROGRA~1`), links and junctions can
//! only be resolved on disk: see [`LongPathResolver`] and [`canonicalize`].
//!
//! Where a path must name exactly one file on a drive as written — the elevated setup plans
//! directories it creates and grants from names the system reported — [`WinPath::parse_exact`]
//! refuses instead of normalizing, and [`WinPath::join`] always refuses names Windows would
//! change (`.`-only, trailing dots or spaces, streams, characters Windows forbids).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod parse;

use parse::check_exact_component;

/// Why a string is not an absolute Windows path this crate can reason about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` is empty")]
    Empty(String),
    #[error("`{0}` is not an absolute path (it is relative to the current directory)")]
    Relative(String),
    #[error("`{0}` is relative to the current directory of drive {1}: (write {1}:\\...)")]
    DriveRelative(String, char),
    #[error("`{0}` is relative to the current drive (write it with a drive letter)")]
    RootRelative(String),
    #[error("`{0}` names a device or an object-manager path, not a file on a volume")]
    Device(String),
    #[error("`{0}` is a UNC path without a server and share name")]
    IncompleteUnc(String),
    #[error("`{path}`: the name `{component}` contains `{ch}`, which Windows does not allow in file names")]
    InvalidChar { path: String, component: String, ch: char },
    #[error("`{path}`: `{component}` is not a valid name (a stream without a file name)")]
    InvalidComponent { path: String, component: String },
    #[error("`{0}` is not an absolute path on a drive (expected `X:\\...`)")]
    NotDriveAbsolute(String),
    #[error("`{path}`: `{component}` is not an acceptable file name ({why})")]
    BadComponent { path: String, component: String, why: &'static str },
}

/// Where an absolute path starts.
#[derive(Clone, Debug)]
pub enum Prefix {
    /// A drive letter, stored uppercase.
    Drive(char),
    /// `\\server\share`, as written (compared case-insensitively).
    Unc { server: String, share: String },
    /// `\\?\Volume{guid}`; the text between the braces as written.
    Volume(String),
}

impl Prefix {
    fn key(&self) -> String {
        match self {
            Prefix::Drive(c) => format!("{c}:"),
            Prefix::Unc { server, share } => format!("\\\\{}\\{}", fold(server), fold(share)),
            Prefix::Volume(g) => format!("\\\\?\\volume{{{}}}", fold(g)),
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prefix::Drive(c) => write!(f, "{c}:"),
            Prefix::Unc { server, share } => write!(f, "\\\\{server}\\{share}"),
            Prefix::Volume(g) => write!(f, "\\\\?\\Volume{{{g}}}"),
        }
    }
}

/// An absolute, normalized Windows path (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct WinPath(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    prefix: Prefix,
    /// Components as written, with streams and trailing dots/spaces removed.
    components: Vec<String>,
    /// The alternate data stream named on the final component (`stream:$DATA`), if any.
    stream: Option<String>,
    /// The comparison key: the prefix and the components case-folded, `\`-separated.
    key: String,
    /// The display form (`C:\Users\me`, `\\server\share\x`), which is also the serialized one.
    text: String,
}

/// Case-folds like NTFS: each character to its uppercase form when that is one character.
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Characters that may not appear in a Windows file name (besides separators and `:`).
const INVALID_CHARS: &[char] = &['<', '>', '"', '|', '?', '*'];

/// Reserved DOS device names: `C:\w\nul` or `C:\w\COM1.txt` open a device, not a file.
const DOS_DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "CONIN$", "CONOUT$",
];

/// Whether a component names a DOS device (`NUL`, `com1.txt`, `CON `): Win32 opens the device
/// whatever the directory.
pub fn is_dos_device_name(component: &str) -> bool {
    let base = component.split(['.', ':']).next().unwrap_or("").trim_end_matches(' ');
    DOS_DEVICES.iter().any(|d| d.eq_ignore_ascii_case(base))
}

/// Whether a component looks like a generated 8.3 short name (`PROGRA~1`, `GIT~1`,
/// `SETTIN~2.JSO`): a base of at most 8 characters containing `~` followed by digits, and an
/// extension of at most 3. Such a name may be an alias of a long name that only the file
/// system can resolve ([`LongPathResolver`]).
pub fn looks_like_short_name(component: &str) -> bool {
    let (base, ext) = match component.rsplit_once('.') {
        Some((b, e)) if !b.is_empty() => (b, e),
        _ => (component, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 {
        return false;
    }
    match base.rfind('~') {
        Some(i) if i > 0 => {
            let digits = &base[i + 1..];
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

impl WinPath {
    fn from_parts(prefix: Prefix, components: Vec<String>, stream: Option<String>) -> WinPath {
        // Admin shares of this machine are its drives.
        let prefix = match prefix {
            Prefix::Unc { server, share }
                if ["localhost", "127.0.0.1", "::1", "[::1]"].iter().any(|h| h.eq_ignore_ascii_case(&server))
                    && share.len() == 2
                    && share.ends_with('$')
                    && share.as_bytes()[0].is_ascii_alphabetic() =>
            {
                Prefix::Drive(share.as_bytes()[0].to_ascii_uppercase() as char)
            }
            p => p,
        };
        let mut key = prefix.key();
        for c in &components {
            key.push('\\');
            key.push_str(&fold(c));
        }
        let mut text = prefix.to_string();
        if components.is_empty() {
            if matches!(prefix, Prefix::Drive(_) | Prefix::Volume(_)) {
                text.push('\\');
            }
        } else {
            for c in &components {
                text.push('\\');
                text.push_str(c);
            }
        }
        if let Some(s) = &stream {
            text.push(':');
            text.push_str(s);
        }
        WinPath(Arc::new(Inner { prefix, components, stream, key, text }))
    }

    pub fn prefix(&self) -> &Prefix {
        &self.0.prefix
    }

    /// The display (and serialized) form.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// The drive letter (uppercase), `None` for a UNC or volume path.
    pub fn drive(&self) -> Option<char> {
        match self.0.prefix {
            Prefix::Drive(c) => Some(c),
            _ => None,
        }
    }

    /// Whether [`WinPath::parse_exact`] accepts this path as displayed: on a drive, no stream,
    /// every name at most 255 characters. (Parsing has already dropped what Windows strips.)
    pub fn is_exact_drive_path(&self) -> bool {
        WinPath::parse_exact(self.as_str()).is_ok()
    }

    /// Whether this is the root of a drive (`C:\`).
    pub fn is_drive_root(&self) -> bool {
        self.drive().is_some() && self.is_root()
    }

    /// The components after the drive, share or volume, as written (without streams).
    pub fn components(&self) -> &[String] {
        &self.0.components
    }

    /// The alternate data stream the path named on its final component, if any (display only:
    /// every decision treats the path as its file).
    pub fn stream(&self) -> Option<&str> {
        self.0.stream.as_deref()
    }

    /// The case-folded comparison key (`C:\USERS\ALICE`).
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// Whether this is a drive, share or volume root (`C:\`, `\\server\share`).
    pub fn is_root(&self) -> bool {
        self.0.components.is_empty()
    }

    pub fn file_name(&self) -> Option<&str> {
        self.0.components.last().map(String::as_str)
    }

    /// The path without its final component (`None` for a root).
    pub fn parent(&self) -> Option<WinPath> {
        if self.is_root() {
            return None;
        }
        let comps = self.0.components[..self.0.components.len() - 1].to_vec();
        Some(WinPath::from_parts(self.0.prefix.clone(), comps, None))
    }

    /// This path and its ancestors, nearest first (`C:\a\b`, `C:\a`, `C:\`).
    pub fn ancestors(&self) -> Vec<WinPath> {
        let mut out = vec![self.without_stream()];
        while let Some(p) = out.last().and_then(WinPath::parent) {
            out.push(p);
        }
        out
    }

    /// The path with any alternate data stream removed.
    pub fn without_stream(&self) -> WinPath {
        if self.0.stream.is_none() {
            return self.clone();
        }
        WinPath::from_parts(self.0.prefix.clone(), self.0.components.clone(), None)
    }

    /// Appends a relative path (`\` or `/` separated); `..` may not climb above `self`. Every
    /// other component must be a name Windows stores as written (see [`WinPath::parse_exact`]):
    /// not empty or `.`, no trailing dots or spaces, no streams or drives.
    pub fn join(&self, rel: &str) -> Result<WinPath, PathError> {
        for comp in rel.split(['\\', '/']) {
            if comp != ".." {
                check_exact_component(rel, comp)?;
            }
        }
        let rel = rel.replace('/', "\\");
        let full = format!("{}\\{}", self, rel);
        let joined = WinPath::parse(&full)?;
        if !joined.is_beneath(self) {
            return Err(PathError::Relative(rel));
        }
        Ok(joined)
    }

    /// Whether `self` is `root` or lies beneath it (case-insensitive, streams ignored).
    pub fn is_beneath(&self, root: &WinPath) -> bool {
        is_beneath(self, root)
    }

    /// The same as [`WinPath::is_beneath`], under the elevated crate's name.
    pub fn is_same_or_beneath(&self, ancestor: &WinPath) -> bool {
        is_beneath(self, ancestor)
    }

    /// Whether `self` lies beneath `ancestor` and is not `ancestor` itself.
    pub fn is_strictly_beneath(&self, ancestor: &WinPath) -> bool {
        is_beneath(self, ancestor) && self.0.components.len() > ancestor.0.components.len()
    }

    /// The components of `self` below `root` (empty when they are equal), `None` if `self` is
    /// not beneath `root`.
    pub fn relative_to(&self, root: &WinPath) -> Option<&[String]> {
        if self.is_beneath(root) {
            Some(&self.0.components[root.0.components.len()..])
        } else {
            None
        }
    }

    /// The first component that names a DOS device (`NUL`, `com1.txt`), if any.
    pub fn dos_device_component(&self) -> Option<&str> {
        self.0.components.iter().map(String::as_str).find(|c| is_dos_device_name(c))
    }

    /// The first component that looks like an 8.3 short name, if any.
    pub fn short_name_component(&self) -> Option<&str> {
        self.0.components.iter().map(String::as_str).find(|c| looks_like_short_name(c))
    }
}

/// Whether `path` is `root` or lies beneath it, comparing normalized components without letter
/// case (and without streams): `C:\Work\.GIT::$INDEX_ALLOCATION\hooks` is beneath `c:\work`,
/// `C:\workspace` is not beneath `C:\work`.
pub fn is_beneath(path: &WinPath, root: &WinPath) -> bool {
    if path.0.key.len() < root.0.key.len() || !path.0.key.starts_with(&root.0.key) {
        return false;
    }
    path.0.key.len() == root.0.key.len() || path.0.key.as_bytes()[root.0.key.len()] == b'\\'
}

impl fmt::Display for WinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

impl fmt::Debug for WinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.text)
    }
}

impl PartialEq for WinPath {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for WinPath {}

impl Hash for WinPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key.hash(state);
    }
}

impl PartialOrd for WinPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders by the comparison key, so a parent sorts before its children.
impl Ord for WinPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

impl std::str::FromStr for WinPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WinPath::parse(s)
    }
}

impl Serialize for WinPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.text)
    }
}

/// Reads only a path written in its normal form (as `Display` writes it, give or take `/` for
/// `\`, letter case of the drive or `Volume` and one trailing separator): a serialized path
/// (a state record, a request to the elevated setup) names exactly the path it says, with
/// nothing for Windows to strip or resolve (`..`, `.`, trailing dots, `\\?\`).
impl<'de> Deserialize<'de> for WinPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let path = WinPath::parse(&s).map_err(serde::de::Error::custom)?;
        let written = s.replace('/', "\\");
        let normal = path.as_str();
        let same = written.eq_ignore_ascii_case(normal)
            || written.strip_suffix('\\').is_some_and(|w| w.eq_ignore_ascii_case(normal));
        if !same {
            return Err(serde::de::Error::custom(format!("`{s}` is not written in normal form (`{normal}`)")));
        }
        Ok(path)
    }
}

/// Why a path could not be resolved on disk.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("no part of {0} exists, not even its volume")]
    NothingExists(String),
}

/// Resolves a path to the long, canonical form the file system stores: 8.3 short names
/// expanded, symbolic links and junctions followed, letter case as on disk. The Windows
/// backend implements it with `CreateFileW(FILE_FLAG_BACKUP_SEMANTICS)` +
/// `GetFinalPathNameByHandleW(VOLUME_NAME_DOS)` (or `GetLongPathNameW` for a path it must not
/// open); tests use a fake.
pub trait LongPathResolver {
    /// The canonical form of `path` if it exists, `Ok(None)` if it does not.
    fn resolve_existing(&self, path: &WinPath) -> Result<Option<WinPath>, ResolveError>;
}

/// The canonical form of a path that may not exist yet: its longest existing ancestor resolved
/// through `resolver`, with the missing rest appended as written. Every decision about which
/// path is beneath which (writable roots, protected paths, forbidden roots) must be taken on
/// canonical paths, so that a short name, a junction or letter case cannot make a path look
/// like it is somewhere else.
pub fn canonicalize(path: &WinPath, resolver: &dyn LongPathResolver) -> Result<WinPath, ResolveError> {
    let path = path.without_stream();
    let mut missing: Vec<String> = Vec::new();
    for ancestor in path.ancestors() {
        if let Some(real) = resolver.resolve_existing(&ancestor)? {
            let mut comps = real.0.components.clone();
            comps.extend(missing.into_iter().rev());
            return Ok(WinPath::from_parts(real.0.prefix.clone(), comps, None));
        }
        if let Some(name) = ancestor.file_name() {
            missing.push(name.to_string());
        }
    }
    Err(ResolveError::NothingExists(path.to_string()))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod exact_tests;
