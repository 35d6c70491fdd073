//! Finding where a forwarded request's body ends, so that the proxy forwards exactly one request
//! and nothing the client sends after it (a second request could name another host). Pure and
//! strict: chunk-size lines and trailers are bounded and must end in CRLF.

use crate::head::Framing;

const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Fixed(u64),
    /// Reading a chunk-size line: the size so far, digits seen, whether past an extension ';',
    /// the line length so far.
    Size {
        size: u64,
        digits: u8,
        ext: bool,
        len: usize,
    },
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// Reading trailer lines: bytes in the current line, total trailer bytes.
    Trailer {
        line: usize,
        total: usize,
    },
    TrailerLf {
        line: usize,
        total: usize,
    },
    Done,
}

/// Consumes body bytes and says how many belong to the body.
#[derive(Debug, Clone)]
pub struct BodyFramer {
    state: State,
}

impl BodyFramer {
    pub fn new(framing: Framing) -> BodyFramer {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Fixed(n),
            Framing::Chunked => State::Size { size: 0, digits: 0, ext: false, len: 0 },
        };
        BodyFramer { state }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds bytes; returns how many of them (a prefix) belong to the body. Once the body is
    /// complete, [`is_done`](Self::is_done) is true and the rest of `bytes` is not body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                State::Done => break,
                State::Fixed(n) | State::Data(n) => {
                    let take = n.min((bytes.len() - i) as u64);
                    i += take as usize;
                    let left = n - take;
                    self.state = match (&self.state, left) {
                        (State::Fixed(_), 0) => State::Done,
                        (State::Fixed(_), l) => State::Fixed(l),
                        (_, 0) => State::DataCr,
                        (_, l) => State::Data(l),
                    };
                }
                _ => {
                    self.step(bytes[i])?;
                    i += 1;
                }
            }
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<(), &'static str> {
        self.state = match self.state.clone() {
            State::Size { size, digits, ext, len } => {
                if len >= MAX_LINE {
                    return Err("chunk-size line too long");
                }
                match b {
                    b'\r' if digits > 0 => State::SizeLf { size },
                    b';' if digits > 0 => State::Size { size, digits, ext: true, len: len + 1 },
                    _ if ext => {
                        if b == b'\n' || b < 0x20 && b != b'\t' {
                            return Err("control character in a chunk extension");
                        }
                        State::Size { size, digits, ext, len: len + 1 }
                    }
                    _ if b.is_ascii_hexdigit() => {
                        if digits >= 15 {
                            return Err("chunk size too large");
                        }
                        let v = u64::from((b as char).to_digit(16).unwrap_or(0));
                        State::Size { size: size * 16 + v, digits: digits + 1, ext, len: len + 1 }
                    }
                    _ => return Err("bad chunk-size line"),
                }
            }
            State::SizeLf { size } => match (b, size) {
                (b'\n', 0) => State::Trailer { line: 0, total: 0 },
                (b'\n', n) => State::Data(n),
                _ => return Err("chunk-size line not ended by CRLF"),
            },
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::Size { size: 0, digits: 0, ext: false, len: 0 },
            State::DataCr | State::DataLf => return Err("chunk data not followed by CRLF"),
            State::Trailer { line, total } => {
                if total >= MAX_TRAILERS {
                    return Err("trailers too large");
                }
                match b {
                    b'\r' => State::TrailerLf { line, total: total + 1 },
                    b'\n' => return Err("bare LF in trailers"),
                    _ => State::Trailer { line: line + 1, total: total + 1 },
                }
            }
            State::TrailerLf { line, total } => match (b, line) {
                (b'\n', 0) => State::Done,
                (b'\n', _) => State::Trailer { line: 0, total: total + 1 },
                _ => return Err("trailer line not ended by CRLF"),
            },
            State::Fixed(_) | State::Data(_) | State::Done => return Err("internal framing state"),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(framing: Framing, input: &[u8], step: usize) -> Result<(usize, bool), &'static str> {
        let mut f = BodyFramer::new(framing);
        let mut used = 0;
        for chunk in input.chunks(step.max(1)) {
            let n = f.feed(chunk)?;
            used += n;
            if f.is_done() {
                break;
            }
        }
        Ok((used, f.is_done()))
    }

    #[test]
    fn fixed_length() {
        assert_eq!(run(Framing::Length(5), b"helloGET / ", 3), Ok((5, true)));
        assert_eq!(run(Framing::Length(5), b"hel", 1), Ok((3, false)));
        assert!(BodyFramer::new(Framing::Length(0)).is_done());
    }

    #[test]
    fn chunked_in_any_split() {
        let body = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET http://evil/ HTTP/1.1\r\n";
        let end = body.len() - "GET http://evil/ HTTP/1.1\r\n".len();
        for step in 1..body.len() {
            assert_eq!(run(Framing::Chunked, body, step), Ok((end, true)), "step {step}");
        }
        assert_eq!(run(Framing::Chunked, b"0\r\n\r\n", 1), Ok((5, true)));
    }

    #[test]
    fn chunked_errors() {
        for bad in
            [&b"\r\n"[..], b"g\r\n", b"5\nhello", b"5\r\nhelloXX", b"0\r\nX\n", b"ffffffffffffffff0\r\n", b";x\r\n"]
        {
            assert!(run(Framing::Chunked, bad, 1).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b"1;".as_slice(), &[b'x'; MAX_LINE]].concat();
        assert!(run(Framing::Chunked, &long, 100).is_err());
    }
}
