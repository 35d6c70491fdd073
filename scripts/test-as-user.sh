#!/usr/bin/env bash
# Runs the compiled test binaries again as an ordinary (unprivileged) user, so that every
# test passes both as root and as a normal user. Needs root (to create and become the user).
set -euo pipefail
cd "$(dirname "$0")/.."
user=palisade-ci
if [ "$(id -u)" != 0 ]; then
    echo "NOT RUN: the second pass as another user needs root; this run covered uid $(id -u) only" >&2
    # CI runs as root: there, a pass that cannot run is a failure, never a silent success.
    [ "${CI:-}" = true ] && exit 1
    exit 0
fi
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /bin/sh "$user"
# The test binaries, as cargo built them for the root pass.
list=$(mktemp)
trap 'rm -f "$list" "$list.json"' EXIT
# A build that fails, or that yields no test binary, fails this pass instead of running nothing.
cargo test --workspace --locked --no-run --message-format=json >"$list.json" ||
    { echo "test-as-user: building the test binaries failed" >&2; exit 1; }
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"] and m.get("profile", {}).get("test"):
        print(m["executable"] + "\t" + m["manifest_path"].rsplit("/", 1)[0])
' "$list.json" >"$list" || { echo "test-as-user: could not list the test binaries" >&2; exit 1; }
rm -f "$list.json"
mapfile -t bins <"$list"
if [ "${#bins[@]}" = 0 ]; then
    echo "test-as-user: no test binary found (did the build fail?): nothing would run" >&2
    exit 1
fi
# Everything on the way to the binaries must be reachable by the user, and the tests need a
# scratch folder the sandbox does not hide (so not under /tmp, where a checkout may well be):
# one owned by the user under /var/lib.
chmod o+rx target target/debug target/debug/deps 2>/dev/null || true
scratch=/var/lib/palisade-test/$user
mkdir -p "$scratch" && chown "$user" "$scratch" && chmod 0700 "$scratch"
# Others may traverse every parent of the checkout for this pass; the bits added here are
# taken away again when it ends, so the host's permissions stay as they were.
added=()
restore() { for d in "${added[@]}"; do chmod o-x "$d"; done; rm -f "$list"; }
trap restore EXIT
d=$PWD
while [ "$d" != / ]; do
    perm=$(stat -c %a "$d")
    if ! (( ${perm: -1} & 1 )); then chmod o+x "$d" && added+=("$d"); fi
    d=$(dirname "$d")
done
status=0
for entry in "${bins[@]}"; do
    bin=${entry%%$'\t'*}; dir=${entry#*$'\t'}
    echo "-- $(basename "$bin") as $user"
    su "$user" -s /bin/sh -c "cd '$dir' && HOME=/tmp PALISADE_TEST_DIR='$scratch' RUST_BACKTRACE=0 '$bin' --test-threads=2" || status=1
done
exit $status
