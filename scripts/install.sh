#!/usr/bin/env bash
# Installs Palisade from this checkout and runs a first sandboxed command.
#   - the Debian packages the build needs (scripts/deps.sh)
#   - `palisade` built in release mode, copied to /usr/local/bin (root) or ~/.local/bin
#   - `palisade check` for this host, then a command in a scratch workspace
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked -p palisade
if [ "$(id -u)" = 0 ]; then dest=/usr/local/bin; else dest="$HOME/.local/bin"; fi
mkdir -p "$dest"
install -m 0755 target/release/palisade "$dest/palisade"
echo "installed $dest/palisade"
case ":$PATH:" in *":$dest:"*) ;; *) echo "note: add $dest to your PATH";; esac
"$dest/palisade" check || true
ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT
cd "$ws"
"$dest/palisade" run -- sh -c 'echo "hello from the sandbox: $(pwd) is writable, $HOME is not"; echo ok > proof; touch "$HOME/palisade-was-here" 2>/dev/null || echo "(writing to $HOME was refused, as it should be)"'
