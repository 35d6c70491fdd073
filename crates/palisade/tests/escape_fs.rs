//! Writing outside the workspace, by every route we know: the host's files must stay exactly as
//! they were (contents, metadata, extended attributes, link counts, no new entries).
//!
//! Every route runs twice against its own fixtures: first with `--mode full-access` (no
//! confinement) as a control that proves the script really has the side effect, then in the
//! default sandbox, where the side effect must be absent. Each route attacks two folders: one
//! the sandbox can see (read-only there) and one under the host's /tmp (hidden by the private
//! /tmp).
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::fs;
use std::path::Path;

/// Runs `script` (with `$T` set to each outside folder in turn) unconfined as a control, then
/// sandboxed, and asserts that the sandboxed run changed nothing outside.
fn route(name: &str, script: &str) {
    let full = format!("for T in \"$PAL_OUT\" \"$PAL_TOUT\"; do ( {script} ) 2>&1; done; echo route-done");

    let control = Fixture::new();
    control.require_visible();
    let before = Snapshot::take(&control.outside);
    let o = control.sh_flags(&["--mode", "full-access"], &full);
    assert!(stdout(&o).contains("route-done"), "control run of {name} did not complete: {}", show(&o));
    assert!(
        !before.diff(&Snapshot::take(&control.outside)).is_empty(),
        "TEST BUG: route {name} changes nothing even without the sandbox, so it cannot detect an escape: {}",
        show(&o)
    );

    let fx = Fixture::new();
    let out = Snapshot::take(&fx.outside);
    let tout = Snapshot::take(&fx.tmp_outside);
    let o = fx.sh(&full);
    assert!(stdout(&o).contains("route-done"), "sandboxed run of {name} did not complete: {}", show(&o));
    out.assert_unchanged(name, &o);
    tout.assert_unchanged(&format!("{name} (folder under the host's /tmp)"), &o);
}

macro_rules! routes {
    ($($name:ident => $script:expr;)*) => {
        $(
            #[test]
            fn $name() {
                route(stringify!($name), $script);
            }
        )*
    };
}

routes! {
    plain_write_new_file => r#"echo pwned > "$T/new.txt"; printf x | dd of="$T/dd.txt" 2>/dev/null"#;
    overwrite_existing_file => r#"echo pwned > "$T/victim.txt""#;
    append => r#"echo pwned >> "$T/victim.txt""#;
    truncate => r#"true > "$T/victim.txt"; truncate -s 0 "$T/victim.txt""#;
    remove_file_and_dir => r#"rm -f "$T/victim.txt"; rm -rf "$T/sub""#;
    rename_out_of_outside_into_workspace => r#"mv "$T/victim.txt" "$PAL_WS/stolen.txt"; mv "$T/sub" "$PAL_WS/stolen-sub""#;
    rename_into_outside_from_workspace => r#"echo pwned > "$PAL_WS/f-$$"; mv "$PAL_WS/f-$$" "$T/moved.txt"; echo pwned > "$PAL_WS/g-$$"; "$PAL_PY" -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' "$PAL_WS/g-$$" "$T/renamed.txt""#;
    rename_within_outside => r#"mv "$T/victim.txt" "$T/renamed.txt""#;
    mkdir => r#"mkdir "$T/newdir"; mkdir -p "$T/a/b/c""#;
    mknod_and_mkfifo => r#"mkfifo "$T/fifo"; mknod "$T/fifo2" p; "$PAL_PY" -c 'import os,sys,stat; os.mknod(sys.argv[1], 0o600 | stat.S_IFREG)' "$T/node""#;
    chmod => r#"chmod 0777 "$T/victim.txt"; chmod 0700 "$T/sub""#;
    chown_to_self => r#"chown "$(id -u):$(id -g)" "$T/victim.txt" "$T/sub""#;
    utimes_touch_d => r#"touch -d 2001-02-03 "$T/victim.txt"; touch -m -d 2002-03-04 "$T/sub""#;
    symlink_in_workspace_then_write_through_it => r#"ln -s "$T/victim.txt" "$PAL_WS/link-$$"; echo pwned >> "$PAL_WS/link-$$"; ln -s "$T" "$PAL_WS/dirlink-$$"; echo pwned > "$PAL_WS/dirlink-$$/new.txt""#;
    hardlink_outside_file_into_workspace_then_write => r#"ln "$T/victim.txt" "$PAL_WS/hard-$$"; echo pwned >> "$PAL_WS/hard-$$"; "$PAL_PY" -c 'import os,sys; os.link(sys.argv[1], sys.argv[2]); open(sys.argv[2], "a").write("pwned")' "$T/victim.txt" "$PAL_WS/hard2-$$""#;
    via_proc_self_root => r#"echo pwned > "/proc/self/root$T/new.txt"; echo pwned >> "/proc/self/root$T/victim.txt""#;
    via_proc_self_cwd_after_cd => r#"cd "$T" && { echo pwned > /proc/self/cwd/new.txt; echo pwned >> "/proc/$$/cwd/victim.txt"; }"#;
    via_proc_1_cwd_and_root => r#"echo pwned > "/proc/1/cwd$T/new.txt"; echo pwned > "/proc/1/root$T/new2.txt"; cd "$T" && echo pwned > new3.txt"#;
    cd_into_outside_then_write => r#"cd "$T" && { echo pwned > new.txt; echo pwned >> victim.txt; rm -f sub/inner.txt; mkdir d; }"#;
    copy_and_python_write => r#"cp "$PAL_WS/../home/notes.txt" "$T/copied.txt"; "$PAL_PY" -c 'import sys; open(sys.argv[1] + "/py.txt", "w").write("pwned")' "$T""#;
}

