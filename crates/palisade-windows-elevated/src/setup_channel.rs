//! The channel between `palisade setup --elevated` (the CLI, pipe server) and `palisade-setup`
//! (elevated, pipe client): one length-prefixed request going in, versioned progress lines
//! coming back, and the exit codes of `palisade-setup`.
//!
//! * **Request** (CLI → setup): magic `PLSQ`, the format version (u16 LE), the JSON length (u32
//!   LE, at most [`crate::request::MAX_REQUEST_BYTES`]), then the JSON of
//!   [`crate::request::SetupRequest`]. The length is checked before anything is buffered.
//! * **Progress** (setup → CLI): one line per event, `P1 <json>\n`, at most
//!   [`MAX_PROGRESS_LINE`] bytes. `P1` names the format version; a reader refuses any other
//!   prefix, an oversized or truncated line, unknown fields and unknown events, and stays failed
//!   after the first error.
//!
//! Nothing secret travels back: progress names steps and errors, never passwords.

use serde::{Deserialize, Serialize};

use crate::request::MAX_REQUEST_BYTES;

/// Magic of the request frame.
pub const REQUEST_MAGIC: &[u8; 4] = b"PLSQ";
/// Version of the request frame (the JSON inside carries its own version too).
pub const REQUEST_FRAME_VERSION: u16 = 1;
/// Bytes before the JSON: magic, version, length.
pub const REQUEST_HEADER_LEN: usize = 10;
/// The prefix of every progress line of this format version.
pub const PROGRESS_PREFIX: &str = "P1 ";
/// Longest progress line, newline included.
pub const MAX_PROGRESS_LINE: usize = 64 * 1024;

/// Most plan lines in one `Plan` event (each at most 4 KiB, so the event fits one line).
pub const PLAN_LINES_PER_EVENT: usize = 8;

/// What setup reports, in order: `Hello`, then `Plan`, then for each pending step `Step` and
/// `StepDone` (or a final `Failed`), `Note`s anywhere, and `Finished` last on success.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Progress {
    /// Setup started and accepted the pipe; `setup_version` is what it installs.
    Hello {
        setup_version: u32,
    },
    /// The plan being carried out, one line per step (`[todo]`/`[done]`/`[kept]`/`[gone]`).
    Plan {
        lines: Vec<String>,
    },
    /// Step `index` (from 1) of `total` pending steps is starting.
    Step {
        index: u32,
        total: u32,
        id: String,
        description: String,
    },
    StepDone {
        id: String,
    },
    /// Something the person should know (a step Palisade could not do on this system, a file it
    /// left in place).
    Note {
        text: String,
    },
    /// Setup stopped. `step` names the step (or phase: `pipe`, `request`, `facts`, `plan`,
    /// `records`); `exit_code` is the process exit code that follows.
    Failed {
        step: String,
        message: String,
        exit_code: i32,
    },
    /// Everything pending was done; `changed` steps changed the machine.
    Finished {
        changed: u32,
    },
}

impl Progress {
    /// The line to send, newline included. Over-long text is shortened (never split), so every
    /// encoded line decodes.
    pub fn encode(&self) -> String {
        let mut p = self.clone();
        let clip = |s: &mut String| {
            const MAX_FIELD: usize = 4096;
            if s.len() > MAX_FIELD {
                let mut end = MAX_FIELD;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s.push('…');
            }
        };
        match &mut p {
            Progress::Plan { lines } => {
                // A long plan is sent in pieces (`plan_chunks`); more lines than fit are cut
                // visibly, never silently.
                if lines.len() > PLAN_LINES_PER_EVENT {
                    let more = lines.len() - PLAN_LINES_PER_EVENT + 1;
                    lines.truncate(PLAN_LINES_PER_EVENT - 1);
                    lines.push(format!("… {more} more lines not shown"));
                }
                lines.iter_mut().for_each(clip);
            }
            Progress::Step { id, description, .. } => {
                clip(id);
                clip(description);
            }
            Progress::StepDone { id } => clip(id),
            Progress::Note { text } => clip(text),
            Progress::Failed { step, message, .. } => {
                clip(step);
                clip(message);
            }
            Progress::Hello { .. } | Progress::Finished { .. } => {}
        }
        let json = serde_json::to_string(&p).expect("progress serializes");
        format!("{PROGRESS_PREFIX}{json}\n")
    }
}

