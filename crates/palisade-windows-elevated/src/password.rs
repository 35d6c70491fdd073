//! Passwords of the sandbox accounts: generated from random bytes the caller supplies (the OS
//! generator in the CLI, fixed bytes in tests), checked against the strength rules, and kept out
//! of logs.
//!
//! Nobody types these passwords: the CLI generates one per account, stores it encrypted with
//! DPAPI for the installing user, hands it to the elevated setup over a pipe (never a command
//! line), and decrypts it to start the runner with `CreateProcessWithLogonW`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Characters of generated passwords: 64 symbols, so each takes exactly 6 bits of a random byte
/// (no modulo bias) and none needs quoting anywhere.
pub const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Length of generated passwords (192 bits).
pub const GENERATED_LEN: usize = 32;
/// Shortest password the strength rules accept (Windows' policy maximum for the minimum length
/// is 14; generated ones are longer).
pub const MIN_LEN: usize = 20;
/// Longest password `NetUserAdd`/`LogonUser` handle (LM-free limit, in characters).
pub const MAX_LEN: usize = 127;

/// A password. Its `Debug` and `Display` print `<redacted>`; its bytes are overwritten when it
/// is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps an existing password after checking it against the strength rules.
    pub fn new(s: String, account: &str) -> Result<Password, WeakPassword> {
        check_strength(&s, account)?;
        Ok(Password(s))
    }

    /// The secret itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        // Overwrite the secret before its memory is freed; `black_box` keeps the writes from
        // being removed as dead stores. Best effort: copies the OS calls make are out of reach.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&mut bytes);
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Password {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Password, D::Error> {
        let s = String::deserialize(d)?;
        check_strength(&s, "").map_err(serde::de::Error::custom)?;
        Ok(Password(s))
    }
}

/// Why a password is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("password is {0} characters long, at least {MIN_LEN} are required")]
    TooShort(usize),
    #[error("password is {0} characters long, at most {MAX_LEN} are allowed")]
    TooLong(usize),
    #[error("password has characters from {0} of the classes upper case, lower case, digit, symbol; at least 3 are required")]
    TooFewClasses(usize),
    #[error("password contains the account name")]
    ContainsAccountName,
    #[error("password contains a character outside printable ASCII")]
    NotPrintableAscii,
    #[error("password repeats one character {0} times in a row")]
    Repetition(usize),
}

/// The strength rules: printable ASCII, [`MIN_LEN`]..=[`MAX_LEN`] characters, at least three of
/// the four character classes (Windows' complexity requirement), no run of four equal
/// characters, and not containing the account name (compared ignoring case).
pub fn check_strength(pw: &str, account: &str) -> Result<(), WeakPassword> {
    if !pw.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(WeakPassword::NotPrintableAscii);
    }
    let n = pw.len();
    if n < MIN_LEN {
        return Err(WeakPassword::TooShort(n));
    }
    if n > MAX_LEN {
        return Err(WeakPassword::TooLong(n));
    }
    let classes = [
        pw.bytes().any(|b| b.is_ascii_uppercase()),
        pw.bytes().any(|b| b.is_ascii_lowercase()),
        pw.bytes().any(|b| b.is_ascii_digit()),
        pw.bytes().any(|b| b.is_ascii_punctuation()),
    ]
    .iter()
    .filter(|c| **c)
    .count();
    if classes < 3 {
        return Err(WeakPassword::TooFewClasses(classes));
    }
    let mut run = 1;
    for w in pw.as_bytes().windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        if run >= 4 {
            return Err(WeakPassword::Repetition(run));
        }
    }
    if account.len() >= 3 && pw.to_ascii_lowercase().contains(&account.to_ascii_lowercase()) {
        return Err(WeakPassword::ContainsAccountName);
    }
    Ok(())
}

/// Not enough random bytes were supplied to finish a password that passes the rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not enough random bytes to generate a password (give at least {} bytes)", RANDOM_BYTES)]
pub struct NotEnoughRandomness;

/// How many random bytes [`generate`] should be given: enough for many attempts, although the
/// first attempt passes the rules with a probability above 99%.
pub const RANDOM_BYTES: usize = GENERATED_LEN * 8;

