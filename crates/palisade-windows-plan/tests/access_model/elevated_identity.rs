//! The elevated mode's per-command identity (issue 15), judged by the model: two commands of
//! the same sandbox account (`A` and `B`, other projects, with their own write SIDs), the runner
//! (the account without restrictions), the account's `HKCU` and profile with their usual
//! default DACLs, and each command's private temporary folder — all made by the real plan
//! (`command_identity`).
//!
//! Both commands are given the *same* logon SID: on real Windows each runner has a logon
//! session of its own, but the verdicts must not rest on that.

use palisade_windows_plan::command_identity::{
    command_default_dacl, command_sid, restricting_sids, temp_folder_aces, temp_folder_name,
};
use palisade_windows_plan::sid::{Sid, SyntheticKind};

use super::adapter::model_ace;
use super::model::*;

/// `PalisadeOffline` and `PalisadeSandboxUsers` on some machine.
const ACCOUNT: &str = "S-1-5-21-111-222-333-1011";
const GROUP: &str = "S-1-5-21-111-222-333-1012";
const LOGON: &str = "S-1-5-5-0-4242";
const SYSTEM: &str = "S-1-5-18";
const ADMINS: &str = "S-1-5-32-544";
const RESTRICTED: &str = "S-1-5-12";
const PROFILE: &str = r"C:\Users\PalisadeOffline";
const TEMP: &str = r"C:\Users\PalisadeOffline\AppData\Local\Temp";

/// The account's own (unrestricted) token: the runner's.
fn account_token() -> Token {
    Token::plain(
        ACCOUNT,
        &[
            ("S-1-1-0", GroupState::Enabled),
            ("S-1-2-0", GroupState::Enabled),
            ("S-1-5-32-545", GroupState::Enabled),
            (GROUP, GroupState::Enabled),
            ("S-1-5-4", GroupState::Enabled),
            ("S-1-5-11", GroupState::Enabled),
            ("S-1-5-15", GroupState::Enabled),
            (LOGON, GroupState::Enabled),
        ],
    )
}

/// One command: its command SID and its write-restricted token, as the runner makes it.
struct Command {
    sid: Sid,
    token: Token,
}

fn command(n: u8) -> Command {
    let sid = command_sid([n; 16]);
    let capability =
        [Sid::synthetic(SyntheticKind::WriteRoot, [n; 16]), Sid::synthetic(SyntheticKind::Sandbox, [0xEE; 16])];
    let logon = Sid::parse(LOGON).unwrap();
    let restricting = restricting_sids(&sid, Some(&logon), &capability).unwrap();
    let mut token = account_token();
    token.restricting = restricting.iter().map(|s| s.as_str().to_string()).collect();
    token.write_restricted = true;
    token.write_checked = WRITE_BITS_MODIFYING;
    Command { sid, token }
}

fn account() -> Sid {
    Sid::parse(ACCOUNT).unwrap()
}

/// The DACL of a process (or thread, or pipe) the command made: its token's default DACL.
fn process_dacl(c: &Command) -> Vec<ModelAce> {
    command_default_dacl(&c.sid, &account()).iter().map(model_ace).collect()
}

/// Every process right that is write-class on a process object.
const PROCESS_WRITE_RIGHTS: [u32; 11] = [
    PROCESS_VM_WRITE,
    PROCESS_CREATE_THREAD,
    PROCESS_VM_OPERATION,
    PROCESS_DUP_HANDLE,
    PROCESS_CREATE_PROCESS,
    PROCESS_SET_QUOTA,
    PROCESS_SET_INFORMATION,
    PROCESS_SUSPEND_RESUME,
    DELETE,
    WRITE_DAC,
    WRITE_OWNER,
];

#[test]
fn concurrent_commands_cannot_open_each_other_for_write_class_rights() {
    let (a, b) = (command(1), command(2));
    let dacl = process_dacl(&a);
    let sd = Sd { owner: ACCOUNT, dacl: &dacl };
    // A opens its own processes (and its children each other) with every right.
    assert!(access_check_object(&sd, &a.token, GENERIC_ALL, &PROCESS_TYPE));
    // The runner manages and ends the command.
    assert!(access_check_object(&sd, &account_token(), GENERIC_ALL, &PROCESS_TYPE));
    // B — concurrent, or a later command meeting what A left running with keep_processes —
    // gets no write-class right on A's process.
    for bit in PROCESS_WRITE_RIGHTS {
        assert!(!access_check_object(&sd, &b.token, bit, &PROCESS_TYPE), "B got {bit:#x} on A's process");
    }
    // Documented, not write-class: B may still read A's memory and end it.
    assert!(access_check_object(&sd, &b.token, PROCESS_VM_READ | PROCESS_TERMINATE, &PROCESS_TYPE));
}

