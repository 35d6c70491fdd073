//! Reading git's index file (`.git/index`, the "DIRC" format, versions 2, 3 and 4) for what the
//! host-side check after each command needs: gitlink entries (submodules the host's git enters)
//! and entries whose changes git hides (skip-worktree, assume-valid).
//!
//! Pure parsing of untrusted bytes: every length is checked, nothing panics, and anything that
//! does not follow the format is an error (the caller refuses to act on it and says so). The
//! trailing extensions and the checksum are not read: nothing here needs them.

/// The mode git records for a gitlink (a submodule's commit).
pub const GITLINK_MODE: u32 = 0o160000;

/// What git's hash is: the length of an object id in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectFormat {
    Sha1,
    Sha256,
}

impl ObjectFormat {
    pub fn id_len(self) -> usize {
        match self {
            ObjectFormat::Sha1 => 20,
            ObjectFormat::Sha256 => 32,
        }
    }

    /// From `extensions.objectformat` (absent means SHA-1); `None` for a value git does not know.
    pub fn from_config(value: Option<&str>) -> Option<ObjectFormat> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("sha1") => Some(ObjectFormat::Sha1),
            Some("sha256") => Some(ObjectFormat::Sha256),
            Some(_) => None,
        }
    }
}

/// One entry of the index, reduced to what the check uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path relative to the work tree, as git stores it (`/`-separated bytes).
    pub path: Vec<u8>,
    pub mode: u32,
    /// `git update-index --assume-unchanged`: git no longer looks at the file.
    pub assume_valid: bool,
    /// `git update-index --skip-worktree` (or sparse checkout): git no longer looks at the file.
    pub skip_worktree: bool,
}

impl Entry {
    pub fn is_gitlink(&self) -> bool {
        self.mode & 0o170000 == GITLINK_MODE
    }
}

/// The parsed index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    pub version: u32,
    pub entries: Vec<Entry>,
}

/// More entries than this is not an index git would write for a work tree (and bounds memory).
const MAX_ENTRIES: u32 = 10_000_000;

const ASSUME_VALID: u16 = 0x8000;
const EXTENDED: u16 = 0x4000;
const NAME_MASK: u16 = 0x0fff;
const EXT_SKIP_WORKTREE: u16 = 0x4000;

/// Why parsing stopped: the bytes so far end inside an entry (more may come), or they are not
/// an index.
#[derive(Debug)]
enum Stop {
    Short,
    Bad(String),
}

impl From<&str> for Stop {
    fn from(s: &str) -> Stop {
        Stop::Bad(s.into())
    }
}

impl From<String> for Stop {
    fn from(s: String) -> Stop {
        Stop::Bad(s)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(Stop::Short)?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, Stop> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Stop> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Bytes up to (not including) the next NUL, which is consumed.
    fn until_nul(&mut self) -> Result<&'a [u8], Stop> {
        let rest = &self.bytes[self.pos..];
        let n = rest.iter().position(|&b| b == 0).ok_or(Stop::Short)?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }
    /// Git's offset varint (version 4's prefix length): 7 bits per byte, each continuation
    /// adding one before the shift.
    fn varint(&mut self) -> Result<usize, Stop> {
        let mut c = self.take(1)?[0];
        let mut val = (c & 0x7f) as usize;
        while c & 0x80 != 0 {
            c = self.take(1)?[0];
            val = val
                .checked_add(1)
                .and_then(|v| v.checked_mul(128))
                .and_then(|v| v.checked_add((c & 0x7f) as usize))
                .ok_or("an index path prefix length overflows")?;
        }
        Ok(val)
    }
}

/// One entry as [`visit`] shows it (the path is borrowed: nothing is allocated per entry). An
/// empty path is a split index's replacement of an entry of its shared index (see
/// [`split_index_link`]).
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    pub path: &'a [u8],
    pub mode: u32,
    pub assume_valid: bool,
    pub skip_worktree: bool,
}

impl EntryRef<'_> {
    pub fn is_gitlink(&self) -> bool {
        self.mode & 0o170000 == GITLINK_MODE
    }
}

