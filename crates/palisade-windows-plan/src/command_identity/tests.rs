use super::*;
use crate::ace::flags::INHERIT_ONLY_ACE;

const ACCOUNT: &str = "S-1-5-21-1-2-3-1011";

fn sid(s: &str) -> Sid {
    Sid::parse(s).unwrap()
}

fn write_sid(n: u8) -> Sid {
    Sid::synthetic(SyntheticKind::WriteRoot, [n; 16])
}

#[test]
fn the_command_sid_is_fresh_per_command_and_of_its_own_kind() {
    let a = command_sid([1; 16]);
    let b = command_sid([2; 16]);
    assert_ne!(a, b);
    assert_eq!(a.synthetic_kind(), Some(SyntheticKind::Command));
    assert!(a.as_str().starts_with("S-1-9-1347179332-4-"), "{a}");
}

#[test]
fn restricting_sids_are_the_command_everyone_restricted_logon_and_capabilities_never_the_account() {
    let cmd = command_sid([7; 16]);
    let logon = sid("S-1-5-5-0-12345");
    let sandbox = Sid::synthetic(SyntheticKind::Sandbox, [9; 16]);
    let got = restricting_sids(&cmd, Some(&logon), &[write_sid(1), sandbox.clone(), write_sid(1)]).unwrap();
    assert_eq!(got, vec![cmd.clone(), sid("S-1-1-0"), sid("S-1-5-12"), logon, write_sid(1), sandbox]);
    assert!(!got.contains(&sid(ACCOUNT)));
    assert_eq!(restricting_sids(&cmd, None, &[]).unwrap().len(), 3);
}

#[test]
fn a_request_cannot_bring_back_the_account_or_another_sid() {
    let cmd = command_sid([7; 16]);
    for bad in [sid(ACCOUNT), sid("S-1-5-32-545"), command_sid([8; 16]), sid("S-1-5-5-0-1")] {
        let e = restricting_sids(&cmd, None, &[write_sid(1), bad.clone()]).unwrap_err();
        assert_eq!(e, IdentityError::NotCapability(bad));
        assert!(!e.to_string().contains('\n'));
    }
    // The command SID itself must be one.
    assert_eq!(restricting_sids(&write_sid(3), None, &[]), Err(IdentityError::NotCommandSid(write_sid(3))));
}

#[test]
fn the_default_dacl_grants_the_command_the_account_and_system() {
    let cmd = command_sid([7; 16]);
    let dacl = command_default_dacl(&cmd, &sid(ACCOUNT));
    let who: Vec<&str> = dacl.iter().map(|a| a.trustee.as_str()).collect();
    assert_eq!(who, [cmd.as_str(), ACCOUNT, "S-1-5-18"]);
    assert!(dacl.iter().all(|a| a.kind == AceKind::Allow && a.mask == GENERIC_ALL && a.flags == 0));
}

#[test]
fn temp_folder_names_are_random_and_recognised() {
    let n = temp_folder_name(&[0xab; 16]);
    assert_eq!(n, format!("palisade-cmd-{}", "ab".repeat(16)));
    assert!(is_temp_folder_name(&n));
    assert_ne!(temp_folder_name(&[1; 16]), temp_folder_name(&[2; 16]));
    for bad in ["palisade-cmd-", "palisade-cmd-AB", "palisade-abababababababababababababababab", &format!("{n}0")] {
        assert!(!is_temp_folder_name(bad), "{bad}");
    }
}

#[test]
fn the_temp_folder_is_the_commands_but_its_own_entry_is_not() {
    let cmd = command_sid([7; 16]);
    let aces = temp_folder_aces(&cmd, &sid(ACCOUNT));
    // On the folder itself the command SID may not delete, rename or re-permission it.
    let own: u32 = aces.iter().filter(|a| a.trustee == cmd && a.flags & INHERIT_ONLY_ACE == 0).map(|a| a.mask).sum();
    assert_eq!(own & (DELETE | WRITE_DAC | WRITE_OWNER), 0);
    assert_eq!(own, TEMP_FOLDER_OWN_RIGHTS);
    // Nothing for any other SID than the command, the account and SYSTEM.
    assert!(aces.iter().all(|a| [cmd.as_str(), ACCOUNT, "S-1-5-18"].contains(&a.trustee.as_str())));
    let sddl = temp_folder_sddl(&cmd, &sid(ACCOUNT));
    assert_eq!(
        sddl,
        format!("D:P(A;;0x1201ff;;;{cmd})(A;OICIIO;0x1f01ff;;;{cmd})(A;OICI;0x1f01ff;;;{ACCOUNT})(A;OICI;0x1f01ff;;;S-1-5-18)")
    );
}

#[test]
fn sddl_aces_spell_every_flag_and_deny() {
    let a = Ace::deny(sid("S-1-1-0"), 0x2, crate::ace::flags::NO_PROPAGATE_INHERIT_ACE | SUBTREE);
    assert_eq!(sddl_ace(&a), "(D;OICINP;0x2;;;S-1-1-0)");
}
