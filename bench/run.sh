#!/bin/bash
# Builds Palisade's CLI and the benchmark in release mode, installs bubblewrap (bench/setup.sh)
# and runs the benchmark. Options go to palisade-bench, e.g.:
#   bench/run.sh                      the overhead table (about 20 s)
#   bench/run.sh --json > out.json    the same as JSON (the table goes to stderr)
#   bench/run.sh --iterations 1000    more runs per case
#   bench/run.sh --parent-rss 512     with a 512 MiB parent (fork cost)
#   bench/run.sh ns-cost              what each clone() namespace flag costs
#   bench/run.sh steps                where a spawn's time goes, step by step
#   bench/run.sh proxy [--megabytes 1024] [--requests 300] [--rounds 3]
#                                     the network allowlist's proxy: added latency per connection
#                                     and download throughput, next to a direct loopback connection
# BENCH_USER=name bench/run.sh ...    as root: run it as that (unprivileged) user, created if missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "${1:-}" = proxy ]; then
    shift
    exec cargo run --release --quiet -p palisade-proxy --example proxy_bench -- --megabytes 1024 "$@"
fi
"$ROOT/bench/setup.sh"

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
CLI_ARGS=()
if ! cargo build --release --quiet -p palisade -p palisade-bench 2>"$LOG"; then
    # The CLI may be mid-change; the library alone is enough for most rows.
    WHY="$(grep -m1 -E '^error' "$LOG" || true)"
    echo "bench/run.sh: building the palisade CLI failed (${WHY:-see cargo}); running without the CLI row" >&2
    cargo build --release --quiet -p palisade-bench
    CLI_ARGS=(--skip-cli "the palisade CLI did not build: ${WHY:-unknown error}")
else
    CLI_ARGS=(--palisade "$TARGET/release/palisade")
fi

BENCH="$TARGET/release/palisade-bench"
if [ -n "${BENCH_USER:-}" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench/run.sh: BENCH_USER needs root" >&2
        exit 2
    fi
    id "$BENCH_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$BENCH_USER"
    # A copy the user can read and execute wherever the target folder lives.
    BIN="$(mktemp -d /tmp/palisade-bench-bin.XXXXXX)"
    trap 'rm -f "$LOG"; rm -rf "$BIN"' EXIT
    cp "$BENCH" "$BIN/"
    if [ "${CLI_ARGS[0]}" = "--palisade" ]; then
        cp "$TARGET/release/palisade" "$BIN/"
        CLI_ARGS=(--palisade "$BIN/palisade")
    fi
    chmod 755 "$BIN" "$BIN"/*
    exec setpriv --reuid="$BENCH_USER" --regid="$(id -g "$BENCH_USER")" --clear-groups --reset-env \
        "$BIN/palisade-bench" "${CLI_ARGS[@]}" "$@"
fi
exec "$BENCH" "${CLI_ARGS[@]}" "$@"
