//! Unit tests of sid.rs (kept in their own file so both stay short).

use super::*;

/// Any spelling Windows accepts, canonicalized.
fn sid(s: &str) -> Sid {
    Sid::canonicalize(s).unwrap_or_else(|e| panic!("{e}"))
}

fn p(s: &str) -> WinPath {
    WinPath::parse(s).unwrap()
}

#[test]
fn parses_and_canonicalizes() {
    assert_eq!(sid("S-1-5-32-545").as_str(), "S-1-5-32-545");
    assert_eq!(sid("s-1-5-032-0545").as_str(), "S-1-5-32-545");
    assert_eq!(sid("S-1-1-0").sub_authorities(), [0]);
    assert_eq!(sid("S-1-5").sub_authorities(), Vec::<u32>::new());
    assert_eq!(sid("S-1-0x000000000005-18"), sid("S-1-5-18"));
    assert_eq!(sid("S-1-0x100000000-1").as_str(), "S-1-0x000100000000-1");
    assert_eq!(sid("S-1-0x100000000-1").authority(), 1 << 32);
    assert_eq!(sid("S-1-5-21-1-2-3-4294967295").sub_authorities()[4], u32::MAX);
}

#[test]
fn rejects_malformed() {
    for bad in [
        "",
        "S",
        "S-1",
        "X-1-5-18",
        "S-2-5-18",
        "S-1--18",
        "S-1-5-",
        "S-1-5-x",
        "S-1-5--1",
        "S-1-5-+1",
        "S-1-5-4294967296",
        "S-1-281474976710656",
        "S-1-0x1000000000000",
        "S-1-0x-1",
        "S-1-5- 18",
        "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
    ] {
        assert!(Sid::parse(bad).is_err(), "{bad:?} should be rejected");
    }
    assert!(Sid::parse("S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15").is_ok());
    let e = Sid::parse("S-2-5").unwrap_err().to_string();
    assert!(e.contains("revision"), "{e}");
}

#[test]
fn synthetic_sids_have_the_documented_form() {
    let mut bytes = [0u8; 16];
    bytes[0] = 1;
    bytes[4] = 0xff;
    bytes[15] = 0x80;
    let s = Sid::synthetic(SyntheticKind::WriteRoot, bytes);
    assert_eq!(s.as_str(), "S-1-9-1347179332-1-1-255-0-2147483648");
    assert_eq!(s.synthetic_kind(), Some(SyntheticKind::WriteRoot));
    assert_eq!(Sid::parse(s.as_str()).unwrap(), s);
    let sb = Sid::synthetic(SyntheticKind::Sandbox, [7; 16]);
    assert!(sb.as_str().starts_with("S-1-9-1347179332-2-"));
    assert_eq!(sb.synthetic_kind(), Some(SyntheticKind::Sandbox));
}

#[test]
fn synthetic_sids_cannot_be_real_principals() {
    let s = Sid::synthetic(SyntheticKind::WriteRoot, [0xAB; 16]);
    assert!(!s.as_str().starts_with("S-1-5-"));
    assert!(!s.as_str().starts_with("S-1-15-"));
    for real in ["S-1-5-21-1004336348-1177238915-682003330-1001", "S-1-1-0", "S-1-5-32-545", "S-1-15-3-1"] {
        assert_eq!(sid(real).synthetic_kind(), None);
    }
    assert_eq!(sid("S-1-9-1347179332-3-1-2-3-4").synthetic_kind(), Some(SyntheticKind::Instance));
    assert_eq!(sid("S-1-9-1347179332-4-1-2-3-4").synthetic_kind(), Some(SyntheticKind::Command));
    assert_eq!(sid("S-1-9-1347179332-5-1-2-3-4").synthetic_kind(), None);
    assert_eq!(sid("S-1-9-1347179332-3-1-2-3").synthetic_kind(), None);
    assert_eq!(sid("S-1-9-1-1-1-2-3-4").synthetic_kind(), None);
}

#[test]
fn logon_sids() {
    assert!(is_logon_sid(&sid("S-1-5-5-0-123456")));
    assert!(!is_logon_sid(&sid("S-1-5-5-0")));
    assert!(!is_logon_sid(&sid("S-1-5-18")));
}

fn counter() -> impl FnMut() -> [u8; 16] {
    let mut n = 0u8;
    move || {
        n += 1;
        [n; 16]
    }
}

#[test]
fn registry_assigns_once_per_root_and_reuses() {
    let mut reg = SidRegistry::new();
    let mut rng = counter();
    let a = reg.assign(&p(r"C:\Work\A"), 100, &mut rng);
    let b = reg.assign(&p(r"C:\Work\B"), 101, &mut rng);
    assert_ne!(a, b);
    assert_eq!(reg.assign(&p(r"c:\work\a"), 200, &mut rng), a);
    assert_eq!(reg.get(&p(r"C:\WORK\A")).unwrap().created_at, 100);
    assert_eq!(reg.get(&p(r"C:\WORK\A")).unwrap().root.to_string(), r"C:\Work\A");
    assert_eq!(reg.root_of(&b), Some(&p(r"C:\Work\B")));
    assert_eq!(reg.forget(&p(r"C:\work\b")).unwrap().sid, b);
    assert!(reg.get(&p(r"C:\Work\B")).is_none());
}

