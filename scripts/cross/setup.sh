#!/usr/bin/env bash
# Sets up this Debian machine to type-check Palisade for Windows (x86_64-pc-windows-msvc) and
# macOS (aarch64-apple-darwin), and to build Windows binaries (x86_64-pc-windows-gnu) and run
# them under Wine. Idempotent: a second run only checks what is there and takes about a second.
#
#   scripts/cross/setup.sh            # then: source .cache/cross/env.sh
#
# What it does (see /work/shared/notes/cross-targets.md for why):
#   1. apt-get installs the MinGW-w64 cross toolchain and Wine from the machine's own sources
#      (Debian 12), running `apt-get update` first only if they cannot be found.
#   2. Downloads Debian unstable's `rust-src` (the standard library source that
#      `cargo +nightly -Zbuild-std` compiles) at a pinned version and SHA-256, with a private
#      apt configuration under the cache (the system's apt sources are not touched), and
#      extracts it.
#   3. Builds the ProcessPrng shim DLL (processprng.c) that Wine 8 lacks.
#   4. Creates a private Wine prefix under the cache and puts the shim into its system32.
#   5. Writes $CACHE/env.sh, which exports what cargo needs (see the end of this file).
#
# Environment:
#   PALISADE_CROSS_CACHE            cache directory (default: <repo>/.cache/cross)
#   PALISADE_CROSS_DEBIAN_MIRROR    Debian mirror for unstable (default: the one apt uses here)
#   PALISADE_CROSS_ALLOW_SKEW=1     go on although rust-src and nightly rustc differ in version
set -euo pipefail

# The standard library source. The nightly toolchain here is rustc 1.97.0-nightly
# (2026-05-19); Debian unstable's 1.97.1 source builds std, core and test for all three
# targets with it (checked by running scripts/cross/check.sh). When unstable moves on, the old
# .deb disappears from the mirror: download the new one, run check.sh, and update both lines.
RUST_SRC_VERSION="1.97.1+dfsg1-1"
RUST_SRC_SHA256="d0637f8f464234ffb12baa55fc0e851f5f9dcfd0199c1a0922e4488a4f591992"

APT_PACKAGES=(gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 wine64)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${PALISADE_CROSS_CACHE:-$repo/.cache/cross}"

say() { printf 'cross-setup: %s\n' "$*" >&2; }
die() {
    printf 'cross-setup: error: %s\n' "$*" >&2
    exit 1
}

mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

# One setup at a time (check.sh may be started twice, e.g. by CI and by hand).
exec 9>"$cache/.setup.lock"
flock 9

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

# --- 1. MinGW-w64 and Wine ------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    for p in "${missing[@]}"; do
        policy="$(apt-cache policy "$p" 2>/dev/null || true)"
        if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
            say "apt-get update (package lists do not know $p)"
            as_root apt-get update -qq
            break
        fi
    done
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
command -v x86_64-w64-mingw32-gcc >/dev/null || die "x86_64-w64-mingw32-gcc missing after install"
wine=""
for w in /usr/lib/wine/wine64 /usr/bin/wine64; do
    if [ -x "$w" ]; then
        wine="$w"
        break
    fi
done
[ -n "$wine" ] || die "wine64 not found (looked in /usr/lib/wine and /usr/bin)"
wineserver=""
for w in /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver /usr/bin/wineserver; do
    if [ -x "$w" ]; then
        wineserver="$w"
        break
    fi
done

# --- 2. Standard library source -------------------------------------------------------------
nightly_release="$(rustc +nightly -vV 2>/dev/null | sed -n 's/^release: //p')" ||
    true
[ -n "$nightly_release" ] ||
    die "no nightly toolchain: \`rustc +nightly -vV\` failed (install one with rustup toolchain install nightly)"
# check.sh lints the Windows and macOS code with the nightly's clippy.
cargo +nightly clippy --version >/dev/null 2>&1 ||
    die "the nightly toolchain has no clippy (rustup component add clippy --toolchain nightly)"
# Same major.minor: std's source uses unstable compiler features that change between releases.
# The pinned rust-src (checked by hash) is used while it matches the nightly and the mirror
# serves it; otherwise any rust-src of the nightly's major.minor that Debian's signed index
# serves (apt checks its hash against that index), so that the day a mirror drops the pinned
# version, or the machine's nightly moves on, does not break this stage.
nightly_mm="$(echo "$nightly_release" | cut -d. -f1,2)"
src_mm="$(echo "$RUST_SRC_VERSION" | cut -d. -f1,2)"
pinned_fits=1
if [ "$nightly_mm" != "$src_mm" ] && [ "${PALISADE_CROSS_ALLOW_SKEW:-}" != 1 ]; then
    pinned_fits=0
    say "the pinned rust-src $RUST_SRC_VERSION is for Rust $src_mm but the nightly is $nightly_release: looking for a rust-src $nightly_mm.x"
fi

