//! The unelevated command's console (`palisade_windows_plan::console` decides which): a pseudo
//! console palisade relays its own console to, or a hidden console of the command's own with
//! palisade's console streams relayed through pipes. Either way the command never shares
//! palisade's console or holds a handle to it. Never run on real Windows yet.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_windows_plan::console::{command_console, CommandConsole};
use windows_sys::Win32::System::Console::HPCON;

use super::process;
use super::terminal::{self, ConsoleReader, PseudoConsole, Session, TerminalSink, TtySize};
use crate::spec::Stdio;

/// Ctrl+C as typed into a pseudo console: its console turns it into the command's Ctrl+C.
const CTRL_C: u8 = 0x03;
/// Ctrl+Z at the start of a line: the end of input in a cooked console.
const CTRL_Z: u16 = 0x1A;

/// The pseudo console and the pipe the typed text goes into, shared with the relays.
struct Pty {
    console: Mutex<Option<PseudoConsole>>,
    input: Mutex<Option<File>>,
}

impl TerminalSink for Pty {
    fn typed(&self, utf8: &[u8]) -> io::Result<()> {
        match self.input.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.write_all(utf8),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
    fn input_ended(&self) {}
    fn resized(&self, size: TtySize) -> io::Result<()> {
        if let Some(pc) = self.console.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            pc.resize(size);
        }
        Ok(())
    }
}

/// palisade's console input relayed (cooked, as typed) into the command's stdin pipe.
struct InputPipe(Mutex<Option<File>>);

