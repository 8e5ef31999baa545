#!/usr/bin/env bash
# Make sure Debian's Chromium is there for the browser tests (Playwright drives it; nothing is
# downloaded but the distribution's package). Harmless when it is already installed.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
runner=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 \
        || { echo "browser.sh: Chromium missing and not root without sudo; install: chromium" >&2; exit 1; }
    runner=(sudo)
fi
command -v apt-get >/dev/null 2>&1 \
    || { echo "browser.sh: apt-get not found; install Chromium yourself" >&2; exit 1; }
echo "browser.sh: installing chromium with apt-get" >&2
"${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
