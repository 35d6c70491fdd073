#!/bin/bash
# Installs what the benchmark compares against (bubblewrap). Idempotent and quiet: does nothing
# when bwrap is already on PATH. Needs root (or sudo) and Debian/Ubuntu's apt-get.
set -euo pipefail

if command -v bwrap >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "bench/setup.sh: bwrap is missing and this is not root (no sudo either): the bubblewrap rows will be skipped" >&2
        exit 0
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench/setup.sh: no apt-get here; install bubblewrap by hand to get the bubblewrap rows" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq bubblewrap >/dev/null 2>&1; then
    # The package lists may be missing or stale (a fresh container): refresh once and retry.
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    $SUDO apt-get install -y -qq bubblewrap >/dev/null 2>&1 || {
        echo "bench/setup.sh: could not install bubblewrap: the bubblewrap rows will be skipped" >&2
        exit 0
    }
fi
