//! Shared helpers for Palisade's integration tests.
//!
//! A [`Fixture`] is a scratch layout made fresh for each test:
//!
//! * `ws`: the workspace (writable inside the sandbox);
//! * `outside`: a sibling of the workspace that the sandbox can *see* but must not change;
//! * `tmp_outside`: a folder under the host's real temporary directory (the sandbox has a
//!   private `/tmp`, so it should not even see it);
//! * `home`: a fake home with secret fixtures (`.ssh/id_rsa`, `.aws/credentials`, `.netrc`,
//!   `.docker/config.json`) and an ordinary file (`notes.txt`);
//! * `xdg`: an empty `XDG_CONFIG_HOME`, so the real user configuration never interferes;
//!   `XDG_STATE_HOME` is `<root>/state`, so the audit log goes there ([`Fixture::audit_log`]),
//!   not into the fake home that tests compare before and after;
//! * `m`: a unique marker, used in file contents, process names and socket names.
//!
//! Security tests assert side effects *outside* the sandbox with [`Snapshot`] (every file,
//! its metadata, contents and extended attributes), [`Decoy`] (a process the sandbox must not
//! touch) and [`pids_with`] (processes that outlived a command).
//!
//! The sandbox hides `/tmp`, `/var/tmp` and `/run`, so the scratch layout lives where the
//! sandbox can see it (see [`visible_base`]); set `PALISADE_TEST_DIR` to choose the place.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use palisade::{Policy, Sandbox};

/// The `palisade` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_palisade");

// ---------------------------------------------------------------------------------------------
// Randomness and markers

/// A random 64-bit number (from the kernel; tests run in parallel threads and processes).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).expect("reading /dev/urandom");
    u64::from_ne_bytes(b)
}

/// A unique marker such as `pal4f09c2d1e7a3b5c6`.
pub fn marker() -> String {
    format!("pal{:016x}", random_u64())
}

/// A unique number usable as a `sleep` argument and findable in `/proc/*/cmdline`.
pub fn sleep_marker() -> u64 {
    // 9 digits starting with 7: far longer than any test, and unlikely to occur by chance.
    700_000_000 + random_u64() % 99_999_999
}

// ---------------------------------------------------------------------------------------------
// Where scratch directories go

/// Paths the sandbox replaces or hides: a fixture there would be invisible inside, which
/// would make "cannot write outside" tests pass for the wrong reason.
fn hidden_inside(p: &Path) -> bool {
    let tmp = std::env::temp_dir();
    let tmp = tmp.canonicalize().unwrap_or(tmp);
    let hidden = ["/tmp", "/var/tmp", "/run", "/var/run", "/dev", "/proc", "/sys"];
    p.starts_with(&tmp) || hidden.iter().any(|h| p.starts_with(h))
}

fn usable_base(p: &Path) -> Option<PathBuf> {
    let p = p.canonicalize().ok()?;
    if hidden_inside(&p) {
        return None;
    }
    // Writable by this user? Try it.
    let probe = tempfile::Builder::new().prefix(".palisade-probe-").tempdir_in(&p).ok()?;
    drop(probe);
    Some(p)
}

/// A directory outside the sandbox's hidden trees that this user can write, or `None`.
/// Order: `$PALISADE_TEST_DIR`, cargo's `CARGO_TARGET_TMPDIR` (never the real home: tests must
/// not write there).
pub fn visible_base() -> Option<PathBuf> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(d) = std::env::var_os("PALISADE_TEST_DIR") {
            candidates.push(d.into());
        }
        candidates.push(PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
        let found = candidates.iter().find_map(|c| usable_base(c));
        if found.is_none() {
            eprintln!(
                "NOTE: no scratch directory visible inside the sandbox (tried {candidates:?}); using the host's \
                 temporary directory, which the sandbox hides. Tests that need a visible home or outside folder \
                 will fail: set PALISADE_TEST_DIR to a directory this user can write outside /tmp, /var/tmp and /run."
            );
        }
        found
    })
    .clone()
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|e| panic!("canonicalizing {}: {e}", p.display()))
}

// ---------------------------------------------------------------------------------------------
// The fixture

pub const SECRET_FILES: &[&str] = &[".ssh/id_rsa", ".aws/credentials", ".netrc", ".docker/config.json"];

