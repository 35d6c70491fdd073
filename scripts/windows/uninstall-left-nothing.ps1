# Checks, from outside Palisade's own records, that `palisade setup --elevated --uninstall`
# left nothing of the elevated setup on this machine. Run by .github/workflows/windows.yml after
# the uninstall, elevated (secedit, netsh wfp and other users' profile keys need it).
#
#   pwsh scripts/windows/uninstall-left-nothing.ps1 -GroupSid S-1-5-21-... -UserSids S-1-5-21-...,S-1-5-21-...
#
# The SIDs are the ones the group and the accounts had while they existed (the workflow reads
# them right after setup); without them the checks that need a SID are reported as not made.
# Every finding is one `::error::` line; the exit code is 1 when anything is left, 2 when a check
# could not be made at all (that fails the job too: a check that cannot run proves nothing).
#
# Never run on real Windows yet (written on Linux; the first CI run is its first run).
param(
    [string]$GroupSid = "",
    [string[]]$UserSids = @(),
    # How deep the ACL scan goes below the profile and the temporary folder. Setup's grants sit
    # at most 8 levels below the profile (the listing's bound); 4 keeps the scan to seconds on a
    # runner whose profile holds the cargo registry and toolchains.
    [int]$Depth = 4
)
$ErrorActionPreference = 'Stop'
$left = [System.Collections.Generic.List[string]]::new()
$broken = [System.Collections.Generic.List[string]]::new()
$UserSids = @($UserSids | Where-Object { $_ } | ForEach-Object { $_ -split ',' } | Where-Object { $_ })
$sids = @($UserSids) + @($GroupSid | Where-Object { $_ })

# Accounts and group.
foreach ($n in 'PalisadeOffline', 'PalisadeOnline', 'PalisadeProxied') {
    if (Get-LocalUser -Name $n -ErrorAction SilentlyContinue) { $left.Add("local user $n") }
}
if (Get-LocalGroup -Name PalisadeSandboxUsers -ErrorAction SilentlyContinue) { $left.Add("local group PalisadeSandboxUsers") }

# Sign-in screen: SpecialAccounts\UserList values.
$userList = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\SpecialAccounts\UserList'
foreach ($n in 'PalisadeOffline', 'PalisadeOnline', 'PalisadeProxied') {
    $v = Get-ItemProperty -Path $userList -Name $n -ErrorAction SilentlyContinue
    if ($null -ne $v) { $left.Add("UserList value $n") }
}

# The accounts' profiles: ProfileList keys, Win32_UserProfile entries, folders under Users.
foreach ($sid in $UserSids) {
    if (Test-Path "HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\$sid") { $left.Add("ProfileList key of $sid") }
    $p = Get-CimInstance Win32_UserProfile -ErrorAction SilentlyContinue | Where-Object { $_.SID -eq $sid }
    if ($p) { $left.Add("user profile of $sid at $($p.LocalPath)") }
}
$usersDir = Join-Path $env:SystemDrive 'Users'
foreach ($d in @(Get-ChildItem $usersDir -Directory -Force -Filter 'Palisade*' -ErrorAction SilentlyContinue)) {
    $left.Add("profile folder $($d.FullName)")
}

# LSA account rights still held by the accounts' SIDs (an account's rights outlive it).
if ($UserSids.Count -gt 0) {
    $inf = Join-Path $env:RUNNER_TEMP "palisade-user-rights.inf"
    if (-not $env:RUNNER_TEMP) { $inf = Join-Path ([System.IO.Path]::GetTempPath()) "palisade-user-rights.inf" }
    secedit /export /areas USER_RIGHTS /cfg $inf /quiet | Out-Null
    if ($LASTEXITCODE -ne 0 -or -not (Test-Path $inf)) {
        $broken.Add("secedit /export failed ($LASTEXITCODE): LSA account rights not checked")
    } else {
        foreach ($line in Get-Content $inf) {
            foreach ($sid in $UserSids) {
                # `*S-1-5-21-...-1001` must not match `*S-1-5-21-...-10012`.
                if ($line -match ([regex]::Escape("*$sid") + '(,|\s|$)')) { $left.Add("LSA account right of ${sid}: $line") }
            }
        }
        Remove-Item $inf -Force
    }
} else {
    $broken.Add("no account SIDs were recorded after setup: LSA rights, profiles and ACEs of the accounts not checked")
}

