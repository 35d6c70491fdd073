//! The one request `palisade-setup` accepts, and its validation.
//!
//! The CLI (unelevated, the installing user) starts `palisade-setup.exe` through UAC
//! (`ShellExecuteEx` with the `runas` verb; the binary's manifest says `asInvoker`, so it never
//! elevates by itself). It passes only the name of a named pipe on the command line; the pipe
//! was created by the CLI with a DACL admitting the installing user and Administrators, and the
//! CLI checks that the client is the process it started. Over it the CLI sends one JSON
//! [`SetupRequest`]; setup answers with progress lines and exits. Passwords therefore never
//! appear on a command line or on disk in plain text.
//!
//! Setup trusts nothing in the request it can check itself: the installing user's SID must be
//! that of the pipe's server process, the profile must be that SID's profile in the registry
//! (`ProfileList`), every path must lie in that profile, and the runner is taken from setup's
//! own folder, not from the request. Without these checks a process of the user could make the
//! elevated setup grant read access to another user's files.

use serde::{Deserialize, Serialize};

use crate::facts::{CredentialFact, MachineFacts, SandboxUser};
use crate::password::Password;
use crate::setup_plan::{credential_path, EntryKind, Installer, ProfileEntry, SetupInputs};
use crate::sid::Sid;
use crate::winpath::WinPath;

/// The request format version.
pub const REQUEST_VERSION: u32 = 1;
/// Largest request accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;
/// Most profile entries (all levels).
pub const MAX_PROFILE_ENTRIES: usize = 20_000;
/// Deepest listing below the profile.
pub const MAX_PROFILE_DEPTH: usize = 8;
pub const MAX_TOOL_FOLDERS: usize = 64;
pub const MAX_EXTRA_SECRETS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestAction {
    Install,
    Uninstall,
}

/// A new password for an account (the CLI has stored it, pending).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub user: SandboxUser,
    pub password: Password,
}

/// What the CLI sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    pub version: u32,
    pub action: RequestAction,
    pub installer: Installer,
    #[serde(default)]
    pub proxy_ports: Vec<u16>,
    /// The stored passwords as the CLI found them (only it can decrypt them).
    #[serde(default)]
    pub credentials: Vec<CredentialFact>,
    /// New passwords, exactly for the accounts whose stored password does not log on.
    #[serde(default)]
    pub passwords: Vec<NewPassword>,
}

/// What setup knows first-hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// The user of the pipe's server process (the CLI).
    pub peer_sid: Sid,
    /// `ProfileImagePath` of that SID in `HKLM\...\ProfileList`.
    pub peer_profile: WinPath,
    /// `%ProgramData%` (`FOLDERID_ProgramData`).
    pub program_data: WinPath,
    /// `palisade-runner.exe` next to `palisade-setup.exe`, and its SHA-256.
    pub runner_source: WinPath,
    pub runner_sha256: String,
    pub setup_version: u32,
}

/// A request that passed validation.
#[derive(Debug)]
pub struct Validated {
    pub action: RequestAction,
    pub inputs: SetupInputs,
    pub passwords: Vec<NewPassword>,
}

impl Validated {
    /// The password to set for `user`, if the request carries one.
    pub fn password(&self, user: SandboxUser) -> Option<&Password> {
        self.passwords.iter().find(|p| p.user == user).map(|p| &p.password)
    }
}

/// Why a request is refused. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("setup request is {0} bytes, at most {MAX_REQUEST_BYTES}")]
    TooLarge(usize),
    #[error("setup request is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("setup request version {0}, this palisade-setup reads version {REQUEST_VERSION}")]
    Version(u32),
    #[error("setup request names user {claimed}, but it was sent by {actual}")]
    PeerMismatch { claimed: Sid, actual: Sid },
    #[error("setup request names the profile {claimed}, but the profile of that user is {actual}")]
    ProfileMismatch { claimed: WinPath, actual: WinPath },
    #[error("setup request: {0}")]
    Invalid(String),
}

