//! Starting one command through a new runner ([`Elevated::spawn`]): the runner, the pipe, the
//! request and the fence report, and the threads that relay the standard streams.

use super::*;

impl Elevated {
    /// Starts the command through a new runner.
    pub fn spawn(
        &self,
        spec: &crate::spec::CommandSpec,
        cwd: &Path,
        capability_sids: Vec<palisade_windows_elevated::Sid>,
        keep_processes: bool,
    ) -> Result<RunnerChild, Error> {
        let text = |what: &str, s: &std::ffi::OsStr| -> Result<String, Error> {
            s.to_str()
                .map(str::to_string)
                .ok_or_else(|| Error::InvalidInput(format!("{what} {s:?} is not valid Unicode")))
        };
        let mut env = Vec::new();
        for (k, v) in &spec.env {
            env.push((text("environment variable", k)?, text("the value of", v)?));
        }
        let route = match &self.proxy {
            Some(proxy) => {
                let route = proxy.route_command()?;
                env = route.environment(&env);
                Some(route)
            }
            None => None,
        };
        // The fence probe's loopback listener: a port nothing else uses, not a proxy port.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| Error::Io { context: "listening for the network fence probe".into(), source: e })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Io { context: "the fence probe's listener".into(), source: e })?
            .port();
        let probe = self.probe_for(port)?;
        *self.last_fence.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let console = terminal::console_for([spec.stdin, spec.stdout, spec.stderr]);
        let request = SpawnRequest {
            version: SETUP_VERSION,
            program: text("program", &spec.program)?,
            args: spec.args.iter().map(|a| text("argument", a)).collect::<Result<_, _>>()?,
            env,
            cwd: text("working directory", cwd.as_os_str())?,
            tty: console.as_ref().map(terminal::Console::size),
            network: self.request_network(),
            keep_processes,
            private_desktop: false,
            capability_sids,
            fence_probe: probe,
        };
        let first = Message::Spawn(request).encode().map_err(|e| Error::InvalidInput(e.to_string()))?;

        let random =
            ffi::random16().map_err(|e| Error::Io { context: "naming the runner's pipe".into(), source: e })?;
        let runner_path = WinPath::parse(&self.runner.to_string_lossy())
            .map_err(|e| Error::InvalidInput(format!("the runner's path {}: {e}", self.runner.display())))?;
        // The pipe exists before the runner starts, so nobody else can take its name.
        let pipe_name = palisade_windows_elevated::runner_seam::pipe_name(&random);
        let pipe = Pipe::create_server(&pipe_name, &pipe_sddl(&self.pipe_owner)).map_err(|e| Error::Setup {
            step: "create the runner's pipe",
            detail: format!(" {pipe_name}"),
            source: e,
        })?;
        let (_, mut runner) = match &self.launcher {
            Launcher::Logon { password } => {
                start_runner(&mut LogonLauncher, &runner_path, self.user, password, &random, SETUP_VERSION)
            }
            Launcher::Plain => {
                // The plain launcher takes no password; `start_runner` wants one all the same.
                let mut noise = vec![0u8; password::RANDOM_BYTES];
                ffi::random_bytes(&mut noise)
                    .map_err(|e| Error::Io { context: "generating a placeholder password".into(), source: e })?;
                let unused = password::generate(&noise, "").map_err(|e| Error::InvalidInput(e.to_string()))?;
                start_runner(&mut PlainLauncher, &runner_path, self.user, &unused, &random, SETUP_VERSION)
            }
        }
        .map_err(|e| Error::Unenforceable {
            what: "[windows] mode = \"elevated\"".into(),
            why: e.to_string(),
            fix: "see `palisade check`".into(),
        })?;
        let started = |step: &'static str, e: io::Error| Error::Setup { step, detail: String::new(), source: e };
        match pipe.wait_for_client(&runner.process, CONNECT_LIMIT) {
            Ok(Connect::Connected) => {}
            Ok(Connect::ProcessEnded) => {
                let code = process::exit_code(&runner.process).unwrap_or(u32::MAX);
                return Err(Error::Io {
                    context: "starting palisade-runner".into(),
                    source: io::Error::other(describe_runner_exit(code)),
                });
            }
            Ok(Connect::TimedOut) => {
                let _ = runner.kill();
                return Err(started(
                    "connect to palisade-runner",
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("it did not connect within {} s", CONNECT_LIMIT.as_secs()),
                    ),
                ));
            }
            Err(e) => {
                let _ = runner.kill();
                return Err(started("connect to palisade-runner", e));
            }
        }
        let peer = pipe.client_pid().map_err(|e| started("identify the runner's pipe client", e))?;
        if let Err(e) = check_pipe_peer(runner.pid, peer) {
            let _ = runner.kill();
            return Err(Error::Io {
                context: "connecting to palisade-runner".into(),
                source: io::Error::other(e.to_string()),
            });
        }
        pipe.write_all(&first).map_err(|e| started("send the command to palisade-runner", e))?;

