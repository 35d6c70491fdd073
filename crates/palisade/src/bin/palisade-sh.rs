//! `palisade-sh`: `palisade sh` as a program of its own, for tools that take a shell's path
//! (`SHELL=palisade-sh`, `subprocess.run(cmd, shell=True, executable="palisade-sh")`). Its
//! arguments are the shell's; Palisade's flags come from `PALISADE_SH_FLAGS` (see
//! docs/integrations.md). It shares the CLI's source with `palisade`.

#[path = "../cli/mod.rs"]
mod cli;

fn main() {
    // Before anything opens a file: see the function's documentation.
    palisade::caller::fill_closed_stdio();
    std::process::exit(cli::main(true));
}
