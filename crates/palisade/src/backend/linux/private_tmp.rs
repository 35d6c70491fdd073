//! The command's private temporary folder, and what is left of it when a run is killed.
//!
//! Each command gets a `palisade-<random>` folder on the host (on /dev/shm when it is a tmpfs,
//! else in the usual temporary folder): its `tmp/` becomes `/tmp` (and `TMPDIR`) inside, `shm/`
//! becomes `/dev/shm`. It is recorded before it is made, in a file of the same name in the
//! `tmp/` folder of Palisade's per-user runtime folder, whose lines say
//!
//! * `dir <path>`: the folder (written first, before it exists);
//! * `owner <pid> <start>`: the palisade process (pid and start time, so a reused pid does not
//!   count as the owner);
//! * `inode <dev> <ino>`: the folder once made (removal checks it is still that directory);
//! * `sandbox <pid> <start>`: the sandbox's first process once started (a killed palisade
//!   leaves it running unless it asked for `kill_on_parent_death`);
//! * `mntns <ino>`: with `keep_processes`, the sandbox's mount namespace (processes may outlive
//!   both).
//!
//! The run removes its folder by handle when the command has ended (see `remove_tree`), then
//! the record. A record whose owner, sandbox and kept processes are all gone is a leftover:
//! `palisade cleanup` removes its folder (if it is still the recorded directory) and reports it
//! with its size; `palisade check` mentions leftovers; a finishing run does the same at most
//! every ten minutes. Nothing is looked at when a command starts.

use super::remove_tree::{self, Removed};
use super::sys;
use crate::error::Error;
use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Folder names start so (the record of a folder has the folder's name).
const PREFIX: &str = "palisade-";

/// Palisade's per-user runtime folder for these records: `$XDG_RUNTIME_DIR/palisade` when that
/// is set, else `/tmp/palisade-<uid>` (where the placeholder locks always are), made private.
/// (Unlike the placeholder locks, which every run must find in one place, a record found by a
/// later run with another environment only delays the clean-up of a leftover.)
fn runtime_dir() -> io::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .map(|p| p.join("palisade"))
        .unwrap_or_else(super::placeholders::state_dir_path);
    private_dir(base)
}

/// Where the records are: `tmp/` in Palisade's per-user runtime folder, private to the user.
fn records_dir() -> io::Result<PathBuf> {
    private_dir(runtime_dir()?.join("tmp"))
}

/// `dir`, made if missing, and refused unless it is a directory of this user that no one else
/// may enter (another user could have made it first).
fn private_dir(dir: PathBuf) -> io::Result<PathBuf> {
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("creating {}: {e}", dir.display()))),
    }
    let meta = fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != sys::geteuid() || meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "{} is not a private directory owned by this user; remove it",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The records folder, checked once per process (it is created private and stays so: only
/// this user can change it). Found again if it was removed since.
fn cached_records_dir() -> io::Result<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(d) = DIR.get() {
        if d.is_dir() {
            return Ok(d.clone());
        }
        return records_dir();
    }
    let d = records_dir()?;
    let _ = DIR.set(d.clone());
    Ok(d)
}

