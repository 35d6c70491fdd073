//! `palisade sh ARGS...` and the `palisade-sh` entry point: a drop-in for `sh`, so that a tool
//! that lets the user choose its shell (or runs `$SHELL -c`) is sandboxed by configuration
//! alone. The arguments are the shell's, passed untouched to a real shell started in the
//! sandbox exactly as `palisade run` starts a command: `-c CMD [ARG0 ARGS...]`, `-lc`, `-e`, a
//! script path, `--`, or nothing (an interactive shell when stdin is a terminal). The policy
//! comes from the usual configuration layers for the workspace found from the current
//! directory; `palisade run`'s flags come from `PALISADE_SH_FLAGS`, since a shell's path cannot
//! carry flags.

use super::args::{PolicyArgs, ReportArgs};
use super::{fail, run, Failure};
use clap::Parser;
use std::ffi::{OsStr, OsString};

/// Palisade's flags for `palisade sh`, whitespace-separated (no quoting).
const FLAGS_VAR: &str = "PALISADE_SH_FLAGS";
/// The shell started inside the sandbox (default: /bin/sh; Windows: `sh` on the PATH).
const SHELL_VAR: &str = "PALISADE_SH_SHELL";

/// The flags `PALISADE_SH_FLAGS` may hold: those of `palisade run`.
#[derive(Parser)]
#[command(name = "PALISADE_SH_FLAGS", no_binary_name = true, disable_help_flag = true, disable_version_flag = true)]
struct ShellFlags {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    report: ReportArgs,
}

/// Runs the shell with `sh_args` in the sandbox; returns the exit status to end with and
/// whether `--json-status` was asked for (its line then follows a refusal too).
pub(super) fn shell(sh_args: Vec<OsString>) -> (Result<i32, Failure>, bool) {
    let inner = match inner_shell() {
        Ok(s) => s,
        Err(f) => return (Err(f), false),
    };
    if super::load::nested_refusal().is_some() {
        // Inside a Palisade sandbox already (a sandboxed agent whose tools run `$SHELL -c`):
        // the outer sandbox's policy applies to everything started here, and a sandbox of
        // its own cannot be set up; run the shell directly, as `sh` would.
        return (run_directly(&inner, sh_args), false);
    }
    let flags = match flags_from_env() {
        Ok(f) => f,
        Err(f) => return (Err(f), false),
    };
    let mut command = vec![inner];
    command.extend(sh_args);
    (run::run(&flags.policy, &flags.report, command, "sh"), flags.report.json_status)
}

fn inner_shell() -> Result<OsString, Failure> {
    match std::env::var_os(SHELL_VAR).filter(|v| !v.is_empty()) {
        Some(s) if looks_like_palisade_sh(&s) => Err(fail(format!(
            "{SHELL_VAR}={} names palisade's own shell, which would start itself",
            s.to_string_lossy()
        ))),
        Some(s) => Ok(s),
        None if cfg!(windows) => Ok("sh".into()),
        None => Ok("/bin/sh".into()),
    }
}

fn looks_like_palisade_sh(s: &OsStr) -> bool {
    let name = std::path::Path::new(s).file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name == "palisade-sh"
}

fn flags_from_env() -> Result<ShellFlags, Failure> {
    let raw = match std::env::var_os(FLAGS_VAR) {
        None => String::new(),
        Some(v) => v.into_string().map_err(|_| fail(format!("{FLAGS_VAR} is not valid UTF-8")))?,
    };
    ShellFlags::try_parse_from(raw.split_whitespace())
        .map_err(|e| fail(format!("{FLAGS_VAR}={raw:?}: {}", super::one_line(&e))))
}

#[cfg(unix)]
fn run_directly(inner: &OsStr, sh_args: Vec<OsString>) -> Result<i32, Failure> {
    use std::os::unix::process::CommandExt;
    // exec only returns on failure; the shell then is this process, with its stdio and signals.
    let e = std::process::Command::new(inner).args(sh_args).exec();
    let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
    Err(Failure { code, message: format!("{}: {e}", inner.to_string_lossy()) })
}

#[cfg(not(unix))]
fn run_directly(inner: &OsStr, sh_args: Vec<OsString>) -> Result<i32, Failure> {
    let status = std::process::Command::new(inner).args(sh_args).status().map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
        Failure { code, message: format!("{}: {e}", inner.to_string_lossy()) }
    })?;
    Ok(status.code().unwrap_or(palisade::exit_code::PALISADE_ERROR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn flags_parse_as_run_flags() {
        let f = ShellFlags::try_parse_from("--mode read-only --status-fd 3 --writable /x".split_whitespace()).unwrap();
        assert_eq!(f.report.status_fd, Some(3));
        assert_eq!(f.policy.writable, vec![PathBuf::from("/x")]);
        assert!(ShellFlags::try_parse_from(["--bogus"]).is_err());
        assert!(ShellFlags::try_parse_from(["-c", "true"]).is_err());
    }

    #[test]
    fn palisade_sh_is_not_its_own_inner_shell() {
        assert!(looks_like_palisade_sh(OsStr::new("/usr/local/bin/palisade-sh")));
        assert!(looks_like_palisade_sh(OsStr::new("palisade-sh.exe")));
        assert!(!looks_like_palisade_sh(OsStr::new("/bin/bash")));
    }
}
