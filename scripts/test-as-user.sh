#!/usr/bin/env bash
# Runs the compiled test binaries again as an ordinary (unprivileged) user, so that every
# test passes both as root and as a normal user. Needs root (to create and become the user).
set -euo pipefail
cd "$(dirname "$0")/.."
user=palisade-ci
if [ "$(id -u)" != 0 ]; then
    echo "NOT RUN: the second pass as another user needs root; this run covered uid $(id -u) only" >&2
    exit 0
fi
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /bin/sh "$user"
# The test binaries, as cargo built them for the root pass.
mapfile -t bins < <(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"] and m.get("profile", {}).get("test"):
        print(m["executable"] + "\t" + m["manifest_path"].rsplit("/", 1)[0])
')
# Everything on the way to the binaries must be reachable by the user, and the tests need a
# scratch folder the sandbox does not hide (so not under /tmp, where a checkout may well be):
# one owned by the user under /var/lib.
chmod o+rx target target/debug target/debug/deps 2>/dev/null || true
scratch=/var/lib/palisade-test/$user
mkdir -p "$scratch" && chown "$user" "$scratch" && chmod 0700 "$scratch"
d=$PWD
while [ "$d" != / ]; do
    perm=$(stat -c %a "$d")
    (( ${perm: -1} & 1 )) || chmod o+x "$d"   # others may traverse every parent
    d=$(dirname "$d")
done
status=0
for entry in "${bins[@]}"; do
    bin=${entry%%$'\t'*}; dir=${entry#*$'\t'}
    echo "-- $(basename "$bin") as $user"
    su "$user" -s /bin/sh -c "cd '$dir' && HOME=/tmp PALISADE_TEST_DIR='$scratch' RUST_BACKTRACE=0 '$bin' --test-threads=2" || status=1
done
exit $status