/// A plan's lines as `Plan` events of at most 8 lines each (every one fits a progress line).
pub fn plan_chunks(lines: &[String]) -> Vec<Progress> {
    lines.chunks(PLAN_LINES_PER_EVENT).map(|c| Progress::Plan { lines: c.to_vec() }).collect()
}

/// Why progress data is refused. `Display` is one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("progress line does not start with `{PROGRESS_PREFIX}` (another palisade-setup version?)")]
    BadPrefix,
    #[error("progress line is longer than {MAX_PROGRESS_LINE} bytes")]
    LineTooLong,
    #[error("progress line is not UTF-8")]
    NotUtf8,
    #[error("progress line is not valid: {0}")]
    Json(String),
    #[error("progress ended in the middle of a line")]
    Truncated,
    #[error("setup request frame: wrong magic")]
    RequestMagic,
    #[error("setup request frame version {0}, this palisade-setup reads version {REQUEST_FRAME_VERSION}")]
    RequestVersion(u16),
    #[error("setup request frame announces {0} bytes, at most {MAX_REQUEST_BYTES}")]
    RequestTooLarge(u32),
    #[error("setup request frame is truncated")]
    RequestTruncated,
}

/// Decodes one line (without its newline).
pub fn decode_line(line: &[u8]) -> Result<Progress, ChannelError> {
    if line.len() >= MAX_PROGRESS_LINE {
        return Err(ChannelError::LineTooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| ChannelError::NotUtf8)?;
    let json = text.strip_prefix(PROGRESS_PREFIX).ok_or(ChannelError::BadPrefix)?;
    serde_json::from_str(json).map_err(|e| ChannelError::Json(e.to_string()))
}

/// Reassembles progress lines from arbitrary chunks; fails for good after the first error.
#[derive(Debug, Default)]
pub struct ProgressReader {
    buf: Vec<u8>,
    failed: Option<ChannelError>,
}

impl ProgressReader {
    pub fn new() -> ProgressReader {
        ProgressReader::default()
    }

    /// Feeds bytes; returns the complete events they finish.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<Progress>, ChannelError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut out = Vec::new();
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            if self.buf.len() + nl >= MAX_PROGRESS_LINE {
                return Err(self.fail(ChannelError::LineTooLong));
            }
            self.buf.extend_from_slice(&data[..nl]);
            data = &data[nl + 1..];
            let line = std::mem::take(&mut self.buf);
            match decode_line(&line) {
                Ok(p) => out.push(p),
                Err(e) => return Err(self.fail(e)),
            }
        }
        if self.buf.len() + data.len() >= MAX_PROGRESS_LINE {
            return Err(self.fail(ChannelError::LineTooLong));
        }
        self.buf.extend_from_slice(data);
        Ok(out)
    }

    /// The writer closed: an unfinished line is an error.
    pub fn finish(&mut self) -> Result<(), ChannelError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.fail(ChannelError::Truncated))
        }
    }

    fn fail(&mut self, e: ChannelError) -> ChannelError {
        self.buf.clear();
        self.failed = Some(e.clone());
        e
    }
}

/// The request frame for `json` (the serialized [`crate::request::SetupRequest`]).
pub fn encode_request(json: &[u8]) -> Result<Vec<u8>, ChannelError> {
    if json.len() > MAX_REQUEST_BYTES {
        return Err(ChannelError::RequestTooLarge(json.len().min(u32::MAX as usize) as u32));
    }
    let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + json.len());
    out.extend_from_slice(REQUEST_MAGIC);
    out.extend_from_slice(&REQUEST_FRAME_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json);
    Ok(out)
}