/// A process's state letter (field 3 of /proc/<pid>/stat) and start time (clock ticks after
/// boot, field 22): with the pid, the start time names one process even after the pid is reused.
fn state_and_start(stat: &str) -> Option<(char, u64)> {
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

fn start_time(pid: libc::pid_t) -> Option<u64> {
    state_and_start(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|(_, start)| start)
}

fn own_identity() -> (libc::pid_t, u64) {
    static ME: OnceLock<(libc::pid_t, u64)> = OnceLock::new();
    *ME.get_or_init(|| {
        let pid = std::process::id() as libc::pid_t;
        (pid, start_time(pid).unwrap_or(0))
    })
}

/// Appends a line to a record through its descriptor, kept open while the folder lives (one
/// `write` per line, none of the path lookups of opening it again).
fn append(mut file: &fs::File, record: &Path, line: &str) -> io::Result<()> {
    file.write_all(line.as_bytes()).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", record.display())))
}

/// The command's private temporary folder on the host, removed with everything in it (and its
/// record) once the command has ended.
pub struct PrivateTmp {
    dir: PathBuf,
    /// (device, inode) of `dir` as made.
    identity: (u64, u64),
    record: PathBuf,
    /// The record, open for appending.
    record_file: fs::File,
    /// With `keep_processes`: the sandbox's mount namespace, whose processes may still use the
    /// folder after the command (it then stays, recorded, until they are gone).
    kept_namespace: Option<u64>,
    /// Set by [`PrivateTmp::leave`]: not removed when dropped.
    left: bool,
}

impl PrivateTmp {
    pub fn create() -> Result<PrivateTmp, Error> {
        // On a tmpfs when there is one (creating and removing it costs a fifth of what it
        // does on a journaling filesystem, and the sandbox's /tmp is then memory-backed like
        // bubblewrap's --tmpfs), else in the usual temporary folder.
        let base = if is_tmpfs(Path::new("/dev/shm")) { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let mut rnd = [0u8; 8];
        // SAFETY: getrandom writes at most rnd.len() bytes into rnd.
        unsafe { libc::getrandom(rnd.as_mut_ptr().cast(), rnd.len(), 0) };
        let name = format!("{PREFIX}{}", rnd.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let dir = base.join(&name);
        if dir.as_os_str().as_bytes().contains(&b'\n') {
            return Err(Error::InvalidInput(format!("the temporary folder {} contains a line break", base.display())));
        }
        let record_err = |file: &Path, e: io::Error| Error::Io {
            context: format!("writing palisade's record of the private temporary folder {}", file.display()),
            source: e,
        };
        let records = cached_records_dir().map_err(|e| Error::Io {
            context: "preparing palisade's record of private temporary folders".into(),
            source: e,
        })?;
        let record = records.join(&name);
        // Write-ahead: the record exists before the folder does.
        let (pid, start) = own_identity();
        let record_file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&record)
            .and_then(|mut f| {
                f.write_all(format!("dir {}\nowner {pid} {start}\n", dir.display()).as_bytes()).map(|()| f)
            })
            .map_err(|e| {
                let _ = fs::remove_file(&record);
                record_err(&record, e)
            })?;
        let made = |p: &Path, e: io::Error| Error::Io {
            context: format!("creating the private temporary folder {}", p.display()),
            source: e,
        };
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&dir) {
            let _ = fs::remove_file(&record);
            return Err(made(&dir, e));
        }
        let meta = fs::symlink_metadata(&dir).map_err(|e| made(&dir, e))?;
        let t = PrivateTmp {
            dir,
            identity: (meta.dev(), meta.ino()),
            record,
            record_file,
            kept_namespace: None,
            left: false,
        };
        append(&t.record_file, &t.record, &format!("inode {} {}\n", meta.dev(), meta.ino()))
            .map_err(|e| record_err(&t.record, e))?;
        for d in [t.tmp_dir(), t.shm_dir()] {
            fs::DirBuilder::new().create(&d).map_err(|e| made(&d, e))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).map_err(|e| made(&d, e))?;
        }
        Ok(t)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub fn shm_dir(&self) -> PathBuf {
        self.dir.join("shm")
    }

    /// Leaves the folder (and its record) in place: the command may still be running.
    pub fn leave(mut self) {
        self.left = true;
    }

    /// Records the sandbox's first process (and, for `keep_processes`, its mount namespace):
    /// the folder is in use while they live, even if this process is killed.
    pub fn record_sandbox(&mut self, pid: libc::pid_t, mount_namespace: Option<u64>) -> io::Result<()> {
        self.kept_namespace = mount_namespace;
        let mut line = format!("sandbox {pid} {}\n", start_time(pid).unwrap_or(0));
        if let Some(ino) = mount_namespace {
            line.push_str(&format!("mntns {ino}\n"));
        }
        append(&self.record_file, &self.record, &line)
    }

    /// Removes the folder now: fast when the command left it empty (three `rmdir`s), else by
    /// handle. The record goes once the folder is gone; what could not be removed stays
    /// recorded for `palisade cleanup`.
    fn remove(&self) -> Removed {
        let empty = [self.tmp_dir(), self.shm_dir(), self.dir.clone()].iter().all(|d| fs::remove_dir(d).is_ok());
        let removed = if empty {
            Removed::default()
        } else {
            match remove_folder(&self.dir, self.identity) {
                Ok(r) => r.unwrap_or_default(),
                Err(e) => Removed { bytes: 0, left: vec![e.to_string()] },
            }
        };
        if removed.left.is_empty() {
            let _ = fs::remove_file(&self.record);
        }
        removed
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        // Processes kept after the command may still use their /tmp: the folder stays recorded,
        // and goes (cleanup, or a later run's look) once they are gone.
        if !self.kept_namespace.is_some_and(|ns| any_process_in(&[ns])) {
            self.remove();
        }
        // After the command, not before it: starting a command never looks at other records.
        if let Some(records) = self.record.parent() {
            sweep_occasionally(records);
        }
    }
}

/// How often a finishing run looks for folders of killed runs (`palisade cleanup` any time).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes leftovers (as `palisade cleanup` does) if nobody did for [`SWEEP_EVERY`]: one `stat`
/// of a marker file usually, so that killed runs' folders (memory, on /dev/shm) do not pile up
/// on hosts where nobody runs `palisade cleanup`.
fn sweep_occasionally(records: &Path) {
    let marker = records.join(".swept");
    let due = fs::metadata(&marker)
        .and_then(|m| m.modified())
        .map_or(true, |t| t.elapsed().map_or(true, |e| e >= SWEEP_EVERY));
    if due && fs::write(&marker, b"").is_ok() {
        let _ = remove_leftovers();
    }
}

/// Removes a recorded folder by handle if it is still the directory made (and this user's).
/// `Ok(None)`: it was gone already.
fn remove_folder(dir: &Path, identity: (u64, u64)) -> io::Result<Option<Removed>> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: not a recorded folder", dir.display())));
    };
    let name = CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "NUL in a recorded name"))?;
    remove_tree::remove_dir_tree(parent, &name, identity, sys::geteuid())
}

