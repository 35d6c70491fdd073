//! Process objects between sandboxes (issue 15, "logon-SID isolation"): what one sandbox's
//! command may do to another sandbox's processes, to its own, and to the user's unsandboxed
//! processes, judged by the model with the process object's generic mapping.
//!
//! A process gets its DACL from its creator's token's default DACL (here: the plan's
//! `default_dacl` for commands; for the user's own processes, palisade included, the default
//! DACL Windows gives an interactive logon: the user and SYSTEM full control, the logon SID
//! `GENERIC_READ|GENERIC_EXECUTE`, an assumption that the real-runner test
//! `windows_cases::commands_cannot_write_palisade_or_another_sandboxs_process` checks).

use palisade_windows_plan::ace::Ace;
use palisade_windows_plan::sid::SyntheticKind;
use palisade_windows_plan::token::{token_plan, TokenInput, TokenPlan};
use palisade_windows_plan::Sid;

use super::adapter;
use super::model::*;

// Process access rights (winnt.h), written out again on purpose.
const TERMINATE: u32 = 0x1;
const CREATE_THREAD: u32 = 0x2;
const VM_OPERATION: u32 = 0x8;
const VM_READ: u32 = 0x10;
const VM_WRITE: u32 = 0x20;
const DUP_HANDLE: u32 = 0x40;
const CREATE_PROCESS: u32 = 0x80;
const SET_QUOTA: u32 = 0x100;
const SET_INFORMATION: u32 = 0x200;
const QUERY_INFORMATION: u32 = 0x400;
const SUSPEND_RESUME: u32 = 0x800;
const QUERY_LIMITED_INFORMATION: u32 = 0x1000;

/// The process object's generic mapping as Windows reports it (`R:00020410 W:00020BEA
/// E:00121001 A:001FFFFF`): `PROCESS_TERMINATE` and `QUERY_LIMITED_INFORMATION` are execute
/// rights, `SET_LIMITED_INFORMATION` and `SET_SESSIONID` in no generic right.
const PROCESS_MAPPING: ObjectType = ObjectType {
    read: READ_CONTROL | VM_READ | QUERY_INFORMATION,
    write: READ_CONTROL
        | CREATE_PROCESS
        | CREATE_THREAD
        | VM_OPERATION
        | VM_WRITE
        | DUP_HANDLE
        | SET_QUOTA
        | SET_INFORMATION
        | SUSPEND_RESUME,
    execute: READ_CONTROL | SYNCHRONIZE | QUERY_LIMITED_INFORMATION | TERMINATE,
    all: 0xF_0000 | SYNCHRONIZE | 0xFFFF,
};

// The second check of a write-restricted token covers, on a process, what
// `ObjectType::modifying` says: the specific rights `GENERIC_WRITE` maps to, and the standard
// ones that change the object. `TERMINATE` is not among them (see
// `ending_a_process_is_not_a_write_right`). The same values as the model's `PROCESS_TYPE`
// (checked in `the_process_mapping_is_the_models`).

/// Every write-class right on its own: code injection (`VM_WRITE`, `CREATE_THREAD`, ...),
/// handle theft (`DUP_HANDLE`), freezing it, changing its security.
const WRITE_CLASS: [u32; 11] = [
    CREATE_THREAD,
    VM_OPERATION,
    VM_WRITE,
    DUP_HANDLE,
    CREATE_PROCESS,
    SET_QUOTA,
    SET_INFORMATION,
    SUSPEND_RESUME,
    DELETE,
    WRITE_DAC,
    WRITE_OWNER,
];

const ALICE: &str = "S-1-5-21-1004336348-1177238915-682003330-1001";
const LOGON: &str = "S-1-5-5-0-271394";
const SYSTEM: &str = "S-1-5-18";

fn sid(s: &str) -> Sid {
    Sid::parse(s).unwrap()
}

/// One sandbox's token plan: its own write SID and instance SID (`n` tells them apart).
fn sandbox_plan(n: u8) -> TokenPlan {
    token_plan(&TokenInput {
        user_sid: sid(ALICE),
        logon_sid: sid(LOGON),
        sandbox_sid: Sid::synthetic(SyntheticKind::Sandbox, [0xEE; 16]),
        instance_sid: Sid::synthetic(SyntheticKind::Instance, [n; 16]),
        write_sids: vec![Sid::synthetic(SyntheticKind::WriteRoot, [n; 16])],
        groups: Vec::new(),
    })
    .unwrap()
}

