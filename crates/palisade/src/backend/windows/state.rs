//! Palisade's state folder (`%LOCALAPPDATA%\Palisade`): the SID registry (`sids.json`), the
//! record of the ACEs applied (`acl.json`) and the lock file that serialises every change to
//! them (`lock`). Also where Windows keeps the folders that must never become writable roots.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};

use palisade_windows_plan::acl::RecordedAcl;
use palisade_windows_plan::path::{LongPathResolver, ResolveError, WinPath};
use palisade_windows_plan::roots::SystemLayout;
use palisade_windows_plan::sid::SidRegistry;
use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Storage::FileSystem::{LockFileEx, LOCKFILE_EXCLUSIVE_LOCK};
use windows_sys::Win32::System::IO::OVERLAPPED;
use windows_sys::Win32::UI::Shell::{
    FOLDERID_LocalAppData, FOLDERID_Profile, FOLDERID_ProgramData, FOLDERID_ProgramFiles, FOLDERID_ProgramFilesX86,
    FOLDERID_UserProfiles, FOLDERID_Windows,
};

use palisade_win32::ffi::check;
use palisade_win32::system::known_folder_path;

use crate::error::Error;

/// `%LOCALAPPDATA%\Palisade`.
pub fn state_dir() -> Result<PathBuf, Error> {
    let base = known_folder_path(&FOLDERID_LocalAppData)
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from).filter(|p| p.is_absolute()))
        .ok_or_else(|| Error::Io {
            context: "finding the local application data folder for palisade's state".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "neither the known folder nor %LOCALAPPDATA% is set"),
        })?;
    Ok(base.join("Palisade"))
}

/// A path as the plan crate sees it.
pub fn win_path(p: &Path) -> Result<WinPath, Error> {
    WinPath::parse(&p.to_string_lossy()).map_err(|e| Error::InvalidInput(e.to_string()))
}

/// A plan path as Windows APIs take it: the plain form, or the `\\?\` form when it is too long
/// for the plain one.
pub fn api_path(p: &WinPath) -> PathBuf {
    let plain = p.without_stream().to_string();
    if plain.len() < 248 || plain.starts_with(r"\\?\") {
        return PathBuf::from(plain);
    }
    match plain.strip_prefix(r"\\") {
        Some(unc) => PathBuf::from(format!(r"\\?\UNC\{unc}")),
        None => PathBuf::from(format!(r"\\?\{plain}")),
    }
}

/// A path without the `\\?\` prefix when it does not need it (`cmd.exe` refuses such a current
/// directory, and programs print it in messages).
pub fn plain_path(p: &Path) -> PathBuf {
    match WinPath::parse(&p.to_string_lossy()) {
        Ok(w) if w.stream().is_none() => {
            let s = w.to_string();
            if s.len() < 248 {
                PathBuf::from(s)
            } else {
                p.to_path_buf()
            }
        }
        _ => p.to_path_buf(),
    }
}

/// Resolves paths on disk (8.3 names, links, junctions, letter case) with
/// `GetFinalPathNameByHandleW`, through `std::fs::canonicalize`.
pub struct DiskResolver;

impl LongPathResolver for DiskResolver {
    fn resolve_existing(&self, path: &WinPath) -> Result<Option<WinPath>, ResolveError> {
        match std::fs::canonicalize(api_path(path)) {
            Ok(real) => WinPath::parse(&real.to_string_lossy())
                .map(Some)
                .map_err(|e| ResolveError::Io { path: path.to_string(), reason: e.to_string() }),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound) || e.raw_os_error() == Some(3) => Ok(None),
            Err(e) => Err(ResolveError::Io { path: path.to_string(), reason: e.to_string() }),
        }
    }
}

/// Where Windows keeps what must never become a writable root, from the known-folder API.
pub fn system_layout(state: &Path) -> SystemLayout {
    let get = |id: &GUID| known_folder_path(id).and_then(|p| WinPath::parse(&p.to_string_lossy()).ok());
    let fallback = SystemLayout::typical(&std::env::var("USERNAME").unwrap_or_else(|_| "user".into()));
    let mut program_files: Vec<WinPath> =
        [&FOLDERID_ProgramFiles, &FOLDERID_ProgramFilesX86].into_iter().filter_map(get).collect();
    if program_files.is_empty() {
        program_files = fallback.program_files.clone();
    }
    program_files.dedup();
    SystemLayout {
        windows_dir: get(&FOLDERID_Windows).unwrap_or(fallback.windows_dir),
        program_files,
        program_data: get(&FOLDERID_ProgramData).or(fallback.program_data),
        users_dir: get(&FOLDERID_UserProfiles).unwrap_or(fallback.users_dir),
        profile: get(&FOLDERID_Profile).unwrap_or(fallback.profile),
        state_dir: WinPath::parse(&state.to_string_lossy()).ok(),
    }
}

/// The state folder, locked for this process until dropped (other palisade processes wait),
/// or opened for reading only (files are replaced atomically, so a reader needs no lock).
pub struct State {
    dir: PathBuf,
    _lock: Option<File>,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

impl State {
    /// Creates the folder if needed and takes the exclusive lock.
    pub fn lock(dir: &Path) -> Result<State, Error> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating palisade's state folder {}", dir.display())))?;
        let lock_path = dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(format!("opening {}", lock_path.display())))?;
        // SAFETY: an all-zero OVERLAPPED locks from offset 0; the handle is valid and open.
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        // SAFETY: as above; a blocking exclusive lock of the first byte, released when the
        // handle closes.
        check(unsafe { LockFileEx(file.as_raw_handle() as HANDLE, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &mut ov) })
            .map_err(io_err(format!("locking {}", lock_path.display())))?;
        Ok(State { dir: dir.to_path_buf(), _lock: Some(file) })
    }

    /// For reading what is recorded, without the lock (and without creating the folder).
    pub fn read_only(dir: &Path) -> State {
        State { dir: dir.to_path_buf(), _lock: None }
    }

    fn read(&self, name: &str) -> Result<Option<String>, Error> {
        let p = self.dir.join(name);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { context: format!("reading {}", p.display()), source: e }),
        }
    }

    /// Replaces a file atomically (write a temporary file, flush it, rename over).
    fn write(&self, name: &str, text: &str) -> Result<(), Error> {
        assert!(self._lock.is_some(), "palisade's state is written only under its lock");
        let p = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &p)
        };
        write().map_err(io_err(format!("writing {}", p.display())))
    }

    pub fn load_sids(&self) -> Result<SidRegistry, Error> {
        match self.read("sids.json")? {
            None => Ok(SidRegistry::new()),
            Some(t) => SidRegistry::from_json(&t)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", self.dir.join("sids.json").display()))),
        }
    }

    pub fn save_sids(&self, reg: &SidRegistry) -> Result<(), Error> {
        self.write("sids.json", &reg.to_json())
    }

    pub fn load_acl(&self) -> Result<RecordedAcl, Error> {
        match self.read("acl.json")? {
            None => Ok(RecordedAcl::new()),
            Some(t) => RecordedAcl::from_json(&t)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", self.dir.join("acl.json").display()))),
        }
    }

    pub fn save_acl(&self, rec: &RecordedAcl) -> Result<(), Error> {
        self.write("acl.json", &rec.to_json())
    }
}
