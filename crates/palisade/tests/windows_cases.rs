//! The cases issue 15 lists for the Windows workflow, in the unelevated mode: every kind of
//! write refused in read-only mode (cmd, PowerShell, .NET, Python), what workspace-write lets
//! through and what it does not, the tools agents run, junctions and links of every kind,
//! raw devices, long and short path forms, palisade's own state, a killed run, processes
//! started by other means (job breakaway, WMI, Task Scheduler), and the cost in a large tree.
//!
//! NEVER RUN ON REAL WINDOWS by their author: written on Linux, type-checked there for the
//! Windows target, run by .github/workflows/windows.yml. Under Wine each test prints
//! `NOT RUN under Wine` and returns (Wine enforces no token or ACL). A test that fails on a real
//! runner shows either a hole or a wrong expectation here: read it before changing either.
#![cfg(windows)]

mod windows_common;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use windows_common::*;

#[test]
fn read_only_mode_refuses_every_kind_of_write() {
    let Some(_g) = on_real_windows("read_only_mode_refuses_every_kind_of_write") else {
        return;
    };
    let ws = tempdir("palisade-case-ro-");
    let existing = ws.path().join("existing.txt");
    std::fs::write(&existing, "original").unwrap();
    let ro = ["--mode", "read-only"];
    cmd(ws.path(), &ro, "echo x> cmd-new.txt & echo x>> existing.txt & type nul > cmd-empty.txt");
    let ps = powershell(
        ws.path(),
        &ro,
        "try { Set-Content -Path ps-new.txt -Value x -ErrorAction Stop } catch {}; \
         try { Add-Content -Path existing.txt -Value x -ErrorAction Stop } catch {}; \
         try { [IO.File]::WriteAllBytes((Join-Path (Get-Location) 'ps-bytes.bin'), [byte[]](1,2,3)) } catch {}; \
         try { [IO.File]::AppendAllText((Join-Path (Get-Location) 'existing.txt'), 'x') } catch {}; \
         Write-Output ps-ran",
    );
    assert!(text(&ps.stdout).contains("ps-ran"), "PowerShell did not run: {}", text(&ps.stderr));
    let py = run_in(
        ws.path(),
        ws.path(),
        &ro,
        &[
            "python",
            "-c",
            "import os\nfor name, mode in (('py-new.txt', 'w'), ('existing.txt', 'a'), ('py-bin.bin', 'wb')):\n    try:\n        open(name, mode).close()\n    except OSError:\n        pass\ntry:\n    os.mkdir('py-dir')\nexcept OSError:\n    pass\nprint('py-ran')",
        ],
    );
    assert!(
        text(&py.stdout).contains("py-ran"),
        "Python did not run (the runner has it on PATH): {}",
        text(&py.stderr)
    );
    for p in ["cmd-new.txt", "cmd-empty.txt", "ps-new.txt", "ps-bytes.bin", "py-new.txt", "py-bin.bin", "py-dir"] {
        must_not_exist(&ws.path().join(p), "a write in read-only mode");
    }
    must_be(&existing, "original", "an append in read-only mode");
}

