//! The plan's refusal matrix: written out row by row (not derived from the code), then every
//! combination of host facts, policy and options checked against the promises the plan makes.

use super::*;
use crate::error::Error;
use landlock::ABI;
use palisade_policy::Mode;

const USER: u32 = 1000;

fn host(euid: u32, abi: Option<ABI>) -> HostFacts {
    let landlock_version = match abi {
        None => 0,
        Some(ABI::V1) => 1,
        Some(ABI::V2) => 2,
        Some(ABI::V3) => 3,
        Some(ABI::V4) => 4,
        Some(ABI::V5) => 5,
        Some(_) => 6,
    };
    HostFacts {
        euid,
        egid: euid,
        landlock_version,
        last_capability: 40,
        socket_dirs: vec![PathBuf::from("/run"), PathBuf::from("/var/tmp")],
    }
}

/// What the network fence is, in one word (the rows' expectations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Open,
    OwnNamespace,
    Filters,
    Proxied,
}

fn net(f: &NetworkFence) -> Net {
    match f {
        NetworkFence::Open => Net::Open,
        NetworkFence::OwnNamespace { .. } => Net::OwnNamespace,
        NetworkFence::Filters => Net::Filters,
        NetworkFence::Proxied { .. } => Net::Proxied,
    }
}

/// One row: the policy's mode, network and keep_processes, whether it has protected paths, the
/// options, the host; and the outcome (strategy and fence, or the refusal).
#[derive(Clone, Copy)]
struct Row {
    mode: Mode,
    net_off: bool,
    /// network = allow (overrides `net_off`).
    allow: bool,
    keep: bool,
    protected: bool,
    landlock_only: bool,
    accept_unprotected: bool,
    as_root: bool,
    euid: u32,
    abi: Option<ABI>,
    want: Result<(Strategy, Net), Refusal>,
}

fn row() -> Row {
    Row {
        mode: Mode::WorkspaceWrite,
        net_off: true,
        allow: false,
        keep: false,
        protected: true,
        landlock_only: false,
        accept_unprotected: false,
        as_root: false,
        euid: USER,
        abi: Some(ABI::V6),
        want: Ok((Strategy::Namespaces { pid: true }, Net::OwnNamespace)),
    }
}

fn inputs(r: &Row) -> (Policy, SandboxOptions, HostFacts) {
    let mut policy = Policy::new("/home/u/ws", Some(Path::new("/home/u")));
    policy.mode = r.mode;
    policy.network = if r.allow {
        Network::Allow(palisade_policy::net_rules::Allowlist::parse(&["example.org"], &[] as &[&str]).unwrap())
    } else if r.net_off {
        Network::Off
    } else {
        Network::On
    };
    policy.keep_processes = r.keep;
    if !r.protected {
        policy.protected_paths.clear();
    }
    let options = SandboxOptions {
        landlock_only: r.landlock_only,
        accept_unprotected_paths: r.accept_unprotected,
        landlock_only_as_root: r.as_root,
        network_hosts_file: None,
        report_denials: false,
    };
    (policy, options, host(r.euid, r.abi))
}

fn run(r: &Row) -> Result<LinuxPlan, Refusal> {
    let (policy, options, host) = inputs(r);
    decide(&policy, &options, &host)
}