/// `HKEY_USERS\<account>` as Windows makes a profile's hive: the account, SYSTEM and
/// Administrators full control, `RESTRICTED` read, all inherited by the subkeys.
fn hkcu_root() -> Vec<ModelAce> {
    vec![
        ModelAce::allow(ACCOUNT, GENERIC_ALL, CI),
        ModelAce::allow(SYSTEM, GENERIC_ALL, CI),
        ModelAce::allow(ADMINS, GENERIC_ALL, CI),
        ModelAce::allow(RESTRICTED, GENERIC_READ, CI),
    ]
}

/// The DACL of a subkey `depth` levels below the hive's root (inherited all the way down).
fn hkcu_key(depth: usize) -> Vec<ModelAce> {
    let mut dacl = hkcu_root();
    for _ in 0..depth {
        dacl = inherit(&dacl, true);
    }
    dacl
}

#[test]
fn commands_cannot_write_the_accounts_hkcu() {
    let a = command(1);
    // Software\Microsoft\Command Processor (AutoRun), Software\Classes\CLSID\{...}\InprocServer32
    // (COM registrations), Software\Microsoft\Windows\CurrentVersion\Run.
    for (key, depth) in [("Command Processor", 3), ("CLSID entry", 4), ("Run", 5), ("the hive's root", 0)] {
        let dacl = hkcu_key(depth);
        let sd = Sd { owner: ACCOUNT, dacl: &dacl };
        for bit in [KEY_SET_VALUE, KEY_CREATE_SUB_KEY, DELETE, WRITE_DAC, WRITE_OWNER] {
            assert!(!access_check_object(&sd, &a.token, bit, &KEY_TYPE), "{key}: the command got {bit:#x}");
        }
        // Reads stay the account's.
        assert!(access_check_object(&sd, &a.token, KEY_QUERY_VALUE, &KEY_TYPE), "{key}: unreadable");
        // Control: the account itself may write there, so the refusal is the restriction's.
        assert!(access_check_object(&sd, &account_token(), KEY_SET_VALUE | KEY_CREATE_SUB_KEY, &KEY_TYPE));
    }
}

/// The account's profile as Windows makes it (SYSTEM, Administrators and the account full
/// control, explicit and inherited), with its PowerShell profile, its shared temporary folder
/// with a file in it, and the private temporary folders of commands `a` and `b`, each with a
/// file.
fn profile_tree(a: &Command, b: &Command) -> (Tree, String, String) {
    let mut t = Tree::default();
    for (p, dir) in [
        (r"Documents\WindowsPowerShell\Microsoft.PowerShell_profile.ps1", false),
        (r"Documents\PowerShell", true),
        (r"AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup", true),
        (r"AppData\Local\Temp\shared.tmp", false),
        (r"NTUSER.DAT", false),
    ] {
        t.add(&format!(r"{PROFILE}\{p}"), dir, ACCOUNT);
    }
    let top = t.nodes.get_mut(&PROFILE.to_lowercase()).unwrap();
    top.inherits = false;
    top.explicit = vec![
        ModelAce::allow(SYSTEM, FILE_ALL, OI | CI),
        ModelAce::allow(ADMINS, FILE_ALL, OI | CI),
        ModelAce::allow(ACCOUNT, FILE_ALL, OI | CI),
    ];
    let mut folders = Vec::new();
    for (c, n) in [(a, 1u8), (b, 2u8)] {
        let folder = format!(r"{TEMP}\{}", temp_folder_name(&[n; 16]));
        // Made by the runner with exactly this protected DACL; owned by the account.
        t.add(&folder, true, ACCOUNT);
        let node = t.nodes.get_mut(&folder.to_lowercase()).unwrap();
        node.inherits = false;
        node.explicit = temp_folder_aces(&c.sid, &account()).iter().map(model_ace).collect();
        // A file the command made there.
        t.add(&format!(r"{folder}\build.tmp"), false, ACCOUNT);
        folders.push(folder);
    }
    let b_folder = folders.pop().unwrap();
    (t, folders.pop().unwrap(), b_folder)
}

const CONTENT_WRITE: u32 = WRITE_DATA | APPEND_DATA | WRITE_EA | WRITE_ATTRIBUTES;