/// A password from random bytes: each attempt turns [`GENERATED_LEN`] bytes into characters
/// (6 bits each) and is kept if it passes [`check_strength`]; otherwise the next bytes are used.
pub fn generate(random: &[u8], account: &str) -> Result<Password, NotEnoughRandomness> {
    for chunk in random.chunks_exact(GENERATED_LEN) {
        let s: String = chunk.iter().map(|b| ALPHABET[(b & 63) as usize] as char).collect();
        if check_strength(&s, account).is_ok() {
            return Ok(Password(s));
        }
    }
    Err(NotEnoughRandomness)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_deterministic_and_strong() {
        let random: Vec<u8> = (0..RANDOM_BYTES as u32).map(|i| (i * 37 + 11) as u8).collect();
        let a = generate(&random, "PalisadeOffline").unwrap();
        let b = generate(&random, "PalisadeOffline").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.expose().len(), GENERATED_LEN);
        assert!(check_strength(a.expose(), "PalisadeOffline").is_ok());
        assert!(a.expose().bytes().all(|c| ALPHABET.contains(&c)));
        assert_eq!(format!("{a:?}"), "Password(<redacted>)");
        assert_eq!(a.to_string(), "<redacted>");
    }

    #[test]
    fn weak_attempts_are_skipped() {
        // First 32 bytes give only 'A' (byte 0): refused; the next chunk is used.
        let mut random = vec![0u8; GENERATED_LEN];
        random.extend((0..GENERATED_LEN as u8).map(|i| i.wrapping_mul(7)));
        let p = generate(&random, "x").unwrap();
        let expected: String =
            (0..GENERATED_LEN as u8).map(|i| ALPHABET[(i.wrapping_mul(7) & 63) as usize] as char).collect();
        assert_eq!(p.expose(), expected);
        assert_eq!(generate(&[0u8; RANDOM_BYTES], "x"), Err(NotEnoughRandomness));
        assert_eq!(generate(&[1u8; 10], "x"), Err(NotEnoughRandomness));
    }

    #[test]
    fn strength_rules() {
        assert_eq!(check_strength("Ab1-Ab1-Ab1-Ab1-Ab1", ""), Err(WeakPassword::TooShort(19)));
        assert!(check_strength("Ab1-Ab1-Ab1-Ab1-Ab1-", "").is_ok());
        assert_eq!(check_strength(&"Ab1-".repeat(40), ""), Err(WeakPassword::TooLong(160)));
        assert_eq!(check_strength("abcdefghijklmnopqrstuvwxyz", ""), Err(WeakPassword::TooFewClasses(1)));
        assert_eq!(check_strength("abcdefghijklmnopqrstuvwxyz12", ""), Err(WeakPassword::TooFewClasses(2)));
        assert!(check_strength("abcdefghijklmnopqrstuvwxyz1A", "").is_ok());
        assert_eq!(check_strength("abcdefghijklmnopqrstuvwxyz1AAAA", ""), Err(WeakPassword::Repetition(4)));
        assert_eq!(check_strength("xxPALISADEOFFLINExx1a", "PalisadeOffline"), Err(WeakPassword::ContainsAccountName));
        assert_eq!(check_strength("abcdefghijklmnopqrstuvwxyz 1A", ""), Err(WeakPassword::NotPrintableAscii));
        assert_eq!(check_strength("abcdefghijklmnopqrstuvwxyzé1A", ""), Err(WeakPassword::NotPrintableAscii));
        assert!(Password::new("short".into(), "").is_err());
    }

    #[test]
    fn most_random_inputs_pass_on_the_first_attempt() {
        let mut x: u64 = 1;
        let mut first = 0;
        for _ in 0..1000 {
            let bytes: Vec<u8> = (0..RANDOM_BYTES)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let p = generate(&bytes, "PalisadeOnline").unwrap();
            if p.expose().bytes().zip(&bytes).all(|(c, b)| c == ALPHABET[(b & 63) as usize]) {
                first += 1;
            }
        }
        assert!(first > 980, "{first}");
    }

    #[test]
    fn deserializing_checks_strength() {
        assert!(serde_json::from_str::<Password>("\"weak\"").is_err());
        let p: Password = serde_json::from_str("\"abcdefghijklmnopqrstuvwxyz1A\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"abcdefghijklmnopqrstuvwxyz1A\"");
    }
}