#[test]
fn the_refusal_matrix() {
    let ns = |pid, n| Ok((Strategy::Namespaces { pid }, n));
    let landlock_only = |n| Ok((Strategy::LandlockOnly, n));
    let rows = [
        // The default, with and without Landlock (an unprivileged user needs none).
        row(),
        Row { abi: None, ..row() },
        Row { net_off: false, want: ns(true, Net::Open), ..row() },
        // Root's commands need Landlock's device rules.
        Row { euid: 0, ..row() },
        Row { euid: 0, abi: None, want: Err(Refusal::NoLandlock), ..row() },
        // keep_processes: no pid namespace, so Landlock's signal scope (ABI 6).
        Row { keep: true, want: ns(false, Net::OwnNamespace), ..row() },
        Row { keep: true, abi: Some(ABI::V5), want: Err(Refusal::SignalsUnfenced), ..row() },
        Row { keep: true, abi: None, want: Err(Refusal::SignalsUnfenced), ..row() },
        // Full access refuses nothing, whatever the host; offline there is by filters.
        Row {
            mode: Mode::FullAccess,
            abi: None,
            euid: 0,
            keep: true,
            want: Ok((Strategy::Unconfined, Net::Filters)),
            ..row()
        },
        Row {
            mode: Mode::FullAccess,
            landlock_only: true,
            abi: None,
            want: Ok((Strategy::Unconfined, Net::Filters)),
            ..row()
        },
        Row { mode: Mode::FullAccess, net_off: false, want: Ok((Strategy::Unconfined, Net::Open)), ..row() },
        // Landlock-only: Landlock itself, the signal scope, protected paths, root, offline TCP.
        Row { landlock_only: true, abi: None, want: Err(Refusal::NoLandlock), ..row() },
        Row { landlock_only: true, abi: Some(ABI::V5), want: Err(Refusal::SignalsUnfenced), ..row() },
        Row { landlock_only: true, want: Err(Refusal::ProtectedPathsNeedNamespaces), ..row() },
        Row { landlock_only: true, accept_unprotected: true, want: landlock_only(Net::Filters), ..row() },
        Row { landlock_only: true, protected: false, want: landlock_only(Net::Filters), ..row() },
        Row { landlock_only: true, protected: false, net_off: false, want: landlock_only(Net::Open), ..row() },
        // Read-only mode has no writable root for a protected path to be in.
        Row { landlock_only: true, mode: Mode::ReadOnly, want: landlock_only(Net::Filters), ..row() },
        Row { landlock_only: true, accept_unprotected: true, euid: 0, want: Err(Refusal::RootInLandlockOnly), ..row() },
        Row {
            landlock_only: true,
            accept_unprotected: true,
            euid: 0,
            as_root: true,
            want: landlock_only(Net::Filters),
            ..row()
        },
        // The opt-in does not lift the other refusals.
        Row { landlock_only: true, euid: 0, as_root: true, want: Err(Refusal::ProtectedPathsNeedNamespaces), ..row() },
        // The allowlist: a network namespace of its own with the proxy, or refused.
        Row { allow: true, want: ns(true, Net::Proxied), ..row() },
        Row { allow: true, keep: true, want: ns(false, Net::Proxied), ..row() },
        Row { allow: true, abi: None, want: ns(true, Net::Proxied), ..row() },
        Row {
            allow: true,
            landlock_only: true,
            accept_unprotected: true,
            want: Err(Refusal::AllowlistNeedsNamespace),
            ..row()
        },
        Row { allow: true, mode: Mode::FullAccess, want: Err(Refusal::AllowlistNeedsNamespace), ..row() },
        // The strategy's own refusals come first.
        Row { allow: true, landlock_only: true, want: Err(Refusal::ProtectedPathsNeedNamespaces), ..row() },
    ];
    for (i, r) in rows.iter().enumerate() {
        let got = run(r).map(|p| (p.strategy, net(&p.network)));
        assert_eq!(got, r.want, "row {i}");
    }
    // Offline in Landlock-only mode needs Landlock's TCP rules (ABI 4), which every kernel
    // with the signal scope (ABI 6) has: the refusal is reached where the signals are fenced
    // otherwise, so it is checked on the fence itself.
    let (policy, _, _) = inputs(&row());
    for (abi, want) in [
        (None, Err(Refusal::OfflineNeedsLandlockTcp)),
        (Some(ABI::V3), Err(Refusal::OfflineNeedsLandlockTcp)),
        (Some(ABI::V4), Ok(Net::Filters)),
    ] {
        let got = NetworkFence::for_policy(&policy, Strategy::LandlockOnly, &host(USER, abi)).map(|f| net(&f));
        assert_eq!(got, want, "{abi:?}");
    }
}

