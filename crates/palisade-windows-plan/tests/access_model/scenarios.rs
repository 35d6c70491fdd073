//! Generated trees and policies, run through the real plan (policy roots, the policy crate's
//! protected-path resolution, `desired_acl`, `plan`, `token_plan`, `cleanup_plan`), and judged
//! by the model with the token the unelevated mode builds.

use std::collections::BTreeMap;
use std::path::Path;

use palisade_policy::{Mode, Policy};
use palisade_windows_plan::acl::{self, ProtectedKind, RootSpec};
use palisade_windows_plan::sid::SyntheticKind;
use palisade_windows_plan::token::{token_plan, TokenInput};
use palisade_windows_plan::{
    check_writable_roots, cleanup_plan, desired_acl, plan, policy_roots, AclChange, RecordedAcl, Sid, SidRegistry,
    SystemLayout, WinPath,
};

use super::adapter::{self, key, TreeFs};
use super::model::*;

const ALICE: &str = "S-1-5-21-1004336348-1177238915-682003330-1001";
const LOGON: &str = "S-1-5-5-0-271394";
const PROFILE: &str = r"C:\Users\alice";
const WORK: &str = r"C:\Users\alice\src\app";
const SHARED: &str = r"C:\Users\alice\shared";
/// Palisade's synthetic SIDs: `S-1-9-<PALISADE_TAG>-…`, written out independently.
const PALISADE_SID_PREFIX: &str = "S-1-9-1347179332-";

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct World {
    tree: Tree,
    /// Lower-case key → the path as created (for the resolver's view).
    names: BTreeMap<String, String>,
    policy: Policy,
}

impl World {
    fn add(&mut self, path: &str, dir: bool) {
        let mut prefix = String::new();
        for (i, part) in path.split('\\').enumerate() {
            if i > 0 {
                prefix.push('\\');
            }
            prefix.push_str(part);
            self.names.entry(key(&prefix)).or_insert_with(|| prefix.clone());
        }
        self.tree.add(path, dir, ALICE);
    }
}

/// The user's profile as Windows sets it up (explicit, not inherited from `C:\Users`), and a
/// folder the user shared with everyone.
fn base_world() -> World {
    let mut w = World { tree: Tree::default(), names: BTreeMap::new(), policy: Policy::new(WORK, None) };
    w.add(PROFILE, true);
    // C:\ and C:\Users as a fresh installation has them: Authenticated Users may create
    // folders in C:\ and modify what they create there; nobody but SYSTEM and Administrators
    // may write C:\Users.
    let system_and_admins = [
        ModelAce::allow("S-1-5-18", FILE_ALL, OI | CI),
        ModelAce::allow("S-1-5-32-544", FILE_ALL, OI | CI),
        ModelAce::allow("S-1-5-32-545", FILE_READ | FILE_EXECUTE, OI | CI),
    ];
    let drive = w.tree.nodes.get_mut("c:").unwrap();
    drive.inherits = false;
    drive.explicit = system_and_admins.to_vec();
    drive.explicit.push(ModelAce::allow("S-1-5-11", APPEND_DATA, 0));
    drive.explicit.push(ModelAce::allow("S-1-5-11", FILE_READ | FILE_WRITE | FILE_EXECUTE | DELETE, OI | CI | IO));
    let users = w.tree.nodes.get_mut(r"c:\users").unwrap();
    users.inherits = false;
    users.explicit = system_and_admins.to_vec();
    users.explicit.push(ModelAce::allow("S-1-1-0", FILE_READ | FILE_EXECUTE, 0));
    let top = w.tree.nodes.get_mut(&key(PROFILE)).unwrap();
    top.inherits = false;
    top.explicit = vec![
        ModelAce::allow("S-1-5-18", FILE_ALL, OI | CI),
        ModelAce::allow("S-1-5-32-544", FILE_ALL, OI | CI),
        ModelAce::allow(ALICE, FILE_ALL, OI | CI),
        ModelAce::allow("S-1-5-32-545", FILE_READ | FILE_EXECUTE, OI | CI),
    ];
    for (p, dir) in [
        (r"src\app\.git\config", false),
        (r"src\app\.git\HEAD", false),
        (r"src\app\.git\hooks\pre-commit", false),
        (r"src\app\.git\objects\ab\cdef", false),
        (r"src\app\README.md", false),
        (r"src\other\main.rs", false),
        (r"Documents\notes.txt", false),
        (r"cache\pkg\a.bin", false),
        (r"shared\drop.txt", false),
    ] {
        w.add(&format!(r"{PROFILE}\{p}"), dir);
    }
    w.tree.nodes.get_mut(&key(SHARED)).unwrap().explicit =
        vec![ModelAce::allow("S-1-1-0", FILE_READ | FILE_WRITE | FILE_EXECUTE | DELETE, OI | CI)];
    w
}

