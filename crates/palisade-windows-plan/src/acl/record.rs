//! The recorded state and planning (see "Recorded state and planning" in the module
//! documentation of [`crate::acl`]): [`RecordedAcl`], [`plan`] and [`cleanup_plan`].

use super::*;

/// The current format version of [`RecordedAcl`]'s JSON.
pub const ACL_STATE_VERSION: u32 = 1;

/// One applied (or, if `pending`, possibly applied) ACE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedAce {
    pub path: WinPath,
    #[serde(flatten)]
    pub ace: Ace,
    /// The host sessions using it (its reference count).
    pub holders: BTreeSet<String>,
    /// Recorded before being applied; not known to be on disk.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl RecordedAce {
    fn key(&self) -> (&WinPath, &Ace) {
        (&self.path, &self.ace)
    }
}

/// Why a record file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the ACL record is not valid JSON for this version of palisade: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "the ACL record has format version {found}, but this palisade understands only version {supported}{}",
        if *found > *supported { "; it was written by a newer palisade, which must be used to change or remove what it applied" } else { "" }
    )]
    Version { found: u32, supported: u32 },
    #[error("the ACL record lists {0} twice")]
    Duplicate(String),
}

/// What the sandbox has applied, and for whom (versioned JSON, see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedAcl {
    pub version: u32,
    /// Sorted by path, then ACE; one entry per (path, ACE).
    pub entries: Vec<RecordedAce>,
    /// Placeholders Palisade created (`true`: a directory), recorded before creating them.
    #[serde(default, with = "placeholder_list")]
    pub placeholders: BTreeMap<WinPath, bool>,
}

/// `placeholders` as a JSON list of `{"path": ..., "dir": ...}` (JSON object keys would have to
/// be strings anyway, and a list reads better).
mod placeholder_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::path::WinPath;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        path: WinPath,
        dir: bool,
    }

    pub fn serialize<S: Serializer>(m: &BTreeMap<WinPath, bool>, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<Entry> = m.iter().map(|(path, dir)| Entry { path: path.clone(), dir: *dir }).collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<WinPath, bool>, D::Error> {
        let v = Vec::<Entry>::deserialize(d)?;
        Ok(v.into_iter().map(|e| (e.path, e.dir)).collect())
    }
}

impl Default for RecordedAcl {
    fn default() -> Self {
        RecordedAcl { version: ACL_STATE_VERSION, entries: Vec::new(), placeholders: BTreeMap::new() }
    }
}

impl RecordedAcl {
    pub fn new() -> RecordedAcl {
        RecordedAcl::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.placeholders.is_empty()
    }

    fn find(&self, path: &WinPath, ace: &Ace) -> Option<&RecordedAce> {
        self.entries.binary_search_by(|e| e.key().cmp(&(path, ace))).ok().map(|i| &self.entries[i])
    }

    /// Every holder that uses some recorded ACE.
    pub fn holders(&self) -> BTreeSet<&str> {
        self.entries.iter().flat_map(|e| e.holders.iter().map(String::as_str)).collect()
    }

    /// Write-ahead step: records the ACEs `changes` will add as pending, and the placeholders
    /// they will create.
    pub fn begin(&mut self, changes: &[AclChange]) {
        for c in changes {
            if let AclChange::CreatePlaceholder { path, dir } = c {
                self.placeholders.insert(path.clone(), *dir);
            }
            if let AclChange::Add { path, ace } = c {
                if self.find(path, ace).is_none() {
                    self.entries.push(RecordedAce {
                        path: path.clone(),
                        ace: ace.clone(),
                        holders: BTreeSet::new(),
                        pending: true,
                    });
                    self.entries.sort_by(|a, b| a.key().cmp(&b.key()));
                }
            }
        }
    }