        // Until `Started` (or the error that replaces it).
        let pipe = Arc::new(pipe);
        let mut reader = FrameReader::from(Sender::Runner);
        let mut conversation = Conversation::cli();
        let record_fence = |report: (ProbeOutcome, ProbeOutcome, Option<ProbeOutcome>)| {
            let accepted = listener_accepted(&listener);
            *self.last_fence.lock().unwrap_or_else(|e| e.into_inner()) = Some((report, accepted));
            accepted
        };
        let mut fence_report = None;
        let pid = match receive_after_fence_report(&pipe, &mut reader, &mut conversation, &mut fence_report) {
            Ok(Some(Message::Started { pid })) => pid,
            Ok(Some(Message::Error { kind, message })) => {
                let _ = runner.wait_briefly();
                if let Some(r) = fence_report {
                    record_fence(r);
                }
                return Err(match (kind, kind.exit_status()) {
                    (ErrorKind::FenceOpen, _) => fence_refused(self.user, message),
                    (_, 127) => Error::NotFound(message),
                    (_, 126) => Error::NotExecutable(message),
                    _ => Error::Io {
                        context: format!("palisade-runner ({})", kind.name()),
                        source: io::Error::other(message),
                    },
                });
            }
            Ok(_) => {
                let _ = runner.kill();
                let code = process::exit_code(&runner.process).unwrap_or(u32::MAX);
                return Err(Error::Io {
                    context: "starting the command through palisade-runner".into(),
                    source: io::Error::other(describe_runner_exit(code)),
                });
            }
            Err(e) => {
                let _ = runner.kill();
                return Err(Error::Io { context: "talking to palisade-runner".into(), source: e });
            }
        };

        // The runner started the command: its report must have come first, and, for an
        // enforcing probe, have proved the fence (the runner checked that too) with nothing
        // arriving at the listener.
        if let Some(p) = probe {
            let checked = match fence_report {
                None => Err("palisade-runner started the command without reporting its fence probe".to_string()),
                Some(r) => {
                    let accepted = record_fence(r);
                    match p.proxy_port {
                        None => fence_probe::verdict(r.0, r.1, accepted).map_err(|why| fence_probe::refusal(&why)),
                        Some(_) => fence_probe::proxied_verdict(r.0, r.1, r.2, accepted)
                            .map_err(|why| fence_probe::proxied_refusal(&why)),
                    }
                }
            };
            if let (true, Err(why)) = (p.enforce, checked) {
                // Ending the runner ends the command through its kill-on-close job; with
                // keep_processes the job is not kill-on-close, so the runner ends it first.
                if keep_processes {
                    if let Ok(frame) = Message::Terminate.encode() {
                        let _ = pipe.write_all(&frame);
                        let _ = runner.wait_briefly();
                    }
                }
                let _ = runner.kill();
                return Err(fence_refused(self.user, why));
            }
        }

        let outbox = Arc::new(Outbox { pipe: pipe.clone(), lock: Mutex::new(()) });
        let sides = stdin_side(spec.stdin).map_err(|e| started("set up the command's stdin", e)).and_then(|i| {
            let o = output_side(spec.stdout, Stream::Stdout).map_err(|e| started("set up the command's stdout", e))?;
            let e = output_side(spec.stderr, Stream::Stderr).map_err(|e| started("set up the command's stderr", e))?;
            Ok((i, o, e))
        });
        let ((stdin, stdin_source), (stdout, out_sink), (stderr, err_sink)) = match sides {
            Ok(s) => s,
            Err(e) => {
                // The command runs already: end it with its runner.
                let _ = runner.kill();
                return Err(e);
            }
        };
        let terminal = match console {
            Some(c) => {
                let out = outbox.clone();
                match terminal::Session::start(c, Arc::new(ToRunner(out))) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        let _ = runner.kill();
                        return Err(started("put the console in raw mode for the command's terminal", e));
                    }
                }
            }
            None => {
                relay_stdin(stdin_source, outbox.clone());
                None
            }
        };
        let outcome: Arc<Shared> = Arc::new((Mutex::new(None), Condvar::new()));
        {
            let outcome = outcome.clone();
            std::thread::spawn(move || {
                let end = relay_output(&pipe, reader, conversation, out_sink, err_sink);
                let (lock, cv) = &*outcome;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
                cv.notify_all();
            });
        }
        Ok(RunnerChild {
            runner,
            pid,
            outbox,
            outcome,
            killed_by: AtomicI32::new(0),
            keep_processes,
            terminal,
            route,
            network_records: Vec::new(),
            status: None,
            stdin,
            stdout,
            stderr,
        })
    }
}

/// Like [`receive`], but keeps a `FenceReport` in `report` and returns what follows it.
fn receive_after_fence_report(
    pipe: &Pipe,
    reader: &mut FrameReader,
    conv: &mut Conversation,
    report: &mut Option<(ProbeOutcome, ProbeOutcome, Option<ProbeOutcome>)>,
) -> io::Result<Option<Message>> {
    loop {
        match receive(pipe, reader, conv)? {
            Some(Message::FenceReport { outside, loopback, proxy }) => *report = Some((outside, loopback, proxy)),
            other => return Ok(other),
        }
    }
}