/// The layers shown for each kind of plan, word for word (`palisade check` and --json-status
/// print them), including the weaker protections: no Landlock, no pid namespace, root in
/// Landlock-only mode.
#[test]
fn layers_name_what_is_weaker() {
    let shown = |r: Row| -> Vec<(String, bool, String)> {
        run(&r).unwrap().layers.layers.into_iter().map(|l| (l.name, l.active, l.detail)).collect()
    };
    let l = |name: &str, active: bool, detail: &str| (name.to_string(), active, detail.to_string());
    let namespaces = [
        l("user namespace", true, "commands have no privileges outside it"),
        l("mount namespace", true, "read-only root, writable roots, protected paths, deny-read masks, private /tmp"),
        l("ipc namespace", true, "host System V IPC and POSIX message queues out of reach"),
    ];
    let seccomp = l("seccomp", true, "ptrace, io_uring, keyring, bpf, mounts, new user namespaces, TIOCSTI blocked");
    let with = |mut v: Vec<(String, bool, String)>, more: &[(String, bool, String)]| {
        v.extend_from_slice(more);
        v
    };
    assert_eq!(
        shown(row()),
        with(
            namespaces.to_vec(),
            &[
                l("pid namespace", true, "the process tree ends with the command"),
                l("network namespace", true, "offline: only a private loopback"),
                l("landlock", true, "ABI 6"),
                seccomp.clone(),
            ]
        )
    );
    assert_eq!(
        shown(Row { abi: None, net_off: false, keep: false, ..row() }),
        with(
            namespaces.to_vec(),
            &[
                l("pid namespace", true, "the process tree ends with the command"),
                l("network namespace", false, "network is on"),
                l("landlock", false, "not available in this kernel"),
                seccomp.clone(),
            ]
        )
    );
    assert_eq!(
        shown(Row { keep: true, ..row() }),
        with(
            namespaces.to_vec(),
            &[
                l("pid namespace", false, "off: keep_processes asks processes to outlive the command"),
                l("network namespace", true, "offline: only a private loopback"),
                l("landlock", true, "ABI 6"),
                seccomp.clone(),
            ]
        )
    );
    assert_eq!(
        shown(Row { landlock_only: true, accept_unprotected: true, euid: 0, as_root: true, ..row() }),
        vec![
            l("namespaces", false, "Landlock-only mode (explicit choice)"),
            l("metadata outside writable roots", false, "NOT protected: root's commands can chmod/chown/touch root's files anywhere (allow_landlock_only_as_root)"),
            l("landlock", true, "ABI 6"),
            seccomp.clone(),
        ]
    );
    assert_eq!(
        shown(Row { landlock_only: true, accept_unprotected: true, ..row() }),
        vec![
            l("namespaces", false, "Landlock-only mode (explicit choice)"),
            l("landlock", true, "ABI 6"),
            seccomp.clone()
        ]
    );
    assert_eq!(
        shown(Row { allow: true, ..row() }),
        with(
            namespaces.to_vec(),
            &[
                l("pid namespace", true, "the process tree ends with the command"),
                l("network namespace", true, "allowlist: only Palisade's proxy at 127.0.0.1:3128"),
                l("landlock", true, "ABI 6"),
                seccomp.clone(),
            ]
        )
    );
    // Full access does not use the Landlock the kernel has.
    assert_eq!(
        shown(Row { mode: Mode::FullAccess, ..row() }),
        vec![l("filesystem", false, "full-access mode: no confinement"), l("landlock", false, "ABI 6"), seccomp]
    );
}