/// Extended attributes (python's os.setxattr; `setfattr` too when installed).
#[test]
fn setxattr() {
    let fx = Fixture::new();
    fx.require_visible();
    // Control first: does this filesystem take user xattrs at all?
    let probe = fx.outside.join("xattr-probe");
    fs::write(&probe, "x").unwrap();
    let c = std::ffi::CString::new(s(&probe)).unwrap();
    // SAFETY: NUL-terminated strings and a valid value buffer.
    let rc = unsafe { libc::setxattr(c.as_ptr(), c"user.palisade".as_ptr(), b"1".as_ptr().cast(), 1, 0) };
    fs::remove_file(&probe).unwrap();
    if rc != 0 {
        skip(&format!(
            "the filesystem under {} does not take user extended attributes ({}), so an xattr write cannot be observed",
            fx.root.display(),
            std::io::Error::last_os_error()
        ));
        return;
    }
    let setfattr = if tool("setfattr").is_some() {
        r#"setfattr -n user.pal2 -v pwned "$T/victim.txt";"#
    } else {
        eprintln!("note: setfattr is not installed; using python's os.setxattr only");
        ""
    };
    route(
        "setxattr",
        &format!(
            r#"{setfattr} "$PAL_PY" -c 'import os,sys; os.setxattr(sys.argv[1], "user.pal", b"pwned"); os.setxattr(sys.argv[2], "user.pal", b"pwned")' "$T/victim.txt" "$T/sub""#
        ),
    );
}

/// Writes to the (fake) home directory: it is readable, never writable.
#[test]
fn home_is_not_writable() {
    let fx = Fixture::new();
    fx.require_visible();
    let before = Snapshot::take(&fx.home);
    let o = fx.sh(
        r#"echo pwned > "$HOME/new.txt"; echo pwned >> "$HOME/notes.txt"; rm -f "$HOME/.profile";
           mkdir -p "$HOME/.config/autostart"; echo 'alias ls=pwned' >> "$HOME/.bashrc"; cd && touch -d 2001-01-01 notes.txt;
           cat "$HOME/notes.txt""#,
    );
    // Reading the home works (the deny-read list is about secrets only).
    assert!(stdout(&o).contains(&format!("PUBLIC-{}", fx.m)), "reading the home failed: {}", show(&o));
    before.assert_unchanged("writing the home directory", &o);
}