#[test]
fn workspace_write_lets_work_inside_and_nothing_out() {
    let Some(_g) = on_real_windows("workspace_write_lets_work_inside_and_nothing_out") else {
        return;
    };
    let ws = tempdir("palisade-case-ww-");
    let extra = tempdir("palisade-case-extra-");
    let outside = tempdir("palisade-case-out-");
    std::fs::write(ws.path().join("leaving.txt"), "stay").unwrap();
    let line = format!(
        "mkdir a\\b\\c\\d\\e\\f && echo one> a\\b\\c\\d\\e\\f\\deep.txt && echo two>> a\\b\\c\\d\\e\\f\\deep.txt \
         && ren a\\b\\c\\d\\e\\f\\deep.txt renamed.txt && move a\\b\\c\\d\\e\\f\\renamed.txt moved.txt \
         && echo gone> del.txt && del del.txt && echo e> \"{x}\\extra.txt\" && mkdir \"{x}\\sub\" \
         & move leaving.txt \"{o}\\left.txt\" & copy moved.txt \"{o}\\copied.txt\" & mkdir \"{o}\\made\"",
        x = extra.path().display(),
        o = outside.path().display()
    );
    let out = cmd(ws.path(), &["--writable", extra.path().to_str().unwrap()], &line);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("moved.txt")).unwrap_or_default(),
        "one\ntwo\n".replace('\n', "\r\n"),
        "{}",
        text(&out.stderr)
    );
    assert!(ws.path().join("a\\b\\c\\d\\e\\f").is_dir(), "a deep folder was not made");
    assert!(!ws.path().join("del.txt").exists(), "a delete inside did not work");
    assert!(
        extra.path().join("extra.txt").exists() && extra.path().join("sub").is_dir(),
        "the extra writable root was not writable"
    );
    must_be(&ws.path().join("leaving.txt"), "stay", "a move out of the workspace");
    must_not_exist(&outside.path().join("left.txt"), "a move out of the workspace");
    must_not_exist(&outside.path().join("copied.txt"), "a copy out of the workspace");
    assert!(!outside.path().join("made").exists(), "a folder was made outside");
}

/// The tools agents run most start and work (the workflow installs ripgrep; git and curl come
/// with the runner image).
#[test]
fn git_rg_and_curl_run() {
    let Some(_g) = on_real_windows("git_rg_and_curl_run") else {
        return;
    };
    let ws = tempdir("palisade-case-tools-");
    std::fs::write(ws.path().join("needle.txt"), "a palisade-needle here\n").unwrap();
    let out = cmd(ws.path(), &[], "git --version && curl --version && rg --version && rg -l palisade-needle .");
    let so = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{so}{}", text(&out.stderr));
    for want in ["git version", "curl ", "ripgrep ", "needle.txt"] {
        assert!(so.contains(want), "no `{want}` in:\n{so}");
    }
    // The repository is made outside (inside, `.git\\config` is protected even while missing).
    host_cmd(&format!("git init -q \"{}\"", ws.path().display()));
    let commit = cmd(
        ws.path(),
        &[],
        "git add needle.txt && git -c user.name=t -c user.email=t@t commit -q -m x && git log --oneline",
    );
    assert_eq!(commit.status.code(), Some(0), "git add/commit in the workspace: {}", text(&commit.stderr));
}