impl TerminalSink for InputPipe {
    fn typed(&self, utf8: &[u8]) -> io::Result<()> {
        let mut pipe = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A line that starts with Ctrl+Z ends the input, as it would for a console reader.
        if utf8.first() == Some(&(CTRL_Z as u8)) {
            pipe.take();
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match pipe.as_mut() {
            Some(f) => f.write_all(utf8),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
    fn input_ended(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
    fn resized(&self, _size: TtySize) -> io::Result<()> {
        Ok(())
    }
}

/// What is set up before the command starts.
pub struct Setup {
    /// The command's standard handles (empty with a pseudo console) and palisade's ends of its
    /// pipes (`None` for the relayed ones).
    pub stdio: process::StdioSet,
    pub pseudo_console: Option<HPCON>,
    relays: Relays,
}

/// The relays of a running command.
pub struct Relays {
    pty: Option<Arc<Pty>>,
    session: Option<Session>,
    reader: Option<ConsoleReader>,
    /// Each output relay sends once when its pipe ended.
    done: Option<mpsc::Receiver<()>>,
    outputs: usize,
    /// The pseudo console's size and palisade's console, until [`Relays::start`].
    console: Option<terminal::Console>,
    pending: Vec<(File, bool)>,
    stdin_pipe: Option<File>,
}

/// Sets up the command's console for `specs` (see the module documentation).
pub fn setup(specs: [Stdio; 3]) -> io::Result<Setup> {
    let inherited = specs.map(|s| s == Stdio::Inherit);
    let consoles = terminal::std_consoles();
    let mut relays = Relays {
        pty: None,
        session: None,
        reader: None,
        done: None,
        outputs: 0,
        console: None,
        pending: Vec::new(),
        stdin_pipe: None,
    };
    if command_console(inherited, consoles, true) == CommandConsole::PseudoConsole {
        if let Some(console) = terminal::console_for(specs) {
            // Fails on Windows without ConPTY (before 10 1809); the hidden console is the
            // fallback, which hands over no console handle either.
            if let Ok((pc, input, output)) = PseudoConsole::new(console.size()) {
                let handle = pc.handle();
                relays.pty = Some(Arc::new(Pty { console: Mutex::new(Some(pc)), input: Mutex::new(Some(input)) }));
                relays.pending.push((output, true));
                relays.console = Some(console);
                let stdio = process::StdioSet { child: [None, None, None], parent: [None, None, None] };
                return Ok(Setup { stdio, pseudo_console: Some(handle), relays });
            }
        }
    }
    let relay = match command_console(inherited, consoles, false) {
        CommandConsole::Hidden { relay } => relay,
        // Not without a pseudo console; were it so, relaying every stream hands over nothing.
        CommandConsole::PseudoConsole => [true; 3],
    };
    let given = [0, 1, 2].map(|i| if relay[i] { Stdio::Piped } else { specs[i] });
    let mut stdio = process::stdio(given)?;
    for (i, relayed) in relay.iter().enumerate() {
        if !*relayed {
            continue;
        }
        let Some(f) = stdio.parent[i].take() else { continue };
        if i == 0 {
            relays.stdin_pipe = Some(f);
        } else {
            relays.pending.push((f, i == 1));
        }
    }
    Ok(Setup { stdio, pseudo_console: None, relays })
}

impl Setup {
    /// Starts the relays once the command runs; an error leaves the console as it was.
    pub fn start(self) -> io::Result<Relays> {
        let mut r = self.relays;
        if let (Some(pty), Some(console)) = (r.pty.clone(), r.console.take()) {
            r.session = Some(Session::start(console, pty)?);
        }
        if let Some(pipe) = r.stdin_pipe.take() {
            r.reader = ConsoleReader::start(Arc::new(InputPipe(Mutex::new(Some(pipe)))));
        }
        let (tx, rx) = mpsc::channel();
        r.outputs = r.pending.len();
        let utf8 = r.pty.is_some();
        for (from, stdout) in r.pending.drain(..) {
            let tx = tx.clone();
            std::thread::spawn(move || {
                copy_to_console(from, stdout, utf8);
                let _ = tx.send(());
            });
        }
        r.done = Some(rx);
        Ok(r)
    }
}

/// Copies the command's output to palisade's stdout or stderr until its pipe ends: a pseudo
/// console's (UTF-8 with VT sequences) through `std::io`, a pipe's as it is.
fn copy_to_console(mut from: File, stdout: bool, utf8: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let written = if utf8 {
            let mut o = io::stdout().lock();
            o.write_all(&buf[..n]).and_then(|_| o.flush())
        } else {
            terminal::write_std_bytes(stdout, &buf[..n])
        };
        if written.is_err() {
            return;
        }
    }
}

impl Relays {
    /// Whether the command runs in a pseudo console.
    pub fn is_terminal(&self) -> bool {
        self.pty.is_some()
    }

    /// Ctrl+C to the command through its pseudo console; `false` without one.
    pub fn interrupt(&self) -> bool {
        self.pty.as_ref().is_some_and(|p| p.typed(&[CTRL_C]).is_ok())
    }

    /// After the command ended: closes the pseudo console, lets the output relays pass on what
    /// is left (up to `limit` each: processes kept alive may hold the pipes open), and puts
    /// palisade's console back.
    pub fn finish(&mut self, limit: Duration) {
        if let Some(reader) = self.reader.take() {
            reader.stop();
        }
        if let Some(pty) = &self.pty {
            pty.input.lock().unwrap_or_else(|e| e.into_inner()).take();
            // Its output ends only when it is closed.
            drop(pty.console.lock().unwrap_or_else(|e| e.into_inner()).take());
        }
        if let Some(done) = self.done.take() {
            for _ in 0..self.outputs {
                if done.recv_timeout(limit).is_err() {
                    break;
                }
            }
        }
        if let Some(s) = self.session.take() {
            s.end();
        }
    }

    /// The command outlives this `Child`: palisade's console is put back, the command keeps its
    /// pseudo console and output relays.
    pub fn detach(mut self) {
        if let Some(reader) = self.reader.take() {
            reader.stop();
        }
        if let Some(s) = self.session.take() {
            s.end();
        }
        if let Some(pty) = self.pty.take() {
            std::mem::forget(pty);
        }
    }
}