    /// After every change of [`plan`]`(desired, self)` was applied: `desired.holder` now holds
    /// exactly `desired.aces`, and entries nobody holds any more are dropped.
    pub fn commit(&mut self, desired: &DesiredAcl) {
        let holder = &desired.holder;
        let wanted = wanted_set(desired);
        for e in &mut self.entries {
            if wanted.contains(&(&e.path, &e.ace)) {
                e.holders.insert(holder.clone());
                e.pending = false;
            } else {
                e.holders.remove(holder);
            }
        }
        for d in &desired.aces {
            if self.find(&d.path, &d.ace).is_none() {
                self.entries.push(RecordedAce {
                    path: d.path.clone(),
                    ace: d.ace.clone(),
                    holders: BTreeSet::from([holder.clone()]),
                    pending: false,
                });
            }
        }
        // Nobody holds it: the plan being committed removed it (pending leftovers included).
        self.entries.retain(|e| !e.holders.is_empty());
        self.entries.sort_by(|a, b| a.key().cmp(&b.key()));
    }

    /// After [`cleanup_plan`] was applied: keeps only the entries whose removal `failed` (a
    /// placeholder left in place because it is no longer empty is not a failure).
    pub fn after_cleanup(&mut self, failed: &[AclChange]) {
        self.entries.retain(|e| {
            failed.iter().any(|c| matches!(c, AclChange::Remove { path, ace } if *path == e.path && *ace == e.ace))
        });
        self.placeholders
            .retain(|p, _| failed.iter().any(|c| matches!(c, AclChange::RemovePlaceholder { path, .. } if path == p)));
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an ACL record always serializes")
    }

    /// Reads a record, refusing other format versions.
    pub fn from_json(text: &str) -> Result<RecordedAcl, StateError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly = serde_json::from_str(text)?;
        if v.version != ACL_STATE_VERSION {
            return Err(StateError::Version { found: v.version, supported: ACL_STATE_VERSION });
        }
        let mut rec: RecordedAcl = serde_json::from_str(text)?;
        rec.entries.sort_by(|a, b| a.key().cmp(&b.key()));
        if let Some(w) = rec.entries.windows(2).find(|w| w[0].key() == w[1].key()) {
            return Err(StateError::Duplicate(format!("{}: {}", w[0].path, w[0].ace)));
        }
        Ok(rec)
    }
}

fn wanted_set(desired: &DesiredAcl) -> BTreeSet<(&WinPath, &Ace)> {
    desired.aces.iter().map(|d| (&d.path, &d.ace)).collect()
}

/// The changes that take the disk from what `recorded` says to what `desired` wants, for
/// `desired.holder` (see the module documentation). Empty when nothing changed.
pub fn plan(desired: &DesiredAcl, recorded: &RecordedAcl) -> Vec<AclChange> {
    let holder = &desired.holder;
    let mut changes = Vec::new();
    for (path, dir) in &desired.placeholders {
        changes.push(AclChange::CreatePlaceholder { path: path.clone(), dir: *dir });
    }
    for d in &desired.aces {
        let fresh = desired.placeholders.contains_key(&d.path);
        let applied = recorded.find(&d.path, &d.ace).is_some_and(|e| !e.pending);
        if fresh || !applied {
            changes.push(AclChange::Add { path: d.path.clone(), ace: d.ace.clone() });
        }
    }
    let wanted = wanted_set(desired);
    for e in &recorded.entries {
        if wanted.contains(&(&e.path, &e.ace)) {
            continue;
        }
        let others = e.holders.iter().any(|h| h != holder);
        if !others && (e.pending || e.holders.contains(holder)) {
            changes.push(AclChange::Remove { path: e.path.clone(), ace: e.ace.clone() });
        }
    }
    sort_changes(&mut changes);
    changes
}

/// Removes everything `recorded` lists, grants before denies, then the placeholders that are
/// still empty.
pub fn cleanup_plan(recorded: &RecordedAcl) -> Vec<AclChange> {
    let mut changes: Vec<AclChange> =
        recorded.entries.iter().map(|e| AclChange::Remove { path: e.path.clone(), ace: e.ace.clone() }).collect();
    changes.extend(
        recorded.placeholders.iter().map(|(path, dir)| AclChange::RemovePlaceholder { path: path.clone(), dir: *dir }),
    );
    sort_changes(&mut changes);
    // Children before parents, so that a placeholder directory is empty when its turn comes.
    let first = changes.iter().position(|c| matches!(c, AclChange::RemovePlaceholder { .. })).unwrap_or(changes.len());
    changes[first..].reverse();
    changes
}
