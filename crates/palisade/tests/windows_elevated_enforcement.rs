//! What the elevated Windows mode enforces, tried from inside it on a machine where
//! `palisade setup --elevated` completed: the command runs as `PalisadeOffline` (network off)
//! or `PalisadeOnline` (on); offline it can neither connect out nor resolve names, online it
//! can; `%USERPROFILE%\.ssh` is unreadable; writes outside the writable roots are denied, and
//! writes inside work (the roots are granted to the sandbox group for the account's own access
//! check and to their write SIDs for the restricted one); `palisade check --probe` proves the
//! network fence. `network = allow` (never run on real Windows yet: these tests were written
//! without a Windows machine) runs as `PalisadeProxied`, which reaches Palisade's proxy with the
//! sandbox's secret and nothing else, and the offline account cannot reach the proxy's port.
//!
//! The commands go through the library with `[windows] mode = "elevated"`, i.e. the real
//! `CreateProcessWithLogonW` launcher and the runner setup installed in
//! `%ProgramData%\Palisade\bin`. Under Wine, or where setup has not completed, every test
//! prints a `NOT RUN: <reason>` line (on stderr, past the harness's capture) and returns —
//! unless `PALISADE_REQUIRE_ELEVATED_TESTS=1` (set by CI after a successful setup), which turns
//! a missing prerequisite into a failure so the suite never passes by skipping.
#![cfg(windows)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use palisade::{Network, Output, Policy, Sandbox, SandboxOptions, Stdio};

static SERIAL: Mutex<()> = Mutex::new(());

fn wine() -> Option<String> {
    palisade::__private::wine_version()
}

fn program_data() -> PathBuf {
    PathBuf::from(std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into()))
}

/// Why these tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    if let Some(v) = wine() {
        return Some(format!(
            "under Wine {v}, which has no CreateProcessWithLogonW and enforces no token, ACL or firewall rule"
        ));
    }
    let marker = program_data().join("Palisade").join("setup.json");
    if !marker.is_file() {
        return Some(format!(
            "the elevated setup is absent ({} missing; run `palisade setup --elevated`)",
            marker.display()
        ));
    }
    None
}

