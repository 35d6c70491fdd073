//! The command's program and arguments: looked up in the command's PATH before anything is set
//! up (so "not found" and "not executable" come first), turned into the NUL-terminated strings
//! and pointer arrays `execve` takes, and, when `execve` fails inside, explained.

use crate::error::Error;
use crate::spec::CommandSpec;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub fn cstring(p: impl AsRef<OsStr>) -> Result<CString, Error> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| Error::InvalidInput(format!("{:?} contains a NUL byte", p.as_ref())))
}

/// Looks the program up in the command's PATH (as the shell would), so that "not found" and
/// "not executable" are reported before anything is set up.
pub fn resolve(program: &OsStr, env: &[(OsString, OsString)]) -> Result<PathBuf, Error> {
    let name = Path::new(program);
    let check = |p: &Path| -> Option<Result<PathBuf, Error>> {
        let meta = std::fs::metadata(p).ok()?;
        if meta.is_dir() {
            return Some(Err(Error::NotExecutable(format!("{}: is a directory", p.display()))));
        }
        let c = CString::new(p.as_os_str().as_bytes()).ok()?;
        // SAFETY: access() on a NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            return Some(Err(Error::NotExecutable(format!("{}: permission denied", p.display()))));
        }
        Some(Ok(p.to_path_buf()))
    };
    if program.as_bytes().contains(&b'/') {
        return check(name).unwrap_or_else(|| Err(Error::NotFound(name.display().to_string())));
    }
    if program.is_empty() {
        return Err(Error::NotFound("(empty program name)".into()));
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = None;
    for dir in std::env::split_paths(&path) {
        match check(&dir.join(name)) {
            Some(Ok(p)) => return Ok(p),
            Some(Err(e)) => {
                denied.get_or_insert(e);
            }
            None => {}
        }
    }
    Err(denied.unwrap_or_else(|| Error::NotFound(name.display().to_string())))
}

/// The program's path, its arguments and the environment as the NUL-terminated strings
/// `execve` takes. The child's pointer arrays point into them: this value must outlive the
/// child's use of them (until it has exec'd).
pub struct ExecArgs {
    pub program: CString,
    argv: Vec<CString>,
    envs: Vec<CString>,
}

impl ExecArgs {
    pub fn new(program: &Path, spec: &CommandSpec, env: &[(OsString, OsString)]) -> Result<ExecArgs, Error> {
        let argv: Vec<CString> = std::iter::once(cstring(&spec.program)?)
            .chain(spec.args.iter().map(cstring).collect::<Result<Vec<_>, _>>()?)
            .collect();
        let envs: Vec<CString> = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone().into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv)
                    .map_err(|_| Error::InvalidInput(format!("environment variable {k:?} contains a NUL byte")))
            })
            .collect::<Result<_, _>>()?;
        Ok(ExecArgs { program: cstring(program)?, argv, envs })
    }

    /// The null-terminated pointer arrays of the arguments and of the environment.
    pub fn pointers(&self) -> (Vec<*const libc::c_char>, Vec<*const libc::c_char>) {
        let ptrs =
            |v: &[CString]| v.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>();
        (ptrs(&self.argv), ptrs(&self.envs))
    }
}

/// Why a program found on the host was "not found" by `execve` inside the sandbox: its `#!`
/// interpreter is missing, or the sandbox hides the file (its `/tmp`, `/var/tmp` and `/run` are
/// private). Empty when the host does not have it either.
pub fn why_missing_inside(program: &Path) -> String {
    let Ok(mut f) = File::open(program) else { return String::new() };
    let mut head = [0u8; 256];
    let n = io::Read::read(&mut f, &mut head).unwrap_or(0);
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let interp = String::from_utf8_lossy(line);
        if let Some(interp) = interp.split_whitespace().next() {
            if !Path::new(interp).exists() {
                return format!(" (its interpreter {interp}, named on its #! line, does not exist)");
            }
        }
    }
    " (it exists on the host, but not inside the sandbox: /tmp, /var/tmp and /run are private there, \
     or its interpreter or loader is hidden)"
        .into()
}
