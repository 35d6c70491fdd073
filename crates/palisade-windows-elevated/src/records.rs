//! The state records: everything setup (and runs) added to the machine, so that uninstall can
//! remove exactly that and nothing else.
//!
//! Records are written **ahead** of each action: the setup binary appends the step's record
//! with `done = false`, carries the action out, then marks it done (filling in the SID of an
//! account it just created). An interruption therefore never leaves something Palisade made
//! without a record; [`crate::uninstall_plan()`] checks each record against the machine and
//! reports the ones whose object is not there. If an action fails, the executor drops its
//! pending record ([`StateRecords::discard_pending`]).
//!
//! Stored as versioned JSON in `%ProgramData%\Palisade\state.json` (see [`STATE_FILE_NAME`]),
//! a folder only administrators and SYSTEM may change.

use serde::{Deserialize, Serialize};

use crate::ace::AceSpec;
use crate::facts::{AccountRight, SandboxUser};
use crate::sid::Sid;
use crate::winpath::WinPath;

/// The format version of the records file this code writes and reads.
pub const RECORDS_VERSION: u32 = 1;
/// The records file's name inside Palisade's `%ProgramData%` folder.
pub const STATE_FILE_NAME: &str = "state.json";

/// Who added something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The elevated setup (or the CLI during setup, for the stored credentials).
    Setup,
    /// A sandboxed run (for example the sandbox account's profile created at its first logon).
    Run,
}

/// The kind of a WFP object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WfpKind {
    Provider,
    Sublayer,
    Filter,
}

/// One thing Palisade added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Record {
    /// `sid` is `None` while the creation is pending.
    GroupCreated {
        name: String,
        sid: Option<Sid>,
    },
    UserCreated {
        user: SandboxUser,
        name: String,
        sid: Option<Sid>,
    },
    AddedToGroup {
        user: SandboxUser,
        member: Sid,
        group: Sid,
    },
    HiddenFromSignIn {
        name: String,
    },
    RightsAdded {
        name: String,
        sid: Sid,
        rights: Vec<AccountRight>,
    },
    CredentialStored {
        user: SandboxUser,
        path: WinPath,
    },
    FirewallRuleAdded {
        name: String,
    },
    WfpAdded {
        wfp: WfpKind,
        key: String,
        name: String,
    },
    /// The ACE's trustee is always a SID.
    AceAdded {
        path: WinPath,
        ace: AceSpec,
    },
    DirectoryCreated {
        path: WinPath,
    },
    FileWritten {
        path: WinPath,
    },
    MarkerWritten {
        path: WinPath,
        version: u32,
    },
    ProfileCreated {
        user: SandboxUser,
        sid: Sid,
        path: WinPath,
    },
}

impl Record {
    /// One line naming what was added.
    pub fn describe(&self) -> String {
        match self {
            Record::GroupCreated { name, .. } => format!("local group {name}"),
            Record::UserCreated { name, .. } => format!("local account {name}"),
            Record::AddedToGroup { user, .. } => {
                format!("membership of {} in {}", user.account_name(), crate::facts::GROUP_NAME)
            }
            Record::HiddenFromSignIn { name } => format!("sign-in screen entry hiding {name}"),
            Record::RightsAdded { name, rights, .. } => {
                let r: Vec<&str> = rights.iter().map(|r| r.as_str()).collect();
                format!("account rights of {name}: {}", r.join(", "))
            }
            Record::CredentialStored { user, path } => format!("stored password of {} at {path}", user.account_name()),
            Record::FirewallRuleAdded { name } => format!("firewall rule `{name}`"),
            Record::WfpAdded { wfp, name, .. } => format!("WFP {} `{name}`", wfp_kind_name(*wfp)),
            Record::AceAdded { path, ace } => format!("access entry for {} on {path}", ace.trustee),
            Record::DirectoryCreated { path } => format!("folder {path}"),
            Record::FileWritten { path } => format!("file {path}"),
            Record::MarkerWritten { path, version } => format!("setup marker {path} (version {version})"),
            Record::ProfileCreated { user, path, .. } => format!("profile of {} at {path}", user.account_name()),
        }
    }
}

pub(crate) fn wfp_kind_name(k: WfpKind) -> &'static str {
    match k {
        WfpKind::Provider => "provider",
        WfpKind::Sublayer => "sublayer",
        WfpKind::Filter => "filter",
    }
}

/// A record with where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEntry {
    /// The id of the setup step that added it (or `run` for run records).
    pub step: String,
    pub origin: Origin,
    /// `false` while the action is under way (written ahead).
    pub done: bool,
    pub record: Record,
}

/// The whole records file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRecords {
    pub version: u32,
    pub entries: Vec<RecordEntry>,
}

impl Default for StateRecords {
    fn default() -> StateRecords {
        StateRecords::new()
    }
}

/// Why a records file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("records file is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("records file has format version {0}, this palisade reads version {RECORDS_VERSION}: use the palisade that wrote it")]
    Version(u32),
}

