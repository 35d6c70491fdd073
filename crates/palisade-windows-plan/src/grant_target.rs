//! Whether the object the elevated setup opened is the one its grant names.
//!
//! `palisade-setup` runs as administrator and adds inheritable read entries to folders of the
//! installing user's profile. The names come from the unelevated CLI's listing, and the user
//! owns those folders: between the listing and the grant a process of the user can replace a
//! folder with a junction (or symbolic link) to somewhere it may not read, such as another
//! user's profile. Setup therefore opens each object itself by handle, without following a
//! reparse point on the last component, and asks the handle what it is; this module decides,
//! from those answers alone, whether the grant may go on that handle.
//!
//! * A reparse point (junction, symbolic link, mount point, anything with a tag) is refused:
//!   a DACL set on it would be the link's own, but the inheritable entry would not be what the
//!   plan meant, and the listing said it was a plain folder or file.
//! * A file with several names (hard links) is refused: the DACL belongs to the file, so the
//!   grant would reach every other name, some of which may lie outside the profile.
//! * The final path the system reports for the handle (`GetFinalPathNameByHandleW`, normalized,
//!   DOS volume name) must be the expected path. The handle was opened without following a
//!   reparse point on the last component only; a junction *above* it (an ancestor folder
//!   swapped for a junction) is still followed while opening, and then the object lies
//!   wherever the junction points, so its final path differs. A volume mounted in a folder
//!   likewise yields another drive's path (or none). This one comparison therefore covers
//!   every ancestor, without opening each of them.
//!
//! The comparison ignores letter case the way NTFS does ([`fold`]): the profile path in the
//! registry and the names on disk may differ in case, and a case-only difference cannot move
//! the object out of the folders named (it can only name a sibling in a folder the user made
//! case-sensitive, inside the same parent). `\\?\` is stripped; a UNC or volume-GUID final path
//! is refused. One trailing separator is ignored. 8.3 short names cannot be compared without
//! asking the file system: the final path always has long names, so an expected path holding a
//! short name (`PROGRA~1`) never matches and is refused with a message saying so (setup plans
//! with long names only: the registry's profile path and the CLI's listing are long names).

use crate::path::{fold, WinPath};

/// `FILE_ATTRIBUTE_DIRECTORY`.
pub const ATTRIBUTE_DIRECTORY: u32 = 0x10;
/// `FILE_ATTRIBUTE_REPARSE_POINT`.
pub const ATTRIBUTE_REPARSE_POINT: u32 = 0x400;

/// What setup learnt from the handle it opened (`FILE_FLAG_OPEN_REPARSE_POINT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedObject {
    /// `FileAttributeTagInfo.FileAttributes`.
    pub attributes: u32,
    /// `FileAttributeTagInfo.ReparseTag` (0 when not a reparse point).
    pub reparse_tag: u32,
    /// `FileStandardInfo.NumberOfLinks`.
    pub links: u32,
    /// `GetFinalPathNameByHandleW(FILE_NAME_NORMALIZED | VOLUME_NAME_DOS)`, e.g. `\\?\C:\Users\me\src`.
    pub final_path: String,
}

/// Why setup leaves a grant undone. `Display` is one line naming the path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefusal {
    #[error("{path} is now a link, junction or other reparse point (tag {tag:#x}): a grant on it would not be what the listing showed")]
    ReparsePoint { path: WinPath, tag: u32 },
    #[error("{path} is a file with {links} names (hard links): its access list is shared by every name, some of which may lie outside the profile")]
    SeveralNames { path: WinPath, links: u32 },
    #[error("{path} uses the 8.3 short name `{short}`, which setup cannot compare with the name on disk ({actual})")]
    ShortName { path: WinPath, short: String, actual: String },
    #[error("{path} leads to {actual} on disk (a folder above it is a link or junction now)")]
    Elsewhere { path: WinPath, actual: String },
    #[error("{path}: the system reports its location as `{actual}`, which is not a path on a local drive")]
    NotOnDrive { path: WinPath, actual: String },
}

