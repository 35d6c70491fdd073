//! Giving back ownership of what a command created (elevated mode).
//!
//! A command runs as a sandbox account, and a token's default owner must be one of its own
//! SIDs, so everything the command creates in a writable root is owned by `PalisadeOffline` or
//! `PalisadeOnline`. Left so, the user's git calls a repository the command made "dubious
//! ownership", and the account keeps an owner's standing on those files. The ACL plan takes the
//! owner's implicit rights away (`palisade_windows_plan::acl::ownership_aces`); this module
//! decides what the CLI gives back to the user after each command:
//!
//! 1. while the command runs, the CLI watches every writable root (`ReadDirectoryChangesW`,
//!    recursive, file and directory names) and feeds each batch to a [`Tracker`]
//!    ([`parse_notifications`] reads the raw buffer);
//! 2. afterwards [`Tracker::finish`] gives the [`FixPlan`]: the names created or renamed in,
//!    without duplicates (letter case ignored) and without names beneath another one (a
//!    directory in the plan is walked whole, without following reparse points), or, after an
//!    overflow of the notification buffer, the whole root to walk;
//! 3. for each path still present the CLI opens the object itself (not a link's target), checks
//!    that the handle's final path is still inside the root ([`inside_root`]: a directory swapped
//!    for a junction meanwhile is not followed out), reads its owner and, only if
//!    [`is_sandbox_owner`], makes the user its owner;
//! 4. failures are summed up in one warning line ([`Report::warning`]); the command's exit
//!    status never changes.
//!
//! Names are kept exactly as the file system reported them (Win32 path normalization would
//! drop a trailing dot or space, `evil.` would become `evil`), and opened through `\\?\` paths
//! ([`verbatim_path`]).

use std::collections::BTreeMap;

use crate::{Sid, WinPath};

/// `FILE_NOTIFY_INFORMATION.Action` values (winnt.h).
pub const FILE_ACTION_ADDED: u32 = 1;
pub const FILE_ACTION_REMOVED: u32 = 2;
pub const FILE_ACTION_MODIFIED: u32 = 3;
pub const FILE_ACTION_RENAMED_OLD_NAME: u32 = 4;
pub const FILE_ACTION_RENAMED_NEW_NAME: u32 = 5;

/// More names than this in one root and the root is walked instead: the memory the CLI holds
/// stays bounded whatever the command does.
pub const MAX_TRACKED: usize = 100_000;

/// One record of a `ReadDirectoryChangesW` buffer: what happened to which name (relative to
/// the watched directory, `\`-separated, exactly as the file system stores it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub action: u32,
    pub name: String,
}

/// A notification buffer that does not hold what `FILE_NOTIFY_INFORMATION` records must.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed change notification at byte {0}")]
pub struct MalformedNotification(pub usize);

