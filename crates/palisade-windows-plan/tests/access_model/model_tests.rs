//! The model against hand-worked examples of the documented algorithm.

use super::model::*;

const ALICE: &str = "S-1-5-21-1-2-3-1001";
const USERS: &str = "S-1-5-32-545";
const ADMINS: &str = "S-1-5-32-544";
const W: &str = "S-1-9-1-2";

fn alice() -> Token {
    Token::plain(ALICE, &[(USERS, GroupState::Enabled), (ADMINS, GroupState::DenyOnly)])
}

fn check(dacl: &[ModelAce], owner: &str, token: &Token, desired: u32) -> bool {
    access_check(&Sd { owner, dacl }, token, desired)
}

#[test]
fn deny_before_allow_wins_and_allow_before_deny_wins_too() {
    // Canonical order: the deny is met while WRITE_DATA still remains.
    let canonical = [ModelAce::deny(ALICE, WRITE_DATA, 0), ModelAce::allow(ALICE, FILE_ALL, 0)];
    assert!(!check(&canonical, "S-1-5-18", &alice(), WRITE_DATA));
    assert!(check(&canonical, "S-1-5-18", &alice(), READ_DATA));
    // Out of order: the allow has already granted everything, so the walk stops before the deny.
    let reversed = [ModelAce::allow(ALICE, FILE_ALL, 0), ModelAce::deny(ALICE, WRITE_DATA, 0)];
    assert!(check(&reversed, "S-1-5-18", &alice(), WRITE_DATA));
    // A deny that names none of the remaining bits does nothing.
    let partial = [ModelAce::allow(ALICE, READ_DATA, 0), ModelAce::deny(ALICE, READ_DATA | WRITE_DATA, 0)];
    assert!(check(&partial, "S-1-5-18", &alice(), READ_DATA));
    assert!(!check(&partial, "S-1-5-18", &alice(), READ_DATA | WRITE_DATA));
}

#[test]
fn no_matching_allow_means_no_access() {
    assert!(!check(&[], "S-1-5-18", &alice(), READ_DATA));
    assert!(!check(&[ModelAce::allow(USERS, READ_DATA, 0)], "S-1-5-18", &alice(), READ_DATA | WRITE_DATA));
}

#[test]
fn deny_only_groups_match_deny_aces_only() {
    assert!(!check(&[ModelAce::allow(ADMINS, FILE_ALL, 0)], "S-1-5-18", &alice(), READ_DATA));
    let dacl = [ModelAce::deny(ADMINS, WRITE_DATA, 0), ModelAce::allow(USERS, FILE_ALL, 0)];
    assert!(!check(&dacl, "S-1-5-18", &alice(), WRITE_DATA));
    assert!(check(&dacl, "S-1-5-18", &alice(), READ_DATA));
}

#[test]
fn generic_bits_are_mapped_in_requests_and_aces() {
    assert_eq!(map_generic(GENERIC_READ), 0x12_0089);
    assert_eq!(map_generic(GENERIC_WRITE), 0x12_0116);
    assert_eq!(map_generic(GENERIC_EXECUTE), 0x12_00A0);
    assert_eq!(map_generic(GENERIC_ALL), 0x1F_01FF);
    let dacl = [ModelAce::allow(USERS, GENERIC_READ | GENERIC_EXECUTE, 0)];
    assert!(check(&dacl, "S-1-5-18", &alice(), GENERIC_READ));
    assert!(!check(&dacl, "S-1-5-18", &alice(), GENERIC_WRITE));
}

#[test]
fn owner_gets_read_control_and_write_dac_unless_owner_rights_says_otherwise() {
    assert!(check(&[], ALICE, &alice(), READ_CONTROL | WRITE_DAC));
    assert!(!check(&[], ALICE, &alice(), WRITE_OWNER));
    let owner_rights = [ModelAce::allow(OWNER_RIGHTS, READ_ATTRIBUTES, 0)];
    assert!(!check(&owner_rights, ALICE, &alice(), WRITE_DAC));
    assert!(check(&owner_rights, ALICE, &alice(), READ_ATTRIBUTES));
}

#[test]
fn write_restricted_token_needs_both_checks_for_writes_only() {
    let mut t = alice();
    t.restricting = vec![W.into(), "S-1-1-0".into()];
    t.write_restricted = true;
    let user_only = [ModelAce::allow(ALICE, FILE_ALL, 0)];
    assert!(check(&user_only, "S-1-5-18", &t, FILE_READ | FILE_EXECUTE));
    assert!(!check(&user_only, "S-1-5-18", &t, WRITE_DATA));
    let granted = [ModelAce::allow(ALICE, FILE_ALL, 0), ModelAce::allow(W, WRITE_DATA, 0)];
    assert!(check(&granted, "S-1-5-18", &t, WRITE_DATA));
    // The second check alone never grants: the user's own check must pass as well.
    assert!(!check(&[ModelAce::allow(W, FILE_ALL, 0)], "S-1-5-18", &t, WRITE_DATA));
    // A deny naming a restricting SID takes effect in the second check only.
    let denied =
        [ModelAce::deny(W, WRITE_DATA, 0), ModelAce::allow(ALICE, FILE_ALL, 0), ModelAce::allow(W, FILE_ALL, 0)];
    assert!(!check(&denied, "S-1-5-18", &t, WRITE_DATA));
    assert!(check(&denied, "S-1-5-18", &t, READ_DATA));
    // The owner's implicit WRITE_DAC: the user is not a restricting SID.
    assert!(!check(&user_only, ALICE, &t, WRITE_DAC));
    // Without WRITE_RESTRICTED, reads need the restricting SIDs too.
    t.write_restricted = false;
    assert!(!check(&user_only, "S-1-5-18", &t, READ_DATA));
}

