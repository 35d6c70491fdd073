//! Absolute Windows paths: the one [`WinPath`] type of `palisade-windows-plan`, re-exported
//! under the path this crate has always offered.
//!
//! The elevated setup deals with paths the operating system reported (known folders, directory
//! listings) and must plan with the name on disk: it parses them with
//! [`WinPath::parse_exact`], and [`WinPath::join`] refuses names Windows would change.
//! Comparison ignores letter case like NTFS's upcase table ([`fold`]).

pub use palisade_windows_plan::path::{fold, PathError as WinPathError, WinPath};