/// Reads the `FILE_NOTIFY_INFORMATION` records of a buffer `ReadDirectoryChangesW` filled
/// (`NextEntryOffset`, `Action`, `FileNameLength` in bytes, then the UTF-16 name; the last
/// record with offset 0). An empty buffer is no records (an overflow is
/// told apart by the caller, who knows the call succeeded with nothing in it).
pub fn parse_notifications(buf: &[u8]) -> Result<Vec<Notification>, MalformedNotification> {
    let mut out = Vec::new();
    if buf.is_empty() {
        return Ok(out);
    }
    let u32_at = |at: usize| -> Option<u32> {
        buf.get(at..at.checked_add(4)?).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut at = 0usize;
    loop {
        let bad = MalformedNotification(at);
        let next = u32_at(at).ok_or(bad.clone())? as usize;
        let action = u32_at(at + 4).ok_or(bad.clone())?;
        let len = u32_at(at + 8).ok_or(bad.clone())? as usize;
        let name_at = at + 12;
        let bytes = buf
            .get(name_at..name_at.checked_add(len).ok_or(bad.clone())?)
            .filter(|_| len & 1 == 0)
            .ok_or(bad.clone())?;
        // Windows aligns records to 4 bytes; Wine packs them: only overlaps are refused.
        if next != 0 && next < 12 + len {
            return Err(bad);
        }
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        out.push(Notification { action, name: String::from_utf16_lossy(&units) });
        if next == 0 {
            return Ok(out);
        }
        at = at.checked_add(next).ok_or(bad)?;
    }
}

/// A path below a root as exact names, with a letter-case-free key for comparing.
#[derive(Clone, Debug)]
struct Rel {
    names: Vec<String>,
}

fn fold(names: &[String]) -> Vec<String> {
    names.iter().map(|n| palisade_windows_plan::path::fold(n)).collect()
}

/// One watched root's notifications, collected while the command runs.
#[derive(Clone, Debug)]
pub struct Tracker {
    root: WinPath,
    /// Keyed by the folded names.
    paths: BTreeMap<Vec<String>, Rel>,
    walk_root: Option<WalkReason>,
}

/// Why a whole root is walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkReason {
    /// The notification buffer overflowed (`ERROR_NOTIFY_ENUM_DIR`, or a result with no
    /// records): some names are unknown.
    Overflow,
    /// More than [`MAX_TRACKED`] names.
    TooMany,
    /// A notification could not be read, or the root could not be watched.
    Unreadable,
}

impl WalkReason {
    pub fn describe(self) -> &'static str {
        match self {
            WalkReason::Overflow => "the change notifications overflowed",
            WalkReason::TooMany => "the command created more names than are tracked one by one",
            WalkReason::Unreadable => "the change notifications could not be read",
        }
    }
}

/// What to examine after the command in one root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixPlan {
    pub root: WinPath,
    /// Walk the whole root (and say why), instead of `paths`.
    pub walk_root: Option<WalkReason>,
    /// Names created or renamed in, relative to the root, none beneath another: each is
    /// examined and, if it is a directory, walked.
    pub paths: Vec<Vec<String>>,
}

impl Tracker {
    pub fn new(root: WinPath) -> Tracker {
        Tracker { root, paths: BTreeMap::new(), walk_root: None }
    }

    pub fn root(&self) -> &WinPath {
        &self.root
    }

    /// Whether the whole root will be walked (nothing more to record).
    pub fn gave_up(&self) -> bool {
        self.walk_root.is_some()
    }

    /// Takes one notification: a name added or renamed in is remembered; removals, old names
    /// and modifications need nothing (a name that is gone at the end is skipped).
    pub fn record(&mut self, n: &Notification) {
        if self.walk_root.is_some() || !matches!(n.action, FILE_ACTION_ADDED | FILE_ACTION_RENAMED_NEW_NAME) {
            return;
        }
        // Windows separates with `\`; Wine's inotify-based notifications may say `/`, which no
        // Windows file name can hold.
        let names: Vec<String> = n.name.split(['\\', '/']).map(str::to_string).collect();
        if names.iter().any(|c| c.is_empty() || c == "." || c == ".." || c.contains([':', '\0'])) {
            self.give_up(WalkReason::Unreadable);
            return;
        }
        self.paths.entry(fold(&names)).or_insert(Rel { names });
        if self.paths.len() > MAX_TRACKED {
            self.give_up(WalkReason::TooMany);
        }
    }

    /// Some names are unknown: the whole root will be walked.
    pub fn give_up(&mut self, why: WalkReason) {
        self.walk_root.get_or_insert(why);
        self.paths.clear();
    }

    pub fn finish(self) -> FixPlan {
        let mut kept: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        // Shorter keys first, so that a name's ancestors are decided before it.
        let mut all: Vec<(Vec<String>, Rel)> = self.paths.into_iter().collect();
        all.sort_by_key(|(k, _)| k.len());
        for (key, rel) in all {
            if (1..key.len()).any(|n| kept.contains_key(&key[..n])) {
                continue;
            }
            kept.insert(key, rel.names);
        }
        FixPlan { root: self.root, walk_root: self.walk_root, paths: kept.into_values().collect() }
    }
}

