"""Every Redis key blast-radius uses, built here and nowhere else.

All keys start with `br:` and carry a hash tag, so related keys share a cluster slot.
A *scope* is a tenant id, or `_platform` for alerts that name no tenant; ids that
start with `_` are not valid tenant ids, so the tags below cannot collide with one.

Per scope (`br:{<scope>}:...`):
- `state`        hash: `version` and the breaker's fields
- `transitions`  list: breaker transitions as JSON, newest first, capped
- `seen`         zset: delivery keys of alert states already applied, scored by expiry
- `alerts`       hash: fingerprint -> the alert's latest state as JSON; a resolved
                 alert's record goes after the idempotency TTL
- `resolved`     zset: fingerprints of resolved alerts, scored by when they resolved
- `tenant`       hash: `tier` (set through the API), `tier_label` (last seen on an
                 alert), `first_seen_at`

Global (`br:{_global}:...`):
- `tenants`      zset: every known tenant (registry and seen), scored by first seen
- `isolated`     set: tenants holding an isolation slot (breaker open, half open or
                 forced open); the blast-radius guard caps its size
- `admission`    hash: the gateways' deny-list. Tenant -> its breaker as the feed
                 needs it, tab-separated: state, opened_at, half_open_at, open_count,
                 firing (1/0), for every tenant open, half open or forced open; and
                 `_version`, a counter that moves with every entry change. Follows
                 each breaker commit in the next round trip (`admission.SYNC`), so
                 the feed is one `HGETALL`; the sweep repairs what a crash left
- `admission-versions` hash: tenant -> the breaker version its entry follows (a
                 racing writer with an older breaker leaves the entry alone)
- `slot-doubts`  hash: tenant -> `<version>:<0|1>`, a slot that disagreed with the
                 tenant's breaker at that version in the last sweep; repaired if it
                 still does at the same version in the next one
- `watchdog`     string: when the Watchdog alert last arrived
- `shared-causes` hash: fingerprint -> the latest state of a shared-cause alert
                 (`PlatformErrorRateHigh`, `TenantNoisyNeighbor`), tab-separated:
                 status, event time, last seen, alertname, tenant
- `fence`        string: written after a delivery's commits when `REDIS_MIN_REPLICAS`
                 is set; its acknowledgement by replicas (`WAIT`) covers every write
                 the delivery made before it
- `ready-probe`  string: `/readyz`'s test write, expiring after 10 s
- `sweep-lock`   string: which process runs the periodic sweep now
- `reconcile-lock` string: which process reconciles with Alertmanager this interval
- `watchdog-alerted` string: set while a "Watchdog missing" notice is out

Incidents (`br:{_incidents}:...`):
- `state`        hash: `version`, current open incident per scope, per-day id counters
- `incident:<id>` string: one incident's header as JSON: its scalars, culprits and
                 the tallies that rank it (tenants per tier, live alerts, counts)
- `<part>:<id>`  hash, one per collection of the incident (`incident_doc.COLLECTIONS`):
                 `tenants` (tenant -> tier), `alerts` (fingerprint -> JSON),
                 `isolated_at`, `victims` (tenant -> time), `suppressed`,
                 `group_keys` (-> order of arrival), `alert_tally` (tenant ->
                 [live, all] alerts); a change writes only the entries it touched
- `timeline:<id>` list: the incident's timeline events as JSON, oldest first; the
                 first event and the newest are kept (trimmed in batches)
- `notes:<id>`   list: the incident's notes as JSON, oldest first (at most
                 `incidents.NOTES_CAP`)
- `created`      zset: incident id scored by creation time (listing, newest first)
- `resolved`     zset: resolved incident id scored by resolution time (retention)
- `seen`         zset: delivery keys of alert states already applied to incidents,
                 scored by expiry (a retried delivery is not applied twice)
- `outbox`       list: notices (JSON) committed with the incident change that caused
                 them, waiting to be turned into notifications
- `drain-lock`   string: which process is draining the outbox now
- `turn`         string: which process is changing the board now (a short lock that
                 queues concurrent changes; correctness rests on the version)
- `update-sent`  hash: incident id -> when its latest notification went out
- `update-due`   zset: incident id -> when its deferred tenant-level update is due
- `update-deferred:<id>` set: kinds of the notices deferred for that incident, and
                 `<kind>:<tenant>` for the tenants they name

Notifications (`br:{_notify}:...`):
- `delivery:<id>` string: one delivery (channel, payload, status, attempts) as JSON
- `deliveries`   zset: delivery ids scored by creation time
- `rate:<dest>`  string: when the destination may next be called (rate limit)

The notification queue itself is rq's, under its own `rq:` prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

PREFIX = "br"
GLOBAL_TAG = "_global"
INCIDENTS_TAG = "_incidents"

TENANTS = f"{PREFIX}:{{{GLOBAL_TAG}}}:tenants"
ISOLATED = f"{PREFIX}:{{{GLOBAL_TAG}}}:isolated"
ADMISSION = f"{PREFIX}:{{{GLOBAL_TAG}}}:admission"
ADMISSION_VERSIONS = f"{PREFIX}:{{{GLOBAL_TAG}}}:admission-versions"
SLOT_DOUBTS = f"{PREFIX}:{{{GLOBAL_TAG}}}:slot-doubts"
WATCHDOG = f"{PREFIX}:{{{GLOBAL_TAG}}}:watchdog"
SHARED_CAUSES = f"{PREFIX}:{{{GLOBAL_TAG}}}:shared-causes"
SWEEP_LOCK = f"{PREFIX}:{{{GLOBAL_TAG}}}:sweep-lock"
READY_PROBE = f"{PREFIX}:{{{GLOBAL_TAG}}}:ready-probe"
FENCE = f"{PREFIX}:{{{GLOBAL_TAG}}}:fence"
RECONCILE_LOCK = f"{PREFIX}:{{{GLOBAL_TAG}}}:reconcile-lock"

WATCHDOG_ALERTED = f"{PREFIX}:{{{GLOBAL_TAG}}}:watchdog-alerted"
NOTIFY_TAG = "_notify"
DELIVERIES = f"{PREFIX}:{{{NOTIFY_TAG}}}:deliveries"

INCIDENTS_STATE = f"{PREFIX}:{{{INCIDENTS_TAG}}}:state"
INCIDENTS_CREATED = f"{PREFIX}:{{{INCIDENTS_TAG}}}:created"
INCIDENTS_RESOLVED = f"{PREFIX}:{{{INCIDENTS_TAG}}}:resolved"
INCIDENTS_SEEN = f"{PREFIX}:{{{INCIDENTS_TAG}}}:seen"
INCIDENTS_OUTBOX = f"{PREFIX}:{{{INCIDENTS_TAG}}}:outbox"
INCIDENTS_DRAIN_LOCK = f"{PREFIX}:{{{INCIDENTS_TAG}}}:drain-lock"
INCIDENTS_TURN = f"{PREFIX}:{{{INCIDENTS_TAG}}}:turn"
INCIDENTS_HANDOFF = f"{PREFIX}:{{{INCIDENTS_TAG}}}:handoff"
UPDATES_SENT = f"{PREFIX}:{{{INCIDENTS_TAG}}}:update-sent"
UPDATES_DUE = f"{PREFIX}:{{{INCIDENTS_TAG}}}:update-due"


def scope_key(scope: str, name: str) -> str:
    return f"{PREFIX}:{{{scope}}}:{name}"


def scope_keys(scope: str, names: Sequence[str]) -> list[str]:
    """`scope_key` of each name, the scope's part built once (a storm builds 90,000)."""
    base = f"{PREFIX}:{{{scope}}}:"
    return [base + name for name in names]


def incident_key(incident_id: str) -> str:
    return f"{PREFIX}:{{{INCIDENTS_TAG}}}:incident:{incident_id}"


def incident_part_key(incident_id: str, part: str) -> str:
    return f"{PREFIX}:{{{INCIDENTS_TAG}}}:{part}:{incident_id}"


def timeline_key(incident_id: str) -> str:
    return f"{PREFIX}:{{{INCIDENTS_TAG}}}:timeline:{incident_id}"


def notes_key(incident_id: str) -> str:
    return f"{PREFIX}:{{{INCIDENTS_TAG}}}:notes:{incident_id}"


def deferred_update_key(incident_id: str) -> str:
    return f"{PREFIX}:{{{INCIDENTS_TAG}}}:update-deferred:{incident_id}"


def delivery_key(delivery_id: str) -> str:
    return f"{PREFIX}:{{{NOTIFY_TAG}}}:delivery:{delivery_id}"


def rate_key(destination: str) -> str:
    return f"{PREFIX}:{{{NOTIFY_TAG}}}:rate:{destination}"