fn is_tmpfs(p: &Path) -> bool {
    const TMPFS_MAGIC: libc::c_long = 0x0102_1994;
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else { return false };
    // SAFETY: statfs fills the zeroed buffer we own; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0;
    // Writable by us (it is world-writable and sticky on every distribution that has it).
    ok && st.f_type as libc::c_long == TMPFS_MAGIC && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0
}

/// A record, as read back.
#[derive(Debug, Default, PartialEq, Eq)]
struct Record {
    dir: Option<PathBuf>,
    owner: Option<(libc::pid_t, u64)>,
    inode: Option<(u64, u64)>,
    sandbox: Option<(libc::pid_t, u64)>,
    mount_namespaces: Vec<u64>,
}

fn parse_record(text: &str) -> Record {
    let mut r = Record::default();
    let pair = |v: &str| -> Option<(libc::pid_t, u64)> {
        let (a, b) = v.split_once(' ')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else { continue };
        match key {
            "dir" => r.dir = Some(PathBuf::from(value)),
            "owner" => r.owner = pair(value),
            "inode" => r.inode = pair(value).map(|(d, i)| (d as u64, i)),
            "sandbox" => r.sandbox = pair(value),
            "mntns" => r.mount_namespaces.extend(value.parse::<u64>().ok()),
            _ => {}
        }
    }
    r
}

fn alive((pid, start): (libc::pid_t, u64)) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie (its parent was killed and nobody reaps it) runs nothing any more.
        Ok(stat) => state_and_start(&stat).is_some_and(|(state, s)| s == start && !matches!(state, 'Z' | 'X')),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        // Cannot tell (no /proc?): count it as alive; nothing is removed on a guess.
        Err(_) => true,
    }
}

/// Whether any process (that this user may inspect) is in one of these mount namespaces.
fn any_process_in(namespaces: &[u64]) -> bool {
    let Ok(procs) = fs::read_dir("/proc") else { return true };
    procs.flatten().any(|e| {
        e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && fs::metadata(e.path().join("ns/mnt")).is_ok_and(|m| namespaces.contains(&m.ino()))
    })
}

fn in_use(r: &Record) -> bool {
    r.owner.is_some_and(alive)
        || r.sandbox.is_some_and(alive)
        || (!r.mount_namespaces.is_empty() && any_process_in(&r.mount_namespaces))
}

/// A folder a killed run left behind.
#[derive(Debug)]
pub struct Leftover {
    pub dir: PathBuf,
    /// Bytes its files use (as far as this user can see, when only looked at).
    pub bytes: u64,
}

/// What [`remove_leftovers`] did.
#[derive(Debug, Default)]
pub struct LeftoverReport {
    pub removed: Vec<Leftover>,
    /// Folders of runs still going (or of their processes).
    pub in_use: usize,
    /// Records whose folder was already gone, or was no longer the recorded directory.
    pub stale_records: usize,
    /// What could not be removed (recorded still; cleanup tries again), one line each.
    pub failed: Vec<String>,
    /// Recorded folders found to be something else now (left alone; their records dropped).
    pub left_alone: Vec<String>,
}

fn records() -> io::Result<Vec<(PathBuf, Record)>> {
    let dir = records_dir()?;
    let mut out = Vec::new();
    for e in fs::read_dir(&dir)? {
        let e = e?;
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let Ok(text) = fs::read_to_string(e.path()) else { continue };
        out.push((e.path(), parse_record(&text)));
    }
    Ok(out)
}