/// The `\\?\` form of `root` joined with `names`, which Windows opens without normalizing the
/// names (a trailing dot or space stays).
pub fn verbatim_path(root: &WinPath, names: &[String]) -> String {
    let text = root.as_str().trim_end_matches('\\');
    let mut out = match text.strip_prefix(r"\\") {
        Some(unc) if !unc.starts_with(r"?\") && !unc.starts_with(r".\") => format!(r"\\?\UNC\{unc}"),
        Some(_) => text.to_string(),
        None => format!(r"\\?\{text}"),
    };
    for n in names {
        out.push('\\');
        out.push_str(n);
    }
    out
}

/// Whether the final path of an opened object (`GetFinalPathNameByHandleW`, `\\?\C:\...` or
/// `\\?\UNC\...`) lies inside `root`: if not, a directory on the way was swapped for a link
/// after the name was recorded, and the object is left alone.
pub fn inside_root(final_path: &str, root: &WinPath) -> bool {
    WinPath::parse(final_path).is_ok_and(|p| p.is_beneath(root))
}

/// Whether an owner read from a file is one of the sandbox's SIDs (either account or their
/// group): only those owners are replaced.
pub fn is_sandbox_owner(owner: &str, sandbox: &[Sid]) -> bool {
    Sid::canonicalize(owner).is_ok_and(|o| sandbox.contains(&o))
}

/// What the pass after a command did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Objects whose owner was read.
    pub examined: usize,
    /// Objects given back to the user.
    pub given_back: usize,
    /// Roots walked whole, with the reason.
    pub walked: Vec<(WinPath, WalkReason)>,
    /// Objects that could not be examined or given back: path and reason.
    pub failures: Vec<(String, String)>,
}

