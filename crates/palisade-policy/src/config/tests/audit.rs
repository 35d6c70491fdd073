//! `[audit]`: the user file sets it, a project file may not, the managed file can require it
//! and fix its place and size.

use super::*;

#[test]
fn audit_defaults_to_on_at_the_requested_default_place() {
    let f = fixture();
    let default = f.home.join(".local/state/palisade/audit.jsonl");
    let r = load(&LoadRequest { audit_log: Some(default.clone()), ..f.req(Overrides::default()) }).unwrap();
    assert_eq!(
        r.audit,
        AuditSettings { enabled: true, required: false, path: Some(default), max_bytes: DEFAULT_AUDIT_MAX_BYTES }
    );
    assert_eq!(r.source("audit.path"), Some(&Source::default_layer()));
    // No state directory known: on, without a place (the CLI says so when it would write).
    assert_eq!(f.load().audit.path, None);
}

/// The XDG rule (Unix paths; Windows uses the LocalAppData known folder instead).
#[cfg(not(windows))]
#[test]
fn default_audit_log_follows_xdg_state_home() {
    let home = Path::new("/home/u");
    assert_eq!(default_audit_log(Some("/st".into()), Some(home)), Some(PathBuf::from("/st/palisade/audit.jsonl")));
    assert_eq!(
        default_audit_log(Some("rel".into()), Some(home)),
        Some(PathBuf::from("/home/u/.local/state/palisade/audit.jsonl"))
    );
    assert_eq!(default_audit_log(None, None), None);
}

#[test]
fn user_file_sets_audit() {
    let f = fixture();
    write(&f.user, "[audit]\nenabled = false\npath = \"~/logs/a.jsonl\"\nmax_bytes = 100000\n");
    let r = f.load();
    assert!(!r.audit.enabled);
    assert_eq!(r.audit.path, Some(f.home.join("logs/a.jsonl")));
    assert_eq!(r.audit.max_bytes, 100000);
    assert_eq!(r.source("audit.enabled"), Some(&user(&f, 2)));
    assert_eq!(r.source("audit.max_bytes"), Some(&user(&f, 4)));
    let u = f.user.display();
    write(&f.user, "[audit]\npath = \"logs/a.jsonl\"\n");
    assert_prefix(&f.err(), &format!("{u}:2: audit.path: "));
    write(&f.user, "[audit]\nmax_bytes = 10\n");
    assert_eq!(f.err(), format!("{u}:2: audit.max_bytes: must be at least 65536"));
    write(&f.user, "[audit]\nrequired = true\n");
    assert_eq!(f.err(), format!("{u}:2: audit.required: unknown key (known keys: enabled, path, max_bytes)"));
    write(&f.user, "[audit]\nenabled = \"yes\"\n");
    assert_prefix(&f.err(), &format!("{u}:2: audit.enabled: expected a boolean"));
}

#[test]
fn project_file_cannot_touch_audit() {
    let f = fixture();
    let p = f.project.display();
    for (text, key) in [
        ("[audit]\npath = \"/tmp/elsewhere.jsonl\"\n", "audit.path"),
        ("[audit]\nenabled = false\n", "audit.enabled"),
        ("[audit]\nmax_bytes = 70000\n", "audit.max_bytes"),
        ("[audit]\nenabled = true\n", "audit.enabled"),
    ] {
        write(&f.project, &format!("mode = \"read-only\"\n{text}"));
        assert_eq!(
            f.err(),
            format!(
                "{p}:3: {key}: the audit log is set in the user config or the managed file, never in a project file"
            )
        );
    }
}

#[test]
fn command_line_switches_audit_off() {
    let f = fixture();
    let r = f.load_with(Overrides { no_audit: true, ..Default::default() });
    assert!(!r.audit.enabled);
    assert_eq!(r.source("audit.enabled"), Some(&Source::command_line()));
}

#[test]
fn managed_requires_audit_and_fixes_its_place() {
    let f = fixture();
    let m = f.managed.display().to_string();
    write(&f.managed, "[audit]\nrequired = true\npath = \"~/admin.jsonl\"\nmax_bytes = 70000\n");
    let r = f.load();
    assert_eq!(
        r.audit,
        AuditSettings { enabled: true, required: true, path: Some(f.home.join("admin.jsonl")), max_bytes: 70000 }
    );
    assert_eq!(r.source("audit.required"), Some(&managed(&f, 2)));
    assert_eq!(r.source("audit.path"), Some(&managed(&f, 3)));
    assert_eq!(
        f.err_with(Overrides { no_audit: true, ..Default::default() }),
        format!("command line: --no-audit: switching the log off is forbidden by the administrator ({m}:2: audit.required = true)")
    );
    let u = f.user.display();
    write(&f.user, "\n[audit]\nenabled = false\n");
    assert_eq!(
        f.err(),
        format!("{u}:3: audit.enabled: switching the log off is forbidden by the administrator ({m}:2: audit.required = true)")
    );
    write(&f.user, "[audit]\npath = \"~/mine.jsonl\"\n");
    assert_prefix(&f.err(), &format!("{u}:2: audit.path: another place is forbidden by the administrator ({m}:3: "));
    write(&f.user, "[audit]\nmax_bytes = 80000\n");
    assert_prefix(&f.err(), &format!("{u}:2: audit.max_bytes: another size is forbidden by the administrator ({m}:4:"));
    // The same values are fine.
    write(&f.user, "[audit]\nenabled = true\npath = \"~/admin.jsonl\"\nmax_bytes = 70000\n");
    assert!(f.load().audit.required);
    // `enabled` is the user's word, `required` the administrator's.
    write(&f.managed, "[audit]\nenabled = true\n");
    assert_eq!(f.err(), format!("{m}:2: audit.enabled: unknown key (known keys: required, path, max_bytes)"));
    // Without `required`, the user may switch it off.
    write(&f.managed, "[audit]\nrequired = false\n");
    write(&f.user, "[audit]\nenabled = false\n");
    assert!(!f.load().audit.enabled);
}

#[test]
fn audit_is_rendered_with_its_sources() {
    let f = fixture();
    write(&f.user, "[audit]\nmax_bytes = 100000\n");
    let r = f.load();
    let text = r.render();
    assert!(text.lines().any(|l| l.starts_with("audit.max_bytes") && l.contains("100000") && l.contains("user (")));
    assert!(text.lines().any(|l| l.starts_with("audit.path") && l.contains("(none: no state directory)")));
    let j = r.to_json();
    assert_eq!(j["audit.enabled"]["value"], true);
    assert_eq!(j["audit.max_bytes"]["source"]["line"], 2);
}