/// Parses the request, refusing oversized input before parsing.
pub fn parse_request(bytes: &[u8]) -> Result<SetupRequest, RequestError> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge(bytes.len()));
    }
    let req: SetupRequest = serde_json::from_slice(bytes)?;
    if req.version != REQUEST_VERSION {
        return Err(RequestError::Version(req.version));
    }
    Ok(req)
}

/// Checks the request against what setup knows first-hand, and merges the CLI's view of the
/// stored passwords into `facts` (setup cannot decrypt them itself).
pub fn validate(req: SetupRequest, auth: &Authority, facts: &mut MachineFacts) -> Result<Validated, RequestError> {
    let invalid = |m: String| Err(RequestError::Invalid(m));
    if req.version != REQUEST_VERSION {
        return Err(RequestError::Version(req.version));
    }
    let inst = &req.installer;
    if inst.sid != auth.peer_sid {
        return Err(RequestError::PeerMismatch { claimed: inst.sid.clone(), actual: auth.peer_sid.clone() });
    }
    if inst.profile != auth.peer_profile {
        return Err(RequestError::ProfileMismatch { claimed: inst.profile.clone(), actual: auth.peer_profile.clone() });
    }
    // A WinPath deserializes any absolute form (UNC, streams); setup acts only on paths on a
    // local drive, named as they are on disk.
    if let Some(p) = std::iter::once(&inst.local_app_data).chain(&inst.tool_folders).find(|p| !p.is_exact_drive_path())
    {
        return invalid(format!("{p} is not a path on a local drive"));
    }
    if inst.name.is_empty() || inst.name.len() > 256 || inst.name.chars().any(char::is_control) {
        return invalid("the user name is empty, too long or has control characters".into());
    }
    if inst.tool_folders.len() > MAX_TOOL_FOLDERS {
        return invalid(format!("{} tool folders, at most {MAX_TOOL_FOLDERS}", inst.tool_folders.len()));
    }
    if inst.extra_secrets.len() > MAX_EXTRA_SECRETS {
        return invalid(format!("{} extra secrets, at most {MAX_EXTRA_SECRETS}", inst.extra_secrets.len()));
    }
    let mut count = 0;
    check_entries(&inst.profile_entries, 1, &mut count)?;

    for (i, c) in req.credentials.iter().enumerate() {
        if req.credentials[..i].iter().any(|d| d.user == c.user) {
            return invalid(format!("two stored passwords for {}", c.user.account_name()));
        }
        if c.path != credential_path(&inst.local_app_data, c.user) {
            return invalid(format!("stored password of {} at an unexpected place {}", c.user.account_name(), c.path));
        }
    }
    for (i, p) in req.passwords.iter().enumerate() {
        let name = p.user.account_name();
        if req.passwords[..i].iter().any(|q| q.user == p.user) {
            return invalid(format!("two passwords for {name}"));
        }
        if let Err(e) = Password::new(p.password.expose().to_string(), name) {
            return invalid(format!("password for {name}: {e}"));
        }
    }
    match req.action {
        RequestAction::Uninstall => {
            if !req.passwords.is_empty() {
                return invalid("an uninstall request carries passwords".into());
            }
        }
        RequestAction::Install => {
            for u in SandboxUser::ALL {
                let logs_on = req.credentials.iter().any(|c| c.user == u && c.decryptable && c.logon_ok);
                let given = req.passwords.iter().any(|p| p.user == u);
                // A password is needed exactly when the stored one does not log on: otherwise the
                // account and the stored password would no longer match.
                if !logs_on && !given {
                    return invalid(format!(
                        "no password for {} although its stored one does not log on",
                        u.account_name()
                    ));
                }
                if logs_on && given {
                    return invalid(format!("a new password for {} although its stored one logs on", u.account_name()));
                }
            }
        }
    }
    facts.credentials = req.credentials.clone();
    let inputs = SetupInputs {
        setup_version: auth.setup_version,
        installer: req.installer,
        program_data: auth.program_data.clone(),
        runner_source: auth.runner_source.clone(),
        runner_sha256: auth.runner_sha256.clone(),
        proxy_ports: req.proxy_ports,
    };
    Ok(Validated { action: req.action, inputs, passwords: req.passwords })
}

