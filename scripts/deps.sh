#!/usr/bin/env bash
# Installs the Debian packages Palisade's build and tests need (idempotent, quiet when done).
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v python3 >/dev/null || need+=(python3)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v useradd >/dev/null || need+=(passwd)
command -v su >/dev/null || need+=(util-linux)
# The escape tests attach a debugger, and the fault tests inject a SIGKILL at a chosen write
# (tests/placeholder_faults.rs); without them those tests would fail.
command -v strace >/dev/null || need+=(strace)
command -v gdb >/dev/null || need+=(gdb)
# The network allowlist's tests build a fake internet (ip netns), serve HTTPS (a certificate
# made by openssl) and drive curl, git, pip and npm through the proxy (tests/net_allow.rs).
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl ca-certificates)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v npm >/dev/null || need+=(npm)
# ... and git over ssh through the proxy's SOCKS5 (an ssh ProxyCommand).
command -v ssh >/dev/null || need+=(openssh-client)
# tests/mcp.rs installs the official MCP Python SDK (`mcp` from PyPI) into a virtual environment.
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${need[*]} (install them, or run this script as root)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Rust: a current stable toolchain the standard way (rustup, into ~/.cargo, minimal profile plus
# clippy) when cargo is missing. Callers source ~/.cargo/env afterwards (see rust_env below).
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    echo "cargo is missing: installing the current stable Rust with rustup (https://rustup.rs) into $HOME/.cargo" >&2
    if ! command -v curl >/dev/null; then
        if [ "$(id -u)" != 0 ]; then
            echo "curl is missing too (install curl, or Rust from https://rustup.rs, then run this again)" >&2
            exit 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
    fi
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy >&2 ||
        { echo "installing Rust with rustup failed (see above); install it from https://rustup.rs and run this again" >&2; exit 1; }
fi
