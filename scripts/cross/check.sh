#!/usr/bin/env bash
# Type-checks the workspace for Windows (MSVC) and macOS (Apple silicon) and runs its tests as
# Windows binaries under Wine, from this Linux machine. Runs scripts/cross/setup.sh first (fast
# when everything is there already).
#
#   scripts/cross/check.sh                          # the whole workspace
#   scripts/cross/check.sh -p palisade-windows-plan # only some packages (cargo -p syntax)
#
# Builds go to target/cross (CARGO_TARGET_DIR is overridden; set PALISADE_CROSS_TARGET_DIR to
# change it), so they never invalidate the native build in target/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

"$here/setup.sh"
cache="${PALISADE_CROSS_CACHE:-$repo/.cache/cross}"
# shellcheck source=/dev/null
. "$cache/env.sh"

export CARGO_TARGET_DIR="${PALISADE_CROSS_TARGET_DIR:-$repo/target/cross}"
cd "$repo"

if [ "$#" -gt 0 ]; then
    packages=("$@")
else
    packages=(--workspace)
fi

failed=()
step() {
    printf '\n=== %s\n' "$*" >&2
    local start=$SECONDS
    if "$@"; then
        printf '=== ok in %ss\n' "$((SECONDS - start))" >&2
    else
        printf '=== FAILED after %ss\n' "$((SECONDS - start))" >&2
        failed+=("$*")
    fi
}

# All three run even if one fails, so that one report shows every target's state.
# clippy type-checks like `check` and lints; warnings are errors, as on Linux (scripts/test.sh).
step cargo +nightly clippy -Zbuild-std --target x86_64-pc-windows-msvc "${packages[@]}" --all-targets -- -D warnings
step cargo +nightly clippy -Zbuild-std --target aarch64-apple-darwin "${packages[@]}" --all-targets -- -D warnings
step cargo +nightly test -Zbuild-std --target x86_64-pc-windows-gnu "${packages[@]}" --no-fail-fast

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\ncross-check: %s step(s) failed:\n' "${#failed[@]}" >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
printf '\ncross-check: all targets ok\n' >&2