pub struct Fixture {
    _root: tempfile::TempDir,
    _tmp_root: tempfile::TempDir,
    /// Whether `root` is visible inside the sandbox (not under /tmp and friends).
    pub visible: bool,
    pub root: PathBuf,
    pub ws: PathBuf,
    pub outside: PathBuf,
    pub tmp_outside: PathBuf,
    pub home: PathBuf,
    pub xdg: PathBuf,
    pub m: String,
}

impl Fixture {
    /// Workspace, outside folder and home side by side in a place the sandbox can see.
    pub fn new() -> Fixture {
        match visible_base() {
            Some(base) => Fixture::in_dir(&base, true),
            None => Fixture::in_dir(&std::env::temp_dir(), false),
        }
    }

    /// Everything under the host's temporary directory (workspaces under /tmp are common).
    pub fn in_tmp() -> Fixture {
        Fixture::in_dir(&std::env::temp_dir(), false)
    }

    fn in_dir(base: &Path, visible: bool) -> Fixture {
        let root_dir =
            tempfile::Builder::new().prefix("palisade-test-").tempdir_in(base).expect("creating a scratch dir");
        let tmp_root =
            tempfile::Builder::new().prefix("palisade-test-tmp-").tempdir().expect("creating a scratch dir in /tmp");
        let root = canonical(root_dir.path());
        let m = marker();
        let ws = root.join("ws");
        let outside = root.join("outside");
        let home = root.join("home");
        let xdg = root.join("xdg");
        let tmp_outside = canonical(tmp_root.path()).join("outside");
        for d in [&ws, &outside, &home, &xdg, &tmp_outside] {
            fs::create_dir_all(d).unwrap();
        }
        for o in [&outside, &tmp_outside] {
            fs::write(o.join("victim.txt"), format!("original-{m}\n")).unwrap();
            fs::create_dir(o.join("sub")).unwrap();
            fs::write(o.join("sub/inner.txt"), "inner\n").unwrap();
        }
        for f in SECRET_FILES {
            let p = home.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, format!("SECRET-{m}-{}\n", f.replace(['/', '.'], "_"))).unwrap();
        }
        fs::write(home.join("notes.txt"), format!("PUBLIC-{m}\n")).unwrap();
        fs::write(home.join(".profile"), "# fake profile\n").unwrap();
        Fixture { _root: root_dir, _tmp_root: tmp_root, visible, root, ws, outside, tmp_outside, home, xdg, m }
    }

    /// Fails (with the reason) unless the scratch layout is visible inside the sandbox.
    pub fn require_visible(&self) {
        assert!(
            self.visible,
            "this test needs a scratch directory the sandbox can see (not under /tmp, /var/tmp or /run); \
             set PALISADE_TEST_DIR to a directory this user can write elsewhere (e.g. a chmod 1777 target/tmp)"
        );
    }

    /// The secret string planted in a fixture file (`.ssh/id_rsa` → `SECRET-<m>-_ssh_id_rsa`).
    pub fn secret(&self, file: &str) -> String {
        format!("SECRET-{}-{}", self.m, file.replace(['/', '.'], "_"))
    }

    /// The environment every CLI run gets: the fake home, an empty config home, and the
    /// fixture's paths for scripts (`$PAL_WS`, `$PAL_OUT`, `$PAL_TOUT`, `$PAL_M`, `$PAL_PY`).
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let mut v: Vec<(OsString, OsString)> = vec![
            ("HOME".into(), self.home.clone().into()),
            ("XDG_CONFIG_HOME".into(), self.xdg.clone().into()),
            ("XDG_STATE_HOME".into(), self.root.join("state").into()),
            ("PAL_WS".into(), self.ws.clone().into()),
            ("PAL_OUT".into(), self.outside.clone().into()),
            ("PAL_TOUT".into(), self.tmp_outside.clone().into()),
            ("PAL_M".into(), self.m.clone().into()),
            ("LC_ALL".into(), "C".into()),
            ("RUST_BACKTRACE".into(), "1".into()),
        ];
        if let Some(py) = tool("python3") {
            v.push(("PAL_PY".into(), py.into()));
        }
        v
    }

    /// Where the CLI's audit log goes with the fixture's environment.
    pub fn audit_log(&self) -> PathBuf {
        self.root.join("state/palisade/audit.jsonl")
    }

    /// `palisade` with the fixture's environment, in the workspace (no arguments yet).
    pub fn palisade(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(&self.ws).envs(self.env()).stdin(Stdio::null());
        c
    }

    /// `palisade run --workspace <ws> <flags> -- <argv>`, ready to spawn.
    pub fn run_cmd(&self, flags: &[&str], argv: &[&str]) -> Command {
        let mut c = self.palisade();
        c.arg("run").arg("--workspace").arg(&self.ws).args(flags).arg("--").args(argv);
        c
    }

    pub fn run_flags(&self, flags: &[&str], argv: &[&str]) -> Output {
        self.run_cmd(flags, argv).output().expect("running palisade")
    }

    pub fn run(&self, argv: &[&str]) -> Output {
        self.run_flags(&[], argv)
    }

    /// `palisade run -- sh -c <script>`.
    pub fn sh(&self, script: &str) -> Output {
        self.run(&["sh", "-c", script])
    }

    pub fn sh_flags(&self, flags: &[&str], script: &str) -> Output {
        self.run_flags(flags, &["sh", "-c", script])
    }

    /// `palisade run -- python3 -c <script> <args>` (fails the test if python3 is missing).
    pub fn py(&self, script: &str, args: &[&str]) -> Output {
        self.py_flags(&[], script, args)
    }

    pub fn py_flags(&self, flags: &[&str], script: &str, args: &[&str]) -> Output {
        let py = require_tool("python3");
        let py = py.to_str().unwrap();
        let mut argv = vec![py, "-c", script];
        argv.extend_from_slice(args);
        self.run_flags(flags, &argv)
    }

    /// The library's default policy for this fixture.
    pub fn policy(&self) -> Policy {
        Policy::new(&self.ws, Some(&self.home))
    }

    pub fn sandbox(&self) -> Sandbox {
        Sandbox::new(self.policy()).unwrap_or_else(|e| panic!("Sandbox::new: {e}"))
    }

    // --- git on the host side ----------------------------------------------------------------

    /// Host-side git in the workspace, isolated from the real user's and system's config.
    pub fn git(&self, args: &[&str]) -> Output {
        self.git_in(&self.ws, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> Output {
        let git = require_tool("git");
        Command::new(git)
            .current_dir(dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.xdg)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Palisade Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Palisade Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env("LC_ALL", "C")
            .output()
            .expect("running git")
    }

    /// Host-side git that must succeed; returns trimmed stdout.
    pub fn git_ok(&self, args: &[&str]) -> String {
        let o = self.git(args);
        assert!(o.status.success(), "host git {args:?} failed: {}", show(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// `git init` with one commit, done on the host before the sandbox runs.
    pub fn git_init(&self) {
        self.git_ok(&["init", "-q", "-b", "main", "."]);
        fs::write(self.ws.join("README"), "hello\n").unwrap();
        self.git_ok(&["add", "README"]);
        self.git_ok(&["commit", "-q", "-m", "initial"]);
    }

    /// Environment variables for running git inside the sandbox (identity, no system config).
    pub fn git_env_script_prefix(&self) -> &'static str {
        "export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Agent GIT_AUTHOR_EMAIL=agent@example.invalid \
         GIT_COMMITTER_NAME=Agent GIT_COMMITTER_EMAIL=agent@example.invalid; "
    }
}

// ---------------------------------------------------------------------------------------------
// Output helpers

/// stdout and stderr together, lossily decoded.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A readable description of a run for assertion messages (long streams are cut).
pub fn show(o: &Output) -> String {
    fn cut(b: &[u8]) -> String {
        let s = String::from_utf8_lossy(b);
        if s.len() > 3000 {
            format!("{}…[{} bytes]", &s[..s.char_indices().nth(3000).map_or(s.len(), |(i, _)| i)], s.len())
        } else {
            s.into_owned()
        }
    }
    format!("{}\n--- stdout ---\n{}\n--- stderr ---\n{}", o.status, cut(&o.stdout), cut(&o.stderr))
}

/// Asserts that palisade itself started the command (not a 125 set-up failure) and it ended
/// normally; returns the exit code.
pub fn ran(o: &Output) -> i32 {
    let code = o.status.code().unwrap_or_else(|| panic!("palisade was killed by a signal: {}", show(o)));
    assert!(!stderr(o).starts_with("palisade:"), "palisade itself failed instead of running the command: {}", show(o));
    code
}

/// Asserts the run succeeded (exit 0).
pub fn ok(o: &Output) {
    assert_eq!(ran(o), 0, "the command failed: {}", show(o));
}

// ---------------------------------------------------------------------------------------------
// Tools

/// The absolute path of a host tool, preferring the system's copies (a user's pyenv shim under
/// /root is not usable by another user, nor inside the sandbox with a fake HOME).
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        ["/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin"].iter().map(PathBuf::from).collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|d| !d.to_string_lossy().contains("shims")));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| {
        let Ok(c) = CString::new(p.as_os_str().as_bytes()) else { return false };
        // SAFETY: access() on a NUL-terminated path.
        p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
    })
}

