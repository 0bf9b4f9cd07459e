"""Redis memory per tenant and per incident, on the deployed shape: gunicorn (2 workers)
and a real redis-server, everything through the webhook.

Three measurements:
1. Load: `--tenants` registered tenants receive `--alerts` alert states in payloads
   of `--batch` alerts. Each tenant cycles through three rules (TenantErrorRateHigh
   which isolates, TenantErrorBudgetBurn, TenantTrafficStopped), firing then
   resolved, so it ends with three stored alerts, every state's delivery key, and
   its breaker's transitions. The guard is off (every tenant may be isolated: the
   largest per-tenant state). Reported: `INFO memory` used_memory before and after,
   and `MEMORY USAGE` summed per kind of key.
2. The transition log at its cap: one tenant forced open and closed past the cap.
3. Incidents: `--incidents` tenants fail one at a time, each in its own incident
   (correlation window near zero); they recover, the incidents resolve, and after
   `INCIDENT_RETENTION_S` the sweep deletes them.

Run: .venv/bin/python -m bench.memory [--tenants N] [--alerts N] [--incidents N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from tests.conftest import ADMIN, READER, TOKENS_ENV, WEBHOOK
from tests.servers import Receiver, RedisServer, wait_for

RULES: tuple[dict[str, str], ...] = (
    {"alertname": "TenantErrorRateHigh", "action": "isolate", "severity": "critical"},
    {"alertname": "TenantErrorBudgetBurn", "severity": "page"},
    {"alertname": "TenantTrafficStopped", "severity": "warning"},
)
CYCLE = (0, 0, 1, 0, 0, 1, 2, 2, 0, 0)
"""Which rule each of a tenant's alert states belongs to; states alternate firing and
resolved per rule."""
TIERS = ("platinum", "gold", "silver", "bronze")
RUNBOOK = "https://github.com/blast-radius/blast-radius/blob/main/docs/runbooks/"


def rfc3339(epoch_s: float) -> str:
    millis = round(epoch_s * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(millis // 1000))}.{millis % 1000:03d}Z"


def alert_state(tenant: int, state_no: int, base: float) -> dict[str, Any]:
    """The tenant's `state_no`-th alert state, shaped as Alertmanager sends it."""
    tenant_id = f"t{tenant:05d}"
    rule = RULES[CYCLE[state_no % len(CYCLE)]]
    episode = sum(1 for s in range(state_no) if CYCLE[s % len(CYCLE)] == CYCLE[state_no % 10])
    firing = episode % 2 == 0
    starts = base + (episode // 2) * 600 + tenant % 60
    name = rule["alertname"]
    return {
        "status": "firing" if firing else "resolved",
        "labels": {**rule, "tenant_id": tenant_id, "tier": TIERS[tenant % 4], "job": "rag"},
        "annotations": {
            "summary": f"{name} for tenant {tenant_id}",
            "description": f"Tenant {tenant_id} (tier {TIERS[tenant % 4]}): {name} "
            "crossed its threshold; see the runbook for what the receiver does next.",
            "runbook_url": f"{RUNBOOK}{name}.md",
        },
        "startsAt": rfc3339(starts),
        "endsAt": "0001-01-01T00:00:00Z" if firing else rfc3339(starts + 300),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=tenant_id%3Arag&g0.tab=1",
        "fingerprint": f"{tenant:05d}{CYCLE[state_no % 10]:011x}",
    }


def notification(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "receiver": "blast-radius",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": alerts,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
    }


def payloads(
    tenants: int, states: int, batch: int, base: float, first_state: int = 0
) -> Iterator[dict[str, Any]]:
    """`states` alert states per tenant, round by round, `batch` alerts a payload."""
    pending: list[dict[str, Any]] = []
    for state_no in range(first_state, first_state + states):
        for tenant in range(tenants):
            pending.append(alert_state(tenant, state_no, base))
            if len(pending) == batch:
                yield notification(pending)
                pending = []
    if pending:
        yield notification(pending)


def deliver(url: str, bodies: Iterator[dict[str, Any]]) -> int:
    """Post every payload in order; the number of alerts accepted."""
    accepted = 0
    with requests.Session() as session:
        for body in bodies:
            response = session.post(url, json=body, headers=WEBHOOK, timeout=120)
            response.raise_for_status()
            accepted += response.json()["accepted"]
    return accepted


def registry(path: Path, tenants: int) -> Path:
    path.write_text(
        "tenants:\n" + "".join(f"  t{i:05d}: {{tier: {TIERS[i % 4]}}}\n" for i in range(tenants))
    )
    return path


def kind_of(key: str) -> str:
    """The kind of a key, for summing its memory with its likes."""
    if key.startswith("rq:") or key.startswith("br:{_notify}"):
        return "notifications"
    tag, _, name = key.partition("}:")
    tag = tag.removeprefix("br:{")
    if tag == "_incidents":
        kind, colon, _ = name.partition(":")
        per_incident = {"incident": "documents", "timeline": "timelines", "update-held": "held"}
        if colon and kind in per_incident:
            return f"incident {per_incident[kind]}"
        return f"incidents {name}"
    if tag == "_global":
        return f"global {name}"
    if tag == "_platform":
        return "platform scope"
    return f"tenant {name}"


@dataclass
class Usage:
    used_memory: int
    bytes_by_kind: dict[str, int] = field(default_factory=dict)
    keys_by_kind: dict[str, int] = field(default_factory=dict)
    entries_by_kind: dict[str, int] = field(default_factory=dict)
    """List, hash, set and zset entries (strings count as one)."""


def usage(client: redis.Redis) -> Usage:
    """`INFO memory` and exact `MEMORY USAGE` of every key, summed by kind."""
    found = Usage(int(client.info("memory")["used_memory"]))
    sizes: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    entries: dict[str, int] = defaultdict(int)
    keys = list(client.scan_iter(count=1000))
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.memory_usage(key, samples=0)
            pipe.type(key)
        replies = pipe.execute()
        pipe = client.pipeline(transaction=False)
        for key, kind in zip(chunk, replies[1::2], strict=True):
            {
                "list": pipe.llen,
                "hash": pipe.hlen,
                "set": pipe.scard,
                "zset": pipe.zcard,
            }.get(kind, pipe.exists)(key)
        lengths = pipe.execute()
        for key, size, length in zip(chunk, replies[0::2], lengths, strict=True):
            name = kind_of(key)
            sizes[name] += int(size or 0)
            counts[name] += 1
            entries[name] += int(length)
    found.bytes_by_kind, found.keys_by_kind, found.entries_by_kind = (
        dict(sizes),
        dict(counts),
        dict(entries),
    )
    return found


def per_tenant_bytes(found: Usage, tenants: int) -> float:
    """Every tenant key, plus the tenant's entries in the global index and isolated set."""
    shared = ("global tenants", "global isolated")
    total = sum(v for k, v in found.bytes_by_kind.items() if k.startswith("tenant ") or k in shared)
    return total / tenants


def settled(client: redis.Redis, receiver: Receiver) -> bool:
    """No tenant isolated, no incident open, and nothing left past retention."""
    open_now = requests.get(
        f"{receiver.url}/api/v1/incidents", params={"status": "open"}, headers=READER, timeout=30
    ).json()["total"]
    return not client.scard("br:{_global}:isolated") and not open_now


def report(title: str, found: Usage, baseline: Usage | None = None) -> None:
    print(f"\n{title}")
    if baseline is not None:
        delta = found.used_memory - baseline.used_memory
        print(f"  used_memory {found.used_memory:>12,d} B  (+{delta:,d} B over the baseline)")
    for name in sorted(found.bytes_by_kind):
        size = found.bytes_by_kind[name]
        keys, entries = found.keys_by_kind[name], found.entries_by_kind[name]
        each = f"{size / entries:8.0f} B/entry" if entries else ""
        print(f"  {name:<28} {keys:>7,d} keys {entries:>9,d} entries {size:>12,d} B {each}")


def start(redis_server: RedisServer, env: Mapping[str, str]) -> Receiver:
    return Receiver({**TOKENS_ENV, "REDIS_URL": redis_server.url, **env}, workers=2).start()


def load(redis_server: RedisServer, tenants: int, alerts: int, batch: int) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "TENANTS_FILE": str(registry(Path(tmp) / "tenants.yml", tenants)),
            "GUARD_MAX_ISOLATED_PERCENT": "100",
        }
        receiver = start(redis_server, env)
        try:
            baseline = usage(client)
            report(f"baseline: {tenants:,d} registered tenants", baseline)
            began = time.monotonic()
            states = max(1, alerts // tenants)
            url = f"{receiver.url}/webhook/alertmanager"
            accepted = deliver(url, payloads(tenants, states, batch, time.time() - 3600))
            took = time.monotonic() - began
            print(f"\n{accepted:,d} alert states accepted in {took:.0f}s")
            loaded = usage(client)
            report(f"after {tenants * states:,d} alert states", loaded, baseline)
            delta = loaded.used_memory - baseline.used_memory
            print(f"\n  used_memory per tenant (delta / tenants): {delta / tenants:,.0f} B")
            print(
                "  MEMORY USAGE per tenant (all its keys):  "
                f"{per_tenant_bytes(loaded, tenants):,.0f} B"
            )

            capped = "t00000"
            for i in range(220):
                action = "force_open" if i % 2 == 0 else "force_close"
                requests.post(
                    f"{receiver.url}/api/v1/tenants/{capped}/breaker",
                    json={"action": action},
                    headers=ADMIN,
                    timeout=30,
                ).raise_for_status()
            key = f"br:{{{capped}}}:transitions"
            print(
                f"\ntransition log at its cap: {client.llen(key)} entries, "
                f"{client.memory_usage(key, samples=0):,d} B"
            )
        finally:
            receiver.stop()
    client.flushall()


def incidents(redis_server: RedisServer, count: int, retention_s: float) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    env = {
        "GUARD_MAX_ISOLATED_PERCENT": "100",
        "INCIDENT_CORRELATION_WINDOW_S": "0.001",
        "INCIDENT_RETENTION_S": str(retention_s),
        "BREAKER_OPEN_TIMEOUT_S": "1",
        "BREAKER_HALF_OPEN_PROBATION_S": "1",
        "RECEIVER_SWEEP_INTERVAL_S": "0.2",
    }
    receiver = start(redis_server, env)
    try:
        url = f"{receiver.url}/webhook/alertmanager"
        baseline = usage(client)
        base = time.time() - 600
        with requests.Session() as session:
            for tenant in range(count):
                for state_no in (0, 1):
                    body = notification([alert_state(tenant, state_no, base)])
                    session.post(url, json=body, headers=WEBHOOK, timeout=30).raise_for_status()
        wait_for(lambda: settled(client, receiver), 120, "every incident to resolve")
        resolved = usage(client)
        report(f"{count} one-tenant incidents, resolved", resolved, baseline)
        docs = resolved.bytes_by_kind.get("incident documents", 0)
        docs += resolved.bytes_by_kind.get("incident timelines", 0)
        present = resolved.keys_by_kind.get("incident documents", 0)
        indexes = sum(v for k, v in resolved.bytes_by_kind.items() if k.startswith("incidents "))
        print(
            f"\n  per incident: document and timeline {docs / max(present, 1):,.0f} B, "
            f"indexes and delivery keys {indexes / count:,.0f} B ({present} of {count} present)"
        )
        wait_for(lambda: not client.zcard("br:{_incidents}:created"), 60, "retention")
        pruned = usage(client)
        report(f"after retention ({retention_s:g}s)", pruned, baseline)
    finally:
        receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--retention", type=float, default=30.0)
    args = parser.parse_args()
    redis_server = RedisServer().start()
    try:
        load(redis_server, args.tenants, args.alerts, args.batch)
        incidents(redis_server, args.incidents, args.retention)
    finally:
        redis_server.stop()


if __name__ == "__main__":
    main()