/// Reads the next message: `Ok(None)` at the end of the stream.
fn receive(pipe: &Pipe, reader: &mut FrameReader, conv: &mut Conversation) -> io::Result<Option<Message>> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        if let Some(m) = reader.next_message().map_err(|e| bad(e.to_string()))? {
            conv.receive(&m).map_err(|e| bad(e.to_string()))?;
            return Ok(Some(m));
        }
        let n = pipe.read(&mut buf)?;
        if n == 0 {
            reader.finish().map_err(|e| bad(e.to_string()))?;
            return Ok(None);
        }
        reader.push(&buf[..n]);
    }
}

/// How the conversation ended.
pub(super) enum End {
    Exit(u32),
    Failed(String),
}

pub(super) type Shared = (Mutex<Option<End>>, Condvar);

/// Whole frames to the runner, from any thread.
pub(super) struct Outbox {
    pipe: Arc<Pipe>,
    lock: Mutex<()>,
}

impl Outbox {
    pub(super) fn send(&self, m: &Message) -> io::Result<()> {
        let frame = m.encode().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.pipe.write_all(&frame)
    }
}

/// Where one of the command's output streams goes.
enum Sink {
    Pipe(File),
    Inherit(Stream),
    Null,
}

impl Sink {
    fn write(&mut self, data: &[u8]) {
        let _ = match self {
            Sink::Pipe(f) => f.write_all(data),
            Sink::Inherit(Stream::Stdout) => {
                let mut o = io::stdout().lock();
                o.write_all(data).and_then(|_| o.flush())
            }
            Sink::Inherit(Stream::Stderr) => io::stderr().lock().write_all(data),
            Sink::Null => Ok(()),
        };
    }
}

fn anonymous_pipe() -> io::Result<(File, File)> {
    let (mut r, mut w): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: both handles are written on success; neither is inheritable.
    check(unsafe { CreatePipe(&mut r, &mut w, std::ptr::null(), 0) })?;
    // SAFETY: fresh handles owned by nobody else.
    Ok(unsafe { (File::from_raw_handle(r as _), File::from_raw_handle(w as _)) })
}

fn output_side(s: Stdio, stream: Stream) -> io::Result<(Option<File>, Sink)> {
    Ok(match s {
        Stdio::Piped => {
            let (r, w) = anonymous_pipe()?;
            (Some(r), Sink::Pipe(w))
        }
        Stdio::Inherit => (None, Sink::Inherit(stream)),
        Stdio::Null => (None, Sink::Null),
    })
}

/// Where the command's stdin comes from.
enum Source {
    Pipe(File),
    Inherit,
    Null,
}

fn stdin_side(s: Stdio) -> io::Result<(Option<File>, Source)> {
    Ok(match s {
        Stdio::Piped => {
            let (r, w) = anonymous_pipe()?;
            (Some(w), Source::Pipe(r))
        }
        Stdio::Inherit => (None, Source::Inherit),
        Stdio::Null => (None, Source::Null),
    })
}

/// The command's terminal in the runner's pseudo console: typed text and resizes go to the
/// runner as messages.
struct ToRunner(Arc<Outbox>);

impl terminal::TerminalSink for ToRunner {
    fn typed(&self, utf8: &[u8]) -> io::Result<()> {
        data_chunks(None, utf8).iter().try_for_each(|m| self.0.send(m))
    }
    fn input_ended(&self) {
        let _ = self.0.send(&Message::StdinClose);
    }
    fn resized(&self, size: TtySize) -> io::Result<()> {
        self.0.send(&Message::Resize(size))
    }
}

/// Relays stdin as `StdinData` and, at its end, `StdinClose`.
fn relay_stdin(source: Source, out: Arc<Outbox>) {
    let mut from: Box<dyn Read + Send> = match source {
        Source::Null => {
            let _ = out.send(&Message::StdinClose);
            return;
        }
        Source::Pipe(f) => Box::new(f),
        Source::Inherit => Box::new(io::stdin()),
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if data_chunks(None, &buf[..n]).iter().any(|m| out.send(m).is_err()) {
                        return;
                    }
                }
            }
        }
        let _ = out.send(&Message::StdinClose);
    });
}

/// Passes the runner's messages on until the last one; the sinks close when it returns.
fn relay_output(pipe: &Pipe, mut reader: FrameReader, mut conv: Conversation, mut out: Sink, mut err: Sink) -> End {
    loop {
        match receive(pipe, &mut reader, &mut conv) {
            Ok(Some(Message::Output { stream: Stream::Stdout, data })) => out.write(&data),
            Ok(Some(Message::Output { stream: Stream::Stderr, data })) => err.write(&data),
            Ok(Some(Message::Exit { code })) => return End::Exit(code),
            Ok(Some(Message::Error { kind, message })) => {
                return End::Failed(format!("palisade-runner ({}): {message}", kind.name()))
            }
            Ok(Some(_)) => {}
            Ok(None) => return End::Failed("palisade-runner ended without reporting how the command ended".into()),
            Err(e) => return End::Failed(format!("palisade-runner: {e}")),
        }
    }
}
