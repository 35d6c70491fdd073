#!/usr/bin/env bash
# Installs Palisade from this checkout and runs a first sandboxed command.
#   - the Debian packages the build needs, and a stable Rust through rustup when cargo is
#     missing (scripts/deps.sh)
#   - `palisade` built in release mode, copied to /usr/local/bin (root) or ~/.local/bin
#   - `palisade check` for this host, then a command in a scratch workspace
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# A Rust that deps.sh just installed is not on this shell's PATH yet.
command -v cargo >/dev/null || . "$HOME/.cargo/env"
cargo build --release --locked -p palisade
if [ "$(id -u)" = 0 ]; then dest=/usr/local/bin; else dest="$HOME/.local/bin"; fi
mkdir -p "$dest"
install -m 0755 target/release/palisade "$dest/palisade"
echo "installed $dest/palisade"
case ":$PATH:" in *":$dest:"*) ;; *) echo "note: add $dest to your PATH";; esac
if [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)" = 1 ] && [ "$(id -u)" != 0 ]; then
    # Ubuntu 23.10 and later: unprivileged user namespaces need an AppArmor profile. The full
    # path, because sudo does not search ~/.local/bin.
    echo "note: AppArmor restricts user namespaces on this host; allow them for Palisade once with:"
    echo "    sudo $dest/palisade setup"
fi
"$dest/palisade" check || true
ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT
cd "$ws"
"$dest/palisade" run -- sh -c 'echo "hello from the sandbox: $(pwd) is writable, $HOME is not"; echo ok > proof; touch "$HOME/palisade-was-here" 2>/dev/null || echo "(writing to $HOME was refused, as it should be)"'