/// The serialising lock, or `None` after a loud `NOT RUN` line.
fn prerequisites(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    if let Some(why) = missing_prerequisite() {
        if std::env::var_os("PALISADE_REQUIRE_ELEVATED_TESTS").is_some_and(|v| v == "1") {
            panic!("{test}: cannot run: {why}");
        }
        let _ = writeln!(std::io::stderr(), "NOT RUN: {why}: {test}");
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("USERPROFILE").expect("USERPROFILE"))
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

fn sandbox(ws: &Path, network: bool) -> Sandbox {
    let mut p = Policy::new(ws, Some(&home()));
    p.network = if network { Network::On } else { Network::Off };
    let options =
        SandboxOptions { windows_mode: palisade::policy::config::WindowsMode::Elevated, ..Default::default() };
    Sandbox::with_options(p, options).unwrap_or_else(|e| panic!("elevated sandbox: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\n")
}

/// `cmd /d /c <line>` in the sandbox, captured.
fn cmd(sb: &Sandbox, line: &str) -> Output {
    sb.command("cmd").args(["/d", "/c", line]).stdin(Stdio::Null).output().unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// A PowerShell expression in the sandbox, captured.
fn powershell(sb: &Sandbox, script: &str) -> Output {
    sb.command("powershell")
        .args(["-NoProfile", "-NonInteractive", "-Command", script])
        .stdin(Stdio::Null)
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

#[test]
fn commands_run_as_the_sandbox_account_for_the_network_setting() {
    let Some(_g) = prerequisites("commands_run_as_the_sandbox_account_for_the_network_setting") else { return };
    let ws = tempdir("palisade-elev-");
    for (network, account) in [(false, "palisadeoffline"), (true, "palisadeonline")] {
        // (network = allow: allow_runs_as_the_proxied_account.)
        let out = cmd(&sandbox(ws.path(), network), "whoami");
        assert!(out.status.success(), "whoami: {}", text(&out.stderr));
        let who = text(&out.stdout).trim().to_lowercase();
        assert!(who.ends_with(&format!("\\{account}")), "network {network}: runs as {who:?}, not {account}");
    }
}

/// A TCP connection to a public address and a name lookup through the system resolver.
const CONNECT: &str = "$c = New-Object Net.Sockets.TcpClient; $t = $c.ConnectAsync('1.1.1.1', 80); if ($t.Wait(8000) -and $c.Connected) { 'connected'; exit 0 } else { 'blocked'; exit 1 }";
const RESOLVE: &str = "try { $a = [System.Net.Dns]::GetHostAddresses('example.com'); if ($a.Count -gt 0) { 'resolved'; exit 0 } } catch { 'failed' }; exit 1";

#[test]
fn offline_cannot_connect_out_or_resolve_names() {
    let Some(_g) = prerequisites("offline_cannot_connect_out_or_resolve_names") else { return };
    let ws = tempdir("palisade-elev-");
    let sb = sandbox(ws.path(), false);
    let out = powershell(&sb, CONNECT);
    assert!(!out.status.success(), "PalisadeOffline connected to 1.1.1.1:80: {}", text(&out.stdout));
    let out = powershell(&sb, RESOLVE);
    assert!(!out.status.success(), "PalisadeOffline resolved example.com: {}", text(&out.stdout));
    // nslookup asks the server itself (UDP), not the resolver service.
    let out = cmd(&sb, "nslookup example.com 1.1.1.1");
    let answer = text(&out.stdout);
    assert!(
        !(answer.contains("Name:") && answer.contains("example.com")),
        "nslookup through 1.1.1.1 answered: {answer}"
    );
}

/// PowerShell: connect to `host:port` and send a byte.
fn connect_to(host: &str, port: u16) -> String {
    format!("$c = New-Object Net.Sockets.TcpClient; $t = $c.ConnectAsync('{host}', {port}); if ($t.Wait(5000) -and $c.Connected) {{ $c.GetStream().WriteByte(88); $c.Close(); 'connected' }} else {{ 'blocked' }}")
}

/// What a listener has queued right now (non-blocking): a connection the command made has
/// completed its handshake before the command ended, so no waiting is involved.
fn accepted(l: &std::net::TcpListener) -> usize {
    l.set_nonblocking(true).unwrap();
    let mut n = 0;
    while l.accept().is_ok() {
        n += 1;
    }
    n
}

/// Offline is judged by a listener of this machine, not by PowerShell's word or by the
/// Internet (without which an outbound test passes by itself): the offline account's
/// connection must not arrive, the online account's (the control, same test) must.
#[test]
fn offline_cannot_reach_a_listener_on_this_machine_and_online_can() {
    let Some(_g) = prerequisites("offline_cannot_reach_a_listener_on_this_machine_and_online_can") else { return };
    let ws = tempdir("palisade-elev-");
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // The machine's own non-loopback address (no packet is sent: a UDP connect picks a route).
    let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    u.connect("192.0.2.1:9").unwrap();
    let own = u.local_addr().unwrap().ip().to_string();
    assert!(own != "0.0.0.0" && !own.starts_with("127."), "no non-loopback address on this machine: {own}");
    let (offline, online) = (sandbox(ws.path(), false), sandbox(ws.path(), true));
    for host in [own.as_str(), "127.0.0.1"] {
        let script = connect_to(host, port);
        let out = powershell(&offline, &script);
        assert_eq!(accepted(&l), 0, "PalisadeOffline reached {host}:{port}: {}", text(&out.stdout));
        let out = powershell(&online, &script);
        assert_eq!(
            accepted(&l),
            1,
            "control: PalisadeOnline did not reach {host}:{port}: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn online_can_connect_and_resolve() {
    let Some(_g) = prerequisites("online_can_connect_and_resolve") else { return };
    let ws = tempdir("palisade-elev-");
    let sb = sandbox(ws.path(), true);
    let out = powershell(&sb, CONNECT);
    assert!(out.status.success(), "PalisadeOnline could not connect: {} {}", text(&out.stdout), text(&out.stderr));
    let out = powershell(&sb, RESOLVE);
    assert!(out.status.success(), "PalisadeOnline could not resolve: {} {}", text(&out.stdout), text(&out.stderr));
}

fn allow_sandbox(ws: &Path, allow: &[String]) -> Sandbox {
    let mut p = Policy::new(ws, Some(&home()));
    let list = palisade::policy::net_rules::Allowlist::parse(allow, &[] as &[String]).unwrap();
    p.network = Network::Allow(list);
    let options =
        SandboxOptions { windows_mode: palisade::policy::config::WindowsMode::Elevated, ..Default::default() };
    Sandbox::with_options(p, options).unwrap_or_else(|e| panic!("elevated sandbox with network = allow: {e}"))
}

/// PowerShell: a tunnel to `target` through the proxy `$env:http_proxy` names, with its
/// credentials unless `with_secret` is false, then an SSH-style banner (opaque to the proxy).
/// Prints the proxy's answer's first line.
fn tunnel_script(target: &str, with_secret: bool) -> String {
    let auth = if with_secret {
        "$a = [Convert]::ToBase64String([Text.Encoding]::ASCII.GetBytes($u.UserInfo)); $h += \"Proxy-Authorization: Basic $a`r`n\"; "
    } else {
        ""
    };
    format!(
        "$u = [Uri]$env:http_proxy; $c = New-Object Net.Sockets.TcpClient; $c.Connect('127.0.0.1', $u.Port); $s = $c.GetStream(); \
         $h = \"CONNECT {target} HTTP/1.1`r`nHost: {target}`r`n\"; {auth}$h += \"`r`n\"; \
         $b = [Text.Encoding]::ASCII.GetBytes($h); $s.Write($b, 0, $b.Length); $buf = New-Object byte[] 512; \
         $n = $s.Read($buf, 0, 512); $r = [Text.Encoding]::ASCII.GetString($buf, 0, $n); ($r -split \"`r`n\")[0]; \
         if ($r.StartsWith('HTTP/1.1 200')) {{ $x = [Text.Encoding]::ASCII.GetBytes(\"SSH-2.0-palisade-test`r`n\"); $s.Write($x, 0, $x.Length); Start-Sleep -Milliseconds 500 }}; $c.Close()"
    )
}

#[test]
fn allow_runs_as_the_proxied_account() {
    let Some(_g) = prerequisites("allow_runs_as_the_proxied_account") else { return };
    let ws = tempdir("palisade-elev-");
    let out = cmd(&allow_sandbox(ws.path(), &["example.com".to_string()]), "whoami");
    assert!(out.status.success(), "whoami: {}", text(&out.stderr));
    let who = text(&out.stdout).trim().to_lowercase();
    assert!(who.ends_with("\\palisadeproxied"), "network = allow runs as {who:?}, not PalisadeProxied");
}

/// Judged at a listener of this machine (its non-loopback address, allowed by address): the
/// proxied account's direct connect and its connect to another loopback port do not arrive;
/// its tunnel through the proxy with the sandbox's secret does; without the secret the proxy
/// answers 407 and nothing arrives. Then the offline account cannot reach the proxy's port.
#[test]
fn allow_reaches_an_allowed_address_only_through_the_proxy() {
    let Some(_g) = prerequisites("allow_reaches_an_allowed_address_only_through_the_proxy") else { return };
    let ws = tempdir("palisade-elev-");
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    u.connect("192.0.2.1:9").unwrap();
    let own = u.local_addr().unwrap().ip().to_string();
    assert!(own != "0.0.0.0" && !own.starts_with("127."), "no non-loopback address on this machine: {own}");
    let sb = allow_sandbox(ws.path(), &[format!("{own}:{port}")]);
    for host in [own.as_str(), "127.0.0.1"] {
        let out = powershell(&sb, &connect_to(host, port));
        assert_eq!(accepted(&l), 0, "PalisadeProxied reached {host}:{port} directly: {}", text(&out.stdout));
    }
    let target = format!("{own}:{port}");
    let out = powershell(&sb, &tunnel_script(&target, false));
    assert!(
        text(&out.stdout).starts_with("HTTP/1.1 407"),
        "without the secret: {} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(accepted(&l), 0, "a tunnel without the secret reached {target}");
    let out = powershell(&sb, &tunnel_script(&target, true));
    assert!(
        text(&out.stdout).starts_with("HTTP/1.1 200"),
        "with the secret: {} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(accepted(&l), 1, "the tunnel through the proxy did not reach {target}");
    // The proxy's port, as the offline account: blocked (setup gave PalisadeOffline no port).
    let out = cmd(&sb, "echo %http_proxy%");
    let proxy_port: u16 = text(&out.stdout)
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("http_proxy: {}", text(&out.stdout)));
    let offline = sandbox(ws.path(), false);
    let out = powershell(&offline, &connect_to("127.0.0.1", proxy_port));
    assert_eq!(text(&out.stdout).trim(), "blocked", "PalisadeOffline reached the proxy's port {proxy_port}");
}

#[test]
fn ssh_folder_is_unreadable() {
    let Some(_g) = prerequisites("ssh_folder_is_unreadable") else { return };
    let ssh = home().join(".ssh");
    let made_dir = !ssh.exists();
    std::fs::create_dir_all(&ssh).unwrap();
    let probe = ssh.join(format!("palisade-probe-{}", std::process::id()));
    std::fs::write(&probe, "secret-probe-contents").unwrap();
    let ws = tempdir("palisade-elev-");
    let out = cmd(&sandbox(ws.path(), false), &format!("type \"{}\" & dir /b \"{}\"", probe.display(), ssh.display()));
    let _ = std::fs::remove_file(&probe);
    if made_dir {
        let _ = std::fs::remove_dir(&ssh);
    }
    let seen = text(&out.stdout);
    assert!(!seen.contains("secret-probe-contents"), "the sandbox read {}: {seen}", probe.display());
    assert!(!seen.contains("palisade-probe-"), "the sandbox listed {}: {seen}", ssh.display());
}

#[test]
fn writes_inside_the_workspace_work() {
    let Some(_g) = prerequisites("writes_inside_the_workspace_work") else { return };
    let ws = tempdir("palisade-elev-");
    let out = cmd(
        &sandbox(ws.path(), false),
        "mkdir sub && echo x> sub\\f.txt && ren sub\\f.txt g.txt && echo t> %TMP%\\t.txt",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(ws.path().join("sub").join("g.txt").exists());
}

#[test]
fn writes_outside_the_workspace_are_denied() {
    let Some(_g) = prerequisites("writes_outside_the_workspace_are_denied") else { return };
    let ws = tempdir("palisade-elev-");
    // A folder Users may add files to (ProgramData's default), and one in the user's profile.
    let shared = program_data().join(format!("palisade-elev-probe-{}", std::process::id()));
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("existing.txt"), "original").unwrap();
    let private = tempdir("palisade-elev-outside-");
    std::fs::write(private.path().join("existing.txt"), "original").unwrap();
    let mut line = String::new();
    for d in [shared.as_path(), private.path()] {
        line.push_str(&format!(
            "echo x> \"{d}\\new.txt\" & echo x>> \"{d}\\existing.txt\" & del \"{d}\\existing.txt\" & mkdir \"{d}\\dir\" & ",
            d = d.display()
        ));
    }
    line.push_str("echo done");
    let out = cmd(&sandbox(ws.path(), false), &line);
    let mut failures = Vec::new();
    for d in [shared.as_path(), private.path()] {
        if d.join("new.txt").exists() {
            failures.push(format!("{} was created", d.join("new.txt").display()));
        }
        if std::fs::read_to_string(d.join("existing.txt")).ok().as_deref() != Some("original") {
            failures.push(format!("{} was changed or deleted", d.join("existing.txt").display()));
        }
        if d.join("dir").exists() {
            failures.push(format!("{} was made", d.join("dir").display()));
        }
    }
    let _ = std::fs::remove_dir_all(&shared);
    assert!(failures.is_empty(), "{}; output: {}", failures.join("; "), text(&out.stdout));
}

/// `palisade check --json` with `[windows] mode = "elevated"` after setup: the elevated lines
/// of an intact setup. Parts only an administrator can read (WFP filters, logon rights) are ok
/// when the check runs elevated (as on CI's runner) and "unknown" otherwise — never failed.
#[test]
fn check_reports_an_intact_setup() {
    let Some(_g) = prerequisites("check_reports_an_intact_setup") else { return };
    let ws = tempdir("palisade-elev-check-");
    let appdata = ws.path().join("appdata");
    std::fs::create_dir_all(appdata.join("palisade")).unwrap();
    std::fs::write(appdata.join("palisade").join("config.toml"), "[windows]\nmode = \"elevated\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .env("APPDATA", &appdata)
        .args(["check", "--json", "--network", "on", "--workspace"])
        .arg(ws.path())
        .output()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let lines = json["elevated"]["lines"].as_array().unwrap_or_else(|| panic!("no elevated lines: {json}"));
    let status = |item: &str| -> String {
        let l = lines.iter().find(|l| l["item"] == item).unwrap_or_else(|| panic!("no line {item}: {json}"));
        l["status"].as_str().unwrap().to_string()
    };
    for item in [
        "elevated setup",
        "sandbox group",
        "account PalisadeOffline",
        "account PalisadeOnline",
        "password of PalisadeOffline",
        "password of PalisadeOnline",
        "account PalisadeProxied",
        "password of PalisadeProxied",
        "firewall policy",
        "firewall rules",
        "proxied firewall rules",
        "palisade folder",
    ] {
        assert_eq!(status(item), "ok", "{item}: {json}");
    }
    assert!(["ok", "unknown"].contains(&status("WFP filters").as_str()), "{json}");
    assert!(["ok", "unknown"].contains(&status("proxied WFP filters").as_str()), "{json}");
    assert!(["warn", "unknown"].contains(&status("network fence").as_str()), "{json}");
    for l in lines.iter().filter(|l| l["status"] == "unknown") {
        assert!(
            l["detail"].as_str().unwrap().contains("needs an administrator to read") || l["item"] == "network fence",
            "{json}"
        );
    }
}

/// `palisade check --probe` starts a runner as PalisadeOffline, whose fence probe (a connect to
/// 192.0.2.1:9 and one to a loopback port that is not a proxy port) must be blocked: the
/// "network fence" line says proven. Every offline command above passed the same probe before
/// it started (the runner refuses otherwise).
#[test]
fn check_probe_proves_the_fence() {
    let Some(_g) = prerequisites("check_probe_proves_the_fence") else { return };
    let ws = tempdir("palisade-elev-probe-");
    let appdata = ws.path().join("appdata");
    std::fs::create_dir_all(appdata.join("palisade")).unwrap();
    std::fs::write(appdata.join("palisade").join("config.toml"), "[windows]\nmode = \"elevated\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .env("APPDATA", &appdata)
        .args(["check", "--json", "--probe", "--workspace"])
        .arg(ws.path())
        .output()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let lines = json["elevated"]["lines"].as_array().unwrap_or_else(|| panic!("no elevated lines: {json}"));
    for item in ["network fence", "proxied network fence"] {
        let fence = lines.iter().find(|l| l["item"] == item).unwrap_or_else(|| panic!("no {item} line: {json}"));
        assert_eq!(fence["status"], "ok", "{item}: {json}");
        assert!(fence["detail"].as_str().unwrap().starts_with("proven"), "{item}: {json}");
    }
}

/// A PowerShell expression run by the test itself (outside the sandbox), its output trimmed.
fn host_powershell(script: &str) -> String {
    let out = std::process::Command::new("powershell")
        .args(["-NoProfile", "-NonInteractive", "-Command", script])
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn owner_sid(path: &Path) -> String {
    host_powershell(&format!(
        "(Get-Acl -LiteralPath '{}').GetOwner([System.Security.Principal.SecurityIdentifier]).Value",
        path.display()
    ))
}

/// What the command creates (a file, nested folders, a repository made by `git init`) belongs to
/// the user afterwards, not to the sandbox account, so the user's git trusts the repository;
/// and the command could not change the DACL of a file it had just created (its owner rights
/// are taken away, and the inherited `CREATOR OWNER` full control is denied its WRITE_DAC).
#[test]
fn what_the_command_creates_is_given_back_to_the_user() {
    let Some(_g) = prerequisites("what_the_command_creates_is_given_back_to_the_user") else { return };
    let ws = tempdir("palisade-elev-owner-");
    let me = host_powershell("[System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value");
    let git = std::process::Command::new("git").arg("--version").output().is_ok_and(|o| o.status.success());
    let mut line = String::from("echo x> made.txt && mkdir a\\b && echo y> a\\b\\inner.txt");
    if git {
        line.push_str(" && git init -q repo");
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "NOT RUN: git is not installed: the `git init` part of what_the_command_creates_is_given_back_to_the_user"
        );
    }
    // The DACL change must fail; `DACL-CHANGED` would say it did not.
    line.push_str(" && (icacls made.txt /grant *S-1-1-0:F >nul 2>&1 && echo DACL-CHANGED || echo dacl-refused)");
    let out = cmd(&sandbox(ws.path(), false), &line);
    assert_eq!(out.status.code(), Some(0), "{}: {}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("dacl-refused"),
        "the command changed the DACL of its own file: {}",
        text(&out.stdout)
    );
    // Seen from outside as well: no entry for Everyone was added.
    let sddl = host_powershell(&format!("(Get-Acl -LiteralPath '{}').Sddl", ws.path().join("made.txt").display()));
    assert!(!sddl.contains(";;;WD)"), "Everyone was granted access to made.txt: {sddl}");

    let mut made = vec![
        ws.path().join("made.txt"),
        ws.path().join("a"),
        ws.path().join("a").join("b"),
        ws.path().join("a").join("b").join("inner.txt"),
    ];
    if git {
        made.extend([
            ws.path().join("repo"),
            ws.path().join("repo").join(".git"),
            ws.path().join("repo").join(".git").join("HEAD"),
        ]);
    }
    let wrong: Vec<String> = made
        .iter()
        .map(|p| (p, owner_sid(p)))
        .filter(|(_, o)| *o != me)
        .map(|(p, o)| format!("{} is owned by {o}", p.display()))
        .collect();
    assert!(wrong.is_empty(), "not given back to {me}: {}", wrong.join("; "));
    if git {
        let status = std::process::Command::new("git")
            .args(["-C"])
            .arg(ws.path().join("repo"))
            .args(["status", "--short"])
            .output()
            .unwrap();
        assert!(status.status.success(), "the user's git refuses the repository: {}", text(&status.stderr));
    }
}

// Issue 15: each command has its own identity (a command SID among its restricting SIDs instead
// of the account's), so a command cannot plant code in the account's HKCU or profile for later
// commands, nor write another command's temporary folder or process. Never run on real Windows
// yet: written without a Windows machine.

const AUTORUN_KEY: &str = r"HKCU\Software\Microsoft\Command Processor";

/// PowerShell: the PowerShell profiles a command of the account would load — `$PROFILE` and,
/// whatever the environment says, those in the account's own profile folder (from
/// `ProfileList`) — each handed to `action` as `$t`.
fn for_each_ps_profile(action: &str) -> String {
    format!(
        "$sid = [Security.Principal.WindowsIdentity]::GetCurrent().User.Value; \
         $own = (Get-ItemProperty \"HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\$sid\").ProfileImagePath; \
         $all = @($PROFILE, (Join-Path $own 'Documents\\WindowsPowerShell\\Microsoft.PowerShell_profile.ps1'), \
         (Join-Path $own 'Documents\\WindowsPowerShell\\profile.ps1')) | Select-Object -Unique; \
         foreach ($t in $all) {{ {action} }}"
    )
}

/// Undoes what a failing test planted (run inside the sandbox, where it was planted; a denied
/// write left nothing to undo and a denied delete changes nothing).
fn remove_plants(sb: &Sandbox) {
    let _ = cmd(sb, &format!("reg delete \"{AUTORUN_KEY}\" /v AutoRun /f >nul 2>&1"));
    let _ = powershell(sb, &for_each_ps_profile("Remove-Item -Force -ErrorAction SilentlyContinue -LiteralPath $t"));
}

/// A command tries to make `cmd`'s `AutoRun` and the PowerShell profile (both of the account)
/// run its code; both writes are denied, and a later command (another project) runs clean:
/// `cmd /c` without `/d` runs `AutoRun`, `powershell` without `-NoProfile` runs the profile.
#[test]
fn a_command_cannot_plant_autorun_or_a_powershell_profile_for_later_commands() {
    let Some(_g) = prerequisites("a_command_cannot_plant_autorun_or_a_powershell_profile_for_later_commands") else {
        return;
    };
    let (ws1, ws2) = (tempdir("palisade-elev-plant-"), tempdir("palisade-elev-later-"));
    let planter = sandbox(ws1.path(), false);
    let reg = cmd(&planter, &format!("reg add \"{AUTORUN_KEY}\" /v AutoRun /t REG_SZ /d \"echo PLANTED-AUTORUN\" /f"));
    let profile = powershell(
        &planter,
        &for_each_ps_profile(
            "try { New-Item -ItemType Directory -Force -Path (Split-Path $t) -ErrorAction Stop | Out-Null; \
             Set-Content -LiteralPath $t -Value 'Write-Output PLANTED-PROFILE' -ErrorAction Stop; 'written ' + $t } \
             catch { 'denied ' + $t }",
        ),
    );
    let later = sandbox(ws2.path(), false);
    let cmd_later = later
        .command("cmd")
        .args(["/c", "echo later-cmd"])
        .stdin(Stdio::Null)
        .output()
        .unwrap_or_else(|e| panic!("cmd /c: {e}"));
    let ps_later = later
        .command("powershell")
        .args(["-NonInteractive", "-Command", "Write-Output later-ps"])
        .stdin(Stdio::Null)
        .output()
        .unwrap_or_else(|e| panic!("powershell: {e}"));
    let profile_out = text(&profile.stdout);
    let planted = text(&cmd_later.stdout).contains("PLANTED") || text(&ps_later.stdout).contains("PLANTED");
    if reg.status.success() || profile_out.contains("written ") || planted {
        remove_plants(&planter);
    }
    assert!(!reg.status.success(), "the command wrote {AUTORUN_KEY}\\AutoRun: {}", text(&reg.stdout));
    assert!(!profile_out.contains("written "), "the command wrote a PowerShell profile: {profile_out}");
    assert!(profile_out.contains("denied "), "control: the profile script did not run: {}", text(&profile.stderr));
    assert!(text(&cmd_later.stdout).contains("later-cmd"), "control: {}", text(&cmd_later.stderr));
    assert!(text(&ps_later.stdout).contains("later-ps"), "control: {}", text(&ps_later.stderr));
    assert!(!planted, "a later command ran planted code: {} {}", text(&cmd_later.stdout), text(&ps_later.stdout));
}

/// A command that runs until told to stop, with its first output line read (with a limit).
struct Running {
    child: palisade::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    /// PowerShell `script` in `sb`, stdin and stdout piped; its stdout is read line by line.
    fn start(sb: &Sandbox, script: &str) -> Running {
        let mut child = sb
            .command("powershell")
            .args(["-NoProfile", "-NonInteractive", "-Command", script])
            .stdin(Stdio::Piped)
            .stdout(Stdio::Piped)
            .stderr(Stdio::Null)
            .spawn()
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l.trim().to_string()).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("the running command printed nothing within 60 s: {e}"))
    }

    /// Sends a line to the command's stdin (its cue to go on).
    fn cue(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\r\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Every further line until the command ends.
    fn finish(mut self) -> Vec<String> {
        drop(self.child.stdin.take());
        let mut rest = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(std::time::Duration::from_secs(60)) {
            rest.push(l);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        rest
    }
}

/// Command A makes a file in its temporary folder and waits; command B (the same account,
/// another project) tries to add, append, delete and make a folder there; then A lists its
/// folder. B's own temporary folder is another one, and B may write that (the control).
#[test]
fn a_command_cannot_write_into_another_running_commands_temp() {
    let Some(_g) = prerequisites("a_command_cannot_write_into_another_running_commands_temp") else { return };
    let (ws_a, ws_b) = (tempdir("palisade-elev-tmpa-"), tempdir("palisade-elev-tmpb-"));
    let mut a = Running::start(
        &sandbox(ws_a.path(), false),
        "Set-Content -LiteralPath (Join-Path $env:TEMP 'a.txt') -Value original; \
         [Console]::Out.WriteLine($env:TEMP); [Console]::Out.Flush(); $null = [Console]::In.ReadLine(); \
         Get-ChildItem -Name -Force $env:TEMP | ForEach-Object { [Console]::Out.WriteLine('entry ' + $_) }; \
         [Console]::Out.WriteLine('content ' + (Get-Content -Raw -LiteralPath (Join-Path $env:TEMP 'a.txt')).Trim())",
    );
    let a_temp = a.next_line();
    let b = cmd(
        &sandbox(ws_b.path(), false),
        &format!(
            "echo x> \"{t}\\from-b.txt\" & echo x>> \"{t}\\a.txt\" & del /f \"{t}\\a.txt\" & mkdir \"{t}\\dir-b\" & \
             echo TEMP=%TEMP% & echo mine> \"%TEMP%\\own.txt\" && type \"%TEMP%\\own.txt\"",
            t = a_temp
        ),
    );
    a.cue();
    let seen = a.finish();
    let b_out = text(&b.stdout);
    assert!(!a_temp.is_empty() && !b_out.contains(&format!("TEMP={a_temp}")), "A and B share {a_temp}: {b_out}");
    assert!(b_out.contains("mine"), "control: B could not write its own temporary folder: {b_out} {}", text(&b.stderr));
    // (PowerShell may keep files of its own there; only B's traces count.)
    let changed: Vec<&String> = seen.iter().filter(|l| l.contains("from-b") || l.contains("dir-b")).collect();
    assert!(
        changed.is_empty()
            && seen.contains(&"entry a.txt".to_string())
            && seen.contains(&"content original".to_string()),
        "B changed A's temporary folder {a_temp}: A sees {seen:?} (B said: {b_out})"
    );
}

/// Command A waits; command B (the same account, another project) opens A's process for
/// writing its memory, starting a thread in it and duplicating its handles: each is denied,
/// while B may open its own process so (the control: the command's default DACL works).
#[test]
fn a_command_cannot_open_a_concurrent_command_for_write() {
    let Some(_g) = prerequisites("a_command_cannot_open_a_concurrent_command_for_write") else { return };
    let (ws_a, ws_b) = (tempdir("palisade-elev-proca-"), tempdir("palisade-elev-procb-"));
    let mut a = Running::start(
        &sandbox(ws_a.path(), false),
        "[Console]::Out.WriteLine($PID); [Console]::Out.Flush(); $null = [Console]::In.ReadLine(); 'alive'",
    );
    let pid: u32 = a.next_line().parse().unwrap_or_else(|e| panic!("A's process id: {e}"));
    // 0x28 = PROCESS_VM_WRITE | PROCESS_VM_OPERATION, 0x2 = PROCESS_CREATE_THREAD,
    // 0x40 = PROCESS_DUP_HANDLE.
    let script = format!(
        "$k = Add-Type -PassThru -Name K -Namespace PalisadeTest -MemberDefinition '[DllImport(\"kernel32.dll\", SetLastError = true)] public static extern IntPtr OpenProcess(uint access, bool inherit, uint pid);'; \
         foreach ($r in 0x28, 0x2, 0x40) {{ $h = $k::OpenProcess($r, $false, {pid}); \
           if ($h -ne [IntPtr]::Zero) {{ 'OPENED ' + $r }} else {{ 'denied ' + $r + ' error ' + [Runtime.InteropServices.Marshal]::GetLastWin32Error() }} }}; \
         $h = $k::OpenProcess(0x2A, $false, $PID); if ($h -ne [IntPtr]::Zero) {{ 'own-opened' }} else {{ 'own-denied' }}"
    );
    let b = powershell(&sandbox(ws_b.path(), false), &script);
    a.cue();
    let rest = a.finish();
    let out = text(&b.stdout);
    assert!(rest.contains(&"alive".to_string()), "A did not outlive B's attempts: {rest:?}");
    assert!(out.contains("own-opened"), "control: B could not open its own process: {out} {}", text(&b.stderr));
    for r in [40, 2, 64] {
        assert!(out.contains(&format!("denied {r} error 5")), "access {r:#x} to A (pid {pid}) was not denied: {out}");
    }
    assert!(!out.contains("OPENED"), "B opened A's process for writing: {out}");
}

/// The sandbox accounts' passwords, stored DPAPI-encrypted for the installing user in
/// `%LOCALAPPDATA%\Palisade\credentials`, cannot be read (nor the folder listed) by a command of
/// any of the accounts: setup's read grant leaves out `AppData`, and the folder is the user's.
#[test]
fn the_stored_passwords_are_unreadable_by_the_sandbox_accounts() {
    let Some(_g) = prerequisites("the_stored_passwords_are_unreadable_by_the_sandbox_accounts") else { return };
    let folder =
        PathBuf::from(std::env::var_os("LOCALAPPDATA").expect("LOCALAPPDATA")).join("Palisade").join("credentials");
    let files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{} after setup: {e}", folder.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 3, "setup stored fewer than three passwords in {}: {files:?}", folder.display());
    let quoted = |p: &Path| p.display().to_string().replace('\'', "''");
    let ws = tempdir("palisade-elev-creds-");
    let sandboxes = [
        ("PalisadeOffline", sandbox(ws.path(), false)),
        ("PalisadeOnline", sandbox(ws.path(), true)),
        ("PalisadeProxied", allow_sandbox(ws.path(), &["192.0.2.1".to_string()])),
    ];
    for (account, sb) in &sandboxes {
        for f in &files {
            // The control: the user (this process) reads it.
            assert!(!std::fs::read(f).unwrap().is_empty(), "{} is empty", f.display());
            let script =
                format!("try {{ 'READ ' + [IO.File]::ReadAllBytes('{}').Length }} catch {{ 'denied' }}", quoted(f));
            let out = powershell(sb, &script);
            assert_eq!(text(&out.stdout).trim(), "denied", "{account} read {}: {}", f.display(), text(&out.stderr));
        }
        let script = format!(
            "try {{ 'LISTED ' + (Get-ChildItem -Force -LiteralPath '{}' -ErrorAction Stop).Count }} catch {{ 'denied' }}",
            quoted(&folder)
        );
        let out = powershell(sb, &script);
        assert_eq!(text(&out.stdout).trim(), "denied", "{account} listed {}", folder.display());
    }
}

/// The pipe between palisade and a running command's runner is the runner's alone: another
/// process of the user (this test) cannot open it while the command runs, and the command is
/// undisturbed. (Its DACL grants only the sandbox account; the CLI also checks that its client
/// is the runner it started, which a test from outside cannot race.)
#[test]
fn a_rogue_client_cannot_open_a_runners_pipe() {
    let Some(_g) = prerequisites("a_rogue_client_cannot_open_a_runners_pipe") else { return };
    let ws = tempdir("palisade-elev-pipe-");
    let mut a = Running::start(
        &sandbox(ws.path(), false),
        "[Console]::Out.WriteLine('ready'); [Console]::Out.Flush(); $null = [Console]::In.ReadLine(); 'alive'",
    );
    assert_eq!(a.next_line(), "ready");
    let pipes: Vec<PathBuf> = std::fs::read_dir(r"\\.\pipe\")
        .expect("listing the named pipes")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("palisade-runner-")))
        .collect();
    assert!(!pipes.is_empty(), "no palisade-runner-* pipe while a command runs (has its name changed?)");
    for p in &pipes {
        match std::fs::OpenOptions::new().read(true).write(true).open(p) {
            Ok(_) => panic!("this process (not the sandbox account) opened {}", p.display()),
            // 5: access denied (the DACL); 231: all instances busy (the runner holds the one).
            Err(e) => assert!(matches!(e.raw_os_error(), Some(5 | 231)), "opening {}: {e}", p.display()),
        }
    }
    a.cue();
    let rest = a.finish();
    assert!(rest.contains(&"alive".to_string()), "the command was disturbed: {rest:?}");
}