/// Parses the entries of an index file.
pub fn parse(bytes: &[u8], format: ObjectFormat) -> Result<Index, String> {
    let mut entries = Vec::new();
    let version = visit(bytes, format, |e| {
        entries.push(Entry {
            path: e.path.to_vec(),
            mode: e.mode,
            assume_valid: e.assume_valid,
            skip_worktree: e.skip_worktree,
        })
    })?;
    Ok(Index { version, entries })
}

/// Calls `each` for every entry of a whole index file (in order) and returns its version; the
/// whole file is checked even when `each` keeps nothing, so a malformed index is an error.
pub fn visit(bytes: &[u8], format: ObjectFormat, each: impl FnMut(EntryRef<'_>)) -> Result<u32, String> {
    let mut v = Visitor::new(format);
    v.feed(bytes, each)?;
    v.finish()
}

/// The same parse fed in pieces (so a large index can be read through a small buffer): `feed`
/// consumes the complete entries at the start of what it is given and returns how many bytes
/// that was; the caller passes the rest again with more bytes after it.
pub struct Visitor {
    id_len: usize,
    version: Option<u32>,
    remaining: u32,
    /// Version 4 paths are the previous path minus a suffix, plus new bytes.
    previous: Vec<u8>,
}

impl Visitor {
    pub fn new(format: ObjectFormat) -> Visitor {
        Visitor { id_len: format.id_len(), version: None, remaining: 0, previous: Vec::new() }
    }

    /// Whether every entry the header announced has been read.
    pub fn done(&self) -> bool {
        self.version.is_some() && self.remaining == 0
    }

    /// The version, once every entry has been read; an error if the input ended before.
    pub fn finish(&self) -> Result<u32, String> {
        match self.version {
            Some(v) if self.remaining == 0 => Ok(v),
            Some(_) => Err("the index ends in the middle of an entry".into()),
            None => Err("the index is shorter than its header".into()),
        }
    }

    pub fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(EntryRef<'_>)) -> Result<usize, String> {
        let mut r = Reader { bytes, pos: 0 };
        if self.version.is_none() {
            match self.header(&mut r) {
                Ok(()) => {}
                Err(Stop::Short) => return Ok(0),
                Err(Stop::Bad(e)) => return Err(e),
            }
        }
        let version = self.version.unwrap_or(2);
        while self.remaining > 0 {
            let start = r.pos;
            match self.entry(&mut r, version) {
                Ok((path_at, mode, assume_valid, skip_worktree)) => {
                    let path = match path_at {
                        Some((a, b)) => &bytes[a..b],
                        None => &self.previous[..],
                    };
                    each(EntryRef { path, mode, assume_valid, skip_worktree });
                    self.remaining -= 1;
                }
                Err(Stop::Short) => return Ok(start),
                Err(Stop::Bad(e)) => return Err(e),
            }
        }
        Ok(r.pos)
    }

    fn header(&mut self, r: &mut Reader<'_>) -> Result<(), Stop> {
        if r.take(4)? != b"DIRC" {
            return Err("the index does not start with DIRC".into());
        }
        let version = r.u32()?;
        if !(2..=4).contains(&version) {
            return Err(format!("index version {version} is not one git writes (2, 3 or 4)").into());
        }
        let count = r.u32()?;
        if count > MAX_ENTRIES {
            return Err(format!("the index claims {count} entries").into());
        }
        self.version = Some(version);
        self.remaining = count;
        Ok(())
    }

    /// One entry: where its path is in the input (`None`: in `previous`, version 4), mode and
    /// flags. On `Short` nothing of `self` has changed.
    #[allow(clippy::type_complexity)]
    fn entry(&mut self, r: &mut Reader<'_>, version: u32) -> Result<(Option<(usize, usize)>, u32, bool, bool), Stop> {
        let start = r.pos;
        r.take(24)?; // ctime, mtime, dev, ino
        let mode = r.u32()?;
        r.take(12)?; // uid, gid, size
        r.take(self.id_len)?;
        let flags = r.u16()?;
        let mut skip_worktree = false;
        if flags & EXTENDED != 0 {
            if version < 3 {
                return Err("a version 2 index entry has extended flags".into());
            }
            skip_worktree = r.u16()? & EXT_SKIP_WORKTREE != 0;
        }
        let name_len = (flags & NAME_MASK) as usize;
        let (path_at, path_len) = if version == 4 {
            let strip = r.varint()?;
            if strip > self.previous.len() {
                return Err("an index path strips more than the previous path has".into());
            }
            let suffix = r.until_nul()?;
            let len = self.previous.len() - strip + suffix.len();
            // Only now, when the whole entry has been read, is `previous` changed.
            self.previous.truncate(self.previous.len() - strip);
            self.previous.extend_from_slice(suffix);
            (None, len)
        } else {
            let at = r.pos;
            let p = r.until_nul()?;
            // The entry is padded with 1 to 8 NULs to a multiple of 8 bytes (one is the
            // terminator already consumed).
            let len = r.pos - start;
            let padded = (len - 1 + 8) & !7;
            r.take(padded - len)?;
            (Some((at, at + p.len())), p.len())
        };
        if name_len != NAME_MASK as usize && name_len != path_len {
            return Err("an index entry's name length does not match its path".into());
        }
        Ok((path_at, mode, flags & ASSUME_VALID != 0, skip_worktree))
    }
}

/// The extensions after the entries (`entries_end`: where the last entry ended), as
/// (signature, start of data, length), up to the trailing hash; `read_at` reads bytes of the
/// file. An extension that runs past the end is an error.
pub fn extensions(
    file_len: u64,
    entries_end: u64,
    format: ObjectFormat,
    mut read_at: impl FnMut(u64, &mut [u8]) -> bool,
) -> Result<Vec<([u8; 4], u64, u32)>, String> {
    let end = file_len.checked_sub(format.id_len() as u64).ok_or("the index has no trailing hash")?;
    let mut at = entries_end;
    let mut out = Vec::new();
    while at < end {
        let mut head = [0u8; 8];
        if end - at < 8 || !read_at(at, &mut head) {
            return Err("an index extension is cut short".into());
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let data = at + 8;
        if data + len as u64 > end {
            return Err("an index extension runs past the end".into());
        }
        out.push(([head[0], head[1], head[2], head[3]], data, len));
        at = data + len as u64;
        if out.len() > 64 {
            return Err("the index has too many extensions".into());
        }
    }
    Ok(out)
}

/// The name of the shared index a split index's `link` extension names (its data starts with
/// the shared index's object id): `sharedindex.<hex>`.
pub fn split_index_link(data: &[u8], format: ObjectFormat) -> Option<String> {
    let id = data.get(..format.id_len())?;
    Some(format!("sharedindex.{}", id.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// Whether a gitlink path is one the host-side check may act on: relative, no `.`/`..`, no
/// empty components (git refuses such paths itself; an index that has one is not trusted).
pub fn is_plain_relative_path(path: &[u8]) -> bool {
    !path.is_empty() && path.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One v2/v3 entry as git writes it.
    fn entry(version: u32, id_len: usize, path: &str, mode: u32, flags_hi: u16, ext: Option<u16>) -> Vec<u8> {
        let mut e = vec![0u8; 24];
        e.extend_from_slice(&mode.to_be_bytes());
        e.extend_from_slice(&[0u8; 12]);
        e.extend_from_slice(&vec![0xabu8; id_len]);
        let mut flags = flags_hi | (path.len().min(0xfff) as u16);
        if ext.is_some() {
            flags |= EXTENDED;
        }
        e.extend_from_slice(&flags.to_be_bytes());
        if let Some(x) = ext {
            e.extend_from_slice(&x.to_be_bytes());
        }
        if version == 4 {
            return e;
        }
        e.extend_from_slice(path.as_bytes());
        let len = e.len();
        let padded = (len + 8) & !7;
        e.resize(padded, 0);
        e
    }

    fn index(version: u32, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut b = b"DIRC".to_vec();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for e in entries {
            b.extend_from_slice(e);
        }
        b.extend_from_slice(&[0u8; 20]); // checksum (not read)
        b
    }

    #[test]
    fn reads_version_2_with_a_gitlink() {
        let b = index(2, &[entry(2, 20, "README", 0o100644, 0, None), entry(2, 20, "sub", GITLINK_MODE, 0, None)]);
        let idx = parse(&b, ObjectFormat::Sha1).unwrap();
        assert_eq!(idx.version, 2);
        assert_eq!(idx.entries.len(), 2);
        assert_eq!(idx.entries[1].path, b"sub");
        assert!(idx.entries[1].is_gitlink());
        assert!(!idx.entries[0].is_gitlink());
    }

    #[test]
    fn reads_the_padding_of_every_path_length() {
        for n in 1..20 {
            let p = "p".repeat(n);
            let b = index(2, &[entry(2, 20, &p, 0o100644, 0, None), entry(2, 20, "z", GITLINK_MODE, 0, None)]);
            let idx = parse(&b, ObjectFormat::Sha1).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(idx.entries[0].path, p.as_bytes());
            assert_eq!(idx.entries[1].path, b"z");
        }
    }

    #[test]
    fn reads_version_3_flags() {
        let b = index(
            3,
            &[
                entry(3, 20, "Makefile", 0o100644, 0, Some(EXT_SKIP_WORKTREE)),
                entry(3, 20, "b", 0o100755, ASSUME_VALID, None),
                entry(3, 20, "c", 0o100644, 0, None),
            ],
        );
        let idx = parse(&b, ObjectFormat::Sha1).unwrap();
        assert!(idx.entries[0].skip_worktree && !idx.entries[0].assume_valid);
        assert!(idx.entries[1].assume_valid && !idx.entries[1].skip_worktree);
        assert!(!idx.entries[2].assume_valid && !idx.entries[2].skip_worktree);
    }

    #[test]
    fn reads_version_4_prefix_compression_and_sha256() {
        let mut e1 = entry(4, 32, "dir/a", 0o100644, 0, None);
        e1.push(0); // strip nothing
        e1.extend_from_slice(b"dir/a\0");
        let mut e2 = entry(4, 32, "dir/sub", GITLINK_MODE, 0, None);
        e2.push(1); // strip "a"
        e2.extend_from_slice(b"sub\0");
        let b = index(4, &[e1, e2]);
        let idx = parse(&b, ObjectFormat::Sha256).unwrap();
        assert_eq!(idx.entries[1].path, b"dir/sub");
        assert!(idx.entries[1].is_gitlink());
        // Read with the wrong hash length it does not parse (it is not silently misread).
        assert!(parse(&b, ObjectFormat::Sha1).is_err());
    }

    #[test]
    fn version_4_varint_is_gits_offset_encoding() {
        // 0x80 0x00 is 128 in git's encoding (not 0 as in LEB128).
        let mut r = Reader { bytes: &[0x80, 0x00], pos: 0 };
        assert_eq!(r.varint().unwrap(), 128);
        let mut r = Reader { bytes: &[0x7f], pos: 0 };
        assert_eq!(r.varint().unwrap(), 127);
    }

    #[test]
    fn refuses_malformed_input_without_panicking() {
        let good = index(2, &[entry(2, 20, "README", 0o100644, 0, None), entry(2, 20, "sub", GITLINK_MODE, 0, None)]);
        for cut in 0..good.len() - 20 {
            assert!(parse(&good[..cut], ObjectFormat::Sha1).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(parse(&bad, ObjectFormat::Sha1).is_err());
        let mut v5 = good.clone();
        v5[7] = 5;
        assert!(parse(&v5, ObjectFormat::Sha1).is_err());
        let mut many = good.clone();
        many[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&many, ObjectFormat::Sha1).is_err());
        // Version 4 stripping more than the previous path.
        let mut e = entry(4, 20, "a", 0o100644, 0, None);
        e.push(5);
        e.extend_from_slice(b"a\0");
        assert!(parse(&index(4, &[e]), ObjectFormat::Sha1).is_err());
        // Extended flags in a version 2 index.
        assert!(parse(&index(2, &[entry(2, 20, "a", 0o100644, 0, Some(0))]), ObjectFormat::Sha1).is_err());
        // A name length that disagrees with the path.
        let mut e = entry(2, 20, "abc", 0o100644, 0, None);
        e[61] = 2;
        assert!(parse(&index(2, &[e]), ObjectFormat::Sha1).is_err());
        // Random bytes after a valid header.
        let mut state = 0x1234_5678u32;
        for _ in 0..200 {
            let mut b = good[..12].to_vec();
            for _ in 0..200 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b.push((state >> 16) as u8);
            }
            let _ = parse(&b, ObjectFormat::Sha1);
        }
    }

    /// Index files written by git 2.47 (`xxd -p .git/index`): a file `a` (skip-worktree), `dir/b`
    /// (assume-unchanged) and a gitlink `dir/sub`, as index versions 3 and 4; and a SHA-256
    /// repository's version 2 index with `a` and a gitlink `sub`.
    const REAL_V3: &[&str] = &[
        "4449524300000003000000036b16c59f323b20ef6b16c59f323b20ef0000fe000098e86e000081a40000000000000000",
        "0000000278981922613b2afb6025042ff6bd878ac1994e854001400061000000000000006b16c59f326981366b16c59f",
        "326981360000fe000098e870000081a400000000000000000000000261780798228d17af2d34fce4cfbdf35556832472",
        "80056469722f6200000000006b16c59f32f7f76b6b16c59f32f7f76b0000fe000098e8710000e0000000000000000000",
        "00001000cad4c2ef9c7c4272424c486e09414e4f781b2e0100076469722f737562000000cc35ef5eb4435353e6afe378",
        "d0eeeee511362ac2",
    ];
    const REAL_V4: &[&str] = &[
        "4449524300000004000000036b16c59f323b20ef6b16c59f323b20ef0000fe000098e86e000081a40000000000000000",
        "0000000278981922613b2afb6025042ff6bd878ac1994e85400140000061006b16c59f326981366b16c59f3269813600",
        "00fe000098e870000081a400000000000000000000000261780798228d17af2d34fce4cfbdf355568324728005016469",
        "722f62006b16c59f32f7f76b6b16c59f32f7f76b0000fe000098e8710000e000000000000000000000001000cad4c2ef",
        "9c7c4272424c486e09414e4f781b2e010007017375620070ebb60842b11a2637fec34e4e6c71ebf31a8e5c",
    ];
    const REAL_SHA256_V2: &[&str] = &[
        "4449524300000002000000026b16c59f3931bcd16b16c59f3931bcd10000fe000098e8bc000081a40000000000000000",
        "00000002f8625e43f9e04f24291f77cdbe4c71b3c2a3b0003f60419b3ed06a058d766c8b00016100000000006b16c59f",
        "399bc1b76b16c59f399bc1b70000fe000098e8bd0000e000000000000000000000001000cad4c2ef9c7c4272424c486e",
        "09414e4f781b2e010000000000000000000000000003737562000000eda4b948e160e808db8ee4bdc85ade5fb0469421",
        "7a3f8d4da54db25cad423322",
    ];

    fn unhex(parts: &[&str]) -> Vec<u8> {
        let h: String = parts.concat();
        (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn reads_indexes_git_wrote() {
        for (bytes, version) in [(unhex(REAL_V3), 3), (unhex(REAL_V4), 4)] {
            let idx = parse(&bytes, ObjectFormat::Sha1).unwrap_or_else(|e| panic!("v{version}: {e}"));
            assert_eq!(idx.version, version);
            let paths: Vec<&[u8]> = idx.entries.iter().map(|e| e.path.as_slice()).collect();
            assert_eq!(paths, [&b"a"[..], b"dir/b", b"dir/sub"], "v{version}");
            assert!(idx.entries[0].skip_worktree && !idx.entries[0].assume_valid, "v{version}");
            assert!(idx.entries[1].assume_valid && !idx.entries[1].skip_worktree, "v{version}");
            assert!(idx.entries[2].is_gitlink() && !idx.entries[0].is_gitlink(), "v{version}");
        }
        let idx = parse(&unhex(REAL_SHA256_V2), ObjectFormat::Sha256).unwrap();
        let links: Vec<&[u8]> = idx.entries.iter().filter(|e| e.is_gitlink()).map(|e| e.path.as_slice()).collect();
        assert_eq!(links, [&b"sub"[..]]);
        assert_eq!(idx.entries.len(), 2);
    }

    #[test]
    fn fed_in_pieces_it_reads_the_same() {
        for (bytes, format) in [
            (unhex(REAL_V3), ObjectFormat::Sha1),
            (unhex(REAL_V4), ObjectFormat::Sha1),
            (unhex(REAL_SHA256_V2), ObjectFormat::Sha256),
        ] {
            let whole = parse(&bytes, format).unwrap().entries;
            for piece in [1, 2, 7, 13, 64] {
                let mut v = Visitor::new(format);
                let mut got = Vec::new();
                let mut buf: Vec<u8> = Vec::new();
                for chunk in bytes.chunks(piece) {
                    buf.extend_from_slice(chunk);
                    let used = v
                        .feed(&buf, |e| {
                            got.push(Entry {
                                path: e.path.to_vec(),
                                mode: e.mode,
                                assume_valid: e.assume_valid,
                                skip_worktree: e.skip_worktree,
                            })
                        })
                        .unwrap();
                    buf.drain(..used);
                    if v.done() {
                        break;
                    }
                }
                v.finish().unwrap();
                assert_eq!(got, whole, "pieces of {piece}");
            }
        }
    }

    #[test]
    fn finds_a_split_index_link() {
        // Written by git 2.47 after `git update-index --split-index` and one more `git add a`:
        // one replacement entry (empty name), then `link` and `TREE`.
        let b = unhex(&[
            "4449524300000002000000016b16c8d618fdd49e6b16c8d618fdd49e0000fe000098e080000081a40000000000000000",
            "0000000261780798228d17af2d34fce4cfbdf35556832472000000006c696e6b00000044a57b8b0fc28c407305c5619a",
            "dbd0baece165d7a400000000000000010000000000000000000000000000000100000002000000020000000000000000",
            "00000001000000005452454500000006002d3120300aa611a20c855b2d7d541b877ab580b277fbc1ccd1",
        ]);
        let mut v = Visitor::new(ObjectFormat::Sha1);
        let mut names = Vec::new();
        let used = v.feed(&b, |e| names.push(e.path.to_vec())).unwrap();
        v.finish().unwrap();
        assert_eq!(names, vec![Vec::<u8>::new()]);
        let ext = extensions(b.len() as u64, used as u64, ObjectFormat::Sha1, |at, buf| {
            let at = at as usize;
            b.get(at..at + buf.len()).map(|s| buf.copy_from_slice(s)).is_some()
        })
        .unwrap();
        let sigs: Vec<&[u8]> = ext.iter().map(|(s, _, _)| &s[..]).collect();
        assert_eq!(sigs, [&b"link"[..], b"TREE"]);
        let (_, at, len) = ext[0];
        let name = split_index_link(&b[at as usize..at as usize + len as usize], ObjectFormat::Sha1).unwrap();
        assert_eq!(name, "sharedindex.a57b8b0fc28c407305c5619adbd0baece165d7a4");
        // Cut short, it is an error.
        assert!(extensions(b.len() as u64 - 30, used as u64, ObjectFormat::Sha1, |_, _| true).is_err());
    }

    #[test]
    fn object_format_from_config() {
        assert_eq!(ObjectFormat::from_config(None), Some(ObjectFormat::Sha1));
        assert_eq!(ObjectFormat::from_config(Some("SHA256")), Some(ObjectFormat::Sha256));
        assert_eq!(ObjectFormat::from_config(Some("md5")), None);
    }

    #[test]
    fn plain_relative_paths() {
        assert!(is_plain_relative_path(b"a/b"));
        for p in [&b""[..], b"/a", b"a//b", b"../a", b"a/./b", b"a/"] {
            assert!(!is_plain_relative_path(p), "{p:?}");
        }
    }
}