/// Decides whether the grant meant for `expected` may be written through the handle described
/// by `obj` (see the module documentation for each rule).
pub fn check_opened(expected: &WinPath, obj: &OpenedObject) -> Result<(), GrantRefusal> {
    if obj.attributes & ATTRIBUTE_REPARSE_POINT != 0 || obj.reparse_tag != 0 {
        return Err(GrantRefusal::ReparsePoint { path: expected.clone(), tag: obj.reparse_tag });
    }
    if obj.attributes & ATTRIBUTE_DIRECTORY == 0 && obj.links > 1 {
        return Err(GrantRefusal::SeveralNames { path: expected.clone(), links: obj.links });
    }
    same_location(expected, &obj.final_path)
}

/// Whether `final_path`, as `GetFinalPathNameByHandleW` reports it, is `expected`.
pub fn same_location(expected: &WinPath, final_path: &str) -> Result<(), GrantRefusal> {
    let not_on_drive = || GrantRefusal::NotOnDrive { path: expected.clone(), actual: final_path.to_string() };
    let actual = final_drive_path(final_path).ok_or_else(not_on_drive)?;
    if expected.drive().is_some() && fold(actual.as_str()) == fold(expected.as_str()) {
        return Ok(());
    }
    if let Some(short) = expected.short_name_component() {
        return Err(GrantRefusal::ShortName {
            path: expected.clone(),
            short: short.to_string(),
            actual: actual.to_string(),
        });
    }
    Err(GrantRefusal::Elsewhere { path: expected.clone(), actual: actual.to_string() })
}