/// Whether the record names a folder of its own name (records are named after their folder).
fn names_own_folder(record: &Path, r: &Record) -> Option<PathBuf> {
    let dir = r.dir.clone()?;
    let name = dir.file_name()?.to_str()?;
    let random = name.strip_prefix(PREFIX)?;
    let well_formed = random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit());
    (well_formed && dir.is_absolute() && dir.file_name() == record.file_name()).then_some(dir)
}

/// Removes the private temporary folders of runs that ended without removing them (killed),
/// and their records; folders of live runs stay.
pub fn remove_leftovers() -> io::Result<LeftoverReport> {
    let mut report = LeftoverReport::default();
    for (record, r) in records()? {
        if in_use(&r) {
            report.in_use += 1;
            continue;
        }
        let Some(dir) = names_own_folder(&record, &r) else {
            report.stale_records += 1;
            let _ = fs::remove_file(&record);
            continue;
        };
        let outcome = match r.inode {
            Some(identity) => remove_folder(&dir, identity),
            // Killed between making the folder and recording its inode: before the command
            // started, so it holds at most the two empty folders made then; rmdir removes only
            // empty directories, so nothing else can go.
            None => {
                let _ = fs::remove_dir(dir.join("tmp"));
                let _ = fs::remove_dir(dir.join("shm"));
                match fs::remove_dir(&dir) {
                    Ok(()) => Ok(Some(Removed::default())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is not as palisade made it (not empty); left alone", dir.display()),
                    )),
                }
            }
        };
        match outcome {
            Ok(None) => {
                report.stale_records += 1;
                let _ = fs::remove_file(&record);
            }
            Ok(Some(removed)) if removed.left.is_empty() => {
                let _ = fs::remove_file(&record);
                report.removed.push(Leftover { dir, bytes: removed.bytes });
            }
            Ok(Some(removed)) => report.failed.extend(removed.left),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // Not the folder palisade made: it stays, and the record names nothing of ours.
                report.stale_records += 1;
                report.left_alone.push(e.to_string());
                let _ = fs::remove_file(&record);
            }
            Err(e) => report.failed.push(format!("{}: {e}", dir.display())),
        }
    }
    Ok(report)
}

/// The leftover folders (of runs that no longer exist), with their sizes, without removing
/// anything (for `palisade check`).
pub fn leftovers() -> Vec<Leftover> {
    fn size(p: &Path) -> u64 {
        let Ok(m) = fs::symlink_metadata(p) else { return 0 };
        let own = m.blocks() * 512;
        if !m.is_dir() {
            return own;
        }
        fs::read_dir(p).map(|rd| rd.flatten().map(|e| size(&e.path())).sum::<u64>()).unwrap_or(0)
    }
    let Ok(all) = records() else { return Vec::new() };
    all.into_iter()
        .filter(|(_, r)| !in_use(r))
        .filter_map(|(record, r)| names_own_folder(&record, &r))
        .filter(|d| d.is_dir())
        .map(|dir| Leftover { bytes: size(&dir), dir })
        .collect()
}

/// A size for people: `512 B`, `12.3 MB`.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_a_reused_pid_is_not_the_owner() {
        let r = parse_record("dir /dev/shm/palisade-00\nowner 12 345\ninode 1 2\nsandbox 13 346\nmntns 99\n");
        assert_eq!(r.dir.as_deref(), Some(Path::new("/dev/shm/palisade-00")));
        assert_eq!((r.owner, r.inode, r.sandbox), (Some((12, 345)), Some((1, 2)), Some((13, 346))));
        assert_eq!(r.mount_namespaces, vec![99]);
        let me = own_identity();
        assert!(alive(me));
        assert!(!alive((me.0, me.1 + 1)), "same pid, another start time: another process");
        assert!(names_own_folder(Path::new("/x/palisade-01"), &r).is_none());
        assert!(names_own_folder(Path::new("/x/palisade-00"), &r).is_none(), "not a name palisade makes");
        let r = parse_record("dir /dev/shm/palisade-0123456789abcdef\n");
        assert!(names_own_folder(Path::new("/x/palisade-0123456789abcdef"), &r).is_some());
        let r = parse_record("dir palisade-0123456789abcdef\n");
        assert!(names_own_folder(Path::new("/x/palisade-0123456789abcdef"), &r).is_none(), "relative");
        assert_eq!(human_size(1_500_000), "1.5 MB");
        assert_eq!(
            state_and_start("7 (a) b) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 1"),
            Some(('Z', 4242))
        );
    }
}
