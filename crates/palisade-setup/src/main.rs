#[cfg(not(windows))]
fn main() {
    eprintln!("palisade-setup: the elevated setup exists only on Windows");
    std::process::exit(125);
}

#[cfg(windows)]
fn main() {
    eprintln!("palisade-setup: not implemented yet");
    std::process::exit(125);
}