fn model_dacl(dacl: &[Ace]) -> Vec<ModelAce> {
    dacl.iter().map(adapter::model_ace).collect()
}

/// The default DACL of the user's interactive logon (palisade and the user's other processes).
fn user_process_dacl() -> Vec<ModelAce> {
    vec![
        ModelAce::allow(ALICE, GENERIC_ALL, 0),
        ModelAce::allow(SYSTEM, GENERIC_ALL, 0),
        ModelAce::allow(LOGON, GENERIC_READ | GENERIC_EXECUTE, 0),
    ]
}

fn may(token: &Token, dacl: &[ModelAce], desired: u32) -> bool {
    access_check_object(&Sd { owner: ALICE, dacl }, token, desired, &PROCESS_MAPPING)
}

fn command_token(plan: &TokenPlan) -> Token {
    adapter::restricted_token(&adapter::user_token(ALICE, LOGON), plan)
}

#[test]
fn a_command_cannot_write_another_sandboxs_processes() {
    let (a, b) = (sandbox_plan(1), sandbox_plan(2));
    let a_cmd = command_token(&a);
    let b_process = model_dacl(&b.default_dacl);
    assert!(!may(&a_cmd, &b_process, VM_WRITE | CREATE_THREAD), "A's command injects into B's");
    for right in WRITE_CLASS {
        assert!(!may(&a_cmd, &b_process, right), "A's command gets {right:#x} on B's process");
    }
    // Reads are checked with the user's groups only: a write-restricted token cannot refuse
    // them (the same user's process memory stays readable, as every file the user can read).
    assert!(may(&a_cmd, &b_process, QUERY_LIMITED_INFORMATION | VM_READ | SYNCHRONIZE));
}

#[test]
fn a_command_keeps_write_access_to_its_own_and_its_sandboxs_processes() {
    let a = sandbox_plan(1);
    let a_cmd = command_token(&a);
    let own = model_dacl(&a.default_dacl);
    for right in WRITE_CLASS {
        assert!(may(&a_cmd, &own, right), "{right:#x} on its own process");
    }
    assert!(may(&a_cmd, &own, GENERIC_ALL));
    // palisade (the user, unrestricted) keeps every right on the commands it started.
    let palisade = adapter::user_token(ALICE, LOGON);
    assert!(may(&palisade, &own, GENERIC_ALL));
}

#[test]
fn a_command_cannot_write_palisade_or_the_users_processes() {
    let a_cmd = command_token(&sandbox_plan(1));
    let user = user_process_dacl();
    for right in WRITE_CLASS {
        assert!(!may(&a_cmd, &user, right), "{right:#x} on a process of the user");
    }
    assert!(may(&a_cmd, &user, QUERY_LIMITED_INFORMATION | SYNCHRONIZE));
}

#[test]
fn the_model_sees_the_hole_when_commands_objects_grant_the_logon_sid() {
    // The plan before issue 15: the logon SID in every command's default DACL.
    let (a, b) = (sandbox_plan(1), sandbox_plan(2));
    let mut old_b = b.default_dacl.clone();
    old_b[1] = Ace::allow(sid(LOGON), old_b[1].mask, old_b[1].flags);
    assert!(may(&command_token(&a), &model_dacl(&old_b), VM_WRITE | CREATE_THREAD | DUP_HANDLE));
}

#[test]
fn ending_a_process_is_not_a_write_right() {
    // `PROCESS_TERMINATE` is an execute right of the process object. If Windows' second check
    // covers only write rights (the model's reading), a command can end another sandbox's
    // processes and the user's: a denial of service, not code running elsewhere. The real
    // runner's test prints what Windows does (`terminate` in its probe lines).
    let a_cmd = command_token(&sandbox_plan(1));
    assert!(may(&a_cmd, &model_dacl(&sandbox_plan(2).default_dacl), TERMINATE));
    assert!(may(&a_cmd, &user_process_dacl(), TERMINATE));
}

#[test]
fn the_process_mapping_is_the_models() {
    let (a, b) = (PROCESS_MAPPING, PROCESS_TYPE);
    assert_eq!((a.read, a.write, a.execute, a.all), (b.read, b.write, b.execute, b.all));
}