# Windows Firewall rules, and WFP provider, sublayer and filters (found by name: every WFP
# object of Palisade's is named `Palisade...`).
$rules = @(Get-NetFirewallRule -Group 'Palisade' -ErrorAction SilentlyContinue)
if ($rules.Count -gt 0) { $left.Add("firewall rules: $($rules.DisplayName -join ', ')") }
$rules = @(Get-NetFirewallRule -ErrorAction SilentlyContinue | Where-Object { $_.DisplayName -like 'Palisade*' })
if ($rules.Count -gt 0) { $left.Add("firewall rules named Palisade*: $($rules.DisplayName -join ', ')") }
$wfpXml = Join-Path ([System.IO.Path]::GetTempPath()) "palisade-wfp-state.xml"
netsh wfp show state file=$wfpXml | Out-Null
if ($LASTEXITCODE -ne 0 -or -not (Test-Path $wfpXml)) {
    $broken.Add("netsh wfp show state failed ($LASTEXITCODE): WFP objects not checked")
} else {
    $hits = @(Select-String -Path $wfpXml -Pattern '<name>Palisade[^<]*</name>' -AllMatches |
        ForEach-Object { $_.Matches } | ForEach-Object { $_.Value } | Sort-Object -Unique)
    foreach ($h in $hits) { $left.Add("WFP object $h") }
    Remove-Item $wfpXml -Force
}

# Palisade's folder, and stored or pending passwords (`<account>.dpapi`, `<account>.dpapi.pending`).
if (Test-Path "$env:ProgramData\Palisade") { $left.Add("$env:ProgramData\Palisade") }
$stored = @(Get-ChildItem "$env:LOCALAPPDATA\Palisade\credentials" -Recurse -File -Force -ErrorAction SilentlyContinue)
if ($stored.Count -gt 0) { $left.Add("stored or pending passwords: $($stored.FullName -join ', ')") }

# Access entries, explicit or inherited, in the profile and the temporary folder: the group's
# and the accounts' (setup's read grants, the elevated mode's root grants), Palisade's
# synthetic write and sandbox SIDs (S-1-9-1347179332-...), and the ownership entry (OWNER
# RIGHTS with only FILE_READ_ATTRIBUTES). Links and junctions are not entered.
function Find-Aces([string]$root) {
    if (-not (Test-Path $root)) { return }
    $items = @(Get-Item -LiteralPath $root -Force) + @(Get-ChildItem -LiteralPath $root -Recurse -Depth $Depth -Force -ErrorAction SilentlyContinue |
        Where-Object { -not ($_.Attributes -band [System.IO.FileAttributes]::ReparsePoint) })
    foreach ($item in $items) {
        try { $acl = Get-Acl -LiteralPath $item.FullName } catch { continue }
        foreach ($ace in $acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
            $sid = $ace.IdentityReference.Value
            $ours = ($sids -contains $sid) -or $sid.StartsWith('S-1-9-1347179332-') -or
                ($sid -eq 'S-1-3-4' -and [int64]$ace.FileSystemRights -eq 128)
            if ($ours) {
                $how = if ($ace.IsInherited) { 'inherited' } else { 'explicit' }
                $left.Add("an $how $($ace.AccessControlType) entry for $sid on $($item.FullName)")
            }
        }
    }
}
Find-Aces $env:USERPROFILE
Find-Aces ([System.IO.Path]::GetTempPath())

foreach ($b in $broken) { Write-Output "::error::check not made: $b" }
foreach ($l in $left) { Write-Output "::error::left after uninstall: $l" }
if ($left.Count -gt 0) { exit 1 }
if ($broken.Count -gt 0) { exit 2 }
Write-Output "nothing of the elevated setup is left"
