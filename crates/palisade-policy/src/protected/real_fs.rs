//! [`RealFs`]: the [`FsView`] of the real filesystem.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{FsView, Kind, MAX_SMALL_FILE};

/// The real filesystem, through `std::fs` (links are never followed at the final component).
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl FsView for RealFs {
    fn kind(&self, path: &Path) -> Kind {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => Kind::Symlink,
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(_) => Kind::File,
            Err(_) => Kind::Missing,
        }
    }

    fn list_dir(&self, path: &Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(path) else {
            return Vec::new();
        };
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    fn read_small(&self, path: &Path) -> Option<String> {
        if !std::fs::symlink_metadata(path).ok()?.is_file() {
            return None;
        }
        let mut f = std::fs::File::open(path).ok()?;
        // Into a fixed buffer (read_to_end would grow it from 32 bytes, one read each time).
        let mut buf = [0u8; 4096];
        let mut len = 0;
        while len < buf.len() {
            match f.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        if len < buf.len() {
            return Some(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        // A git config with many remotes and branches, or a long `.gitmodules`: a setting past
        // the first 4 KiB (an `[include]` at the end) must not go unseen.
        let mut all = buf.to_vec();
        (&mut f).take(MAX_SMALL_FILE as u64).read_to_end(&mut all).ok()?;
        Some(String::from_utf8_lossy(&all).into_owned())
    }

    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path).ok()
    }
}