fn generate(seed: u64) -> World {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut w = base_world();
    const NAMES: &[&str] = &["src", "lib", "d1", "d2", "build", "deep", "out", ".vscode", "node_modules"];
    let mut dirs = Vec::new();
    for _ in 0..2 + rng.below(6) {
        let mut path = WORK.to_string();
        for _ in 0..1 + rng.below(3) {
            path.push('\\');
            path.push_str(NAMES[rng.below(NAMES.len())]);
        }
        w.add(&path, true);
        if rng.chance(70) {
            w.add(&format!(r"{path}\f{}.txt", rng.below(3)), false);
        }
        dirs.push(path);
    }
    if rng.chance(50) {
        w.policy.writable_roots.push(format!(r"{PROFILE}\cache").into());
    }
    if rng.chance(40) {
        w.policy.writable_roots.push(format!(r"{PROFILE}\src\other").into());
    }
    if rng.chance(40) {
        // A root nested inside the workspace.
        w.policy.writable_roots.push(dirs[rng.below(dirs.len())].clone().into());
    }
    for extra in ["d1/secret.txt", "build/keep", "src/deep", "lib/f1.txt"] {
        if rng.chance(35) {
            w.policy.protected_paths.push(extra.into());
        }
    }
    w
}

/// What the plan was asked to do, in the model's terms: the roots and, per path, the policy
/// crate's decision.
struct Intent {
    roots: Vec<String>,
    read_only: Vec<String>,
    pinned: Vec<String>,
}

fn within(path: &str, ancestor: &str) -> bool {
    path == ancestor || path.starts_with(&format!("{ancestor}\\"))
}

impl Intent {
    fn under_root(&self, k: &str) -> bool {
        self.roots.iter().any(|r| within(k, r))
    }
    fn protected(&self, k: &str) -> bool {
        self.read_only.iter().any(|p| within(k, p))
    }
    fn top_root(&self, k: &str) -> bool {
        self.roots.iter().any(|r| r == k) && !self.roots.iter().any(|r| r != k && within(k, r))
    }
}

struct Applied {
    sandbox: Token,
    user: Token,
    intent: Intent,
    recorded: RecordedAcl,
    palisade_sids: Vec<String>,
}

/// The backend's flow for one command; `None` if the roots are refused.
fn run_plan(w: &mut World, mutate: impl FnOnce(&mut Vec<AclChange>)) -> Option<Applied> {
    let roots = policy_roots(&w.policy, &[]).unwrap();
    check_writable_roots(&roots, &SystemLayout::typical("alice"), &w.policy.protected_paths).ok()?;
    let mut registry = SidRegistry::new();
    let mut n = 0u8;
    let mut intent = Intent { roots: Vec::new(), read_only: Vec::new(), pinned: Vec::new() };
    let mut specs = Vec::new();
    for root in &roots {
        let sid = registry.assign(root, 1_700_000_000, || {
            n += 1;
            [n; 16]
        });
        let fs = TreeFs { tree: &w.tree, names: &w.names };
        let actions =
            palisade_policy::protected::resolve(Path::new(&root.to_string()), &w.policy.protected_paths, &fs).unwrap();
        let items =
            acl::protected_items(&actions, |p| w.tree.nodes.get(&key(&p.to_string())).is_some_and(|n| n.dir)).unwrap();
        let items = acl::stabilize_items(items, &BTreeMap::new());
        let root_key = key(&root.to_string());
        for i in &items {
            let k = key(&i.path.to_string());
            if !within(&k, &root_key) {
                continue;
            }
            match i.kind {
                ProtectedKind::Pin => intent.pinned.push(k),
                _ => intent.read_only.push(k),
            }
        }
        intent.roots.push(root_key);
        specs.push(RootSpec { root: root.clone(), sid, protected: items });
    }
    // A nested root, and the folders between it and an outer root, must stay put as well.
    for r in &intent.roots {
        let mut folder = r.as_str();
        while intent.roots.iter().any(|o| o != folder && within(folder, o)) {
            intent.pinned.push(folder.to_string());
            folder = parent_of(folder).unwrap();
        }
    }
    let sandbox_sid = registry.sandbox_sid(|| [0xEE; 16]);
    let desired = desired_acl("host-1", &specs, &[WinPath::parse(SHARED).unwrap()], &sandbox_sid).unwrap();
    let mut recorded = RecordedAcl::new();
    let mut changes = plan(&desired, &recorded);
    recorded.begin(&changes);
    mutate(&mut changes);
    adapter::apply(&mut w.tree, &changes, ALICE);
    recorded.commit(&desired);

    let write_sids: Vec<Sid> = specs.iter().map(|s| s.sid.clone()).collect();
    let token = token_plan(&TokenInput {
        user_sid: Sid::parse(ALICE).unwrap(),
        logon_sid: Sid::parse(LOGON).unwrap(),
        sandbox_sid: sandbox_sid.clone(),
        instance_sid: Sid::synthetic(SyntheticKind::Instance, [0x5A; 16]),
        write_sids: write_sids.clone(),
        // The model's user token is UAC-filtered (Administrators deny-only already), so there
        // is no administrative group left for the plan to make deny-only.
        groups: Vec::new(),
    })
    .unwrap();
    let user = adapter::user_token(ALICE, LOGON);
    let mut palisade_sids: Vec<String> = write_sids.iter().map(|s| s.as_str().to_string()).collect();
    palisade_sids.push(sandbox_sid.as_str().to_string());
    Some(Applied { sandbox: adapter::restricted_token(&user, &token), user, intent, recorded, palisade_sids })
}

