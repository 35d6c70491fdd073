//! Which console an unelevated command gets (issue 15, "console input injection").
//!
//! A process attached to a console can queue keystrokes into that console's input
//! (`WriteConsoleInputW` on a console input handle, or on `CONIN$` opened afresh); once palisade
//! exits, the user's shell reads them as if typed (Windows' TIOCSTI). A write-restricted token
//! does not stop this: console handles are not checked against the token, and the console
//! device grants `Everyone`, a restricting SID. So the command never shares palisade's console
//! and never holds a handle to it:
//!
//! * **Terminal**: palisade's stdin, stdout and stderr are all consoles and the command inherits
//!   all three: it runs in a pseudo console (ConPTY) of its own, which palisade feeds with what
//!   is typed and whose output palisade writes to its console. `CONIN$` inside is the pseudo
//!   console's input, which only the command's own keystrokes reach.
//! * **Hidden console** otherwise, and when a pseudo console cannot be made (Windows before
//!   10 1809, or Wine without one): a console of its own without a window
//!   (`CREATE_NO_WINDOW`). Each standard stream it would inherit that is one of palisade's
//!   consoles is given to it as a pipe that palisade relays ([`CommandConsole::Hidden`]'s
//!   `relay`), never as the console handle itself. Its price: no terminal (no colours through
//!   the console API, no line editing of its own), and Ctrl+C or `Child::signal` can no longer
//!   send Ctrl+Break into another console, so they end the command's process tree instead.
//!
//! What this cannot close: a command may `FreeConsole` and `AttachConsole(pid)` to the console
//! of a process of the user it can open; whether that needs an access the write-restricted
//! token lacks on the user's processes is checked only on a real Windows runner
//! (`windows_cases.rs`).

/// The command's console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandConsole {
    /// A pseudo console of its own; palisade's console is raw and relayed to it.
    PseudoConsole,
    /// A hidden console of its own; `relay[i]` (stdin, stdout, stderr) says that the stream is
    /// palisade's console and goes through a pipe palisade relays.
    Hidden { relay: [bool; 3] },
}

/// The command's console: `inherited` says which of its stdin, stdout and stderr it inherits
/// from palisade, `console` which of palisade's own are consoles, `pseudo_console` whether a
/// pseudo console could be made.
pub fn command_console(inherited: [bool; 3], console: [bool; 3], pseudo_console: bool) -> CommandConsole {
    if pseudo_console && inherited.iter().all(|i| *i) && console.iter().all(|c| *c) {
        return CommandConsole::PseudoConsole;
    }
    CommandConsole::Hidden { relay: [0, 1, 2].map(|i| inherited[i] && console[i]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [bool; 3] = [true, true, true];
    const NONE: [bool; 3] = [false, false, false];

    #[test]
    fn a_terminal_gets_a_pseudo_console() {
        assert_eq!(command_console(ALL, ALL, true), CommandConsole::PseudoConsole);
    }

    #[test]
    fn without_a_pseudo_console_no_console_handle_is_handed_over() {
        // Fail closed: every inherited console stream is relayed, none is passed on.
        assert_eq!(command_console(ALL, ALL, false), CommandConsole::Hidden { relay: ALL });
    }

    #[test]
    fn redirected_streams_keep_their_handles_and_consoles_are_relayed() {
        // `palisade run cmd > out.txt` from a terminal: stdin and stderr are the console.
        assert_eq!(
            command_console(ALL, [true, false, true], true),
            CommandConsole::Hidden { relay: [true, false, true] }
        );
        // The library with pipes (an agent): nothing is a console, nothing relayed, but the
        // command still gets a console of its own, not palisade's (the agent's terminal).
        assert_eq!(command_console(NONE, NONE, true), CommandConsole::Hidden { relay: NONE });
        assert_eq!(command_console(NONE, ALL, true), CommandConsole::Hidden { relay: NONE });
        // Only inherited streams are relayed: a piped stdin is palisade's own pipe.
        assert_eq!(
            command_console([false, true, true], ALL, true),
            CommandConsole::Hidden { relay: [false, true, true] }
        );
    }

    #[test]
    fn every_combination_hands_over_no_console() {
        for bits in 0u8..64 {
            let inherited = [bits & 1 != 0, bits & 2 != 0, bits & 4 != 0];
            let console = [bits & 8 != 0, bits & 16 != 0, bits & 32 != 0];
            for pc in [false, true] {
                match command_console(inherited, console, pc) {
                    CommandConsole::PseudoConsole => assert!(pc && inherited == ALL && console == ALL),
                    CommandConsole::Hidden { relay } => {
                        for i in 0..3 {
                            // Handed over as is: only what is not a console.
                            let handed_over = inherited[i] && !relay[i];
                            assert!(!(handed_over && console[i]), "{inherited:?} {console:?} {pc}");
                        }
                    }
                }
            }
        }
    }
}
