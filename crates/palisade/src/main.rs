//! `palisade`: run a command in an OS-enforced sandbox.
//!
//! Exit status of `palisade run`: the command's own exit code; 128+N if a signal N ended it;
//! 125 if Palisade itself failed (bad arguments or configuration, a protection that cannot be
//! enforced here, a setup step); 126 if the command cannot be executed; 127 if it was not found.

mod cli;

fn main() {
    #[cfg(unix)]
    fill_closed_stdio();
    std::process::exit(cli::main());
}

/// A standard stream the caller closed (`2>&-`) is opened on /dev/null: otherwise the next file
/// palisade opens (a lock, a record) would get that number, and its own messages, or the
/// command's inherited stdio, would land in it.
#[cfg(unix)]
fn fill_closed_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor table; open on a constant C string. A
        // descriptor opened here is the lowest free one, which is `fd` itself, and it is meant
        // to live for the whole process.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}
