#!/usr/bin/env bash
# Cargo runner for x86_64-pc-windows-gnu: runs a Windows .exe under Wine in Palisade's private
# prefix. Set up by scripts/cross/setup.sh, which exports
# CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER pointing here.
#
#   wine-runner.sh path/to/program.exe [args...]
#
# Wine enforces none of Windows' security APIs: see /work/shared/notes/cross-targets.md for
# what a test under Wine can and cannot show.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${PALISADE_CROSS_CACHE:-$(cd "$here/../.." && pwd)/.cache/cross}"
export WINEPREFIX="${WINEPREFIX:-$cache/wine}"
export WINEDEBUG=-all

if [ "$#" -lt 1 ]; then
    echo "usage: $0 program.exe [args...]" >&2
    exit 2
fi

wine="${PALISADE_WINE:-}"
if [ -z "$wine" ]; then
    for w in /usr/lib/wine/wine64 /usr/bin/wine64; do
        if [ -x "$w" ]; then
            wine="$w"
            break
        fi
    done
fi
if [ -z "$wine" ] || [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "wine-runner: Wine or its prefix ($WINEPREFIX) is missing: run scripts/cross/setup.sh" >&2
    exit 2
fi

# Every Rust std .exe imports ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks; the
# shim setup.sh built lives in the prefix's system32. Put it back if the prefix lost it.
shim="$cache/bcryptprimitives.dll"
sys32="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$sys32" ]; then
    if [ ! -f "$shim" ]; then
        echo "wine-runner: $shim is missing: run scripts/cross/setup.sh" >&2
        exit 2
    fi
    cp "$shim" "$sys32"
fi

# Wine itself sometimes loses its connection to wineserver under load ("wine client error:
# ... recvmsg: Connection reset by peer") and the program dies before or while running: that
# is Wine's failure, not the program's. Only then is the program run once more, and it says so;
# any other failure is the program's own and is returned as it is.
errs="$(mktemp)"
trap 'rm -f "$errs"' EXIT
set +e
"$wine" "$@" 2> >(tee "$errs" >&2)
rc=$?
wait
if [ "$rc" != 0 ] && grep -q "wine client error" "$errs"; then
    echo "wine-runner: Wine lost its connection to wineserver (wine client error); running $1 once more" >&2
    "$wine" "$@"
    rc=$?
fi
exit "$rc"
