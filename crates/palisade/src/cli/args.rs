//! The command line: subcommands and flags (clap), with the help text that documents them.

use clap::{Args, Parser, Subcommand};
use palisade::{Mode, Network};
use std::ffi::OsString;
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit status of `palisade run`: the command's own; 128+N if signal N ended it; 125 if Palisade
failed (bad arguments or configuration, a protection this host cannot enforce, a setup step);
126 if the command cannot be executed; 127 if it was not found.

Configuration (lowest to highest): built-in defaults, ~/.config/palisade/config.toml,
<workspace>/.palisade/config.toml (may only tighten), command-line flags; all bounded by the
administrator's /etc/palisade/managed.toml. `palisade policy` shows the result and its sources.";

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Run a command so that it reads broadly, writes only inside the workspace, never touches \
             protected metadata (.git hooks and config, agent folders) and stays offline unless allowed.",
    after_help = AFTER_HELP
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Cmd,
}

#[derive(Subcommand)]
pub(super) enum Cmd {
    /// Run a command in the sandbox: `palisade run -- cargo test`.
    #[command(after_help = AFTER_HELP)]
    Run {
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        report: ReportArgs,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// A drop-in `sh` in the sandbox: `palisade sh -c 'CMD' [ARG0 ARGS...]` (also `palisade-sh`).
    ///
    /// Any sh arguments, passed to a real shell in the sandbox. Policy flags come from
    /// PALISADE_SH_FLAGS (`--mode read-only --status-fd 3`), the inner shell from
    /// PALISADE_SH_SHELL (default /bin/sh). See docs/integrations.md.
    #[command(disable_help_flag = true)]
    Sh {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "SH_ARGS")]
        args: Vec<OsString>,
    },
    /// Report which sandboxing mechanisms this host offers (by trying them) and what the
    /// effective policy will use.
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Windows, elevated mode: also prove the network fence by starting a runner as
        /// PalisadeOffline and making its fence probe (TCP connects to 192.0.2.1 and 2001:db8::1
        /// and to a loopback port that is not a proxy port, over IPv4 and IPv6, all must be
        /// blocked); the "network fence"
        /// line then says proven, FAIL (a connect got out) or unknown. Without it the line
        /// says whether the firewall rules and filters are in place. Elsewhere: no effect.
        #[arg(long)]
        probe: bool,
    },
    /// Print the effective policy and, for each value, the layer that set it.
    Policy {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// One-time host set-up, as root: where AppArmor restricts user namespaces, install a
    /// profile that lets Palisade's binary create them (as distributions do for bwrap).
    /// Windows, with --elevated: create the sandbox accounts of the elevated mode (asks for
    /// administrator approval once; see the README's Windows section).
    Setup {
        /// Remove what `setup` installed.
        #[arg(long)]
        uninstall: bool,
        /// Windows: set up (or with --uninstall remove) the elevated mode's accounts, network
        /// fence and read grants through `palisade-setup.exe`, started with UAC approval.
        #[arg(long)]
        elevated: bool,
        /// Windows, with --elevated: the loopback ports Palisade's proxy may use for
        /// `network = allow` (comma-separated; the proxied account's fence permits exactly
        /// these). Default: the ports the current setup recorded, else 47310-47313.
        #[arg(
            long,
            value_name = "PORT,...",
            value_delimiter = ',',
            requires = "elevated",
            conflicts_with = "uninstall"
        )]
        proxy_ports: Vec<u16>,
    },
    /// Serve the Model Context Protocol over stdin/stdout for an agent (`claude mcp add palisade --
    /// palisade mcp`): tools `run` (a command in the sandbox; a call may only narrow the
    /// policy), `policy` and `check`.
    Mcp {
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Show the last entries of the audit log (one per command Palisade ran or refused; see the
    /// README's "Audit log" section): time, exit status, duration, how it was run, the
    /// directory, the command line and its connections.
    Log {
        /// How many entries (the newest last).
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
        lines: usize,
        /// The entries as stored: one JSON object per line (docs/audit.schema.json).
        #[arg(long)]
        json: bool,
        /// Print the log's path and whether it is on, and nothing else.
        #[arg(long, conflicts_with = "json")]
        path: bool,
    },
    /// Remove what Palisade keeps on disk between commands (Windows: the ACEs recorded in
    /// %LOCALAPPDATA%\Palisade; Linux: placeholders of protected paths and the private
    /// temporary folders (/dev/shm/palisade-*) left by runs that were killed or by
    /// --keep-processes leftovers that have ended, and unused lock files). Safe to run again;
    /// what a running sandbox uses stays.
    Cleanup,
}

#[derive(Args, Clone, Default)]
pub(super) struct PolicyArgs {
    /// The workspace (writable in workspace-write mode). Default: the nearest directory, from the
    /// current one up, with `.palisade/config.toml` or a `.git` (never the home directory or
    /// /), else the current directory. The command still starts in the current directory.
    #[arg(long, value_name = "DIR")]
    pub(super) workspace: Option<PathBuf>,
    /// An extra writable root (repeatable).
    #[arg(long = "writable", value_name = "DIR")]
    pub(super) writable: Vec<PathBuf>,
    /// read-only, workspace-write (default) or full-access.
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub(super) mode: Option<Mode>,
    /// off (default), allow (only through Palisade's proxy, to the allowlist) or on.
    #[arg(long, value_name = "off|allow|on", value_parser = parse_network)]
    pub(super) network: Option<Network>,
    /// Let the command reach HOST through Palisade's proxy (repeatable; implies --network allow):
    /// example.com, *.example.com, example.com:8443, 203.0.113.7 or 203.0.113.0/24.
    #[arg(long = "allow-net", value_name = "HOST")]
    pub(super) allow_net: Vec<String>,
    /// Pass this environment variable even though its name looks like a secret (repeatable).
    #[arg(long = "keep-env", value_name = "NAME")]
    pub(super) keep_env: Vec<String>,
    /// Let processes the command starts outlive it.
    #[arg(long)]
    pub(super) keep_processes: bool,
    /// Write no audit log line for this command (refused when the administrator requires the log).
    #[arg(long)]
    pub(super) no_audit: bool,
}

/// How `palisade run` (and `palisade sh`, through PALISADE_SH_FLAGS) reports besides the
/// command's own output.
#[derive(Args, Clone, Default)]
pub(super) struct ReportArgs {
    /// Print a JSON line with the exit status and the enforcement layers to stderr at the end.
    #[arg(long)]
    pub(super) json_status: bool,
    /// Write the status record (JSON, docs/status.schema.json) to descriptor N, which the
    /// caller passed open (`3>status.json`), once at the end; the command never inherits it.
    #[arg(long, value_name = "N")]
    pub(super) status_fd: Option<i32>,
    /// Write the status record to PATH (replaced whole) at the end. Refused inside a writable
    /// root, where the command could replace it.
    #[arg(long, value_name = "PATH")]
    pub(super) status_file: Option<PathBuf>,
    /// Linux: report the writes and connections the kernel refused (one summary line on
    /// stderr, and the status record's `denials`), seen by a seccomp observer that lets the
    /// kernel decide. Costs time on write-heavy commands (see the README).
    #[arg(long)]
    pub(super) report_denials: bool,
    /// Do not print the denial summary line.
    #[arg(short, long)]
    pub(super) quiet: bool,
}

impl ReportArgs {
    pub(super) fn status_targets(&self) -> super::status::StatusTargets {
        super::status::StatusTargets { fd: self.status_fd, file: self.status_file.clone() }
    }
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s).ok_or_else(|| format!("unknown mode {s:?} (expected read-only, workspace-write or full-access)"))
}

fn parse_network(s: &str) -> Result<Network, String> {
    Network::parse(s).ok_or_else(|| format!("unknown network setting {s:?} (expected off, allow or on)"))
}