impl StateRecords {
    pub fn new() -> StateRecords {
        StateRecords { version: RECORDS_VERSION, entries: Vec::new() }
    }

    pub fn from_json(s: &str) -> Result<StateRecords, RecordsError> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe = serde_json::from_str(s)?;
        if probe.version != RECORDS_VERSION {
            return Err(RecordsError::Version(probe.version));
        }
        Ok(serde_json::from_str(s)?)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("records serialize")
    }

    /// Appends a pending record before its action (write-ahead). A record equal to one already
    /// present is not added twice; `false` then.
    pub fn begin(&mut self, step: &str, origin: Origin, record: Record) -> bool {
        if self.entries.iter().any(|e| e.record == record) {
            return false;
        }
        self.entries.push(RecordEntry { step: step.to_string(), origin, done: false, record });
        true
    }

    /// Marks the pending records of `step` done; `sid` fills in the SID of a group or account
    /// the step created.
    pub fn complete(&mut self, step: &str, sid: Option<&Sid>) {
        for e in self.entries.iter_mut().filter(|e| e.step == step && !e.done) {
            e.done = true;
            match &mut e.record {
                Record::GroupCreated { sid: s, .. } | Record::UserCreated { sid: s, .. } if s.is_none() => {
                    *s = sid.cloned()
                }
                _ => {}
            }
        }
    }

    /// Drops the pending records of `step` (its action failed and changed nothing).
    pub fn discard_pending(&mut self, step: &str) {
        self.entries.retain(|e| e.step != step || e.done);
    }

    /// Drops the record of something that has been removed (by a setup step that revokes a
    /// stale grant, or by an uninstall step).
    pub fn forget(&mut self, record: &Record) {
        self.entries.retain(|e| &e.record != record);
    }

    /// The SIDs of the accounts and group Palisade created.
    pub fn created_sids(&self) -> Vec<Sid> {
        self.entries
            .iter()
            .filter_map(|e| match &e.record {
                Record::GroupCreated { sid: Some(s), .. } | Record::UserCreated { sid: Some(s), .. } => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ace::{Inheritance, Rights, Trustee};

    fn sid(s: &str) -> Sid {
        Sid::parse(s).unwrap()
    }

    fn sample() -> StateRecords {
        let mut r = StateRecords::new();
        r.begin("group.create", Origin::Setup, Record::GroupCreated { name: "PalisadeSandboxUsers".into(), sid: None });
        r.complete("group.create", Some(&sid("S-1-5-21-1-2-3-1010")));
        r.begin(
            "acl:C:\\Users\\me\\src",
            Origin::Setup,
            Record::AceAdded {
                path: WinPath::parse("C:\\Users\\me\\src").unwrap(),
                ace: AceSpec::allow(
                    Trustee::Sid(sid("S-1-5-21-1-2-3-1010")),
                    Rights::ReadExecute,
                    Inheritance::ContainerAndObject,
                ),
            },
        );
        r
    }

    #[test]
    fn write_ahead_then_complete() {
        let r = sample();
        assert_eq!(r.entries.len(), 2);
        assert!(r.entries[0].done);
        assert_eq!(
            r.entries[0].record,
            Record::GroupCreated { name: "PalisadeSandboxUsers".into(), sid: Some(sid("S-1-5-21-1-2-3-1010")) }
        );
        assert!(!r.entries[1].done);
        assert_eq!(r.created_sids(), vec![sid("S-1-5-21-1-2-3-1010")]);
        let mut r2 = r.clone();
        r2.discard_pending("acl:C:\\Users\\me\\src");
        assert_eq!(r2.entries.len(), 1);
        let mut r3 = r.clone();
        assert!(!r3.begin("again", Origin::Setup, r.entries[1].record.clone()));
        r3.forget(&r.entries[0].record);
        assert_eq!(r3.entries.len(), 1);
    }

    #[test]
    fn json_round_trip_and_version_check() {
        let r = sample();
        let j = r.to_json();
        assert!(j.contains("\"kind\": \"ace-added\""));
        assert!(j.contains("\"trustee\""));
        assert_eq!(StateRecords::from_json(&j).unwrap(), r);
        let newer = j.replacen("\"version\": 1", "\"version\": 2", 1);
        assert!(matches!(StateRecords::from_json(&newer), Err(RecordsError::Version(2))));
        assert!(StateRecords::from_json("{").is_err());
        assert!(StateRecords::from_json("{\"version\":1,\"entries\":[],\"extra\":0}").is_err());
        // A tampered SID or path in the file is refused, not trusted.
        let bad = j.replace("S-1-5-21-1-2-3-1010", "S-1-5-21-1-2-3-1010)(A;;GA;;;WD");
        assert!(StateRecords::from_json(&bad).is_err());
    }

    #[test]
    fn descriptions_are_one_line() {
        for e in sample().entries {
            let d = e.record.describe();
            assert!(!d.is_empty() && !d.contains('\n'));
        }
    }
}
