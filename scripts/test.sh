#!/usr/bin/env bash
# Palisade's whole test suite: the command the README gives and CI runs (.ci/run).
#   1. unit, integration and doc tests, as the current user (root in CI);
#   2. the same test binaries again as an unprivileged user (when run as root);
#   3. the Windows and macOS targets: type-check, build, and unit tests under Wine.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1
mkdir -p target
log=target/test-summary.log
: > "$log"
failed_stages=()

stage() { # name, command...
    local name=$1; shift
    echo "== $name"
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || failed_stages+=("$name (exit $rc)")
}

# The escape tests need scratch folders the sandbox does not hide (not under /tmp, /var/tmp,
# /run), wherever this checkout lives.
if [ -z "${PALISADE_TEST_DIR:-}" ]; then
    if [ "$(id -u)" = 0 ]; then PALISADE_TEST_DIR=/var/lib/palisade-test/root; else PALISADE_TEST_DIR="$HOME/.cache/palisade-test"; fi
    mkdir -p "$PALISADE_TEST_DIR" && chmod 0700 "$PALISADE_TEST_DIR"
    export PALISADE_TEST_DIR
fi
stage "tests as $(id -un)" cargo test --workspace --locked -- --test-threads=2
stage "tests as an unprivileged user" scripts/test-as-user.sh
if [ -x scripts/cross/check.sh ]; then
    stage "Windows and macOS targets" scripts/cross/check.sh
else
    echo "== Windows and macOS targets: NOT RUN (scripts/cross/check.sh missing)"
    failed_stages+=("cross targets (script missing)")
fi

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo
if [ ${#failed_stages[@]} -gt 0 ]; then
    printf 'failed stage: %s\n' "${failed_stages[@]}"
fi
echo "$passed passed, $failed failed"
[ ${#failed_stages[@]} = 0 ] && [ "$failed" = 0 ]