src_dir="$cache/rust-src"
library="$src_dir/usr/lib/rustlib/src/rust/library"
cached="$(cat "$src_dir/.palisade-version" 2>/dev/null || true)"
if { [ "$pinned_fits" = 1 ] && [ "$cached" != "$RUST_SRC_VERSION" ]; } ||
    { [ "$pinned_fits" = 0 ] && [ "$(echo "$cached" | cut -d. -f1,2)" != "$nightly_mm" ]; }; then
    apt_dir="$cache/apt"
    deb_dir="$cache/debs"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$deb_dir"
    want="$RUST_SRC_VERSION"
    want_sha="$RUST_SRC_SHA256"
    deb="$deb_dir/rust-src_${want/:/%3a}_all.deb"
    if [ "$pinned_fits" = 0 ] || [ ! -f "$deb" ] || ! echo "$want_sha  $deb" | sha256sum -c --status; then
        mirror="${PALISADE_CROSS_DEBIAN_MIRROR:-}"
        if [ -z "$mirror" ]; then
            # The mirror apt already uses for Debian (not the security archive).
            mirror="$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
                grep -oE '(https?|ftp)://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)"
            mirror="${mirror:-http://deb.debian.org/debian}"
        fi
        keyring=/usr/share/keyrings/debian-archive-keyring.gpg
        if [ -f "$keyring" ]; then
            opt="signed-by=$keyring"
        else
            # Only the pinned .deb (checked by its SHA-256 below) may come from an unsigned index.
            opt="trusted=yes"
        fi
        echo "deb [$opt] ${mirror%/} sid main" >"$apt_dir/sources.list"
        apt_opts=(
            -o "Dir::Etc::SourceList=$apt_dir/sources.list"
            -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$apt_dir/lists"
            -o "Dir::Cache=$apt_dir/cache"
            -o "Acquire::Languages=none"
            -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
            -o "APT::Sandbox::User=root"
        )
        say "reading Debian unstable's package index ($mirror)"
        apt-get -qq "${apt_opts[@]}" update ||
            die "could not read Debian unstable's package index from $mirror (see the apt error above); set PALISADE_CROSS_DEBIAN_MIRROR to a reachable Debian mirror"
        served="$(apt-cache "${apt_opts[@]}" madison rust-src 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}')"
        if [ "$pinned_fits" = 0 ] || ! grep -qxF "$want" <<<"$served"; then
            fallback="$(grep -E "^${nightly_mm//./\\.}\\." <<<"$served" | sort -V | tail -n1 || true)"
            if [ -z "$fallback" ] || [ "$opt" = "trusted=yes" ]; then
                die "no usable rust-src: Debian unstable serves ${served:-(none)}, the nightly toolchain is $nightly_release (a rust-src $nightly_mm.x is needed${fallback:+, and without $keyring its index cannot be verified}); install a nightly matching one of those (rustup toolchain install nightly-YYYY-MM-DD) or update RUST_SRC_VERSION/RUST_SRC_SHA256 in $here/setup.sh"
            fi
            say "using rust-src $fallback (the pinned $want is not usable here; verified by Debian's signed index)"
            want="$fallback"
            want_sha=""
            deb="$deb_dir/rust-src_${want/:/%3a}_all.deb"
        fi
        tmp="$(mktemp -d "$deb_dir/dl.XXXXXX")"
        (cd "$tmp" && apt-get -qq "${apt_opts[@]}" download "rust-src=$want" >/dev/null) ||
            die "downloading rust-src $want failed (see the apt error above)"
        got="$(sha256sum "$tmp"/rust-src_*.deb | cut -d' ' -f1)"
        if [ -n "$want_sha" ] && [ "$got" != "$want_sha" ]; then
            rm -rf "$tmp"
            die "rust-src $want has SHA-256 $got, expected $want_sha: refusing it"
        fi
        mv "$tmp"/rust-src_*.deb "$deb"
        rm -rf "$tmp"
    fi
    say "extracting $(basename "$deb")"
    rm -rf "$src_dir.new"
    dpkg-deb -x "$deb" "$src_dir.new"
    [ -f "$src_dir.new/usr/lib/rustlib/src/rust/library/Cargo.lock" ] ||
        die "$(basename "$deb") has no library/Cargo.lock: not a usable standard library source"
    echo "$want" >"$src_dir.new/.palisade-version"
    rm -rf "$src_dir"
    mv "$src_dir.new" "$src_dir"
fi

# --- 3. ProcessPrng shim --------------------------------------------------------------------
dll="$cache/bcryptprimitives.dll"
if [ ! -f "$dll" ] || [ "$here/processprng.c" -nt "$dll" ]; then
    say "building $(basename "$dll")"
    x86_64-w64-mingw32-gcc -shared -O2 -Wall -Wextra -Werror -o "$dll.tmp" \
        "$here/processprng.c" -lbcrypt
    mv "$dll.tmp" "$dll"
fi

# --- 4. Wine prefix -------------------------------------------------------------------------
prefix="$cache/wine"
if [ ! -f "$prefix/system.reg" ] || [ ! -d "$prefix/drive_c/windows/system32" ]; then
    say "creating the Wine prefix $prefix"
    rm -rf "$prefix"
    mkdir -p "$prefix"
    # No Mono or Gecko installers (they would ask a question on a display we do not have).
    WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
        "$wine" wineboot --init >/dev/null 2>&1 || die "wineboot --init failed in $prefix"
    if [ -n "$wineserver" ]; then
        WINEPREFIX="$prefix" "$wineserver" -w
    fi
fi
sys32_dll="$prefix/drive_c/windows/system32/bcryptprimitives.dll"
if ! cmp -s "$dll" "$sys32_dll"; then
    cp "$dll" "$sys32_dll"
fi

# --- 5. Environment for cargo ---------------------------------------------------------------
env_file="$cache/env.sh"
cat >"$env_file.tmp" <<EOF
# Written by scripts/cross/setup.sh; source it before cross-target cargo commands.
export PALISADE_CROSS_CACHE='$cache'
export __CARGO_TESTS_ONLY_SRC_ROOT='$library'
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER='x86_64-w64-mingw32-gcc'
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER='$here/wine-runner.sh'
export PALISADE_WINE='$wine'
export WINEPREFIX='$prefix'
export WINEDEBUG='-all'
EOF
mv "$env_file.tmp" "$env_file"
say "ready: source $env_file"