/// Like [`tool`], but fails the test with an explanation when the tool is missing.
pub fn require_tool(name: &str) -> PathBuf {
    tool(name).unwrap_or_else(|| {
        panic!("this test needs `{name}`, which is not installed on this host (scripts/deps.sh installs the test dependencies)")
    })
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------------------------
// Snapshots of a directory tree

/// Everything observable about one entry (but its access time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub content: Vec<u8>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A tree's entries by path relative to its root (the root itself is "").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub root: PathBuf,
    pub entries: BTreeMap<PathBuf, Entry>,
}

fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).unwrap();
        let mut val = vec![0u8; 65536];
        // SAFETY: buffers valid for their lengths; names are NUL-terminated.
        let n = unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        val.truncate(n.max(0) as usize);
        out.push((name.to_vec(), val));
    }
    out.sort();
    out
}

impl Snapshot {
    pub fn take(root: &Path) -> Snapshot {
        let mut entries = BTreeMap::new();
        fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
            // Not `root.join("")`: that adds a trailing `/`, and a FILE's snapshot came out empty.
            let p = if rel.as_os_str().is_empty() { root.to_path_buf() } else { root.join(rel) };
            let Ok(md) = fs::symlink_metadata(&p) else { return };
            let ft = md.file_type();
            let kind = if ft.is_symlink() {
                "symlink"
            } else if ft.is_dir() {
                "dir"
            } else if ft.is_file() {
                "file"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else if ft.is_char_device() {
                "chardev"
            } else {
                "other"
            };
            let content = match kind {
                "file" => fs::read(&p).unwrap_or_else(|e| format!("<unreadable: {e}>").into_bytes()),
                "symlink" => fs::read_link(&p).map(|t| t.as_os_str().as_bytes().to_vec()).unwrap_or_default(),
                _ => Vec::new(),
            };
            out.insert(
                rel.to_path_buf(),
                Entry {
                    kind,
                    mode: md.mode(),
                    uid: md.uid(),
                    gid: md.gid(),
                    ino: md.ino(),
                    nlink: md.nlink(),
                    size: if kind == "dir" { 0 } else { md.size() },
                    mtime: (md.mtime(), md.mtime_nsec()),
                    ctime: (md.ctime(), md.ctime_nsec()),
                    content,
                    xattrs: xattrs(&p),
                },
            );
            if kind == "dir" {
                let mut names: Vec<OsString> = fs::read_dir(&p)
                    .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
                    .unwrap_or_default();
                names.sort();
                for n in names {
                    walk(root, &rel.join(n), out);
                }
            }
        }
        walk(root, Path::new(""), &mut entries);
        Snapshot { root: root.to_path_buf(), entries }
    }

