//! `palisade-bench`: how much time Palisade adds to starting a command, next to a plain spawn
//! and bubblewrap. A benchmark, not a test: it prints numbers and compares them with targets, but
//! never fails because of them. See bench/README.md. Linux only for now: on other systems it
//! builds (the workspace is checked for Windows and macOS) and says so when run.

#[cfg(target_os = "linux")]
mod bench;
#[cfg(target_os = "linux")]
mod cases;
#[cfg(target_os = "linux")]
mod denials;
#[cfg(target_os = "linux")]
mod nscost;
#[cfg(target_os = "linux")]
mod scratch;
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
mod stats;
#[cfg(target_os = "linux")]
mod steps;

#[cfg(target_os = "linux")]
fn main() {
    bench::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("palisade-bench: only Linux is supported for now");
    std::process::exit(2);
}
