#!/usr/bin/env bash
# Set up and run the receiver on http://127.0.0.1:8080.
# Without REDIS_URL it uses an embedded in-memory store (one process, nothing persisted).
# Tokens come from the environment, else from .dev-tokens (generated on first run).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[embedded]'

if [ ! -f .dev-tokens ]; then
  .venv/bin/python - > .dev-tokens <<'PY'
import secrets
for name in ("RECEIVER_WEBHOOK_TOKEN", "RECEIVER_API_TOKEN", "RECEIVER_ADMIN_TOKEN"):
    print(f"{name}={secrets.token_urlsafe(24)}")
PY
  chmod 600 .dev-tokens
fi
while IFS='=' read -r name value; do
  [ -n "${!name:-}" ] || export "$name=$value"
done < .dev-tokens

# Trial timings so a demo recovers in seconds; unset them (or set your own) for real use.
export BREAKER_OPEN_TIMEOUT_S="${BREAKER_OPEN_TIMEOUT_S:-10}"
export BREAKER_HALF_OPEN_PROBATION_S="${BREAKER_HALF_OPEN_PROBATION_S:-10}"
export RECEIVER_SWEEP_INTERVAL_S="${RECEIVER_SWEEP_INTERVAL_S:-1}"

echo "blast-radius receiver on http://${BIND:-127.0.0.1:8080} (development tokens):"
for name in RECEIVER_WEBHOOK_TOKEN RECEIVER_API_TOKEN RECEIVER_ADMIN_TOKEN; do
  echo "  export $name=${!name}"
done
echo "trial timings: open ${BREAKER_OPEN_TIMEOUT_S}s, probation ${BREAKER_HALF_OPEN_PROBATION_S}s;" \
     "try it: .venv/bin/blast-radius demo"
exec .venv/bin/blast-radius serve --bind "${BIND:-127.0.0.1:8080}"