/// Junctions: one inside the workspace into System32, a deep one to the Windows folder under a
/// folder everyone may write, and a working directory that is a junction pointing outside.
#[test]
fn junctions_lead_nowhere_writable() {
    let Some(_g) = on_real_windows("junctions_lead_nowhere_writable") else {
        return;
    };
    let ws = tempdir("palisade-case-junction-");
    let outside = tempdir("palisade-case-out-");
    let open = tempdir("palisade-case-world-");
    host_cmd(&format!("icacls \"{}\" /grant *S-1-1-0:(OI)(CI)F", open.path().display()));
    let windows = system_root();
    let system32 = windows.join("System32");
    let deep = open.path().join("a").join("b");
    std::fs::create_dir_all(&deep).unwrap();
    host_cmd(&format!("mklink /J \"{}\" \"{}\"", ws.path().join("sys").display(), system32.display()));
    host_cmd(&format!("mklink /J \"{}\" \"{}\"", deep.join("c").display(), windows.display()));
    host_cmd(&format!("mklink /J \"{}\" \"{}\"", ws.path().join("cwd").display(), outside.path().display()));
    let name = format!("palisade-case-{}-{}.txt", std::process::id(), rand_suffix());
    let line = format!(
        "echo x> \"sys\\{name}\" & echo x> \"{d}\\c\\Temp\\{name}\" & echo x> \"{w}\\Temp\\{name}\"",
        d = deep.display(),
        w = windows.display()
    );
    cmd(ws.path(), &[], &line);
    // From a working directory that is a junction pointing outside, palisade may refuse (the
    // directory is not in the workspace) or run: either way nothing lands outside.
    let mut c = palisade();
    c.arg("run").arg("--workspace").arg(ws.path()).args(["--network", "on", "--", "cmd", "/d", "/c"]);
    let _ = c
        .arg(format!("echo x> {name} & mkdir made"))
        .current_dir(ws.path().join("cwd"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    must_not_exist(&system32.join(&name), "a file in System32 through a junction");
    must_not_exist(
        &windows.join("Temp").join(&name),
        "a file in the Windows folder through a deep junction or directly",
    );
    must_not_exist(&outside.path().join(&name), "a file through a junction as the working directory");
    assert!(!outside.path().join("made").exists(), "a folder through a junction as the working directory");
}

/// Raw disk reads: an administrator outside may open the first disk; the sandboxed command of
/// that administrator may not (Administrators is deny-only in its token). Python, since Windows
/// PowerShell's .NET refuses device paths whoever asks.
#[test]
fn raw_devices_cannot_be_read() {
    let Some(_g) = on_real_windows("raw_devices_cannot_be_read") else {
        return;
    };
    let probe = "try:\n    open(r'\\\\.\\PhysicalDrive0', 'rb', buffering=0).read(512)\n    print('raw-read-ok')\nexcept OSError as e:\n    print('raw-read-refused', e)";
    let host = std::process::Command::new("python").args(["-c", probe]).stdin(Stdio::null()).output().unwrap();
    assert!(
        text(&host.stdout).contains("raw-read-ok"),
        "control: the (elevated) runner itself cannot read \\\\.\\PhysicalDrive0, so this proves nothing: {}{}",
        text(&host.stdout),
        text(&host.stderr)
    );
    let ws = tempdir("palisade-case-raw-");
    let out = run_in(ws.path(), ws.path(), &[], &["python", "-c", probe]);
    let so = text(&out.stdout);
    assert!(
        so.contains("raw-read-refused"),
        "the sandbox read the raw disk (or the probe did not run): {so}{}",
        text(&out.stderr)
    );
}

/// `\\?\` paths skip Win32 path normalisation; 8.3 short names are another spelling of a
/// protected folder: neither reaches a protected file or a place outside.
#[test]
fn long_and_short_path_forms_reach_nothing_protected() {
    let Some(_g) = on_real_windows("long_and_short_path_forms_reach_nothing_protected") else {
        return;
    };
    let ws = tempdir("palisade-case-forms-");
    let outside = tempdir("palisade-case-out-");
    let git = ws.path().join(".git");
    std::fs::create_dir_all(git.join("hooks")).unwrap();
    std::fs::write(git.join("config"), "[core]\n").unwrap();
    std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    let long = |p: &Path| format!("\\\\?\\{}", p.display());
    let script = format!(
        "foreach ($p in @('{cfg}', '{hook}', '{out}')) {{ try {{ [IO.File]::AppendAllText($p, 'x') }} catch {{}} }}; Write-Output ps-ran",
        cfg = long(&git.join("config")),
        hook = long(&git.join("hooks").join("pre-commit")),
        out = long(&outside.path().join("long.txt")),
    );
    let out = powershell(ws.path(), &[], &script);
    assert!(text(&out.stdout).contains("ps-ran"), "{}", text(&out.stderr));
    must_be(&git.join("config"), "[core]\n", "\\\\?\\ form of .git\\config");
    must_not_exist(&git.join("hooks").join("pre-commit"), "\\\\?\\ form of a hook");
    must_not_exist(&outside.path().join("long.txt"), "\\\\?\\ form of a path outside");

    // The 8.3 name of .git, if the volume makes them (the system volume usually does).
    let short = host_cmd(&format!("for %I in (\"{}\") do @echo %~sI", git.display()));
    let short = text(&short.stdout).trim().to_string();
    if short.eq_ignore_ascii_case(&git.display().to_string()) {
        eprintln!("long_and_short_path_forms_reach_nothing_protected: no 8.3 name for .git on this volume, so that spelling cannot reach it");
        return;
    }
    cmd(
        ws.path(),
        &[],
        &format!("echo x>> \"{short}\\config\" & echo x> \"{short}\\hooks\\pre-commit\" & ren \"{short}\" moved-git"),
    );
    must_be(&git.join("config"), "[core]\n", "the 8.3 name of .git");
    must_not_exist(&git.join("hooks").join("pre-commit"), "a hook through the 8.3 name of .git");
    assert!(git.is_dir(), ".git was renamed through its 8.3 name");
}

/// A hard link is another name for the same file and its ACL: one made inside to a file outside
/// (by the command, or planted before the run) gives no write access to that file.
#[test]
fn hard_links_to_files_outside_are_not_writable() {
    let Some(_g) = on_real_windows("hard_links_to_files_outside_are_not_writable") else {
        return;
    };
    let ws = tempdir("palisade-case-hardlink-");
    let outside = tempdir("palisade-case-out-");
    let planted = outside.path().join("planted.txt");
    let made = outside.path().join("made.txt");
    std::fs::write(&planted, "original").unwrap();
    std::fs::write(&made, "original").unwrap();
    std::fs::hard_link(&planted, ws.path().join("planted-link.txt")).unwrap();
    cmd(
        ws.path(),
        &[],
        &format!("mklink /H made-link.txt \"{}\" & echo x>> made-link.txt & echo x>> planted-link.txt", made.display()),
    );
    must_be(&planted, "original", "a file outside through a hard link planted inside");
    must_be(&made, "original", "a file outside through a hard link made inside");
}

/// A workspace given as a symbolic link to the root of the drive: palisade refuses, or the
/// command still cannot write the drive's root.
#[test]
fn a_workspace_that_links_to_the_drive_root_opens_nothing() {
    let Some(_g) = on_real_windows("a_workspace_that_links_to_the_drive_root_opens_nothing") else {
        return;
    };
    let holder = tempdir("palisade-case-rootlink-");
    let link = holder.path().join("ws");
    let drive_root = format!("{}\\", &system_root().display().to_string()[..2]);
    host_cmd(&format!("mklink /D \"{}\" \"{drive_root}\"", link.display()));
    let name = format!("palisade-case-{}-{}.txt", std::process::id(), rand_suffix());
    let mut c = palisade();
    c.arg("run").arg("--workspace").arg(&link).args(["--network", "on", "--", "cmd", "/d", "/c"]);
    let out = c
        .arg(format!("echo x> \"{drive_root}{name}\""))
        .current_dir(holder.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let written = Path::new(&drive_root).join(&name);
    must_not_exist(&written, &format!("a file at the drive's root (palisade said: {})", text(&out.stderr)));
}

/// Palisade's own state in the workspace (`.palisade`) cannot be changed from inside.
#[test]
fn palisades_own_state_cannot_be_tampered_with() {
    let Some(_g) = on_real_windows("palisades_own_state_cannot_be_tampered_with") else {
        return;
    };
    let ws = tempdir("palisade-case-state-");
    let state = ws.path().join(".palisade");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("config.toml"), "network = \"off\"\n").unwrap();
    cmd(
        ws.path(),
        &[],
        "echo network = \"on\">> .palisade\\config.toml & del /f .palisade\\config.toml & mkdir .palisade\\x & ren .palisade moved",
    );
    must_be(&state.join("config.toml"), "network = \"off\"\n", ".palisade\\config.toml");
    assert!(!state.join("x").exists() && !ws.path().join("moved").exists(), ".palisade was changed");
}

/// After a run killed mid-command (as an agent's timeout does), the next run is confined as
/// before and the killed run's command did not outlive it.
#[test]
fn a_killed_run_leaves_the_next_one_confined() {
    let Some(_g) = on_real_windows("a_killed_run_leaves_the_next_one_confined") else {
        return;
    };
    let ws = tempdir("palisade-case-killed-");
    let outside = tempdir("palisade-case-out-");
    let late = ws.path().join("late.txt");
    let mut c = palisade();
    c.arg("run").arg("--workspace").arg(ws.path()).args(["--network", "on", "--", "cmd", "/d", "/c"]);
    c.arg("ping -n 6 127.0.0.1 >nul & echo late> late.txt").current_dir(ws.path()).stdin(Stdio::null());
    let mut child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap();
    let _ = child.wait();
    let out = cmd(ws.path(), &[], &format!("echo x> \"{}\\after-kill.txt\"", outside.path().display()));
    must_not_exist(
        &outside.path().join("after-kill.txt"),
        &format!("a write outside after a killed run ({})", text(&out.stderr)),
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        assert!(!late.exists(), "the killed run's command lived on and wrote late.txt");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Processes started so as to leave the command's job or its token: a child created with
/// CREATE_BREAKAWAY_FROM_JOB, a process created through WMI and a scheduled task. None may
/// write outside or outlive the command. (The last two are brokered by services that run as
/// the user: if they escape, the unelevated mode cannot close them and the README's threat
/// model must say so; the elevated mode's separate account is the answer.)
#[test]
fn processes_started_by_other_means_do_not_escape() {
    let Some(_g) = on_real_windows("processes_started_by_other_means_do_not_escape") else {
        return;
    };
    let ws = tempdir("palisade-case-breakaway-");
    let outside = tempdir("palisade-case-out-");
    let o = outside.path().display().to_string();
    let task = format!("palisade-case-{}", rand_suffix());
    let script = format!(
        "$sig = '[DllImport(\"kernel32.dll\", SetLastError=true, CharSet=CharSet.Unicode)] public static extern bool CreateProcessW(string app, System.Text.StringBuilder cmd, IntPtr pa, IntPtr ta, bool inherit, uint flags, IntPtr env, string cwd, byte[] si, byte[] pi);'; \
         try {{ $k = Add-Type -MemberDefinition $sig -Name Spawn -Namespace Palisade -PassThru; \
         $si = New-Object byte[] 104; [BitConverter]::GetBytes(104).CopyTo($si, 0); $pi = New-Object byte[] 24; \
         $cl = New-Object System.Text.StringBuilder 'cmd.exe /d /c ping -n 4 127.0.0.1 >nul & echo x> {o}\\breakaway.txt'; \
         Write-Output ('breakaway-started ' + $k::CreateProcessW($null, $cl, [IntPtr]::Zero, [IntPtr]::Zero, $false, 0x01000000, [IntPtr]::Zero, $null, $si, $pi)) }} catch {{ Write-Output ('breakaway-error ' + $_) }}; \
         try {{ Invoke-CimMethod -ClassName Win32_Process -MethodName Create -Arguments @{{CommandLine='cmd.exe /d /c echo x> {o}\\wmi.txt'}} | Out-Null }} catch {{}}; \
         schtasks /create /tn {task} /tr 'cmd.exe /d /c echo x> {o}\\task.txt' /sc once /st 23:59 /f 2>&1 | Out-Null; schtasks /run /tn {task} 2>&1 | Out-Null; \
         Write-Output ps-ran"
    );
    let out = powershell(ws.path(), &[], &script);
    let _ = std::process::Command::new("schtasks").args(["/delete", "/tn", &task, "/f"]).output();
    assert!(text(&out.stdout).contains("ps-ran"), "{}{}", text(&out.stdout), text(&out.stderr));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) {
        for f in ["breakaway.txt", "wmi.txt", "task.txt"] {
            must_not_exist(
                &outside.path().join(f),
                &format!("a process started out of the job or token ({f}); the script said: {}", text(&out.stdout)),
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The cost of one command is flat in the workspace's size (palisade grants on the workspace's
/// root, inherited, not per file): timed and printed for 1,000 and 100,000 files, never
/// asserted (timing belongs to bench/, not to pass/fail).
#[test]
fn per_command_cost_in_a_small_and_a_large_tree_is_printed() {
    let Some(_g) = on_real_windows("per_command_cost_in_a_small_and_a_large_tree_is_printed") else {
        return;
    };
    for files in [1_000usize, 100_000] {
        let ws = tempdir("palisade-case-cost-");
        for i in 0..files {
            let dir = ws.path().join(format!("d{}", i / 1000));
            if i % 1000 == 0 {
                std::fs::create_dir_all(&dir).unwrap();
            }
            std::fs::write(dir.join(format!("f{i}")), "x").unwrap();
        }
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let out = cmd(ws.path(), &[], "exit 0");
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            times.push(t.elapsed());
        }
        eprintln!("per-command cost with {files} files in the workspace: {times:?}");
    }
}

/// Loopback SMB (`\\localhost\C$\...`, a share of a folder outside) authenticates as the user
/// again on the server side, which may not carry the command's restrictions: nothing written
/// that way may land.
#[test]
fn loopback_smb_writes_nothing_outside() {
    let Some(_g) = on_real_windows("loopback_smb_writes_nothing_outside") else {
        return;
    };
    let ws = tempdir("palisade-case-smb-");
    let outside = tempdir("palisade-case-out-");
    let share = format!("palisadecase{}", std::process::id());
    host_cmd(&format!("net share {share}=\"{}\" /grant:everyone,full", outside.path().display()));
    let drive_path = outside.path().display().to_string();
    let admin = format!("\\\\localhost\\{}${}", &drive_path[..1], &drive_path[2..]);
    let line = format!(
        "echo x> \"{admin}\\admin-share.txt\" & echo x> \"\\\\127.0.0.1\\{share}\\share.txt\" & echo x> \"\\\\localhost\\{share}\\share2.txt\"",
    );
    let out = cmd(ws.path(), &[], &line);
    let _ = std::process::Command::new("net").args(["share", &share, "/delete", "/y"]).output();
    for f in ["admin-share.txt", "share.txt", "share2.txt"] {
        must_not_exist(&outside.path().join(f), &format!("a write through loopback SMB ({})", text(&out.stderr)));
    }
}

/// A junction flipped between a folder inside and one outside, as fast as the command can,
/// while it writes through it: no write lands outside (the grant is on the folder the write
/// reaches, not on the name it used).
#[test]
fn a_junction_flipped_while_writing_never_lands_outside() {
    let Some(_g) = on_real_windows("a_junction_flipped_while_writing_never_lands_outside") else {
        return;
    };
    let ws = tempdir("palisade-case-flip-");
    let outside = tempdir("palisade-case-out-");
    std::fs::create_dir_all(ws.path().join("inside")).unwrap();
    let script = format!(
        "$flip = Start-Job -ScriptBlock {{ param($w, $o) for ($i = 0; $i -lt 400; $i++) {{ \
           cmd /d /c rmdir \"$w\\flip\" 2>$null; \
           if ($i % 2) {{ cmd /d /c mklink /J \"$w\\flip\" \"$o\" >$null 2>&1 }} else {{ cmd /d /c mklink /J \"$w\\flip\" \"$w\\inside\" >$null 2>&1 }} }} }} -ArgumentList '{w}', '{o}'; \
         $n = 0; while ($flip.State -eq 'Running') {{ try {{ [IO.File]::WriteAllText('{w}\\flip\\f' + $n + '.txt', 'x'); }} catch {{}}; $n++ }}; \
         Write-Output ('writes-tried ' + $n)",
        w = ws.path().display(),
        o = outside.path().display()
    );
    let out = powershell(ws.path(), &[], &script);
    assert!(text(&out.stdout).contains("writes-tried"), "{}{}", text(&out.stdout), text(&out.stderr));
    let landed: Vec<_> = std::fs::read_dir(outside.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(landed.is_empty(), "writes landed outside through a flipped junction: {landed:?}");
    let inside = std::fs::read_dir(ws.path().join("inside")).map(|d| d.count()).unwrap_or(0);
    eprintln!("flip: {} ; {inside} writes landed inside", text(&out.stdout).trim());
}

/// Two unelevated sandboxes at once (issue 15, logon-SID isolation): a command of one cannot
/// open the other's command, nor the palisade that runs it, for code injection or handle
/// theft; it can open itself and its own child that way. Outside any sandbox the same probe
/// opens the other command (so the refusals are not about a missing process).
#[test]
fn commands_cannot_write_palisade_or_another_sandboxs_process() {
    let Some(_g) = on_real_windows("commands_cannot_write_palisade_or_another_sandboxs_process") else {
        return;
    };
    let (ws_a, ws_b) = (tempdir("palisade-case-iso-a-"), tempdir("palisade-case-iso-b-"));
    let b_script = encoded_command("Set-Content -Path pid.txt -Value $PID; Start-Sleep -Seconds 120");
    let mut b =
        run_in_background(ws_b.path(), &["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand", &b_script]);
    let b_command: u32 = wait_for_file(&ws_b.path().join("pid.txt"), Duration::from_secs(60))
        .trim()
        .parse()
        .expect("sandbox B's command wrote its PID");
    let b_palisade = b.id();
    let script = format!(
        "{OPEN_PROCESS_PROBE}\n\
         probe other-command {b_command}\n\
         probe other-palisade {b_palisade}\n\
         probe self $PID\n\
         $si = New-Object Diagnostics.ProcessStartInfo 'ping.exe', '-n 30 127.0.0.1'\n\
         $si.UseShellExecute = $false; $si.RedirectStandardOutput = $true\n\
         $c = [Diagnostics.Process]::Start($si)\n\
         probe own-child $c.Id\n\
         $c.Kill()\n"
    );
    let host = std::process::Command::new("powershell")
        .args(["-NoProfile", "-NonInteractive", "-EncodedCommand"])
        .arg(encoded_command(&format!("{OPEN_PROCESS_PROBE}\nprobe other-command {b_command}\n")))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let a = powershell(ws_a.path(), &[], &script);
    let _ = b.kill();
    let _ = b.wait();
    let (host_out, out) = (text(&host.stdout), text(&a.stdout));
    // The third field (PROCESS_TERMINATE) is what Windows does with an execute right: printed.
    eprintln!("outside:\n{host_out}inside sandbox A:\n{out}");
    assert!(
        probe_result(&host_out, "other-command").starts_with("granted granted "),
        "control: outside the sandbox the probe could not open B's command: {host_out}{}",
        text(&host.stderr)
    );
    for name in ["other-command", "other-palisade"] {
        let r = probe_result(&out, name);
        assert!(
            r.starts_with("denied:5 denied:5 "),
            "{name}: sandbox A's command opened it for writing ({r}):\n{out}{}",
            text(&a.stderr)
        );
    }
    for name in ["self", "own-child"] {
        let r = probe_result(&out, name);
        assert!(
            r.starts_with("granted granted "),
            "{name}: a command must keep write access to its own processes ({r}):\n{out}{}",
            text(&a.stderr)
        );
    }
}

/// Console input injection (issue 15): a command must not queue keystrokes into the console
/// palisade runs in (which the user's shell would read after palisade exits), neither through
/// `CONIN$`, nor by attaching to its parent's console (palisade's) or to this test's. The
/// command has a console of its own, where the same write succeeds (so the probe works).
#[test]
fn commands_cannot_queue_input_in_palisades_console() {
    let Some(_g) = on_real_windows("commands_cannot_queue_input_in_palisades_console") else {
        return;
    };
    let conin = own_console_input();
    let ws = tempdir("palisade-case-conin-");
    let script = format!(
        "{CONSOLE_INJECTION_PROBE}\n\
         Write-Output ('inject own ' + [PalisadeConsoleProbe]::Inject())\n\
         Write-Output ('inject parent ' + [PalisadeConsoleProbe]::Attach([uint32]::MaxValue))\n\
         Write-Output ('inject test ' + [PalisadeConsoleProbe]::Attach([uint32]{}))\n",
        std::process::id()
    );
    let out = powershell(ws.path(), &[], &script);
    let so = text(&out.stdout);
    let queued = pending_console_input(&conin);
    assert!(
        so.contains("inject own written:2"),
        "the probe did not run in its own console:\n{so}{}",
        text(&out.stderr)
    );
    assert_eq!(queued, 0, "the command queued input events into palisade's console:\n{so}");
    for how in ["parent", "test"] {
        assert!(!so.contains(&format!("inject {how} attached-written")), "injected through {how}:\n{so}");
    }
}

/// The terminal (issue 15): run from a console, palisade gives the command a pseudo console of
/// its own, relays what is typed (an interactive `cmd` runs it) and Ctrl-C (ends a `ping` that
/// would take 30 s), and exits with the command's status.
#[test]
fn an_interactive_command_runs_in_a_pseudo_console_of_its_own() {
    let Some(_g) = on_real_windows("an_interactive_command_runs_in_a_pseudo_console_of_its_own") else {
        return;
    };
    let ws = tempdir("palisade-case-pty-");
    let ws_arg = ws.path().to_str().unwrap();
    let args = ["run", "--workspace", ws_arg, "--network", "on", "--", "cmd", "/d", "/q", "/k", "prompt pty$G"];
    let (code, out) = palisade_in_pseudo_console(
        &args,
        ws.path(),
        &[
            ("pty>", b"echo typed-%PROCESSOR_ARCHITECTURE%-ok\r"),
            ("typed-AMD64-ok", b"ping -n 30 127.0.0.1\r"),
            ("127.0.0.1", b"\x03"),
            ("pty>", b"exit 7\r"),
        ],
        Duration::from_secs(15),
    );
    assert_eq!(code, 7, "palisade's exit code is not the command's; output:\n{out}");
}

/// Records a documented limit (issue 15, docs/windows.md, "Everyone and named pipes"): with
/// Everyone a restricting SID, a command can create a named pipe under a free name, and a
/// process outside that opens the name talks to the command. Fails once that changes (then
/// update the documentation and turn this around).
#[test]
fn a_command_can_create_a_named_pipe() {
    let Some(_g) = on_real_windows("a_command_can_create_a_named_pipe") else {
        return;
    };
    let ws = tempdir("palisade-case-pipe-");
    let name = format!("palisade-squat-{}", rand_suffix());
    let script = format!(
        "$p = New-Object System.IO.Pipes.NamedPipeServerStream('{name}', [System.IO.Pipes.PipeDirection]::Out)\n\
         Set-Content -Path ready.txt -Value ready\n\
         $p.WaitForConnection()\n\
         $w = New-Object System.IO.StreamWriter($p); $w.Write('from-the-sandbox'); $w.Flush(); $p.Dispose()\n"
    );
    let mut child = run_in_background(
        ws.path(),
        &["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand", &encoded_command(&script)],
    );
    let ready = std::panic::catch_unwind(|| wait_for_file(&ws.path().join("ready.txt"), Duration::from_secs(60)));
    let got = ready.is_ok().then(|| std::fs::read_to_string(format!("\\\\.\\pipe\\{name}")));
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready.is_ok(), "the command did not get to create the pipe (its creation may now be refused)");
    match got {
        Some(Ok(s)) => assert_eq!(s, "from-the-sandbox"),
        other => panic!("the command's pipe {name} could not be read from outside: {other:?}"),
    }
}

/// Git for Windows' `sh.exe` (the runner image has it): beside `git.exe` on the PATH, in
/// `..\bin` or `..\usr\bin` of its folder.
fn git_sh() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        if !dir.join("git.exe").is_file() {
            continue;
        }
        let root = dir.parent().unwrap_or(&dir);
        for sh in [root.join("bin").join("sh.exe"), root.join("usr").join("bin").join("sh.exe")] {
            if sh.is_file() {
                return sh;
            }
        }
    }
    panic!("no Git for Windows sh.exe beside a git.exe on the PATH (the Windows workflow's image has one)");
}

/// `palisade sh` is a drop-in `sh -c` on Windows too (issue 13), with a POSIX shell as its
/// inner shell: `$0` and the arguments, the exit status, stdout, and a write outside the
/// workspace refused (asserted on the file outside).
#[test]
fn palisade_sh_behaves_like_sh_c() {
    let Some(_g) = on_real_windows("palisade_sh_behaves_like_sh_c") else {
        return;
    };
    let ws = tempdir("palisade-case-sh-");
    let outside = tempdir("palisade-case-sh-out-");
    let target = outside.path().join(format!("from-sh-{}.txt", rand_suffix()));
    let target_sh = target.display().to_string().replace('\\', "/");
    let out = palisade()
        .args(["sh", "-c", "echo \"hi-$0-$1\"; echo x > \"$2\"; exit 3", "zero", "one", &target_sh])
        .env("PALISADE_SH_SHELL", git_sh())
        .env("PALISADE_SH_FLAGS", "--network on")
        .current_dir(ws.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(!se.contains("palisade:"), "palisade itself failed: {se}");
    assert_eq!(out.status.code(), Some(3), "{so}{se}");
    assert_eq!(so.trim(), "hi-zero-one", "{se}");
    must_not_exist(&target, "palisade sh");
}
