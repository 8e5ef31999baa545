#!/usr/bin/env bash
# Run the test suite against a throwaway PostgreSQL + Redis (see scripts/services.sh).
# Arguments are passed to pytest. The services and their folder are always removed,
# and the exit code is pytest's.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"

mkdir -p .local
dir=$(mktemp -d "$ROOT/.local/test.XXXXXX")

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    scripts/services.sh stop "$dir" || echo "test.sh: warning: could not stop services in $dir" >&2
    # DIR/pg is a symlink into /tmp when the postgres user cannot traverse the checkout
    if [ -L "$dir/pg" ]; then
        rm -rf -- "$(readlink -f "$dir/pg")"
    fi
    rm -rf -- "$dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/browser.sh  # Chromium for the browser tests (tests/web)
FAST_UNSAFE_PG=1 scripts/services.sh start "$dir"
scripts/sandbox-tools.sh

set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
export DATABASE_URL REDIS_URL

# pyproject.toml's [tool.pytest.ini_options] names the test settings module
# (marlin.settings_test); an exported DJANGO_SETTINGS_MODULE would override it,
# so only fall back to marlin.settings when no configuration names one.
if [ -z "${DJANGO_SETTINGS_MODULE:-}" ] \
    && ! grep -qs DJANGO_SETTINGS_MODULE pyproject.toml pytest.ini setup.cfg tox.ini; then
    export DJANGO_SETTINGS_MODULE=marlin.settings
fi

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
exit "$rc"
