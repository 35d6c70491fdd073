//! Secrets in the home directory (the default deny-read list) stay unreadable, by any route;
//! the rest of the home stays readable. The fixtures hold a unique secret string that must
//! never show up in the command's output.
#![cfg(target_os = "linux")]

mod common;
use common::*;

fn assert_no_secret(fx: &Fixture, what: &str, o: &std::process::Output) {
    let all = text(o);
    for f in SECRET_FILES {
        assert!(
            !all.contains(&fx.secret(f)),
            "SECRET LEAKED: {what}: the contents of ~/{f} were read\nrun: {}",
            show(o)
        );
    }
}

fn fixture() -> Fixture {
    let fx = Fixture::new();
    fx.require_visible();
    fx
}

#[test]
fn cat_ssh_private_key() {
    let fx = fixture();
    let o = fx.sh(r#"cat ~/.ssh/id_rsa; cat "$HOME/.ssh/id_rsa"; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_no_secret(&fx, "cat ~/.ssh/id_rsa", &o);
}

#[test]
fn list_ssh_dir() {
    let fx = fixture();
    let o = fx.sh(r#"ls -la ~/.ssh; ls ~/.ssh/; find ~/.ssh; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(!stdout(&o).contains("id_rsa"), "SECRET LEAKED: the names in ~/.ssh were listed\nrun: {}", show(&o));
    assert_no_secret(&fx, "ls ~/.ssh", &o);
}

#[test]
fn cat_aws_credentials() {
    let fx = fixture();
    let o = fx.sh(r#"cat ~/.aws/credentials; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_no_secret(&fx, "cat ~/.aws/credentials", &o);
}

#[test]
fn cat_netrc() {
    let fx = fixture();
    let o = fx.sh(r#"cat ~/.netrc; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_no_secret(&fx, "cat ~/.netrc", &o);
}

#[test]
fn cat_docker_config() {
    let fx = fixture();
    let o = fx.sh(r#"cat ~/.docker/config.json; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_no_secret(&fx, "cat ~/.docker/config.json", &o);
}

/// Other routes to the same bytes: /proc/self/root, a symlink in the workspace, a relative path
/// from the workspace, recursive grep and tar of the whole home, python, copying then reading.
#[test]
fn indirect_routes_to_secrets() {
    let fx = fixture();
    let o = fx.sh(r#"for f in .ssh/id_rsa .aws/credentials .netrc .docker/config.json; do
             cat "/proc/self/root$HOME/$f"; cat "/proc/1/root$HOME/$f"; cat "../home/$f";
             ln -sf "$HOME/$f" "link-$$"; cat "link-$$"; cp "$HOME/$f" "copy-$$" && cat "copy-$$";
             "$PAL_PY" -c 'import sys; print(open(sys.argv[1]).read())' "$HOME/$f";
           done
           grep -r SECRET "$HOME"; tar -cf - -C "$HOME" . | tar -xOf - ; cd ~/.ssh && cat id_rsa; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_no_secret(&fx, "indirect routes", &o);
}

/// The masks cannot be lifted from inside: chmod the mask, unmount it, rename it away.
#[test]
fn masks_cannot_be_removed() {
    let fx = fixture();
    let o = fx.sh(
        r#"chmod 700 ~/.ssh; umount ~/.ssh; umount -l ~/.ssh; umount ~/.netrc; cat ~/.ssh/id_rsa ~/.netrc;
           "$PAL_PY" -c 'import ctypes; l=ctypes.CDLL(None); import os; l.umount2(os.path.expanduser("~/.ssh").encode(), 2); print(open(os.path.expanduser("~/.ssh/id_rsa")).read())';
           echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_no_secret(&fx, "lifting the masks", &o);
}

/// The rest of the home is readable (deny-read is about secrets, not the home).
#[test]
fn other_home_files_are_readable() {
    let fx = fixture();
    let o = fx.sh(r#"cat ~/notes.txt; ls -a ~"#);
    ok(&o);
    assert!(stdout(&o).contains(&format!("PUBLIC-{}", fx.m)), "~/notes.txt is not readable: {}", show(&o));
    assert!(stdout(&o).contains(".profile"), "the home cannot be listed: {}", show(&o));
}

/// The library applies the same deny-read list when given the home.
#[test]
fn library_policy_denies_secrets() {
    let fx = fixture();
    let sb = fx.sandbox();
    let out = sb
        .command("sh")
        .arg("-c")
        .arg("cat \"$1/.ssh/id_rsa\" \"$1/.aws/credentials\" \"$1/.netrc\" \"$1/.docker/config.json\"; cat \"$1/notes.txt\"")
        .arg("sh")
        .arg(&fx.home)
        .output()
        .unwrap();
    let o = std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(0),
        stdout: out.stdout.clone(),
        stderr: out.stderr.clone(),
    };
    assert_no_secret(&fx, "library", &o);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("PUBLIC-{}", fx.m)), "{}", show(&o));
}

/// Credentials as plain as `.netrc`: git's credential store (`git config credential.helper
/// store` writes `~/.git-credentials`), cargo's and PyPI's publish tokens.
#[test]
fn plaintext_credential_stores_are_unreadable() {
    let fx = Fixture::new();
    fx.require_visible();
    let secret = format!("https://user:SECRET-{}@example.invalid", fx.m);
    for f in [".git-credentials", ".cargo/credentials.toml", ".pypirc", ".config/gcloud/credentials.db"] {
        let p = fx.home.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &secret).unwrap();
    }
    let o =
        fx.sh("cat ~/.git-credentials ~/.cargo/credentials.toml ~/.pypirc ~/.config/gcloud/credentials.db; echo done");
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(!text(&o).contains(&secret), "SANDBOX ESCAPE: a plaintext credential store was read\n{}", show(&o));
}