impl Report {
    /// The one warning line for stderr, if anything failed.
    pub fn warning(&self) -> Option<String> {
        let (first, why) = self.failures.first()?;
        let n = self.failures.len();
        let first = first.strip_prefix(r"\\?\").unwrap_or(first);
        Some(format!(
            "palisade: warning: {n} {} the command created could not be given back to you (the sandbox account still owns {}); first: {first}: {why}",
            if n == 1 { "file or folder" } else { "files or folders" },
            if n == 1 { "it" } else { "them" },
        ))
    }

    /// Debug lines: roots walked whole.
    pub fn debug_lines(&self) -> Vec<String> {
        self.walked
            .iter()
            .map(|(root, why)| {
                format!("palisade: debug: {}: {}; walked the whole root to give ownership back", root, why.describe())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(next: u32, action: u32, name: &str) -> Vec<u8> {
        let units: Vec<u16> = name.encode_utf16().collect();
        let mut b = Vec::new();
        b.extend(next.to_le_bytes());
        b.extend(action.to_le_bytes());
        b.extend(((units.len() * 2) as u32).to_le_bytes());
        for u in units {
            b.extend(u.to_le_bytes());
        }
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn buffer(items: &[(u32, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (action, name)) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            let probe = record(0, *action, name);
            out.extend(record(if last { 0 } else { probe.len() as u32 }, *action, name));
        }
        out
    }

    fn n(action: u32, name: &str) -> Notification {
        Notification { action, name: name.into() }
    }

    fn p(s: &str) -> WinPath {
        WinPath::parse(s).unwrap()
    }

    fn names(s: &str) -> Vec<String> {
        s.split('\\').map(String::from).collect()
    }

    #[test]
    fn parses_notification_buffers() {
        let b = buffer(&[
            (FILE_ACTION_ADDED, "a.txt"),
            (FILE_ACTION_RENAMED_NEW_NAME, "dir\\é b."),
            (FILE_ACTION_REMOVED, "x"),
        ]);
        assert_eq!(
            parse_notifications(&b).unwrap(),
            [n(FILE_ACTION_ADDED, "a.txt"), n(FILE_ACTION_RENAMED_NEW_NAME, "dir\\é b."), n(FILE_ACTION_REMOVED, "x")]
        );
        assert_eq!(parse_notifications(&[]).unwrap(), []);
        // Wine packs the records without padding (seen under Wine 8).
        let mut packed = Vec::new();
        packed.extend(26u32.to_le_bytes());
        packed.extend(record(0, FILE_ACTION_ADDED, "dir\\sub")[4..26].iter());
        packed.extend(record(0, FILE_ACTION_ADDED, "dir\\sub\\f.txt"));
        assert_eq!(
            parse_notifications(&packed).unwrap(),
            [n(FILE_ACTION_ADDED, "dir\\sub"), n(FILE_ACTION_ADDED, "dir\\sub\\f.txt")]
        );
    }

    #[test]
    fn refuses_malformed_buffers() {
        let good = buffer(&[(FILE_ACTION_ADDED, "abc"), (FILE_ACTION_ADDED, "d")]);
        // Cut short, inside the header and inside the name.
        assert!(parse_notifications(&good[..6]).is_err());
        assert!(parse_notifications(&good[..14]).is_err());
        // An offset into the record's own name, one past the end.
        let mut b = good.clone();
        b[0] = 4;
        assert!(parse_notifications(&b).is_err());
        b[0] = 200;
        assert!(parse_notifications(&b).is_err());
        // An odd name length.
        let mut b = record(0, FILE_ACTION_ADDED, "ab");
        b[8] = 3;
        assert!(parse_notifications(&b).is_err());
        // A huge length does not overflow.
        let mut b = record(0, FILE_ACTION_ADDED, "ab");
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_notifications(&b).is_err());
    }

    #[test]
    fn created_and_renamed_in_names_collapse_under_created_folders() {
        let mut t = Tracker::new(p(r"C:\Work"));
        for (action, name) in [
            (FILE_ACTION_ADDED, "repo"),
            (FILE_ACTION_ADDED, "repo\\.git"),
            (FILE_ACTION_ADDED, "REPO\\.git\\HEAD"),
            (FILE_ACTION_ADDED, "src\\new.rs"),
            (FILE_ACTION_ADDED, "src\\new.rs"),
            (FILE_ACTION_ADDED, "SRC\\NEW.RS"),
            (FILE_ACTION_MODIFIED, "src\\old.rs"),
            (FILE_ACTION_REMOVED, "gone"),
            (FILE_ACTION_RENAMED_OLD_NAME, "tmp123"),
            (FILE_ACTION_RENAMED_NEW_NAME, "src\\lib.rs"),
            (FILE_ACTION_ADDED, "repo b"),
            (FILE_ACTION_ADDED, "repo b\\x"),
            (FILE_ACTION_ADDED, "trailing. "),
            (FILE_ACTION_ADDED, "wine/style"),
        ] {
            t.record(&n(action, name));
        }
        let plan = t.finish();
        assert_eq!(plan.walk_root, None);
        let mut got = plan.paths.clone();
        got.sort();
        let mut want = vec![
            names("repo"),
            names("repo b"),
            names("src\\lib.rs"),
            names("src\\new.rs"),
            names("trailing. "),
            names("wine\\style"),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn a_name_recorded_before_its_folder_is_still_collapsed() {
        let mut t = Tracker::new(p(r"C:\Work"));
        // Renamed in: the folder's own record may come after what it holds.
        t.record(&n(FILE_ACTION_ADDED, "out\\a\\b"));
        t.record(&n(FILE_ACTION_RENAMED_NEW_NAME, "out"));
        assert_eq!(t.finish().paths, vec![names("out")]);
    }

    #[test]
    fn overflow_unreadable_names_and_too_many_names_walk_the_root() {
        let mut t = Tracker::new(p(r"C:\Work"));
        t.record(&n(FILE_ACTION_ADDED, "a"));
        t.give_up(WalkReason::Overflow);
        t.record(&n(FILE_ACTION_ADDED, "b"));
        let plan = t.finish();
        assert_eq!((plan.walk_root, plan.paths.len()), (Some(WalkReason::Overflow), 0));

        for bad in ["a\\\\b", "..\\x", "a:stream", "", "a/"] {
            let mut t = Tracker::new(p(r"C:\Work"));
            t.record(&n(FILE_ACTION_ADDED, bad));
            assert_eq!(t.finish().walk_root, Some(WalkReason::Unreadable), "{bad:?}");
        }

        let mut t = Tracker::new(p(r"C:\Work"));
        for i in 0..=MAX_TRACKED {
            t.record(&n(FILE_ACTION_ADDED, &format!("f{i}")));
        }
        let plan = t.finish();
        assert_eq!((plan.walk_root, plan.paths.len()), (Some(WalkReason::TooMany), 0));
    }

    #[test]
    fn verbatim_paths_keep_names_exact() {
        assert_eq!(verbatim_path(&p(r"C:\Work"), &names("a.\\b ")), r"\\?\C:\Work\a.\b ");
        assert_eq!(verbatim_path(&p(r"C:\Work"), &[]), r"\\?\C:\Work");
        assert_eq!(verbatim_path(&p(r"\\server\share\w"), &names("x")), r"\\?\UNC\server\share\w\x");
    }

    #[test]
    fn only_objects_still_inside_the_root_are_touched() {
        let root = p(r"C:\Work");
        assert!(inside_root(r"\\?\C:\Work\repo\.git\HEAD", &root));
        assert!(inside_root(r"\\?\c:\work\x", &root));
        assert!(!inside_root(r"\\?\C:\Users\alice\.ssh\id_ed25519", &root));
        assert!(!inside_root(r"\\?\C:\Workspace\x", &root));
        assert!(!inside_root(r"\\?\Volume{0b0e0c0a-0000-0000-0000-100000000000}\Work\x", &root));
        assert!(inside_root(r"\\?\UNC\server\share\w\x", &p(r"\\server\share\w")));
    }

    #[test]
    fn only_sandbox_owners_are_replaced() {
        let sandbox = [Sid::parse("S-1-5-21-1-2-3-1011").unwrap(), Sid::parse("S-1-5-21-1-2-3-1010").unwrap()];
        assert!(is_sandbox_owner("S-1-5-21-1-2-3-1011", &sandbox));
        assert!(is_sandbox_owner("S-1-5-21-1-2-3-1010", &sandbox));
        assert!(!is_sandbox_owner("S-1-5-21-1-2-3-1001", &sandbox));
        assert!(!is_sandbox_owner("S-1-5-32-544", &sandbox));
        assert!(!is_sandbox_owner("garbage", &sandbox));
    }

    #[test]
    fn one_warning_line_and_debug_lines() {
        let mut r = Report::default();
        assert_eq!(r.warning(), None);
        r.failures.push((r"\\?\C:\Work\a".into(), "Access is denied. (os error 5)".into()));
        assert_eq!(
            r.warning().unwrap(),
            r"palisade: warning: 1 file or folder the command created could not be given back to you (the sandbox account still owns it); first: C:\Work\a: Access is denied. (os error 5)"
        );
        r.failures.push((r"\\?\C:\Work\b".into(), "x".into()));
        let w = r.warning().unwrap();
        assert!(w.starts_with("palisade: warning: 2 files or folders") && !w.contains('\n'), "{w}");
        r.walked.push((p(r"C:\Work"), WalkReason::Overflow));
        assert_eq!(
            r.debug_lines(),
            [
                r"palisade: debug: C:\Work: the change notifications overflowed; walked the whole root to give ownership back"
            ]
        );
    }
}