/// The workspace itself is writable, and the writes land on the host.
#[test]
fn workspace_writes_reach_the_host() {
    let fx = Fixture::new();
    let o = fx.sh(r#"echo "$PAL_M" > made-inside.txt && mkdir -p d/e && echo x > d/e/f && mv made-inside.txt d/ && cat d/made-inside.txt"#);
    ok(&o);
    assert_eq!(fs::read_to_string(fx.ws.join("d/made-inside.txt")).unwrap(), format!("{}\n", fx.m));
    assert!(fx.ws.join("d/e/f").is_file());
}

/// A workspace under the host's /tmp: the workspace is writable, its siblings are not (writes
/// to them land in the private /tmp and vanish).
#[test]
fn workspace_under_tmp_cannot_write_its_siblings() {
    let fx = Fixture::in_tmp();
    let out = Snapshot::take(&fx.outside);
    let o = fx.sh(
        r#"echo in > "$PAL_WS/in.txt"; echo pwned > "$PAL_OUT/new.txt"; echo pwned >> "$PAL_OUT/victim.txt"; mkdir "$PAL_OUT/../sibling-$PAL_M"; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        fs::read_to_string(fx.ws.join("in.txt")).unwrap(),
        "in\n",
        "the workspace under /tmp was not writable: {}",
        show(&o)
    );
    out.assert_unchanged("sibling of a workspace under /tmp", &o);
    assert!(
        !fx.root.join(format!("sibling-{}", fx.m)).exists(),
        "SANDBOX ESCAPE: a sibling folder appeared on the host: {}",
        show(&o)
    );
}

/// A file created as /tmp/<name> inside exists inside (the private /tmp works) but never on
/// the host's /tmp.
#[test]
fn private_tmp_does_not_reach_host_tmp() {
    let fx = Fixture::new();
    let name = format!("palisade-probe-{}", fx.m);
    let o = fx.sh(&format!(
        r#"echo inside > /tmp/{name} && cat /tmp/{name} && mkdir /tmp/{name}.d && echo "tmpdir=$TMPDIR""#
    ));
    ok(&o);
    assert!(stdout(&o).contains("inside"), "/tmp is not writable inside: {}", show(&o));
    for p in [format!("/tmp/{name}"), format!("/tmp/{name}.d")] {
        assert!(!Path::new(&p).exists(), "SANDBOX ESCAPE: {p} appeared on the host: {}", show(&o));
    }
    let host_tmp = std::env::temp_dir().join(&name);
    assert!(!host_tmp.exists(), "SANDBOX ESCAPE: {} appeared on the host", host_tmp.display());
}

/// /dev/shm inside is private too.
#[test]
fn private_dev_shm_does_not_reach_host() {
    let fx = Fixture::new();
    let name = format!("palisade-probe-{}", fx.m);
    let o = fx.sh(&format!(r#"echo inside > /dev/shm/{name} && cat /dev/shm/{name}"#));
    ok(&o);
    assert!(stdout(&o).contains("inside"), "/dev/shm is not writable inside: {}", show(&o));
    assert!(!Path::new("/dev/shm").join(&name).exists(), "SANDBOX ESCAPE: /dev/shm/{name} appeared on the host");
}

/// The private temporary directory (TMPDIR inside) is removed from the host when the command
/// ends. Found while the command runs (so the test can see it), gone afterwards.
#[test]
fn tmpdir_contents_are_removed_after_the_run() {
    use std::io::{BufRead, BufReader};
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let name = format!("tmpdir-probe-{}", fx.m);
    let mut child = sb
        .command("sh")
        .arg("-c")
        .arg(format!(r#"echo data > "$TMPDIR/{name}" && mkdir -p /tmp/{name}.d/x && echo ready && read _line; exit 0"#))
        .stdin(palisade::Stdio::Piped)
        .stdout(palisade::Stdio::Piped)
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // Where is it on the host? In <base>/palisade-*/tmp/, the base being /dev/shm (a tmpfs)
    // where there is one, else the temporary directory.
    let find = || -> Vec<std::path::PathBuf> {
        [std::path::PathBuf::from("/dev/shm"), std::env::temp_dir()]
            .iter()
            .flat_map(|base| fs::read_dir(base).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("palisade-")))
            .map(|p| p.join("tmp").join(&name))
            .filter(|p| p.exists())
            .collect()
    };
    let found = find();
    assert_eq!(found.len(), 1, "could not locate the private temporary directory on the host while the command ran");
    let private_root = found[0].parent().unwrap().parent().unwrap().to_path_buf();
    drop(child.stdin.take());
    let st = child.wait().unwrap();
    assert!(st.success(), "{st}");
    assert!(!private_root.exists(), "the private temporary directory {} was left on the host", private_root.display());
    assert!(find().is_empty());
}

/// In read-only mode the workspace cannot be changed (but /tmp still works).
#[test]
fn read_only_mode_protects_the_workspace() {
    let fx = Fixture::new();
    fs::write(fx.ws.join("existing.txt"), "keep\n").unwrap();
    fs::create_dir(fx.ws.join("dir")).unwrap();
    let before = Snapshot::take(&fx.ws);
    let o = fx.sh_flags(
        &["--mode", "read-only"],
        r#"echo pwned > new.txt; echo pwned >> existing.txt; rm -f existing.txt; mkdir d2; rmdir dir; chmod 777 existing.txt;
           mv existing.txt moved.txt; echo tmp > /tmp/x && cat /tmp/x; cat existing.txt"#,
    );
    assert!(stdout(&o).contains("keep"), "the workspace is not readable in read-only mode: {}", show(&o));
    assert!(stdout(&o).contains("tmp"), "/tmp is not writable in read-only mode: {}", show(&o));
    before.assert_unchanged("read-only mode", &o);
}

/// Extra `--writable` roots are writable (one beside the workspace, one under /tmp); the rest
/// stays read-only.
#[test]
fn extra_writable_roots_are_writable() {
    let fx = Fixture::new();
    fx.require_visible();
    let extra = fx.root.join("extra");
    fs::create_dir(&extra).unwrap();
    let tmp_extra = fx.tmp_outside.join("sub");
    let out = Snapshot::take(&fx.outside);
    let o = fx.run_flags(
        &["--writable", s(&extra), "--writable", s(&tmp_extra)],
        &[
            "sh",
            "-c",
            r#"echo a > "$1/a.txt" && echo b > "$2/b.txt" && echo pwned > "$PAL_OUT/new.txt"; echo done"#,
            "sh",
            s(&extra),
            s(&tmp_extra),
        ],
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        fs::read_to_string(extra.join("a.txt")).ok().as_deref(),
        Some("a\n"),
        "--writable root not writable: {}",
        show(&o)
    );
    assert_eq!(
        fs::read_to_string(tmp_extra.join("b.txt")).ok().as_deref(),
        Some("b\n"),
        "--writable root under /tmp not writable: {}",
        show(&o)
    );
    out.assert_unchanged("write next to --writable roots", &o);
}

/// A command replaces a writable root inside the workspace (`ws/out`) by a link to a folder
/// outside; the next sandbox, given the same `--writable ws/out`, must not write there.
#[test]
fn writable_root_swapped_for_a_link_by_an_earlier_command() {
    let fx = Fixture::new();
    fx.require_visible();
    let out = fx.ws.join("out");
    fs::create_dir(&out).unwrap();
    let o = fx.sh(r#"rmdir "$PAL_WS/out" && ln -s "$PAL_OUT" "$PAL_WS/out" && echo planted"#);
    assert!(stdout(&o).contains("planted"), "the first command could not plant the link: {}", show(&o));
    let before = Snapshot::take(&fx.outside);
    let o = fx.sh_flags(
        &["--writable", s(&out)],
        r#"echo pwned > "$PAL_WS/out/victim.txt"; echo pwned > "$PAL_OUT/new.txt"; echo done"#,
    );
    before.assert_unchanged("a writable root reached through a link planted in the workspace", &o);
}

/// Landlock-only mode (no mount namespace) cannot stop chmod/utimes: Landlock has no right for
/// metadata. For root that would hand over every root-owned file on the host, so palisade
/// refuses to run root's commands in that mode. (An unprivileged user's command in that mode
/// can still change the mode of the user's own files: a documented limit of the mode.)
#[test]
fn landlock_only_mode_does_not_let_root_chmod_host_files() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    fx.require_visible();
    if !is_root() {
        skip_expected("as an unprivileged user Landlock-only mode runs, and chmod of the user's own files outside is a documented limit (the root pass runs it)");
        return;
    }
    fs::create_dir_all(fx.xdg.join("palisade")).unwrap();
    fs::write(
        fx.xdg.join("palisade/config.toml"),
        "[linux]\nallow_landlock_only = true\nallow_unprotected_paths = true\n",
    )
    .unwrap();
    let victim = fx.outside.join("victim.txt");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let before = Snapshot::take(&fx.outside);
    let o = fx.sh("chmod 666 \"$PAL_OUT/victim.txt\"; touch -d 2001-01-01 \"$PAL_OUT/victim.txt\"; echo done");
    let mode = fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode,
        0o600,
        "SANDBOX ESCAPE: root's command in Landlock-only mode changed a host file's mode\n{}",
        show(&o)
    );
    // The times too (`touch -d`), and everything else about the folder.
    before.assert_unchanged("chmod/touch from root's command in Landlock-only mode", &o);
}

/// A writable root (or workspace) that contains the home directory would make ~/.bashrc,
/// ~/.gitconfig and ~/.config writable: code the user runs later. Refused like the home itself.
#[test]
fn writable_root_containing_home_is_refused() {
    let fx = Fixture::new();
    fx.require_visible();
    let before = Snapshot::take(&fx.home);
    let script = "echo 'echo pwned' >> \"$HOME/.profile\"; echo done";
    let o = fx.sh_flags(&["--writable", s(&fx.root)], script);
    before.assert_unchanged("--writable <folder containing the home>", &o);
    let o = fx.palisade().args(["run", "--workspace", s(&fx.root), "--", "sh", "-c", script]).output().unwrap();
    before.assert_unchanged("--workspace <folder containing the home>", &o);
}

/// The library keeps the handles of Landlock rule paths between a sandbox's commands, each used
/// only while its path still names the same inode. A workspace moved away and replaced between
/// two commands: the new folder is writable, and the old one (now outside every writable root)
/// is not. As root (namespaces) Landlock guards the writes next to the mounts; as an
/// unprivileged user this runs in Landlock-only mode, where Landlock's rule is all there is.
#[test]
fn a_writable_root_replaced_between_commands_is_ruled_by_its_new_folder() {
    let fx = Fixture::new();
    fx.require_visible();
    let ws = fx.root.join("moving-ws");
    fs::create_dir_all(&ws).unwrap();
    let landlock_only = !is_root();
    let options =
        palisade::SandboxOptions { landlock_only, accept_unprotected_paths: landlock_only, ..Default::default() };
    let sb = palisade::Sandbox::with_options(palisade::Policy::new(&ws, Some(&fx.home)), options).unwrap();
    let write = |dir: &Path, name: &str| {
        let o = sb
            .command("sh")
            .arg("-c")
            .arg(format!("echo x > '{}/{name}' && echo WROTE", dir.display()))
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let o1 = write(&ws, "first");
    assert!(ws.join("first").exists(), "the workspace is not writable at all: {o1}");
    let old = fx.root.join("moved-ws");
    fs::rename(&ws, &old).unwrap();
    fs::create_dir(&ws).unwrap();
    let o2 = write(&ws, "second");
    let o3 = write(&old, "third");
    assert!(ws.join("second").exists(), "the replacement workspace is not writable (a rule for the old folder?): {o2}");
    assert!(!old.join("third").exists(), "SANDBOX ESCAPE: the moved-away workspace stayed writable: {o3}");
}
