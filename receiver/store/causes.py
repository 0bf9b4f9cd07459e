"""The records of shared-cause alerts (see `receiver.causes`), in one small hash."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from receiver.alerts import Alert
from receiver.causes import CauseRecord, SharedCause
from receiver.store import keys as k

# KEYS[1] shared-causes hash: fingerprint -> "<firing|resolved>\t<event at>\t<seen at>
#         \t<alertname>\t<tenant id or empty>"
# ARGV[1] now, ARGV[2] forget before (records last seen before it are deleted), then
# groups of five: fingerprint, status, event time, alertname, tenant id.
# A record is replaced only by a later event, or by the same state seen again; so a
# late copy of a firing state after its resolution changes nothing.
# Returns the number of records changed.
RECORD_CAUSES = """
local changed = 0
for i = 3, #ARGV, 5 do
  local fp, status, event_at = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local old = redis.call('HGET', KEYS[1], fp)
  local take = true
  if old then
    local old_status, old_at = string.match(old, '^(%a+)\\t([^\\t]+)\\t')
    old_at = tonumber(old_at)
    if event_at < old_at then take = false end
    if event_at == old_at and old_status == 'resolved' and status == 'firing' then
      take = false
    end
  end
  if take then
    local value = status .. '\\t' .. ARGV[i + 2] .. '\\t' .. ARGV[1] .. '\\t'
      .. ARGV[i + 3] .. '\\t' .. ARGV[i + 4]
    redis.call('HSET', KEYS[1], fp, value)
    changed = changed + 1
  end
end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local seen_at = tonumber(string.match(all[i + 1], '^%a+\\t[^\\t]+\\t([^\\t]+)\\t'))
  if seen_at < tonumber(ARGV[2]) then redis.call('HDEL', KEYS[1], all[i]) end
end
return changed
"""


def _record(fingerprint: str, value: str) -> CauseRecord:
    status, event_at, seen_at, alertname, tenant_id = value.split("\t")
    return CauseRecord(
        fingerprint,
        alertname,
        tenant_id or None,
        status == "firing",
        float(event_at),
        float(seen_at),
    )


class CauseStore:
    def __init__(self, client: redis.Redis, *, max_age_s: float) -> None:
        self.client = client
        self.max_age_s = max_age_s
        self._record = client.register_script(RECORD_CAUSES)

    def record(self, alerts: Iterable[Alert], now: float) -> None:
        """Apply the states of shared-cause alerts. Duplicates are applied too: they
        refresh a firing record, and a retry after a crash still records the cause."""
        args: list[str] = [repr(now), repr(now - 2 * self.max_age_s)]
        for alert in alerts:
            firing = alert.firing or alert.ends_at_s is None
            event_at = alert.starts_at_s if firing else min(alert.ends_at_s or now, now)
            args += [
                alert.fingerprint,
                "firing" if alert.firing else "resolved",
                repr(max(event_at, alert.starts_at_s)),
                alert.labels.get("alertname", ""),
                alert.tenant_id or "",
            ]
        if len(args) > 2:
            self._record(keys=[k.SHARED_CAUSES], args=args)

    def read(self, now: float) -> SharedCause:
        return self.parse(self.client.hgetall(k.SHARED_CAUSES), now)  # type: ignore[arg-type]

    def parse(self, raw: dict[str, str], now: float) -> SharedCause:
        """The shared cause from the hash as read (`HGETALL` of `keys.SHARED_CAUSES`)."""
        records = [_record(fingerprint, value) for fingerprint, value in raw.items()]
        return SharedCause.of(records, now, self.max_age_s)
