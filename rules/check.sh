#!/usr/bin/env bash
# Check the Prometheus rules, run their unit tests and check the Alertmanager
# config. Run from anywhere; exits non-zero on the first failure.
#
# amtool check-config (0.25) does not open credentials_file, so the config is
# checked as it is, without /etc/blast-radius/webhook-token on this machine.
# Alertmanager reads that file only when it delivers.
set -euo pipefail

cd "$(dirname "$0")/.."

for tool in promtool amtool; do
    command -v "$tool" >/dev/null || { echo "$tool not found (Debian: prometheus, prometheus-alertmanager)" >&2; exit 1; }
done

promtool check rules prometheus-rules.yml
promtool test rules rules/*.yml
amtool check-config alertmanager.yml