/// What each fence asks of seccomp, Landlock, the clone and the mount plan.
#[test]
fn each_fence_sets_every_mechanism() {
    let own = NetworkFence::OwnNamespace { hidden_socket_dirs: vec![PathBuf::from("/run")] };
    let proxied = NetworkFence::Proxied { hidden_socket_dirs: vec![PathBuf::from("/run")], port: PROXY_PORT };
    let seccomp = |u, n| FilterOptions { unix_sockets_only: u, namespaced_families_only: n, foreground_fixed: false };
    // (fence, namespace, seccomp, TCP rules, abstract scope, host socket masks)
    let cases = [
        (NetworkFence::Open, false, seccomp(false, false), false, false, false),
        (own.clone(), true, seccomp(false, true), false, true, true),
        (NetworkFence::Filters, false, seccomp(true, true), true, true, false),
        (proxied.clone(), true, seccomp(false, true), false, true, true),
    ];
    for (fence, ns, filter, tcp, scope, masks) in cases {
        assert_eq!(fence.new_namespace(), ns, "{fence:?}");
        assert_eq!(fence.seccomp(), filter, "{fence:?}");
        assert_eq!(fence.landlock_blocks_tcp(), tcp, "{fence:?}");
        assert_eq!(fence.scopes_abstract_unix(), scope, "{fence:?}");
        assert_eq!(fence.masks_host_sockets(), masks, "{fence:?}");
    }
    assert_eq!(own.hidden_socket_dirs(), [PathBuf::from("/run")]);
    assert_eq!(proxied.hidden_socket_dirs(), [PathBuf::from("/run")]);
    assert_eq!((proxied.proxy_port(), own.proxy_port(), NetworkFence::Open.proxy_port()), (Some(3128), None, None));
    assert!(NetworkFence::Filters.hidden_socket_dirs().is_empty());
}

/// The socket folders hidden offline are the host's, less the workspace's and the writable
/// roots' folders.
#[test]
fn offline_hides_socket_folders_but_not_the_workspace() {
    let hidden = |ws: &str, extra: &[&str]| {
        let mut policy = Policy::new(ws, None);
        policy.writable_roots = extra.iter().map(PathBuf::from).collect();
        match NetworkFence::for_policy(&policy, Strategy::Namespaces { pid: true }, &host(USER, None)).unwrap() {
            NetworkFence::OwnNamespace { hidden_socket_dirs } => hidden_socket_dirs,
            f => panic!("{f:?}"),
        }
    };
    assert_eq!(hidden("/home/u/ws", &[]), [PathBuf::from("/run"), PathBuf::from("/var/tmp")]);
    assert_eq!(hidden("/var/tmp/ws", &[]), [PathBuf::from("/run")]);
    assert_eq!(hidden("/home/u/ws", &["/run/user/1000/cache"]), [PathBuf::from("/var/tmp")]);
}

