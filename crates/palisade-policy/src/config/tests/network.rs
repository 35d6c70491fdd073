//! The network setting's modes and allowlist through the layers.

use super::*;
use crate::net_rules::Allowlist;

fn allow_of(r: &Resolved) -> Vec<String> {
    r.policy.network.allowlist().map(|a| a.allow.iter().map(|e| e.to_string()).collect()).unwrap_or_default()
}
fn deny_of(r: &Resolved) -> Vec<String> {
    r.policy.network.allowlist().map(|a| a.deny.iter().map(|e| e.to_string()).collect()).unwrap_or_default()
}
fn cli(network: Option<Network>, allow: &[&str]) -> Overrides {
    Overrides { network, allow_net: allow.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

#[test]
fn the_table_form_sets_mode_and_lists_with_their_sources() {
    let f = fixture();
    write(&f.user, "[network]\nmode = \"allow\"\nallow = [\"pypi.org\",\n  \"*.pythonhosted.org\"]\ndeny = [\"upload.pypi.org\"]\n");
    let r = f.load();
    assert_eq!(r.policy.network.as_str(), "allow");
    assert_eq!(allow_of(&r), ["pypi.org", "*.pythonhosted.org"]);
    assert_eq!(deny_of(&r), ["upload.pypi.org"]);
    assert_eq!(r.source("network"), Some(&user(&f, 2)));
    assert_eq!(r.source("network.allow[1]"), Some(&user(&f, 4)));
    assert_eq!(r.source("network.deny[0]"), Some(&user(&f, 5)));
    let text = r.render();
    assert!(text.contains("network.allow") && text.contains("*.pythonhosted.org"), "{text}");
    // The scalar form still works, and `allow` alone implies the mode.
    write(&f.user, "network = \"on\"\n");
    assert_eq!(f.load().policy.network, Network::On);
    write(&f.user, "[network]\nallow = [\"example.com\"]\n");
    let r = f.load();
    assert_eq!((r.policy.network.as_str(), allow_of(&r)), ("allow", vec!["example.com".to_string()]));
}

#[test]
fn bad_entries_and_keys_are_one_line_errors_naming_file_and_line() {
    let f = fixture();
    let u = f.user.display().to_string();
    write(&f.user, "[network]\nallow = [\n  \"ok.example.com\",\n  \"*.com\",\n]\n");
    assert_prefix(&f.err(), &format!("{u}:4: network.allow: "));
    write(&f.user, "[network]\nallow = [\"*\"]\n");
    assert_prefix(&f.err(), &format!("{u}:2: network.allow: "));
    write(&f.user, "[network]\nallowed = [\"a.example\"]\n");
    assert_eq!(f.err(), format!("{u}:2: network.allowed: unknown key (known keys: mode, allow, deny)"));
    write(&f.user, "network = \"sometimes\"\n");
    assert_eq!(f.err(), format!("{u}:1: network: expected one of \"off\", \"allow\", \"on\", found \"sometimes\""));
    fs::remove_file(&f.user).unwrap();
    assert_prefix(&f.err_with(cli(None, &["*.co.uk"])), "command line: --allow-net: ");
}

#[test]
fn the_project_file_may_only_narrow_the_network() {
    let f = fixture();
    let p = f.project.display().to_string();
    // Below is off: a project asking for an allowlist would loosen it.
    write(&f.project, "[network]\nallow = [\"pypi.org\"]\n");
    assert_eq!(
        f.err(),
        format!("{p}:2: network: project config may only tighten the policy; network = \"allow\" would loosen it")
    );
    // Below is on: any allowlist narrows it.
    write(&f.user, "network = \"on\"\n");
    let r = f.load();
    assert_eq!((r.policy.network.as_str(), allow_of(&r)), ("allow", vec!["pypi.org".to_string()]));
    // Below is an allowlist: the project's entries must be within it.
    write(&f.user, "[network]\nallow = [\"*.example.com\", \"pypi.org\"]\n");
    write(&f.project, "[network]\nallow = [\"api.example.com\"]\ndeny = [\"bad.example.com\"]\n");
    let r = f.load();
    assert_eq!(allow_of(&r), ["api.example.com"]);
    assert_eq!(deny_of(&r), ["bad.example.com"]);
    write(&f.project, "[network]\nallow = [\n\"api.example.com\",\n\"example.org\"]\n");
    assert_eq!(
        f.err(),
        format!("{p}:4: network.allow: project config may only tighten the policy; \"example.org\" is not in the allowlist below it")
    );
    // A port outside the user's (80 and 443 by default) is wider too.
    write(&f.project, "[network]\nallow = [\"pypi.org:8443\"]\n");
    assert_prefix(&f.err(), &format!("{p}:2: network.allow: "));
    // Turning it off is always fine; turning it on never.
    write(&f.project, "network = \"off\"\n");
    assert_eq!(f.load().policy.network, Network::Off);
    write(&f.project, "network = \"on\"\n");
    assert_prefix(&f.err(), &format!("{p}:1: network: project config may only tighten"));
}

#[test]
fn the_command_line_adds_entries_but_not_past_the_project_file() {
    let f = fixture();
    // Default off: --allow-net implies allow mode with exactly its entries.
    let r = f.load_with(cli(None, &["pypi.org"]));
    assert_eq!((r.policy.network.as_str(), allow_of(&r)), ("allow", vec!["pypi.org".to_string()]));
    assert_eq!(r.source("network.allow[0]"), Some(&Source::command_line()));
    // Added to the user file's list; --network allow alone uses the user's list.
    write(&f.user, "[network]\nmode = \"off\"\nallow = [\"github.com\"]\n");
    assert_eq!(allow_of(&f.load_with(cli(None, &["pypi.org"]))), ["github.com", "pypi.org"]);
    assert_eq!(allow_of(&f.load_with(cli(Some(Network::Allow(Allowlist::default())), &[]))), ["github.com"]);
    assert_eq!(f.load().policy.network, Network::Off);
    // The project's allowlist bounds the command line.
    write(&f.user, "network = \"on\"\n");
    write(&f.project, "[network]\nallow = [\"*.example.com\"]\n");
    let p = f.project.display().to_string();
    assert_eq!(allow_of(&f.load_with(cli(None, &["api.example.com"]))), ["*.example.com", "api.example.com"]);
    assert_eq!(
        f.err_with(cli(None, &["pypi.org"])),
        format!("command line: --allow-net: project config {p}:2 sets an allowlist without \"pypi.org\", which the command line may not loosen")
    );
    assert_eq!(
        f.err_with(cli(Some(Network::On), &[])),
        format!("command line: --network: project config {p}:2 sets network = \"allow\", which the command line may not loosen")
    );
    assert_eq!(f.load_with(cli(Some(Network::Off), &[])).policy.network, Network::Off);
}

#[test]
fn the_managed_allowlist_is_the_most_any_layer_may_admit() {
    let f = fixture();
    let m = f.managed.display().to_string();
    let u = f.user.display().to_string();
    write(&f.managed, "[network]\nallow = [\"*.example.com\", \"pypi.org\"]\ndeny = [\"secret.example.com\"]\n");
    // Within it: fine, and its deny list is in force.
    write(&f.user, "[network]\nallow = [\"api.example.com\"]\n");
    let r = f.load();
    assert_eq!(allow_of(&r), ["api.example.com"]);
    assert_eq!(deny_of(&r), ["secret.example.com"]);
    assert_eq!(r.source("network.deny[0]"), Some(&managed(&f, 3)));
    // Beyond it, from any layer: refused naming that layer's line.
    write(&f.user, "[network]\nallow = [\n\"api.example.com\",\n\"example.org\"]\n");
    assert_eq!(
        f.err(),
        format!("{u}:4: network.allow: \"example.org\" is forbidden by the administrator ({m}:2: only what network.allow lists (line 2))")
    );
    fs::remove_file(&f.user).unwrap();
    assert_eq!(
        f.err_with(cli(None, &["pypi.org:8443"])),
        format!("command line: --allow-net: \"pypi.org:8443\" is forbidden by the administrator ({m}:2: only what network.allow lists (line 2))")
    );
    assert_eq!(
        f.err_with(cli(Some(Network::On), &[])),
        format!("command line: --network: \"on\" is forbidden by the administrator ({m}:2: only what network.allow lists (line 2))")
    );
    // The default (off) stays off.
    assert_eq!(f.load().policy.network, Network::Off);
    // allow_network = false forbids the allowlist too.
    write(&f.managed, "allow_network = false\n");
    assert_prefix(
        &f.err_with(cli(None, &["pypi.org"])),
        "command line: --network: \"allow\" is forbidden by the administrator",
    );
}
