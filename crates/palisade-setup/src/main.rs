#[cfg(not(windows))]
fn main() {
    eprintln!("palisade-setup: the elevated setup exists only on Windows");
    std::process::exit(palisade_windows_elevated::setup_channel::exit::UNSUPPORTED);
}

#[cfg(windows)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fence = palisade_win32::fence::system();
    std::process::exit(palisade_setup::run::main_with_args(&args, fence.as_ref()));
}
