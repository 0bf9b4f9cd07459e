#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh Debian/Ubuntu machine:
# installs redis-server, Prometheus, Alertmanager, nginx and Chromium with apt when missing (as root),
# builds .venv, then runs linters, type checks, rule checks and pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v promtool >/dev/null || missing+=(prometheus)
{ command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; } \
  || missing+=(prometheus-alertmanager)
{ command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: ${missing[*]} not installed and cannot apt-get install as non-root;" \
         "the tests that need them will skip (or fail when CI=true)" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check receiver tests bench
.venv/bin/ruff format --check receiver tests bench
.venv/bin/mypy
bash rules/check.sh
.venv/bin/python -m pytest "$@"
