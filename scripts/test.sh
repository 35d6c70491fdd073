#!/usr/bin/env bash
# Palisade's whole test suite: the command the README gives and CI runs (.ci/run).
#   1. unit, integration and doc tests, as the current user (root in CI);
#   2. the same test binaries again as an unprivileged user (when run as root);
#   3. the Windows and macOS targets: type-check (clippy, warnings are errors), build, and unit
#      tests under Wine;
#   4. formatting (`cargo fmt --check`) and lints (`cargo clippy -D warnings`, every target).
# Every stage runs even when an earlier one fails, and every test binary runs even when an
# earlier one fails (--no-fail-fast). The end of the output gives, per stage, the tests passed,
# failed, skipped (a test that printed a `SKIPPED:` or `NOT RUN` line and returned) and ignored,
# and a stage that failed without a failing test (a compile error, a crashed binary) says so.
#
# With PALISADE_TEST_STRICT=1 (on by default when CI=true), a test that would skip for a reason
# this kind of machine should never have fails instead (see `skip` in
# crates/palisade/tests/common/mod.rs for the few reasons that stay allowed).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1
# A Rust that deps.sh just installed is not on this shell's PATH yet.
command -v cargo >/dev/null || . "$HOME/.cargo/env"
if [ "${CI:-}" = true ] && [ -z "${PALISADE_TEST_STRICT:-}" ]; then
    export PALISADE_TEST_STRICT=1
fi
mkdir -p target/test-logs
rm -f target/test-logs/*.log
summary=()
total_passed=0 total_failed=0 total_skipped=0 total_ignored=0
n=0

# Sums libtest's "test result:" lines and counts skip lines in a stage's log.
count() { # log, pattern
    grep -Eo "test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed; [0-9]+ ignored" "$1" |
        awk -v f="$2" '{ gsub(";", ""); p += $4; x += $6; i += $8 } END { if (f == "p") print p+0; else if (f == "f") print x+0; else print i+0 }'
}

stage() { # name, command...
    local name=$1; shift
    n=$((n + 1))
    local log="target/test-logs/stage-$n.log"
    echo "== $name"
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local p f i s
    p=$(count "$log" p); f=$(count "$log" f); i=$(count "$log" i)
    s=$(grep -cE '(^|: )(SKIPPED|NOT RUN)\b' "$log")
    # A skipped test returned early and so counted as passed: count it once, as skipped.
    p=$((p > s ? p - s : 0))
    local note=""
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        note=" — FAILED with exit $rc and no failing test (compile error, crashed binary or setup failure: see above)"
        f=1
    elif [ "$rc" != 0 ]; then
        note=" — FAILED (exit $rc)"
    fi
    summary+=("$name: $p passed, $f failed, $s skipped, $i ignored$note")
    total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
    total_skipped=$((total_skipped + s)); total_ignored=$((total_ignored + i))
}

# The escape tests need scratch folders the sandbox does not hide (not under /tmp, /var/tmp,
# /run), wherever this checkout lives.
if [ -z "${PALISADE_TEST_DIR:-}" ]; then
    if [ "$(id -u)" = 0 ]; then PALISADE_TEST_DIR=/var/lib/palisade-test/root; else PALISADE_TEST_DIR="$HOME/.cache/palisade-test"; fi
    mkdir -p "$PALISADE_TEST_DIR" && chmod 0700 "$PALISADE_TEST_DIR"
    export PALISADE_TEST_DIR
fi
stage "tests as $(id -un)" cargo test --workspace --locked --no-fail-fast -- --test-threads=2
stage "tests as an unprivileged user" scripts/test-as-user.sh
if [ -x scripts/cross/check.sh ]; then
    stage "Windows and macOS targets" scripts/cross/check.sh
else
    summary+=("Windows and macOS targets: NOT RUN (scripts/cross/check.sh missing) — FAILED")
    total_failed=$((total_failed + 1))
fi
stage "formatting and lints" sh -c 'cargo fmt --all --check && cargo clippy --workspace --all-targets --locked -- -D warnings'

echo
echo "== summary (test runs per stage; the stages run overlapping tests)"
printf '%s\n' "${summary[@]}"
skips=$(cat target/test-logs/stage-*.log | grep -E '(^|: )(SKIPPED|NOT RUN)\b' | sort | uniq -c | sort -rn)
if [ -n "$skips" ]; then
    echo "skips (count, line):"
    echo "$skips" | head -50
fi
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" = 0 ]