    /// The differences between two snapshots of the same tree, one line each.
    pub fn diff(&self, after: &Snapshot) -> Vec<String> {
        let mut d = Vec::new();
        for (p, e) in &self.entries {
            match after.entries.get(p) {
                None => d.push(format!("removed: {}", p.display())),
                Some(a) if a != e => {
                    let mut what = Vec::new();
                    if a.kind != e.kind {
                        what.push(format!("kind {} -> {}", e.kind, a.kind));
                    }
                    if a.content != e.content {
                        what.push(format!(
                            "content {:?} -> {:?}",
                            String::from_utf8_lossy(&e.content),
                            String::from_utf8_lossy(&a.content)
                        ));
                    }
                    if a.mode != e.mode {
                        what.push(format!("mode {:o} -> {:o}", e.mode, a.mode));
                    }
                    if (a.uid, a.gid) != (e.uid, e.gid) {
                        what.push("owner".into());
                    }
                    if a.ino != e.ino {
                        what.push("inode (replaced)".into());
                    }
                    if a.nlink != e.nlink {
                        what.push(format!("link count {} -> {}", e.nlink, a.nlink));
                    }
                    if a.mtime != e.mtime {
                        what.push("mtime".into());
                    }
                    if a.ctime != e.ctime {
                        what.push("ctime (metadata changed)".into());
                    }
                    if a.xattrs != e.xattrs {
                        what.push("xattrs".into());
                    }
                    if a.size != e.size {
                        what.push(format!("size {} -> {}", e.size, a.size));
                    }
                    d.push(format!("changed: {} ({})", p.display(), what.join(", ")));
                }
                _ => {}
            }
        }
        for (p, a) in &after.entries {
            if !self.entries.contains_key(p) {
                d.push(format!("created: {} ({}, {:?})", p.display(), a.kind, String::from_utf8_lossy(&a.content)));
            }
        }
        d
    }

