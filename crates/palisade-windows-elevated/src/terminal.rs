//! The CLI's side of a command run in a pseudo console: whether to ask the runner for one, the
//! console modes for the command's life, the window's size, and the typed text as UTF-8.
//!
//! A command gets a terminal when palisade's own standard input, output and error are all
//! consoles and the command inherits all three. Standard error counts too although the brief
//! rule is "input and output": a pseudo console has one output, so with `2>file` the command's
//! errors would land on the screen instead of in the file; such a command keeps its pipes.

use crate::protocol::TtySize;

/// `ENABLE_PROCESSED_INPUT`: the console handles Ctrl+C (a signal) and editing keys itself.
pub const ENABLE_PROCESSED_INPUT: u32 = 0x0001;
/// `ENABLE_LINE_INPUT`: reads return whole lines.
pub const ENABLE_LINE_INPUT: u32 = 0x0002;
/// `ENABLE_ECHO_INPUT`: the console echoes typed characters.
pub const ENABLE_ECHO_INPUT: u32 = 0x0004;
/// `ENABLE_VIRTUAL_TERMINAL_INPUT`: keys arrive as VT sequences (arrows as `ESC [ A`).
pub const ENABLE_VIRTUAL_TERMINAL_INPUT: u32 = 0x0200;
/// `ENABLE_VIRTUAL_TERMINAL_PROCESSING` (output): VT sequences are interpreted, not printed.
pub const ENABLE_VIRTUAL_TERMINAL_PROCESSING: u32 = 0x0004;

/// Whether the command gets a pseudo console: `inherited` says which of its stdin, stdout and
/// stderr it inherits from palisade, `console` which of palisade's own are consoles.
pub fn wants_terminal(inherited: [bool; 3], console: [bool; 3]) -> bool {
    inherited.iter().all(|i| *i) && console.iter().all(|c| *c)
}

/// The input mode while the command runs: raw (no line editing, echo or Ctrl+C handling by the
/// console, so Ctrl+C reaches the command as byte 0x03 through its pseudo console) with keys as
/// VT sequences. Other bits (quick edit, insert mode) are kept.
pub fn raw_input_mode(original: u32) -> u32 {
    (original & !(ENABLE_PROCESSED_INPUT | ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT)) | ENABLE_VIRTUAL_TERMINAL_INPUT
}

/// The output mode while the command runs: the pseudo console's output is VT.
pub fn vt_output_mode(original: u32) -> u32 {
    original | ENABLE_VIRTUAL_TERMINAL_PROCESSING
}

/// The visible window's size from `CONSOLE_SCREEN_BUFFER_INFO.srWindow` (inclusive corners);
/// `None` for a nonsensical rectangle.
pub fn window_size(left: i16, top: i16, right: i16, bottom: i16) -> Option<TtySize> {
    let cols = i32::from(right) - i32::from(left) + 1;
    let rows = i32::from(bottom) - i32::from(top) + 1;
    if cols < 1 || rows < 1 {
        return None;
    }
    Some(TtySize { cols: cols.min(i32::from(u16::MAX)) as u16, rows: rows.min(i32::from(u16::MAX)) as u16 })
}

/// Typed text arrives as UTF-16 (`ReadConsoleW`) in reads that may split a surrogate pair; the
/// pseudo console takes UTF-8. Keeps a high surrogate at the end of one read for the next.
#[derive(Debug, Default)]
pub struct Utf16ToUtf8 {
    pending_high: Option<u16>,
}

impl Utf16ToUtf8 {
    /// The UTF-8 for `units`; an unpaired surrogate becomes U+FFFD.
    pub fn push(&mut self, units: &[u16]) -> Vec<u8> {
        let mut all: Vec<u16> = self.pending_high.take().into_iter().collect();
        all.extend_from_slice(units);
        if let Some(&last) = all.last() {
            if (0xD800..0xDC00).contains(&last) {
                self.pending_high = all.pop();
            }
        }
        char::decode_utf16(all.iter().copied())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
            .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_only_when_everything_is_an_inherited_console() {
        assert!(wants_terminal([true; 3], [true; 3]));
        for i in 0..3 {
            let mut inherited = [true; 3];
            inherited[i] = false;
            assert!(!wants_terminal(inherited, [true; 3]), "stdio {i} not inherited");
            let mut console = [true; 3];
            console[i] = false;
            assert!(!wants_terminal([true; 3], console), "stdio {i} not a console");
        }
        assert!(!wants_terminal([false; 3], [false; 3]));
    }

    #[test]
    fn modes_for_the_commands_life() {
        // conhost's default input mode: processed, line, echo, window, mouse, insert, quick edit,
        // extended flags.
        let default_in = 0x01f7;
        let raw = raw_input_mode(default_in);
        assert_eq!(raw & (ENABLE_PROCESSED_INPUT | ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT), 0);
        assert_ne!(raw & ENABLE_VIRTUAL_TERMINAL_INPUT, 0);
        assert_eq!(raw & 0x01f0, 0x01f0, "other bits are kept");
        assert_eq!(raw_input_mode(raw), raw);
        assert_eq!(vt_output_mode(0x0003), 0x0007);
        assert_eq!(vt_output_mode(0x0007), 0x0007);
    }

    #[test]
    fn window_sizes() {
        assert_eq!(window_size(0, 0, 119, 29), Some(TtySize { cols: 120, rows: 30 }));
        assert_eq!(window_size(0, 270, 79, 294), Some(TtySize { cols: 80, rows: 25 }));
        assert_eq!(window_size(5, 5, 4, 10), None);
        assert_eq!(window_size(0, 0, 0, 0), Some(TtySize { cols: 1, rows: 1 }));
        assert_eq!(window_size(i16::MIN, 0, i16::MAX, 0).unwrap().cols, u16::MAX);
    }

    #[test]
    fn typed_text_becomes_utf8_across_reads() {
        let mut c = Utf16ToUtf8::default();
        assert_eq!(c.push(&[0x61, 0x03, 0x1b, 0x5b, 0x41]), b"a\x03\x1b[A");
        let crab: Vec<u16> = "🦀".encode_utf16().collect();
        assert_eq!(c.push(&[0xe9, crab[0]]), "é".as_bytes());
        assert_eq!(c.push(&[crab[1], 0x62]), "🦀b".as_bytes());
        assert_eq!(c.push(&[0xdc00]), "\u{fffd}".as_bytes());
        assert_eq!(c.push(&[]), b"");
    }
}