/// The drive path in a final path: `\\?\C:\x` (or `C:\x`) without the verbatim prefix, read
/// exactly ([`WinPath::parse_exact`]: nothing stripped or resolved). `None` for UNC and
/// volume-GUID paths and anything else.
pub fn final_drive_path(final_path: &str) -> Option<WinPath> {
    let rest = final_path.strip_prefix(r"\\?\").unwrap_or(final_path);
    WinPath::parse_exact(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> WinPath {
        WinPath::parse_exact(s).unwrap()
    }

    fn folder(final_path: &str) -> OpenedObject {
        OpenedObject { attributes: ATTRIBUTE_DIRECTORY, reparse_tag: 0, links: 1, final_path: final_path.into() }
    }

    #[test]
    fn the_same_folder_passes_whatever_the_prefix_case_or_trailing_separator() {
        let want = p(r"C:\Users\me\src");
        for got in [
            r"\\?\C:\Users\me\src",
            r"\\?\c:\users\ME\Src",
            r"\\?\C:\Users\me\src\",
            r"C:\Users\me\src",
            r"\\?\C:/Users/me/src",
        ] {
            assert_eq!(check_opened(&want, &folder(got)), Ok(()), "{got}");
        }
        // NTFS's single-character upcase: non-ASCII letters compare without case too.
        assert_eq!(same_location(&p(r"C:\Users\José\Café"), r"\\?\C:\USERS\JOSÉ\CAFÉ"), Ok(()));
        assert_eq!(same_location(&p(r"D:\"), r"\\?\D:\"), Ok(()));
    }

    #[test]
    fn a_reparse_point_is_refused_even_at_the_expected_place() {
        let want = p(r"C:\Users\me\src");
        let junction = OpenedObject { reparse_tag: 0xA000_0003, attributes: ATTRIBUTE_DIRECTORY | 0x400, ..folder("") };
        let e =
            check_opened(&want, &OpenedObject { final_path: r"\\?\C:\Users\me\src".into(), ..junction }).unwrap_err();
        assert!(matches!(e, GrantRefusal::ReparsePoint { tag: 0xA000_0003, .. }), "{e}");
        assert!(e.to_string().starts_with(r"C:\Users\me\src is now a link, junction"));
        // The attribute alone is enough (a tag the call did not report).
        let bare = OpenedObject { attributes: 0x400, ..folder(r"\\?\C:\Users\me\src") };
        assert!(matches!(check_opened(&want, &bare), Err(GrantRefusal::ReparsePoint { tag: 0, .. })));
        // A symbolic link to a file.
        let link =
            OpenedObject { attributes: 0x20 | 0x400, reparse_tag: 0xA000_000C, ..folder(r"\\?\C:\Users\me\src") };
        assert!(matches!(check_opened(&want, &link), Err(GrantRefusal::ReparsePoint { .. })));
    }

    #[test]
    fn a_file_with_several_names_is_refused_a_folder_is_not() {
        let want = p(r"C:\Users\me\notes.txt");
        let file = |links| OpenedObject { attributes: 0x20, reparse_tag: 0, links, final_path: want.to_string() };
        assert_eq!(check_opened(&want, &file(1)), Ok(()));
        let e = check_opened(&want, &file(2)).unwrap_err();
        assert_eq!(e, GrantRefusal::SeveralNames { path: want.clone(), links: 2 });
        // A folder's link count is not about hard links (folders cannot have them).
        let dir = OpenedObject { links: 3, ..folder(want.as_str()) };
        assert_eq!(check_opened(&want, &dir), Ok(()));
    }

    #[test]
    fn an_ancestor_swapped_for_a_junction_shows_in_the_final_path() {
        // `C:\Users\me\work` became a junction to another user's profile: opening
        // `C:\Users\me\work\src` without following the last component still follows `work`.
        let want = p(r"C:\Users\me\work\src");
        let e = check_opened(&want, &folder(r"\\?\C:\Users\other\src")).unwrap_err();
        assert_eq!(e, GrantRefusal::Elsewhere { path: want.clone(), actual: r"C:\Users\other\src".into() });
        assert_eq!(
            e.to_string(),
            r"C:\Users\me\work\src leads to C:\Users\other\src on disk (a folder above it is a link or junction now)"
        );
        // A prefix of the expected path, or a longer path, is elsewhere too.
        assert!(matches!(same_location(&want, r"\\?\C:\Users\me\work"), Err(GrantRefusal::Elsewhere { .. })));
        assert!(matches!(same_location(&want, r"\\?\C:\Users\me\work\src\x"), Err(GrantRefusal::Elsewhere { .. })));
        assert!(matches!(same_location(&want, r"\\?\C:\Users\me\work\src2"), Err(GrantRefusal::Elsewhere { .. })));
        // Another drive (a volume mounted in a folder of the profile).
        assert!(matches!(same_location(&want, r"\\?\D:\src"), Err(GrantRefusal::Elsewhere { .. })));
    }

    #[test]
    fn final_paths_off_a_drive_or_not_exact_are_refused() {
        let want = p(r"C:\Users\me\src");
        for got in [
            r"\\?\UNC\server\share\src",
            r"\\?\Volume{00000000-0000-0000-0000-000000000000}\src",
            r"\\server\share\src",
            r"\Device\HarddiskVolume3\Users\me\src",
            r"\\?\C:\Users\me\src.",
            r"\\?\C:\Users\me\.\src",
            r"\\?\C:\Users\me\x\..\src",
            r"\\?\C:\Users\me\src:stream",
            "",
        ] {
            assert!(matches!(same_location(&want, got), Err(GrantRefusal::NotOnDrive { .. })), "{got}");
        }
    }

    #[test]
    fn a_short_name_in_the_expected_path_cannot_be_compared() {
        let want = p(r"C:\Users\LONGUS~1\src");
        let e = same_location(&want, r"\\?\C:\Users\longusername\src").unwrap_err();
        assert!(matches!(&e, GrantRefusal::ShortName { short, .. } if short == "LONGUS~1"), "{e}");
        // The same short name reported back by the system (no long name exists) matches.
        assert_eq!(same_location(&want, r"\\?\C:\Users\LONGUS~1\src"), Ok(()));
    }
}
