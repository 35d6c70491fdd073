//! Fail closed: where a protection the policy needs cannot be enforced, `palisade run` refuses
//! (exit 125, one line naming what is missing and the way out) and the command never runs.
//! The host without user namespaces is made real by running Palisade inside Palisade: the outer
//! sandbox's seccomp filter forbids new user namespaces, as container runtimes do.
#![cfg(target_os = "linux")]

mod common;
use common::*;

#[test]
fn without_user_namespaces_run_refuses_and_the_command_never_runs() {
    let fx = Fixture::new();
    fx.git_init();
    // A copy where the sandbox can see it (the build may live under /tmp, which it hides).
    let inner_path = fx.outside.join("palisade");
    std::fs::copy(env!("CARGO_BIN_EXE_palisade"), &inner_path).unwrap();
    let inner = inner_path.to_str().unwrap();
    let marker = fx.ws.join("ran");
    let script = format!("echo ran > '{}'", marker.display());
    // Without PALISADE_SANDBOX the inner palisade takes itself for one in a container without
    // user namespaces (with it, it refuses as nested: see cli.rs's a_nested_run_is_refused).
    // --no-audit: its audit log's folder is read-only in there, which would cost a line more.
    let o = fx.run_flags(
        &["--network", "on"],
        &["env", "-u", "PALISADE_SANDBOX", inner, "run", "--no-audit", "--", "sh", "-c", &script],
    );
    assert_eq!(o.status.code(), Some(125), "the inner palisade did not refuse: {}", show(&o));
    assert!(!marker.exists(), "FAIL OPEN: the command ran although the sandbox could not be set up\n{}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("palisade: refusing to run:"), "{err}");
    assert!(err.contains("allow_landlock_only"), "the way out is not named: {err}");

    // `check` says the same, and exits 125.
    let c = fx.run_flags(&["--network", "on"], &["env", "-u", "PALISADE_SANDBOX", inner, "check"]);
    assert_eq!(c.status.code(), Some(125), "{}", show(&c));
    assert!(stdout(&c).contains("would refuse"), "{}", show(&c));
}
