//! `palisade check` and `check --json` report the elevated mode's state (`check_report`'s
//! lines), gathered without elevation. Under Wine what the lines can say is what Wine does:
//! nothing of the setup is there (the accounts Wine creates are not found again and no test
//! here runs setup), and hnetcfg answers the firewall profile queries with E_NOTIMPL, so the
//! firewall policy is "unknown" with that reason — never ok, never a failure of the setup. On
//! real Windows without the setup the same "not set up" lines hold; after
//! `palisade setup --elevated` (CI), `windows_elevated_enforcement.rs` checks the lines of an
//! intact setup.
#![cfg(windows)]

use std::path::Path;
use std::process::{Command, Output};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\n")
}

fn wine() -> bool {
    palisade::__private::wine_version().is_some()
}

fn setup_present() -> bool {
    let pd = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
    Path::new(&pd).join("Palisade").join("setup.json").is_file()
}

/// `palisade check [--json]` in a fresh workspace with `config` as the user configuration
/// (in a private `%APPDATA%`).
fn check(config: &str, json: bool) -> (tempfile::TempDir, Output) {
    let ws = tempfile::Builder::new().prefix("palisade-check-").tempdir().unwrap();
    let appdata = ws.path().join("appdata");
    std::fs::create_dir_all(appdata.join("palisade")).unwrap();
    std::fs::write(appdata.join("palisade").join("config.toml"), config).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.env("APPDATA", &appdata).args(["check", "--network", "on", "--workspace"]).arg(ws.path().join("w"));
    std::fs::create_dir_all(ws.path().join("w")).unwrap();
    if json {
        c.arg("--json");
    }
    let out = c.output().unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    (ws, out)
}

fn lines(json: &serde_json::Value) -> Vec<(String, String, String)> {
    json["elevated"]["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no elevated lines: {json}"))
        .iter()
        .map(|l| {
            (
                l["status"].as_str().unwrap().to_string(),
                l["item"].as_str().unwrap().to_string(),
                l["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn unelevated_mode_reports_the_setup_as_optional() {
    if setup_present() {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"NOT RUN: the elevated setup is present on this machine; this test is for a machine without it\n",
        );
        return;
    }
    let (_ws, out) = check("", false);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("\nElevated mode (information: [windows] mode is not \"elevated\")\n"), "{stdout}");
    assert!(
        stdout.contains("  note  elevated setup: not set up (optional: `palisade setup --elevated`, then `mode = \"elevated\"` in the [windows] section)\n"),
        "{stdout}"
    );

    let (_ws, out) = check("", true);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(json["elevated"]["required"], false, "{json}");
    assert_eq!(json["elevated"]["usable"], true, "{json}");
    let l = lines(&json);
    assert_eq!(l.len(), 1, "{json}");
    assert_eq!((l[0].0.as_str(), l[0].1.as_str()), ("note", "elevated setup"));
    assert!(json["refusal"].is_null(), "{json}");
}

#[test]
fn elevated_mode_without_setup_fails_and_refuses() {
    if setup_present() {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"NOT RUN: the elevated setup is present on this machine; this test is for a machine without it\n",
        );
        return;
    }
    let config = "[windows]\nmode = \"elevated\"\n";
    let (_ws, out) = check(config, false);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(125), "{stdout}");
    assert!(
        stdout.contains("\nElevated mode ([windows] mode = \"elevated\"; `palisade setup --elevated`)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  FAIL  elevated setup: not set up: run `palisade setup --elevated` (asks for administrator approval)\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("  `palisade run` would refuse: "), "{stdout}");

    let (_ws, out) = check(config, true);
    assert_eq!(out.status.code(), Some(125));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(json["elevated"]["required"], true, "{json}");
    assert_eq!(json["elevated"]["usable"], false, "{json}");
    assert!(json["refusal"].as_str().is_some_and(|r| r.contains("elevated")), "{json}");
    let l = lines(&json);
    let find = |item: &str| l.iter().find(|x| x.1 == item).unwrap_or_else(|| panic!("no line {item}: {json}")).clone();
    for item in [
        "elevated setup",
        "sandbox group",
        "account PalisadeOffline",
        "account PalisadeOnline",
        "network fence",
        "palisade folder",
        "runner",
    ] {
        assert_eq!(find(item).0, "fail", "{item}: {json}");
    }
    assert_eq!(find("firewall rules").2, "PalisadeOffline is missing, so nothing can be fenced");
    assert_eq!(find("TLS inside").0, "note");
    // Nothing unknown is ever reported as ok.
    assert!(l.iter().all(|x| x.0 != "ok"), "{json}");
    let policy = find("firewall policy");
    if wine() {
        // hnetcfg: INetFwPolicy2::CurrentProfileTypes is E_NOTIMPL — unknown, with that reason.
        assert_eq!(policy.0, "unknown", "{json}");
        assert!(policy.2.contains("HRESULT 0x80004001"), "{json}");
        assert!(policy.2.starts_with("unknown: could not be read: reading the firewall profiles: "), "{json}");
    } else {
        // Real Windows: the firewall profiles are readable by every user.
        assert!(policy.0 == "ok" || policy.0 == "fail", "{json}");
    }
}
