#!/usr/bin/env bash
# Installs the Debian packages Palisade's build and tests need (idempotent, quiet when done).
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v python3 >/dev/null || need+=(python3)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v useradd >/dev/null || need+=(passwd)
command -v su >/dev/null || need+=(util-linux)
# Fault injection (SIGKILL at a chosen write) in tests/placeholder_faults.rs.
command -v strace >/dev/null || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${need[*]} (install them, or run this script as root)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
