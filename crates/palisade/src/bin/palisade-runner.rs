//! `palisade-runner`: the elevated Windows mode's command runner. `palisade` starts it as a
//! sandbox account (`PalisadeOffline`/`PalisadeOnline`) with
//! `--pipe \\.\pipe\palisade-runner-<hex> --protocol N --setup-version N`; it is not meant to be
//! run by hand. Exit codes: 0 after reporting over the pipe, 2 bad command line, 3 version
//! mismatch, 4 pipe unusable, 125 on platforms without the elevated mode.

fn main() {
    std::process::exit(palisade::__private::runner_main());
}
