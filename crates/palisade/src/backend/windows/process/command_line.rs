//! The command line and the environment block of the command: quoting each argument so the C
//! runtime reads it back unchanged, and what `cmd.exe` would change in a batch file's arguments.

use super::*;

/// Appends `arg` to a command line so that `CommandLineToArgvW` and the C runtime read it back
/// unchanged: quoted when it is empty or has blanks or quotes, with the backslashes before a
/// quote doubled.
pub fn push_arg(cmd: &mut Vec<u16>, arg: &OsStr) {
    let w: Vec<u16> = arg.encode_wide().collect();
    if !cmd.is_empty() {
        cmd.push(b' ' as u16);
    }
    let needs_quotes = w.is_empty()
        || w.iter().any(|&c| c == b' ' as u16 || c == b'\t' as u16 || c == b'"' as u16 || c == b'\n' as u16);
    if !needs_quotes {
        cmd.extend_from_slice(&w);
        return;
    }
    cmd.push(b'"' as u16);
    let mut backslashes = 0usize;
    for &c in &w {
        if c == b'\\' as u16 {
            backslashes += 1;
            continue;
        }
        if c == b'"' as u16 {
            // Backslashes before a quote are doubled, and the quote itself escaped.
            cmd.extend(std::iter::repeat_n(b'\\' as u16, backslashes * 2 + 1));
        } else {
            cmd.extend(std::iter::repeat_n(b'\\' as u16, backslashes));
        }
        backslashes = 0;
        cmd.push(c);
    }
    // Trailing backslashes are doubled so that the closing quote stays a quote.
    cmd.extend(std::iter::repeat_n(b'\\' as u16, backslashes * 2));
    cmd.push(b'"' as u16);
}

/// Appends `arg` as it is (for cmd.exe after /c), quoted only when it has blanks and no quotes.
fn push_verbatim(cmd: &mut Vec<u16>, arg: &OsStr) {
    let w: Vec<u16> = arg.encode_wide().collect();
    cmd.push(b' ' as u16);
    let blank = w.is_empty() || w.iter().any(|&c| c == b' ' as u16 || c == b'\t' as u16);
    let quoted = w.contains(&(b'"' as u16));
    if blank && !quoted {
        cmd.push(b'"' as u16);
        cmd.extend_from_slice(&w);
        cmd.push(b'"' as u16);
    } else {
        cmd.extend_from_slice(&w);
    }
}

/// The program to start and its NUL-terminated command line.
pub struct CommandLine {
    pub application: Vec<u16>,
    pub line: Vec<u16>,
}

/// Characters that `cmd.exe` treats specially outside quotes.
const CMD_SPECIAL: &[u16] = &[
    b' ' as u16,
    b'\t' as u16,
    b'&' as u16,
    b'|' as u16,
    b'<' as u16,
    b'>' as u16,
    b'^' as u16,
    b'(' as u16,
    b')' as u16,
    b',' as u16,
    b';' as u16,
    b'=' as u16,
    b'!' as u16,
];

pub fn command_line(launch: &Launch, args: &[OsString]) -> Result<CommandLine, Error> {
    let invalid = |e: io::Error| Error::InvalidInput(e.to_string());
    match launch {
        Launch::Image(p) => {
            let mut line = Vec::new();
            push_arg(&mut line, p.as_os_str());
            // cmd.exe does not parse its command line like the C runtime: what follows /c (or
            // /k) is taken as typed, so it is passed on unescaped (quoted only when it has
            // blanks and no quotes of its own), as a user would type it.
            let is_cmd = p.file_stem().is_some_and(|s| s.eq_ignore_ascii_case("cmd"));
            let mut verbatim = false;
            for a in args {
                if a.encode_wide().any(|c| c == 0) {
                    return Err(Error::InvalidInput(format!("argument {a:?} contains a NUL character")));
                }
                if verbatim {
                    push_verbatim(&mut line, a);
                } else {
                    push_arg(&mut line, a);
                }
                if is_cmd && (a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k")) {
                    verbatim = true;
                }
            }
            line.push(0);
            Ok(CommandLine { application: wide(p).map_err(invalid)?, line })
        }
        Launch::Batch(p) => {
            // cmd.exe re-parses the line: `%` expands even inside quotes, and a `"` cannot be
            // escaped, so such arguments cannot be passed to a batch file as they are.
            let mut inner: Vec<u16> = Vec::new();
            inner.push(b'"' as u16);
            inner.extend(p.as_os_str().encode_wide());
            inner.push(b'"' as u16);
            for a in args {
                let w: Vec<u16> = a.encode_wide().collect();
                if let Some(bad) = w.iter().find(|&&c| {
                    c == b'"' as u16 || c == b'%' as u16 || c == b'\r' as u16 || c == b'\n' as u16 || c == 0
                }) {
                    let shown = char::from_u32(*bad as u32).map(|c| format!("{c:?}")).unwrap_or_default();
                    return Err(Error::InvalidInput(format!(
                        "argument {a:?} cannot be passed to the batch file {} unchanged (it contains {shown}); run it through `cmd /c` yourself",
                        p.display()
                    )));
                }
                inner.push(b' ' as u16);
                if w.is_empty() || w.iter().any(|c| CMD_SPECIAL.contains(c)) {
                    inner.push(b'"' as u16);
                    inner.extend_from_slice(&w);
                    inner.push(b'"' as u16);
                } else {
                    inner.extend_from_slice(&w);
                }
            }
            let cmd = cmd_exe();
            let mut line: Vec<u16> = Vec::new();
            push_arg(&mut line, cmd.as_os_str());
            // /d: no AutoRun commands from the registry; /e:on /v:off: the usual defaults,
            // whatever the registry says; /s /c "...": run the rest verbatim.
            line.extend(OsStr::new(" /e:on /v:off /d /s /c \"").encode_wide());
            line.extend_from_slice(&inner);
            line.push(b'"' as u16);
            line.push(0);
            Ok(CommandLine { application: wide(&cmd).map_err(invalid)?, line })
        }
    }
}

/// The environment block: `NAME=value` strings, sorted by name without regard to case (as
/// Windows expects), the first of several names that differ only in case kept.
pub fn environment_block(env: &[(OsString, OsString)]) -> Result<Vec<u16>, Error> {
    let mut vars: Vec<(Vec<u16>, Vec<u16>)> = Vec::new();
    for (k, v) in env {
        let kw: Vec<u16> = k.encode_wide().collect();
        let vw: Vec<u16> = v.encode_wide().collect();
        // `=C:`-style names (per-drive current directories) start with `=`; no other `=`.
        if kw.is_empty() || kw[1..].contains(&(b'=' as u16)) || kw.contains(&0) || vw.contains(&0) {
            return Err(Error::InvalidInput(format!("environment variable {k:?} cannot be passed on Windows")));
        }
        let upper = k.to_string_lossy().to_uppercase();
        if vars.iter().any(|(ek, _)| String::from_utf16_lossy(ek).to_uppercase() == upper) {
            continue;
        }
        vars.push((kw, vw));
    }
    vars.sort_by_key(|(k, _)| String::from_utf16_lossy(k).to_uppercase());
    let mut block = Vec::new();
    for (k, v) in vars {
        block.extend_from_slice(&k);
        block.push(b'=' as u16);
        block.extend_from_slice(&v);
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    Ok(block)
}