#[test]
fn commands_cannot_write_the_accounts_profile_or_shared_temp() {
    let (a, b) = (command(1), command(2));
    let (t, _, _) = profile_tree(&a, &b);
    let ps_profile = format!(r"{PROFILE}\Documents\WindowsPowerShell\Microsoft.PowerShell_profile.ps1");
    let shared = format!(r"{TEMP}\shared.tmp");
    for folder in [
        PROFILE.to_string(),
        format!(r"{PROFILE}\Documents"),
        format!(r"{PROFILE}\Documents\WindowsPowerShell"),
        format!(r"{PROFILE}\Documents\PowerShell"),
        format!(r"{PROFILE}\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup"),
        TEMP.to_string(),
    ] {
        for bit in [WRITE_DATA, APPEND_DATA] {
            assert!(!t.check(&folder, &a.token, bit), "{folder}: the command may create entries ({bit:#x})");
        }
        assert!(!t.check(&folder, &a.token, WRITE_DAC), "{folder}: the command may change its DACL");
        assert!(t.check(&folder, &account_token(), WRITE_DATA | APPEND_DATA), "control: {folder}");
    }
    for file in [&ps_profile, &shared, &format!(r"{PROFILE}\NTUSER.DAT")] {
        for bit in [WRITE_DATA, APPEND_DATA, WRITE_EA, WRITE_ATTRIBUTES, WRITE_DAC, WRITE_OWNER] {
            assert!(!t.check(file, &a.token, bit), "{file}: the command got {bit:#x}");
        }
        assert!(!t.can_delete(file, &a.token), "{file}: the command may delete or rename it");
        assert!(t.check(file, &a.token, FILE_READ), "{file}: unreadable");
    }
}

#[test]
fn each_command_writes_only_its_own_temp_folder() {
    let (a, b) = (command(1), command(2));
    let (t, a_temp, b_temp) = profile_tree(&a, &b);
    let a_file = format!(r"{a_temp}\build.tmp");
    let b_file = format!(r"{b_temp}\build.tmp");
    // Its own: create, write, delete inside.
    assert!(t.check(&a_temp, &a.token, WRITE_DATA | APPEND_DATA | DELETE_CHILD));
    assert!(t.check(&a_file, &a.token, CONTENT_WRITE | DELETE));
    assert!(t.can_delete(&a_file, &a.token));
    // ...but not the folder's own entry: the runner removes the folder it made.
    assert!(!t.can_delete(&a_temp, &a.token), "the command may rename or delete its temporary folder");
    assert!(!t.check(&a_temp, &a.token, WRITE_DAC) && !t.check(&a_temp, &a.token, WRITE_OWNER));
    // The other command's: nothing that writes.
    for (other, folder, file) in [(&b, &a_temp, &a_file), (&a, &b_temp, &b_file)] {
        for bit in [WRITE_DATA, APPEND_DATA, DELETE_CHILD, WRITE_DAC] {
            assert!(!t.check(folder, &other.token, bit), "{folder}: another command got {bit:#x}");
        }
        for bit in [WRITE_DATA, APPEND_DATA, WRITE_EA, WRITE_ATTRIBUTES, WRITE_DAC] {
            assert!(!t.check(file, &other.token, bit), "{file}: another command got {bit:#x}");
        }
        assert!(!t.can_delete(file, &other.token), "{file}: another command may delete it");
        assert!(!t.can_delete(folder, &other.token), "{folder}: another command may delete it");
        // Documented: reads are the account's.
        assert!(t.check(file, &other.token, FILE_READ));
    }
    // The runner removes both afterwards.
    for p in [&a_file, &a_temp, &b_file, &b_temp] {
        assert!(t.can_delete(p, &account_token()), "the runner cannot remove {p}");
    }
}

/// The verdicts above can fail: with the account among the restricting SIDs and a default DACL
/// of the account (the design before issue 15), B writes A's process, the account's `HKCU`
/// and profile, and A's files in the shared temporary folder.
#[test]
fn the_judge_notices_the_account_as_a_restricting_sid() {
    let (a, mut b) = (command(1), command(2));
    b.token.restricting.push(ACCOUNT.to_string());
    let old_default = [ModelAce::allow(ACCOUNT, GENERIC_ALL, 0), ModelAce::allow(SYSTEM, GENERIC_ALL, 0)];
    let sd = Sd { owner: ACCOUNT, dacl: &old_default };
    assert!(access_check_object(&sd, &b.token, PROCESS_VM_WRITE | PROCESS_CREATE_THREAD, &PROCESS_TYPE));
    let dacl = hkcu_key(3);
    assert!(access_check_object(&Sd { owner: ACCOUNT, dacl: &dacl }, &b.token, KEY_SET_VALUE, &KEY_TYPE));
    let (t, _, _) = profile_tree(&a, &command(2));
    let ps_profile = format!(r"{PROFILE}\Documents\WindowsPowerShell\Microsoft.PowerShell_profile.ps1");
    assert!(t.check(&ps_profile, &b.token, WRITE_DATA));
    assert!(t.check(&format!(r"{TEMP}\shared.tmp"), &b.token, WRITE_DATA));
    // And a request that named the account as a capability SID is refused outright.
    let logon = Sid::parse(LOGON).unwrap();
    assert!(restricting_sids(&command_sid([9; 16]), Some(&logon), &[account()]).is_err());
}