/// Checks a request header and returns the length of the JSON that follows.
pub fn decode_request_header(h: &[u8; REQUEST_HEADER_LEN]) -> Result<usize, ChannelError> {
    if &h[..4] != REQUEST_MAGIC {
        return Err(ChannelError::RequestMagic);
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != REQUEST_FRAME_VERSION {
        return Err(ChannelError::RequestVersion(version));
    }
    let len = u32::from_le_bytes([h[6], h[7], h[8], h[9]]);
    if len as usize > MAX_REQUEST_BYTES {
        return Err(ChannelError::RequestTooLarge(len));
    }
    Ok(len as usize)
}

/// Reads one request frame from `r`, refusing a bad header before reading the body.
pub fn read_request(r: &mut impl std::io::Read) -> Result<Vec<u8>, ChannelError> {
    let mut h = [0u8; REQUEST_HEADER_LEN];
    r.read_exact(&mut h).map_err(|_| ChannelError::RequestTruncated)?;
    let len = decode_request_header(&h)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|_| ChannelError::RequestTruncated)?;
    Ok(body)
}

/// Exit codes of `palisade-setup`. Every failure is also reported on the pipe as
/// [`Progress::Failed`] when the pipe is up.
pub mod exit {
    /// Everything pending was done.
    pub const OK: i32 = 0;
    /// Bad command line (`--pipe NAME` is the only argument).
    pub const USAGE: i32 = 2;
    /// The pipe could not be opened, or its server is not the installing user's process.
    pub const PIPE: i32 = 3;
    /// The request was malformed or refused by validation.
    pub const REQUEST: i32 = 4;
    /// Facts could not be gathered from the machine.
    pub const FACTS: i32 = 5;
    /// The plan refused this machine (a conflict; nothing was changed).
    pub const PLAN: i32 = 6;
    /// A step failed; what was done before it is recorded, and setup can be run again.
    pub const STEP: i32 = 7;
    /// The records file could not be read or written.
    pub const RECORDS: i32 = 8;
    /// Not Windows: there is nothing to set up.
    pub const UNSUPPORTED: i32 = 125;

    /// A one-line meaning for the CLI's messages.
    pub fn meaning(code: i32) -> &'static str {
        match code {
            OK => "setup completed",
            USAGE => "palisade-setup was started with bad arguments",
            PIPE => "palisade-setup could not talk to (or did not trust) the palisade that started it",
            REQUEST => "palisade-setup refused the request",
            FACTS => "palisade-setup could not read the machine's state",
            PLAN => "setup refused this machine; nothing was changed",
            STEP => "a setup step failed; run setup again or uninstall",
            RECORDS => "palisade-setup could not read or write its records",
            UNSUPPORTED => "palisade-setup runs only on Windows",
            _ => "palisade-setup failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Progress> {
        vec![
            Progress::Hello { setup_version: 1 },
            Progress::Plan { lines: vec!["[todo] group.create: create the local group".into()] },
            Progress::Step {
                index: 1, total: 2, id: "group.create".into(), description: "create ✓ the group".into()
            },
            Progress::StepDone { id: "group.create".into() },
            Progress::Note { text: "line\nbreaks are escaped".into() },
            Progress::Failed {
                step: "user.offline.create".into(),
                message: "access denied".into(),
                exit_code: exit::STEP,
            },
            Progress::Finished { changed: 3 },
        ]
    }

    #[test]
    fn events_round_trip_one_line_each() {
        let mut all = String::new();
        for p in sample() {
            let line = p.encode();
            assert!(line.starts_with("P1 ") && line.ends_with('\n'));
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert_eq!(decode_line(line.trim_end_matches('\n').as_bytes()).unwrap(), p);
            all.push_str(&line);
        }
        // Any chunking gives the same events.
        for size in [1, 2, 7, 64, all.len()] {
            let mut r = ProgressReader::new();
            let mut got = Vec::new();
            for c in all.as_bytes().chunks(size) {
                got.extend(r.push(c).unwrap());
            }
            r.finish().unwrap();
            assert_eq!(got, sample());
        }
    }