const CONTENT_WRITE: [u32; 4] = [WRITE_DATA, APPEND_DATA, WRITE_EA, WRITE_ATTRIBUTES];

/// Every verdict the design promises, for every path of the tree; the failures, one a line.
fn judge(tree: &Tree, a: &Applied) -> Vec<String> {
    let mut bad = Vec::new();
    for k in tree.nodes.keys() {
        let i = &a.intent;
        let writable = i.under_root(k) && !i.protected(k);
        let deletable = writable && !i.pinned.contains(k) && !i.top_root(k);
        let all_content = CONTENT_WRITE.iter().fold(0, |m, b| m | b);
        if writable != tree.check(k, &a.sandbox, all_content) {
            bad.push(format!("{k}: content writable should be {writable}"));
        }
        if !writable {
            for bit in CONTENT_WRITE {
                if tree.check(k, &a.sandbox, bit) {
                    bad.push(format!("{k}: right {bit:#x} granted outside the writable set"));
                }
            }
        }
        // Renaming a folder on the way to a protected path would carry the protected path (and
        // its ACEs) away and leave its name free: such folders must stay put.
        let on_the_way = i.read_only.iter().any(|p| p != k && within(p, k));
        if i.under_root(k) && on_the_way && tree.can_delete(k, &a.sandbox) {
            bad.push(format!("{k}: a folder on the way to a protected path can be renamed"));
        }
        if deletable != tree.can_delete(k, &a.sandbox) {
            bad.push(format!("{k}: deletable should be {deletable}"));
        }
        for bit in [WRITE_DAC, WRITE_OWNER, DELETE_CHILD] {
            if tree.check(k, &a.sandbox, bit) {
                bad.push(format!("{k}: right {bit:#x} granted to the sandbox"));
            }
        }
        let read = FILE_READ | FILE_EXECUTE;
        if !tree.check(k, &a.sandbox, read) || !tree.check(k, &a.user, read) {
            bad.push(format!("{k}: reads differ from the user's"));
        }
        let in_profile = within(k, &key(PROFILE));
        if in_profile && (!tree.check(k, &a.user, FILE_ALL) || !tree.can_delete(k, &a.user)) {
            bad.push(format!("{k}: the user lost access outside the sandbox"));
        }
    }
    bad
}

fn describe(w: &World) -> String {
    format!(
        "roots {:?}, protected extra {:?}",
        w.policy.writable_roots,
        &w.policy.protected_paths[palisade_policy::protected::DEFAULT_PATTERNS.len()..]
    )
}

