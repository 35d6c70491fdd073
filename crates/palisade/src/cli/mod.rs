//! The command-line interface: parsing (`args.rs`), configuration loading (`load.rs`), and one
//! file per subcommand that calls the library and renders what it returns (`run.rs`,
//! `check.rs`, `policy.rs`, `setup.rs`, `cleanup.rs`, `mcp.rs`, `log.rs`; `audit.rs` writes the
//! audit log's lines). Errors are one line on stderr and exit
//! with 125. What needs the operating system (signal forwarding, host set-up, the user
//! database) is the library's: no `unsafe` here.

// Printing never panics: a closed stdout (`palisade policy | true`) or stderr must not turn the
// command's exit status into a panic's 101. What cannot be written is dropped.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod args;
mod audit;
mod check;
mod cleanup;
mod load;
mod log;
mod mcp;
mod policy;
mod run;
mod setup;
mod shell;
mod status;

use args::{Cli, Cmd};
use clap::Parser;
use palisade::exit_code;
use palisade::policy::config;

struct Failure {
    message: String,
    code: i32,
}

impl From<palisade::Error> for Failure {
    fn from(e: palisade::Error) -> Failure {
        Failure { code: e.exit_code(), message: e.to_string() }
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Failure {
        Failure { code: exit_code::PALISADE_ERROR, message: e.to_string() }
    }
}

fn fail(message: impl Into<String>) -> Failure {
    Failure { message: message.into(), code: exit_code::PALISADE_ERROR }
}

/// The CLI; `as_shell` for the `palisade-sh` entry point, which behaves as `palisade sh`.
pub fn main(as_shell: bool) -> i32 {
    // `palisade sh`'s arguments are the shell's, untouched (clap would take a `--` or `-h`).
    let mut argv = std::env::args_os();
    let _program = argv.next();
    if as_shell {
        let (result, json_status_wanted) = shell::shell(argv.collect());
        return finish(result, json_status_wanted);
    }
    let argv: Vec<_> = argv.collect();
    if argv.first().is_some_and(|a| a == "sh") {
        let (result, json_status_wanted) = shell::shell(argv[1..].to_vec());
        return finish(result, json_status_wanted);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    exit_code::PALISADE_ERROR
                } else {
                    0
                };
            }
            errln!("palisade: {} (see `palisade --help`)", one_line(&e));
            return exit_code::PALISADE_ERROR;
        }
    };
    let mut json_status_wanted = false;
    let result = match cli.command {
        Cmd::Run { policy, report, command } => {
            json_status_wanted = report.json_status;
            run::run(&policy, &report, command, "run")
        }
        Cmd::Sh { args } => {
            let (result, json_status) = shell::shell(args);
            json_status_wanted = json_status;
            result
        }
        Cmd::Check { policy, json, probe } => check::check(&policy, json, probe),
        Cmd::Policy { policy: args, json } => policy::show(&args, json),
        Cmd::Setup { uninstall, elevated, proxy_ports } => setup::setup(uninstall, elevated, &proxy_ports),
        Cmd::Mcp { policy } => mcp::serve(&policy),
        Cmd::Log { lines, json, path } => log::show(lines, json, path),
        Cmd::Cleanup => cleanup::cleanup(),
    };
    finish(result, json_status_wanted)
}

/// The exit status, with Palisade's own failure said in one line on stderr.
fn finish(result: Result<i32, Failure>, json_status_wanted: bool) -> i32 {
    match result {
        Ok(code) => code,
        Err(f) => {
            errln!("palisade: {}", f.message);
            if json_status_wanted {
                // The caller parses the last line of stderr: give it one even though the command
                // never ran (bad configuration, not found, a refused or failed setup).
                errln!(
                    "{}",
                    serde_json::json!({"exit_code": null, "signal": null, "status": f.code, "error": f.message, "layers": [], "notices": []})
                );
            }
            f.code
        }
    }
}

/// clap's message as one line, without its "error: " prefix: the lines before the usage (a
/// missing argument is named on the line after "the following required arguments were not
/// provided:"), joined, with clap's tip when it gives one.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts: Vec<&str> = Vec::new();
    let mut lines = text.lines();
    for l in lines.by_ref() {
        let l = l.trim();
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if !l.is_empty() {
            parts.push(l);
        }
    }
    // Continuation lines (a missing argument's name) join with a space, clap's tips with "; ".
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() {
            out.push_str(if part.starts_with("tip:") { "; " } else { " " });
        }
        out.push_str(part);
    }
    out = out.trim_start_matches("error: ").to_string();
    if out.is_empty() {
        out = "invalid arguments".into();
    }
    out
}