fn check_entries(entries: &[ProfileEntry], depth: usize, count: &mut usize) -> Result<(), RequestError> {
    if depth > MAX_PROFILE_DEPTH {
        return Err(RequestError::Invalid(format!("profile listing deeper than {MAX_PROFILE_DEPTH}")));
    }
    for e in entries {
        *count += 1;
        if *count > MAX_PROFILE_ENTRIES {
            return Err(RequestError::Invalid(format!("more than {MAX_PROFILE_ENTRIES} profile entries")));
        }
        if e.children.is_some() && e.kind != EntryKind::Directory {
            return Err(RequestError::Invalid(format!("profile entry `{}` has children but is not a folder", e.name)));
        }
        if let Some(c) = &e.children {
            check_entries(c, depth + 1, count)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    fn authority() -> Authority {
        Authority {
            peer_sid: sid(INSTALLER_SID),
            peer_profile: p("C:\\Users\\me"),
            program_data: p("C:\\ProgramData"),
            runner_source: p("C:\\Program Files\\Palisade\\palisade-runner.exe"),
            runner_sha256: RUNNER_SHA.into(),
            setup_version: crate::SETUP_VERSION,
        }
    }

    fn pw(s: &str) -> Password {
        Password::new(s.into(), "").unwrap()
    }

    fn request() -> SetupRequest {
        SetupRequest {
            version: REQUEST_VERSION,
            action: RequestAction::Install,
            installer: inputs().installer,
            proxy_ports: vec![8877],
            credentials: vec![],
            passwords: vec![
                NewPassword { user: SandboxUser::Offline, password: pw("Aa1-Aa1-Aa1-Bb2-Bb2-Cc3") },
                NewPassword { user: SandboxUser::Online, password: pw("Zz9_Zz9_Zz9_Yy8_Yy8_Xx7") },
                NewPassword { user: SandboxUser::Proxied, password: pw("Pp5=Pp5=Pp5=Qq6=Qq6=Rr7") },
            ],
        }
    }

    fn check(req: SetupRequest) -> Result<Validated, RequestError> {
        validate(req, &authority(), &mut fresh_facts())
    }

    #[test]
    fn a_valid_request_round_trips_and_becomes_inputs() {
        let json = serde_json::to_vec(&request()).unwrap();
        let req = parse_request(&json).unwrap();
        assert_eq!(req, request());
        let mut facts = fresh_facts();
        let v = validate(req, &authority(), &mut facts).unwrap();
        assert_eq!(v.inputs, inputs());
        assert_eq!(v.password(SandboxUser::Online).unwrap().expose(), "Zz9_Zz9_Zz9_Yy8_Yy8_Xx7");
        assert!(format!("{v:?}").contains("<redacted>") && !format!("{v:?}").contains("Zz9_"));
    }

    #[test]
    fn request_envelope_errors() {
        assert!(matches!(parse_request(&vec![b' '; MAX_REQUEST_BYTES + 1]), Err(RequestError::TooLarge(_))));
        assert!(matches!(parse_request(b"{"), Err(RequestError::Json(_))));
        let mut v = serde_json::to_value(request()).unwrap();
        v["version"] = 2.into();
        assert!(matches!(parse_request(v.to_string().as_bytes()), Err(RequestError::Version(2))));
        let mut v = serde_json::to_value(request()).unwrap();
        v["surprise"] = true.into();
        assert!(parse_request(v.to_string().as_bytes()).is_err());
        let mut v = serde_json::to_value(request()).unwrap();
        v["passwords"][0]["password"] = "weak".into();
        assert!(parse_request(v.to_string().as_bytes()).unwrap_err().to_string().contains("at least 20"));
        let mut v = serde_json::to_value(request()).unwrap();
        v["installer"]["profile"] = "C:\\Users\\me\\..\\other".into();
        assert!(parse_request(v.to_string().as_bytes()).is_err());
    }

    #[test]
    fn request_paths_must_be_on_a_local_drive() {
        let mut r = request();
        r.installer.tool_folders.push(WinPath::parse(r"\\server\share\tools").unwrap());
        assert!(check(r).unwrap_err().to_string().contains("not a path on a local drive"));
        let mut r = request();
        r.installer.local_app_data = WinPath::parse(r"C:\Users\me\AppData\Local:s").unwrap();
        assert!(check(r).is_err());
    }

    #[test]
    fn the_request_cannot_speak_for_another_user() {
        let mut r = request();
        r.installer.sid = sid("S-1-5-21-100-200-300-1002");
        assert!(matches!(check(r), Err(RequestError::PeerMismatch { .. })));
        let mut r = request();
        r.installer.profile = p("C:\\Users\\other");
        r.installer.local_app_data = p("C:\\Users\\other\\AppData\\Local");
        let e = check(r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "setup request names the profile C:\\Users\\other, but the profile of that user is C:\\Users\\me"
        );
    }

    #[test]
    fn passwords_must_match_the_stored_ones() {
        let cred = |user, logon_ok| crate::facts::CredentialFact {
            user,
            path: credential_path(&p("C:\\Users\\me\\AppData\\Local"), user),
            decryptable: true,
            logon_ok,
        };
        let mut r = request();
        r.passwords.remove(1);
        assert!(check(r).unwrap_err().to_string().contains("no password for PalisadeOnline"));
        let mut r = request();
        r.credentials = vec![cred(SandboxUser::Offline, true)];
        assert!(check(r).unwrap_err().to_string().contains("a new password for PalisadeOffline although"));
        let mut r = request();
        r.credentials = vec![cred(SandboxUser::Offline, true)];
        r.passwords.remove(0);
        let mut facts = fresh_facts();
        validate(r, &authority(), &mut facts).unwrap();
        assert_eq!(facts.credentials, vec![cred(SandboxUser::Offline, true)]);
        let mut r = request();
        r.credentials = vec![cred(SandboxUser::Offline, false), cred(SandboxUser::Offline, false)];
        assert!(check(r).unwrap_err().to_string().contains("two stored passwords"));
        let mut r = request();
        r.credentials = vec![crate::facts::CredentialFact {
            path: p("C:\\Users\\me\\x.dpapi"),
            ..cred(SandboxUser::Online, false)
        }];
        assert!(check(r).unwrap_err().to_string().contains("unexpected place"));
        let mut r = request();
        r.passwords[1].user = SandboxUser::Offline;
        assert!(check(r).unwrap_err().to_string().contains("two passwords"));
        let mut r = request();
        r.passwords[0].password = pw("xxPalisadeOfflinexx-1");
        assert!(check(r).unwrap_err().to_string().contains("contains the account name"));
        let mut r = request();
        r.action = RequestAction::Uninstall;
        assert!(check(r).unwrap_err().to_string().contains("uninstall request carries passwords"));
        let mut r = request();
        r.action = RequestAction::Uninstall;
        r.passwords.clear();
        assert_eq!(check(r).unwrap().action, RequestAction::Uninstall);
    }

    #[test]
    fn listings_are_bounded() {
        let mut r = request();
        let mut e = ProfileEntry { name: "d".into(), kind: EntryKind::Directory, children: None };
        for _ in 0..MAX_PROFILE_DEPTH {
            e = ProfileEntry { name: "d".into(), kind: EntryKind::Directory, children: Some(vec![e]) };
        }
        r.installer.profile_entries = vec![e];
        assert!(check(r).unwrap_err().to_string().contains("deeper than"));
        let mut r = request();
        r.installer.profile_entries =
            vec![ProfileEntry { name: "f".into(), kind: EntryKind::File, children: Some(vec![]) }];
        assert!(check(r).unwrap_err().to_string().contains("not a folder"));
        let mut r = request();
        r.installer.profile_entries = (0..=MAX_PROFILE_ENTRIES)
            .map(|i| ProfileEntry { name: format!("f{i}"), kind: EntryKind::File, children: None })
            .collect();
        assert!(check(r).unwrap_err().to_string().contains("more than"));
        let mut r = request();
        r.installer.name = "a\nb".into();
        assert!(check(r).is_err());
    }
}