    #[test]
    fn long_text_is_clipped_so_lines_always_decode() {
        let p = Progress::Note { text: "é".repeat(100_000) };
        let line = p.encode();
        assert!(line.len() < MAX_PROGRESS_LINE);
        assert!(
            matches!(decode_line(line.trim_end().as_bytes()).unwrap(), Progress::Note { text } if text.ends_with('…'))
        );
        let many = Progress::Plan { lines: (0..20).map(|i| format!("l{i}")).collect() };
        match decode_line(many.encode().trim_end().as_bytes()).unwrap() {
            Progress::Plan { lines } => assert_eq!(lines.last().unwrap(), "… 13 more lines not shown"),
            _ => unreachable!(),
        }
        let lines: Vec<String> = (0..20).map(|i| format!("[todo] step {i}")).collect();
        let chunks = plan_chunks(&lines);
        assert_eq!(chunks.len(), 3);
        let back: Vec<String> = chunks
            .iter()
            .flat_map(|c| match c {
                Progress::Plan { lines } => lines.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(back, lines);
    }

    #[test]
    fn malformed_progress_is_refused_and_the_reader_stays_failed() {
        assert_eq!(decode_line(b"P2 {\"event\":\"finished\",\"changed\":1}"), Err(ChannelError::BadPrefix));
        assert_eq!(decode_line(b"{\"event\":\"finished\",\"changed\":1}"), Err(ChannelError::BadPrefix));
        assert_eq!(decode_line(b"P1 \xff"), Err(ChannelError::NotUtf8));
        assert!(matches!(decode_line(b"P1 {\"event\":\"finished\"}"), Err(ChannelError::Json(_))));
        assert!(matches!(decode_line(b"P1 {\"event\":\"reboot\"}"), Err(ChannelError::Json(_))));
        assert!(matches!(
            decode_line(b"P1 {\"event\":\"finished\",\"changed\":1,\"x\":2}"),
            Err(ChannelError::Json(_))
        ));
        assert!(matches!(decode_line(b"P1 {\"event\":\"finished\",\"changed\":-1}"), Err(ChannelError::Json(_))));
        assert!(matches!(decode_line(b"P1 "), Err(ChannelError::Json(_))));

        let mut r = ProgressReader::new();
        assert!(r.push(b"garbage\n").is_err());
        assert_eq!(r.push(Progress::Finished { changed: 0 }.encode().as_bytes()), Err(ChannelError::BadPrefix));

        // Oversized lines fail before they are buffered whole.
        let mut r = ProgressReader::new();
        assert_eq!(r.push(&vec![b'a'; MAX_PROGRESS_LINE]), Err(ChannelError::LineTooLong));
        let mut r = ProgressReader::new();
        r.push(&vec![b'a'; MAX_PROGRESS_LINE - 10]).unwrap();
        assert_eq!(r.push(&[b'a'; 20]), Err(ChannelError::LineTooLong));

        let mut r = ProgressReader::new();
        r.push(b"P1 {\"event\":\"fin").unwrap();
        assert_eq!(r.finish(), Err(ChannelError::Truncated));
        assert_eq!(r.finish(), Err(ChannelError::Truncated));
    }

    #[test]
    fn request_frames() {
        let json = br#"{"version":1}"#;
        let frame = encode_request(json).unwrap();
        assert_eq!(&frame[..4], b"PLSQ");
        assert_eq!(read_request(&mut &frame[..]).unwrap(), json);
        // Trailing bytes after the frame are not read.
        let mut more = frame.clone();
        more.extend_from_slice(b"xyz");
        let mut cursor = &more[..];
        assert_eq!(read_request(&mut cursor).unwrap(), json);
        assert_eq!(cursor, b"xyz");

        for cut in 0..frame.len() {
            assert_eq!(read_request(&mut &frame[..cut]), Err(ChannelError::RequestTruncated), "cut at {cut}");
        }
        let mut bad = frame.clone();
        bad[0] = b'X';
        assert_eq!(read_request(&mut &bad[..]), Err(ChannelError::RequestMagic));
        let mut bad = frame.clone();
        bad[4] = 2;
        assert_eq!(read_request(&mut &bad[..]), Err(ChannelError::RequestVersion(2)));
        let mut bad = frame.clone();
        bad[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_request(&mut &bad[..]), Err(ChannelError::RequestTooLarge(u32::MAX)));
        assert!(matches!(encode_request(&vec![b' '; MAX_REQUEST_BYTES + 1]), Err(ChannelError::RequestTooLarge(_))));
    }

    #[test]
    fn exit_codes_are_distinct_and_explained() {
        let all = [
            exit::OK,
            exit::USAGE,
            exit::PIPE,
            exit::REQUEST,
            exit::FACTS,
            exit::PLAN,
            exit::STEP,
            exit::RECORDS,
            exit::UNSUPPORTED,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| b != a));
            assert_ne!(exit::meaning(*a), exit::meaning(99));
        }
    }
}
