//! What root still holds inside: kernel settings. A command started by root runs as uid 0 in
//! its user namespace, and sysctl files check the uid, not capabilities: writing them must
//! still fail (read-only /proc/sys, and Landlock's write rules), and the host's values must be
//! unchanged.
#![cfg(target_os = "linux")]

mod common;
use common::*;

#[test]
fn sysctl_and_sysrq_writes_do_not_reach_the_kernel() {
    let fx = Fixture::new();
    let files = ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname", "/proc/sys/vm/overcommit_memory"];
    let before: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect();
    let o = fx.sh(
        r#"echo '|/bin/false palisade-escape' > /proc/sys/kernel/core_pattern; echo palisade-escape > /proc/sys/kernel/hostname;
           echo 1 > /proc/sys/vm/overcommit_memory; echo 3 > /proc/sys/vm/drop_caches; echo s > /proc/sysrq-trigger; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    for (f, b) in files.iter().zip(&before) {
        let now = std::fs::read_to_string(f).unwrap_or_default();
        assert_eq!(&now, b, "SANDBOX ESCAPE: {f} changed on the host\nrun: {}", show(&o));
    }
    let err = stderr(&o);
    assert!(
        err.matches("Read-only file system").count() + err.matches("Permission denied").count() >= 4,
        "the writes did not fail as expected: {}",
        show(&o)
    );
}
