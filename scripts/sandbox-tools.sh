#!/usr/bin/env bash
# Install what evidence jobs need to run candidates' code in a sandbox (tasks/evidence):
# bubblewrap (bwrap), plus git and util-linux's setpriv and prlimit, from Debian's packages
# when missing. Harmless when everything is there.
set -euo pipefail

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v git >/dev/null 2>&1 || missing+=(git)
{ command -v setpriv >/dev/null 2>&1 && command -v prlimit >/dev/null 2>&1; } \
    || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0

runner=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "sandbox-tools.sh: missing ${missing[*]}; install them (not root, no sudo)" >&2
        exit 1
    }
    runner=(sudo)
fi
command -v apt-get >/dev/null 2>&1 || {
    echo "sandbox-tools.sh: apt-get not found; install ${missing[*]} yourself" >&2
    exit 1
}
echo "sandbox-tools.sh: installing ${missing[*]} with apt-get" >&2
"${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