#[test]
fn inheritance_to_folders_and_files() {
    let parent = [
        ModelAce::allow("A", 1, OI | CI),
        ModelAce::allow("B", 2, OI | CI | IO),
        ModelAce::allow("C", 4, CI | NP),
        ModelAce::allow("D", 8, OI),
        ModelAce::allow("E", 16, 0),
        ModelAce::allow("F", 32, OI | NP),
    ];
    let to_dir = inherit(&parent, true);
    let flags: Vec<(&str, u8)> = to_dir.iter().map(|a| (a.sid.as_str(), a.flags)).collect();
    assert_eq!(
        flags,
        [("A", OI | CI | INHERITED), ("B", OI | CI | INHERITED), ("C", INHERITED), ("D", OI | IO | INHERITED)]
    );
    let to_file = inherit(&parent, false);
    let flags: Vec<(&str, u8)> = to_file.iter().map(|a| (a.sid.as_str(), a.flags)).collect();
    assert_eq!(flags, [("A", INHERITED), ("B", INHERITED), ("D", INHERITED), ("F", INHERITED)]);

    // Through a tree: C:\t grants W to children only; explicit entries come first.
    let mut tree = Tree::default();
    tree.add(r"C:\t\d\f", false, ALICE);
    tree.nodes.get_mut(r"c:\t").unwrap().inherits = false;
    tree.nodes.get_mut(r"c:\t").unwrap().explicit = vec![ModelAce::allow(W, WRITE_DATA, OI | CI | IO)];
    tree.nodes.get_mut(r"c:\t\d").unwrap().explicit = vec![ModelAce::deny(W, WRITE_DATA, 0)];
    let mut t = Token::plain(W, &[]);
    t.write_checked = WRITE_BITS_MODIFYING;
    assert!(!tree.check(r"C:\t", &t, WRITE_DATA));
    assert!(!tree.check(r"C:\t\d", &t, WRITE_DATA));
    assert!(tree.check(r"C:\t\d\f", &t, WRITE_DATA));
}

#[test]
fn delete_through_the_parent() {
    let mut tree = Tree::default();
    tree.add(r"C:\t\f", false, ALICE);
    tree.nodes.get_mut(r"c:\t").unwrap().inherits = false;
    let t = Token::plain(W, &[]);
    assert!(!tree.can_delete(r"C:\t\f", &t));
    tree.nodes.get_mut(r"c:\t").unwrap().explicit = vec![ModelAce::allow(W, DELETE_CHILD, 0)];
    assert!(tree.can_delete(r"C:\t\f", &t));
    tree.nodes.get_mut(r"c:\t").unwrap().explicit = vec![ModelAce::allow(W, DELETE, OI)];
    assert!(tree.can_delete(r"C:\t\f", &t));
}

#[test]
fn process_and_key_objects_use_their_own_generic_mapping() {
    assert_eq!(PROCESS_TYPE.map(GENERIC_ALL), 0x1F_FFFF);
    assert_eq!(KEY_TYPE.map(GENERIC_ALL), 0xF_003F);
    assert_eq!(KEY_TYPE.map(GENERIC_WRITE), READ_CONTROL | KEY_SET_VALUE | KEY_CREATE_SUB_KEY);
    // Writing memory and starting threads are write-class on a process; terminating and
    // reading memory are not.
    for bit in [PROCESS_VM_WRITE, PROCESS_CREATE_THREAD, PROCESS_VM_OPERATION, PROCESS_DUP_HANDLE] {
        assert_ne!(PROCESS_TYPE.modifying() & bit, 0, "{bit:#x}");
    }
    for bit in [PROCESS_TERMINATE, PROCESS_VM_READ, PROCESS_QUERY_LIMITED_INFORMATION, SYNCHRONIZE] {
        assert_eq!(PROCESS_TYPE.modifying() & bit, 0, "{bit:#x}");
    }
}

#[test]
fn a_write_restricted_token_needs_a_restricting_sid_for_write_class_process_rights_only() {
    // A process whose DACL grants Alice full control, and a restricting SID `W` nothing.
    let dacl = [ModelAce::allow(ALICE, GENERIC_ALL, 0)];
    let sd = Sd { owner: ALICE, dacl: &dacl };
    let mut t = alice();
    t.restricting = vec![W.to_string()];
    t.write_restricted = true;
    assert!(!access_check_object(&sd, &t, PROCESS_VM_WRITE, &PROCESS_TYPE));
    assert!(!access_check_object(&sd, &t, PROCESS_CREATE_THREAD, &PROCESS_TYPE));
    assert!(access_check_object(&sd, &t, PROCESS_TERMINATE | PROCESS_VM_READ, &PROCESS_TYPE));
    // Granting `W` as well opens it; a token without restriction needs only the first check.
    let dacl = [ModelAce::allow(ALICE, GENERIC_ALL, 0), ModelAce::allow(W, GENERIC_ALL, 0)];
    assert!(access_check_object(&Sd { owner: ALICE, dacl: &dacl }, &t, PROCESS_VM_WRITE, &PROCESS_TYPE));
    assert!(access_check_object(&sd, &alice(), PROCESS_VM_WRITE | PROCESS_CREATE_THREAD, &PROCESS_TYPE));
}