/// Every combination of host facts, policy and options: a plan keeps the promises below, and a
/// refusal is explained by its inputs. (The rows above pin which refusal comes first.)
#[test]
fn every_combination_keeps_the_promises() {
    let abis = [None, Some(ABI::V1), Some(ABI::V2), Some(ABI::V3), Some(ABI::V4), Some(ABI::V5), Some(ABI::V6)];
    let mut checked = 0;
    for allow in [false, true] {
        for mode in [Mode::ReadOnly, Mode::WorkspaceWrite, Mode::FullAccess] {
            // Six yes-or-no inputs: each bit of `bits` is one.
            for bits in 0..64u32 {
                let bit = |i: u32| bits & (1 << i) != 0;
                let (net_off, keep, protected, landlock_only, accept_unprotected, as_root) =
                    (bit(0), bit(1), bit(2), bit(3), bit(4), bit(5));
                for euid in [0, USER] {
                    for abi in abis {
                        let r = Row {
                            mode,
                            net_off,
                            allow,
                            keep,
                            protected,
                            landlock_only,
                            accept_unprotected,
                            as_root,
                            euid,
                            abi,
                            want: Err(Refusal::NoLandlock),
                        };
                        let at_least = |v: ABI| abi.is_some_and(|a| a >= v);
                        let full = mode == Mode::FullAccess;
                        let ctx = format!("{mode:?} allow={allow} off={net_off} keep={keep} protected={protected} landlock_only={landlock_only} accept={accept_unprotected} as_root={as_root} euid={euid} {abi:?}");
                        match run(&r) {
                            Ok(p) => {
                                // Full access, and only full access, is unconfined.
                                assert_eq!(p.strategy == Strategy::Unconfined, full, "{ctx}");
                                // Offline is always fenced: by a namespace, or by filters that can.
                                assert_eq!(net(&p.network) == Net::Open, !net_off && !allow, "{ctx}");
                                // The allowlist only ever with a namespace of its own and the proxy.
                                assert_eq!(net(&p.network) == Net::Proxied, allow, "{ctx}");
                                if allow {
                                    assert!(
                                        matches!(p.strategy, Strategy::Namespaces { .. }) && p.network.new_namespace(),
                                        "{ctx}"
                                    );
                                }
                                if p.network == NetworkFence::Filters && p.strategy == Strategy::LandlockOnly {
                                    assert!(at_least(ABI::V4), "{ctx}");
                                }
                                if (net_off || allow) && matches!(p.strategy, Strategy::Namespaces { .. }) {
                                    assert!(p.network.new_namespace(), "{ctx}");
                                }
                                // Signals: a pid namespace, or Landlock's scope.
                                match p.strategy {
                                    Strategy::Namespaces { pid } => {
                                        assert_eq!(pid, !keep, "{ctx}");
                                        assert!(pid || at_least(ABI::V6), "{ctx}");
                                        // Root's commands are kept off device nodes by Landlock.
                                        assert!(euid != 0 || p.landlock.is_some(), "{ctx}");
                                    }
                                    Strategy::LandlockOnly => {
                                        assert!(landlock_only && at_least(ABI::V6), "{ctx}");
                                        assert!(euid != 0 || as_root, "{ctx}");
                                        assert!(!protected || mode == Mode::ReadOnly || accept_unprotected, "{ctx}");
                                        // Root's weaker protection is shown, never silent.
                                        let said = p
                                            .layers
                                            .layers
                                            .iter()
                                            .any(|l| l.name == "metadata outside writable roots" && !l.active);
                                        assert_eq!(said, euid == 0, "{ctx}");
                                    }
                                    Strategy::Unconfined => assert!(p.landlock.is_none(), "{ctx}"),
                                }
                                assert_eq!(p.landlock.is_some(), abi.is_some() && !full, "{ctx}");
                                assert_eq!(p.contain_orphans, p.strategy == Strategy::LandlockOnly && !keep, "{ctx}");
                                let shown = p.layers.layers.iter().find(|l| l.name == "landlock").map(|l| l.active);
                                assert_eq!(shown, Some(p.landlock.is_some()), "{ctx}");
                            }
                            Err(refusal) => {
                                assert!(
                                    !full || (allow && refusal == Refusal::AllowlistNeedsNamespace),
                                    "full access refused: {ctx}"
                                );
                                let explained = match refusal {
                                    Refusal::NoLandlock => abi.is_none() && (landlock_only || euid == 0),
                                    Refusal::SignalsUnfenced => (keep || landlock_only) && !at_least(ABI::V6),
                                    Refusal::RootInLandlockOnly => landlock_only && euid == 0 && !as_root,
                                    Refusal::ProtectedPathsNeedNamespaces => {
                                        landlock_only && protected && mode != Mode::ReadOnly && !accept_unprotected
                                    }
                                    Refusal::OfflineNeedsLandlockTcp => {
                                        landlock_only && net_off && !allow && !at_least(ABI::V4)
                                    }
                                    Refusal::AllowlistNeedsNamespace => allow && (landlock_only || full),
                                };
                                assert!(explained, "{refusal:?}: {ctx}");
                                assert!(matches!(Error::from(refusal), Error::Unenforceable { .. }), "{ctx}");
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 3 * 64 * 2 * 7);
}
