//! `palisade`: run a command in an OS-enforced sandbox.
//!
//! Exit status of `palisade run`: the command's own exit code; 128+N if a signal N ended it;
//! 125 if Palisade itself failed (bad arguments or configuration, a protection that cannot be
//! enforced here, a setup step); 126 if the command cannot be executed; 127 if it was not found.

mod cli;

fn main() {
    // Before anything opens a file: see the function's documentation.
    palisade::caller::fill_closed_stdio();
    std::process::exit(cli::main(false));
}