#[test]
fn registry_retries_a_repeated_sid() {
    let mut reg = SidRegistry::new();
    let a = reg.assign(&p(r"C:\a"), 0, || [1; 16]);
    let mut calls = 0;
    let b = reg.assign(&p(r"C:\b"), 0, || {
        calls += 1;
        if calls == 1 {
            [1; 16]
        } else {
            [2; 16]
        }
    });
    assert_ne!(a, b);
    assert_eq!(calls, 2);
}

#[test]
fn registry_sandbox_sid_is_stable() {
    let mut reg = SidRegistry::new();
    let s = reg.sandbox_sid(|| [9; 16]);
    assert_eq!(reg.sandbox_sid(|| [10; 16]), s);
    assert_eq!(s.synthetic_kind(), Some(SyntheticKind::Sandbox));
}

#[test]
fn registry_json_round_trip_and_version_check() {
    let mut reg = SidRegistry::new();
    reg.assign(&p(r"C:\Work\A"), 100, || [3; 16]);
    reg.sandbox_sid(|| [4; 16]);
    let json = reg.to_json();
    assert!(json.contains(r#""root": "C:\\Work\\A""#), "{json}");
    assert_eq!(SidRegistry::from_json(&json).unwrap(), reg);

    let newer = json.replacen("\"version\": 1", "\"version\": 2", 1);
    let e = SidRegistry::from_json(&newer).unwrap_err();
    assert!(matches!(e, RegistryError::Version { found: 2, supported: 1 }));
    assert!(e.to_string().contains("newer palisade"), "{e}");
    assert!(matches!(SidRegistry::from_json("{}"), Err(RegistryError::Json(_))));
}

#[test]
fn registry_rejects_inconsistent_files() {
    let mut reg = SidRegistry::new();
    reg.assign(&p(r"C:\a"), 0, || [1; 16]);
    let json = reg.to_json();
    let wrong_key = json.replacen(r#""C:\\A": {"#, r#""C:\\B": {"#, 1);
    assert!(matches!(SidRegistry::from_json(&wrong_key), Err(RegistryError::Inconsistent(_))));
    let real_sid = json.replace(Sid::synthetic(SyntheticKind::WriteRoot, [1; 16]).as_str(), "S-1-5-32-545");
    assert!(matches!(SidRegistry::from_json(&real_sid), Err(RegistryError::Inconsistent(_))));
}

// The strict spelling rules of `Sid::parse`, which the elevated setup relies on.

#[test]
fn accepts_canonical_sids() {
    for s in [
        "S-1-5-18",
        "S-1-1-0",
        "S-1-5-32-544",
        "S-1-5-21-1004336348-1177238915-682003330-1001",
        "S-1-5-80-956008885-3425420160-3186216591-2000232021-1434102497",
        "S-1-0xFFFFFFFFFFFF-4294967295",
    ] {
        assert_eq!(Sid::parse(s).unwrap().as_str(), s);
    }
    assert!(Sid::parse("s-1-5-18").is_err());
    // Above 2^32 Windows writes the authority in hex; the decimal spelling is a second
    // spelling of the same SID and refused.
    assert!(Sid::parse("S-1-281474976710655-4294967295").is_err());
    assert!(Sid::parse("S-1-0xffffffffffff-4294967295").is_err());
    assert_eq!(Sid::trusted_installer(), Sid::parse(Sid::trusted_installer().as_str()).unwrap());
}

#[test]
fn refuses_anything_that_could_change_sddl() {
    for s in [
        "",
        "BA",
        "WD",
        "S-1",
        "S-1-5",
        "S-2-5-18",
        "S-1-5-",
        "S-1-5--18",
        "S-1-5-18 ",
        " S-1-5-18",
        "S-1-5-18)(A;;GA;;;WD",
        "S-1-5-018",
        "S-1-0x5-18",
        "S-1-5-4294967296",
        "S-1-281474976710656-1",
        "S-1-5-+18",
        "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
        "S-1-5-18\n",
    ] {
        assert!(Sid::parse(s).is_err(), "{s:?} accepted");
    }
}

#[test]
fn parts_and_classes() {
    let s = Sid::parse("S-1-5-21-1-2-3-1001").unwrap();
    assert_eq!(s.sub_authorities(), vec![21, 1, 2, 3, 1001]);
    assert_eq!(s.rid(), 1001);
    assert!(s.is_account_domain());
    assert!(!Sid::system().is_account_domain());
    assert!(Sid::administrators().is_privileged_group());
    assert!(!Sid::users().is_privileged_group());
}

#[test]
fn serde_validates() {
    let s: Sid = serde_json::from_str("\"S-1-5-18\"").unwrap();
    assert_eq!(s, Sid::system());
    assert!(serde_json::from_str::<Sid>("\"S-1-5-18)\"").is_err());
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"S-1-5-18\"");
}