#[test]
fn generated_trees_and_policies_keep_every_promise_and_cleanup_leaves_nothing() {
    let mut ran = 0;
    let mut nested = 0;
    let mut extra_protected = 0;
    for seed in 0..150 {
        let mut w = generate(seed);
        let Some(a) = run_plan(&mut w, |_| {}) else { continue };
        ran += 1;
        extra_protected +=
            usize::from(a.intent.read_only.iter().any(|p| {
                [r"\d1\secret.txt", r"\build\keep", r"\src\deep", r"\lib\f1.txt"].iter().any(|e| p.ends_with(e))
            }));
        nested += usize::from(a.intent.roots.iter().filter(|r| within(r, &key(WORK))).count() > 1);
        let bad = judge(&w.tree, &a);
        assert!(bad.is_empty(), "seed {seed} ({}):\n{}", describe(&w), bad.join("\n"));

        // Uninstall: no ACE naming a Palisade SID is left, nor any placeholder.
        let cleanup = cleanup_plan(&a.recorded);
        adapter::apply(&mut w.tree, &cleanup, ALICE);
        for (k, node) in &w.tree.nodes {
            for ace in &node.explicit {
                assert!(
                    !ace.sid.starts_with(PALISADE_SID_PREFIX) && !a.palisade_sids.contains(&ace.sid),
                    "seed {seed}: {k} keeps {ace:?}"
                );
            }
        }
        for p in a.recorded.placeholders.keys() {
            assert!(!w.tree.nodes.contains_key(&key(&p.to_string())), "seed {seed}: placeholder {p} left");
        }
    }
    // The generator must reach the interesting cases, or the test proves little.
    assert!(ran >= 100, "only {ran} policies were accepted");
    assert!(nested >= 10, "only {nested} runs had a root nested in the workspace");
    assert!(extra_protected >= 20, "only {extra_protected} runs had a protected path of their own");
    eprintln!("{ran} policies, {nested} with a nested root, {extra_protected} with extra protected paths");
}

#[test]
fn read_only_mode_writes_nothing_and_reads_like_the_user() {
    let mut w = generate(7);
    w.policy.mode = Mode::ReadOnly;
    let a = run_plan(&mut w, |_| {}).unwrap();
    assert!(a.intent.roots.is_empty());
    assert_eq!(judge(&w.tree, &a), Vec::<String>::new());
}

/// The assertions can fail: without the protected paths' denies, the model finds
/// `.git\config` writable; without the deny on the shared folder, `Everyone` (a restricting
/// SID) makes it writable.
#[test]
fn the_judge_notices_a_missing_deny() {
    let drop_denies = |on: &'static str| {
        move |changes: &mut Vec<AclChange>| {
            changes.retain(|c| !matches!(c, AclChange::Add { path, ace } if !ace.kind.eq(&palisade_windows_plan::AceKind::Allow) && key(&path.to_string()).ends_with(on)))
        }
    };
    let mut w = base_world();
    let a = run_plan(&mut w, drop_denies(r"\.git\config")).unwrap();
    let bad = judge(&w.tree, &a);
    assert!(bad.iter().any(|b| b.starts_with(&key(&format!(r"{WORK}\.git\config: content")))), "{bad:#?}");

    let mut w = base_world();
    let a = run_plan(&mut w, drop_denies(r"\shared")).unwrap();
    let bad = judge(&w.tree, &a);
    assert!(bad.iter().any(|b| b.starts_with(&key(&format!(r"{SHARED}\drop.txt: content")))), "{bad:#?}");
}

/// What rests on the reading of `WRITE_RESTRICTED`. The plan assumes that the second check
/// covers every modifying right (`DELETE`, `WRITE_DAC`, `WRITE_OWNER`, `FILE_DELETE_CHILD`
/// included). If it covered only what `GENERIC_WRITE` maps to for files, the denies on
/// protected paths (which name write SIDs, present only in the second check) could not stop
/// a delete or rename, and the owner's implicit `WRITE_DAC` would let the command rewrite the
/// DACL of any file the user owns. This test pins the model's verdict under that reading; only
/// a Windows machine can tell which reading is true (see the crate's ARCHITECTURE notes).
#[test]
fn under_the_narrow_reading_deletes_and_dacl_changes_would_escape() {
    let mut w = base_world();
    let mut a = run_plan(&mut w, |_| {}).unwrap();
    a.sandbox.write_checked = WRITE_BITS_GENERIC_WRITE;
    let config = format!(r"{WORK}\.git\config");
    let notes = format!(r"{PROFILE}\Documents\notes.txt");
    assert!(!w.tree.check(&config, &a.sandbox, WRITE_DATA));
    assert!(!w.tree.check(&notes, &a.sandbox, WRITE_DATA));
    assert!(w.tree.can_delete(&config, &a.sandbox));
    assert!(w.tree.can_delete(&notes, &a.sandbox));
    assert!(w.tree.check(&notes, &a.sandbox, WRITE_DAC));
    a.sandbox.write_checked = WRITE_BITS_MODIFYING;
    assert!(!w.tree.can_delete(&config, &a.sandbox));
    assert!(!w.tree.check(&notes, &a.sandbox, WRITE_DAC));
}
