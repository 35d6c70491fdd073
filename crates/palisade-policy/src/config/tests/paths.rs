//! Filesystem checks: the workspace, writable roots and deny-read paths.

use super::*;

#[test]
#[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
fn writable_roots_are_checked_and_canonicalized() {
    let f = fixture();
    let u = f.user.display().to_string();
    #[cfg(unix)]
    {
        let real = f.dir("real");
        std::os::unix::fs::symlink(&real, f.root.join("link")).unwrap();
        write(&f.user, &format!("writable_roots = [\"{}\"]\n", f.root.join("link/../link").display()));
        assert_eq!(f.load().policy.writable_roots, vec![real.clone()]);
    }
    let cases = [
        ("\"/\"", "writable_roots: refusing to make / writable".to_string()),
        ("\"~\"", format!("writable_roots: refusing to make the home directory {} writable", f.home.display())),
        ("\"/proc/self\"", "writable_roots: refusing to make /proc/".to_string()),
        ("\"/dev\"", "writable_roots: refusing to make /dev writable: it is in /proc, /sys or /dev".to_string()),
        ("\"~/missing\"", format!("writable_roots: {} does not exist", f.home.join("missing").display())),
        ("\"relative/dir\"", "writable_roots: \"relative/dir\" must be absolute or start with ~/".to_string()),
        ("\"~bob/x\"", "writable_roots: \"~bob/x\": only ~ and ~/ are expanded".to_string()),
        ("[1]", "writable_roots: expected an array of strings, found an integer in it".to_string()),
    ];
    for (value, want) in cases {
        let value = if value.starts_with('[') { value.trim_matches(['[', ']']).to_string() } else { value.to_string() };
        write(&f.user, &format!("\nwritable_roots = [{value}]\n"));
        assert_prefix(&f.err(), &format!("{u}:2: {want}"));
    }
    fs::remove_file(&f.user).unwrap();
    // `--writable=~/dir` reaches palisade unexpanded: `~/` means the home directory there too.
    let cache = f.home.join("cache");
    fs::create_dir_all(&cache).unwrap();
    let r = load(&f.req(Overrides { writable: vec!["~/cache".into()], ..Default::default() })).unwrap();
    assert_eq!(r.policy.writable_roots, vec![real_path(&cache)]);
    assert_prefix(
        &f.err_with(Overrides { writable: vec!["~".into()], ..Default::default() }),
        &format!("command line: --writable: refusing to make the home directory {} writable", f.home.display()),
    );
    assert_prefix(
        &f.err_with(Overrides { writable: vec![f.root.join("nope")], ..Default::default() }),
        &format!("command line: --writable: {} does not exist", f.root.join("nope").display()),
    );
}

#[test]
#[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
fn workspace_must_exist_and_not_be_home_or_root() {
    let f = fixture();
    let missing = f.root.join("nope");
    let e = load(&LoadRequest { workspace: missing.clone(), ..f.req(Overrides::default()) }).unwrap_err().to_string();
    assert_prefix(&e, &format!("workspace {}: ", missing.display()));
    let e = load(&LoadRequest { workspace: f.home.clone(), ..f.req(Overrides::default()) }).unwrap_err().to_string();
    assert_prefix(&e, &format!("workspace {}: is the home directory", f.home.display()));
    let ro = Overrides { mode: Some(Mode::ReadOnly), ..Default::default() };
    assert!(load(&LoadRequest { workspace: f.home.clone(), ..f.req(ro) }).is_ok());
    let e = load(&LoadRequest { workspace: "/".into(), ..f.req(Overrides::default()) }).unwrap_err().to_string();
    assert_eq!(e, "workspace /: refusing to make / writable (pass --workspace with a project directory)");
    // The kernel's filesystems: the sandbox has its own /proc and /dev.
    for k in ["/proc", "/sys", "/dev"] {
        let e = load(&LoadRequest { workspace: k.into(), ..f.req(Overrides::default()) }).unwrap_err().to_string();
        assert_prefix(&e, &format!("workspace {k}: refusing to make it writable: it is in /proc, /sys or /dev"));
        let ro = Overrides { mode: Some(Mode::ReadOnly), ..Default::default() };
        assert!(load(&LoadRequest { workspace: k.into(), ..f.req(ro) }).is_ok(), "{k} read-only");
    }
}

#[test]
fn workspace_and_deny_read_are_canonical() {
    let f = fixture();
    let dotted = f.ws.join("../proj/.");
    let r = load(&LoadRequest { workspace: dotted, ..f.req(Overrides::default()) }).unwrap();
    assert_eq!(r.policy.workspace, f.ws);
    #[cfg(unix)]
    {
        // A home reached through a link: deny-read entries name the real location.
        let link = f.root.join("homelink");
        std::os::unix::fs::symlink(&f.home, &link).unwrap();
        fs::create_dir_all(f.home.join(".ssh")).unwrap();
        let r = load(&LoadRequest { home: Some(link), ..f.req(Overrides::default()) }).unwrap();
        assert_eq!(r.policy.deny_read[0], f.home.join(".ssh"));
        assert_eq!(r.policy.deny_read[1], f.home.join(".gnupg"));
    }
}

#[test]
#[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
fn deny_read_may_not_hide_the_workspace_or_a_writable_root() {
    let f = fixture();
    let u = f.user.display().to_string();
    // Inside the workspace is fine: the mask goes on top.
    write(&f.user, "deny_read = [\"~/proj/secrets\"]\n");
    assert!(f.load().policy.deny_read.contains(&f.ws.join("secrets")));
    write(&f.user, "\ndeny_read = [\"/\"]\n");
    assert_prefix(&f.err(), &format!("{u}:2: deny_read: / would hide everything"));
    write(&f.user, "deny_read = [\"~/proj\"]\n");
    assert_prefix(&f.err(), &format!("{u}:1: deny_read: {} is the workspace {}", f.ws.display(), f.ws.display()));
    write(&f.user, "deny_read = [\"~\"]\n");
    assert_prefix(&f.err(), &format!("{u}:1: deny_read: {} contains the workspace", f.home.display()));
    let cache = f.dir("cache");
    write(&f.user, &format!("writable_roots = [\"{}\"]\ndeny_read = [\"{}\"]\n", cache.display(), f.root.display()));
    assert_prefix(&f.err(), &format!("{u}:2: deny_read: {} contains the workspace", f.root.display()));
    let other = f.dir("other");
    write(&f.user, &format!("writable_roots = [\"{}\"]\ndeny_read = [\"{}\"]\n", cache.display(), cache.display()));
    assert_prefix(
        &f.err(),
        &format!("{u}:2: deny_read: {} hides the writable root {}", cache.display(), cache.display()),
    );
    write(&f.user, &format!("deny_read = [\"{}\"]\n", other.display()));
    assert!(f.load().policy.deny_read.contains(&other));
    // The project file may add deny_read entries, but not ones that hide its own workspace.
    fs::remove_file(&f.user).unwrap();
    write(&f.project, "deny_read = [\".\"]\n");
    assert_prefix(&f.err(), &format!("{}:1: deny_read: {} is the workspace", f.project.display(), f.ws.display()));
}