    /// Fails if the tree changed since this snapshot.
    pub fn assert_unchanged(&self, what: &str, o: &Output) {
        let after = Snapshot::take(&self.root);
        let d = self.diff(&after);
        assert!(
            d.is_empty(),
            "SANDBOX ESCAPE: {what}: {} changed on the host:\n  {}\nrun: {}",
            self.root.display(),
            d.join("\n  "),
            show(o)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Pids of processes whose command line contains `needle` (not this test process).
pub fn pids_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else { continue };
        // Zombies have an empty command line; only living processes count.
        if cmdline.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits (bounded, polling) for the processes matching `needle` to be gone; returns the
/// survivors. The kernel needs a moment to finish killing a pid namespace's processes.
pub fn survivors(needle: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = pids_with(needle);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills every process matching `needle` (clean-up after tests that expect survivors).
pub fn kill_all_with(needle: &str) {
    for pid in pids_with(needle) {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Kills the processes matching a needle when dropped (so failing tests leave nothing behind).
pub struct KillOnDrop(pub String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_all_with(&self.0);
        // What they kept on the host (a --keep-processes sandbox's private temporary folder in
        // /dev/shm) stays theirs until they are gone: then `palisade cleanup` removes it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pids_with(&self.0).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ =
            Command::new(BIN).arg("cleanup").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// Fields of /proc/<pid>/status.
pub fn proc_status(pid: i32) -> Option<BTreeMap<String, String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(
        s.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// A process started by the test outside the sandbox, which the sandbox must not touch.
pub struct Decoy {
    pub child: std::process::Child,
    pub pid: i32,
    pub tag: String,
}

impl Decoy {
    /// `sleep <unique number>`, started outside the sandbox.
    pub fn start() -> Decoy {
        let n = sleep_marker();
        let child = Command::new("sleep")
            .arg(n.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the decoy");
        let pid = child.id() as i32;
        // Make sure it is `sleep` (exec done) before the sandbox tries anything.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default().starts_with(b"sleep") {
            assert!(Instant::now() < deadline, "the decoy did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Decoy { child, pid, tag: n.to_string() }
    }

    /// Fails unless the decoy is alive, running (not stopped), untraced, with no signal pending.
    /// A signal sent before this check is either pending (visible in SigPnd/ShdPnd) or has
    /// already acted (dead, zombie or stopped), so no waiting is needed.
    pub fn assert_untouched(&mut self, what: &str, o: &Output) {
        let exited = self.child.try_wait().expect("try_wait on the decoy");
        assert!(
            exited.is_none(),
            "SANDBOX ESCAPE: {what}: the decoy (pid {}) was killed: {exited:?}\nrun: {}",
            self.pid,
            show(o)
        );
        let st = proc_status(self.pid)
            .unwrap_or_else(|| panic!("SANDBOX ESCAPE: {what}: decoy /proc entry gone\nrun: {}", show(o)));
        let state = st.get("State").cloned().unwrap_or_default();
        assert!(
            state.starts_with('S') || state.starts_with('R'),
            "SANDBOX ESCAPE: {what}: decoy is in state {state:?} (stopped, traced or dying)\nrun: {}",
            show(o)
        );
        assert_eq!(
            st.get("TracerPid").map(String::as_str),
            Some("0"),
            "SANDBOX ESCAPE: {what}: decoy is traced\nrun: {}",
            show(o)
        );
        for k in ["SigPnd", "ShdPnd"] {
            let v = u64::from_str_radix(st.get(k).map(String::as_str).unwrap_or("0"), 16).unwrap_or(0);
            assert_eq!(v, 0, "SANDBOX ESCAPE: {what}: decoy has pending signals ({k} = {v:x})\nrun: {}", show(o));
        }
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Misc

/// Reads whatever is available on a non-blocking descriptor right now.
pub fn read_available(fd: std::os::fd::RawFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a stack buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    out
}

/// `p` as a `&str` (test paths are ASCII).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

pub fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

// ---------------------------------------------------------------------------------------------
// Skips

/// Whether a skip that this kind of machine should never need fails the test instead
/// (`PALISADE_TEST_STRICT=1`, which `scripts/test.sh` sets in CI).
pub fn strict() -> bool {
    std::env::var_os("PALISADE_TEST_STRICT").is_some_and(|v| v == "1")
}

fn skip_line(reason: &str) -> String {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("SKIPPED: {test}: {reason}");
    // Straight to the descriptor: the harness captures (and, for a passing test, discards)
    // what `eprintln!` prints, and a skip must be seen and counted (scripts/test.sh).
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
    line
}

/// The test cannot run here for `reason` and returns: reported on stderr past the harness's
/// capture, counted by `scripts/test.sh`, and a failure in strict mode (CI), where every machine
/// has what the test needs.
pub fn skip(reason: &str) {
    let line = skip_line(reason);
    assert!(
        !strict(),
        "refused skip ({line}): PALISADE_TEST_STRICT=1, and this machine should be able to run this test"
    );
}

/// Like [`skip`], but allowed in strict mode: the test is about what another pass runs (a
/// root-only case in the unprivileged pass) or about a host feature some machines of this kind
/// lack and that Palisade cannot provide. `reason` says which.
pub fn skip_expected(reason: &str) {
    skip_line(reason);
}

/// A sandbox in Landlock-only mode (no namespaces; as root too), with `report_denials` as given,
/// or None after [`skip`] when this host cannot give that mode.
pub fn landlock_only_sandbox(policy: palisade::Policy, report_denials: bool) -> Option<palisade::Sandbox> {
    let options = palisade::SandboxOptions {
        landlock_only: true,
        accept_unprotected_paths: true,
        landlock_only_as_root: true,
        report_denials,
        ..Default::default()
    };
    match palisade::Sandbox::with_options(policy, options) {
        Ok(s) => Some(s),
        Err(e) => {
            skip(&format!("Landlock-only mode is not available here: {e}"));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Listeners

/// What connections are queued on a unix listener right now (non-blocking), with what each
/// sent: a connection a sandboxed command made has already completed by the time it ended.
pub fn accepted_unix(l: &std::os::unix::net::UnixListener) -> Vec<String> {
    use std::io::ErrorKind;
    l.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    loop {
        match l.accept() {
            Ok((mut c, _)) => {
                c.set_nonblocking(true).unwrap();
                let mut b = Vec::new();
                let _ = c.read_to_end(&mut b);
                got.push(format!("{:?}", String::from_utf8_lossy(&b)));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return got,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// The host's address on the interface of its default route (IPv4), for a listener reached by
/// the network rather than the loopback. No packet is sent: connecting a UDP socket only picks
/// the route and its source address.
pub fn host_ipv4_address() -> String {
    let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    match u.connect("192.0.2.1:9").and_then(|_| u.local_addr()) {
        Ok(a) if !a.ip().is_loopback() && !a.ip().is_unspecified() => a.ip().to_string(),
        other => panic!("this host has no non-loopback IPv4 address to listen on ({other:?})"),
    }
}
