"""Turn what happened to tenants into incidents: correlate failing tenants, open a
platform incident when the blast-radius guard holds trips back, put breaker
transitions on the timeline, resolve incidents when everything is quiet, and keep
the board tidy (expired alerts, retention).

Reads the incident board, applies the rules from `incidents`, and commits with a
compare-and-set, retrying when another worker changed the board meanwhile.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from receiver import incidents as rules
from receiver.alerts import Alert, Kind
from receiver.attribution import contain, culprit_figures, describe, name_culprit, note_victim
from receiver.breaker import State
from receiver.commits import MAX_ATTEMPTS, CommitConflict, TransitionEvent
from receiver.config import Settings
from receiver.incidents import Incident, Scope
from receiver.ingest import IngestResult
from receiver.store import Store
from receiver.store.incidents import Board, BoardChange, IncidentStore
from receiver.tenants import Tier, resolve_tier

log = logging.getLogger(__name__)
SHARED_FAILURE = "suspected shared-resource failure"


@dataclass(frozen=True)
class Notice:
    """Something about an incident that people may need to hear about. Committed to
    the board's outbox with the change that caused it, so it survives a crash."""

    kind: str
    incident_id: str
    tenant_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "incident_id": self.incident_id, "tenant_id": self.tenant_id}


@dataclass
class Signals:
    alerts: list[tuple[str, Alert]] = field(default_factory=list)
    """Every valid alert of a delivery with its scope, duplicates included: a retried
    delivery must still reach the board if the first attempt failed after the
    breakers were committed. The board's own delivery keys make this idempotent."""
    fresh: set[str] = field(default_factory=set)
    """Delivery keys the breakers applied for the first time."""
    group_key: str = ""
    tiers: Mapping[str, Tier] = field(default_factory=dict)
    held: Mapping[str, str] = field(default_factory=dict)
    transitions: list[TransitionEvent] = field(default_factory=list)
    partial: bool = False

    @classmethod
    def of(cls, result: IngestResult) -> Signals:
        return cls(
            alerts=result.alerts,
            fresh=result.fresh,
            group_key=result.group_key,
            tiers=result.tiers,
            held=result.held,
            transitions=result.transitions,
            partial=result.partial,
        )

    def board_keys(self) -> list[str]:
        """Delivery keys of the alerts incidents care about (isolation, platform)."""
        return [a.delivery_key for _, a in self.alerts if on_board(a)]


def is_platform_problem(alert: Alert) -> bool:
    return alert.kind is Kind.PLATFORM and alert.labels.get("scope") == "platform"


def on_board(alert: Alert) -> bool:
    """The alerts incidents care about: isolation, the platform's, and victims'."""
    return alert.kind is Kind.ISOLATE or alert.victim or is_platform_problem(alert)


class Draft:
    """One attempt's working copy of the board."""

    def __init__(self, board: Board, settings: Settings, now: float) -> None:
        self.board = board
        self.settings = settings
        self.now = now
        self.open = {i: inc for i, inc in board.incidents.items() if inc.is_open}
        self.fields: dict[str, str] = {}
        self.delivery_keys: list[str] = []
        self.seen_keys: set[str] = set()
        self.changed: set[str] = set()
        self.created: set[str] = set()
        self.priority_before: dict[str, rules.Priority] = {}
        self.notices: list[Notice] = []

    def touch(self, incident: Incident) -> Incident:
        self.changed.add(incident.id)
        return incident

    def containing(self, tenant_id: str, scope: Scope) -> Incident | None:
        for incident in self.open.values():
            if incident.scope is scope and tenant_id in incident.tenants:
                return incident
        return None

    def current(self, scope: Scope) -> Incident | None:
        incident_id = self.fields.get(f"current:{scope.value}") or self.board.current(scope.value)
        incident = self.open.get(incident_id or "")
        if incident is None:
            return None
        window = self.settings.incidents.correlation_window_s
        if scope is Scope.TENANT and incident.created_at < self.now - window:
            return None
        return incident

    def new(self, scope: Scope, title: str) -> Incident:
        day = datetime.fromtimestamp(self.now, UTC).strftime("%Y%m%d")
        counter = f"seq:{day}"
        seq = int(self.fields.get(counter) or self.board.fields.get(counter) or 0) + 1
        self.fields[counter] = str(seq)
        incident = rules.open_incident(f"INC-{day}-{seq:04d}", scope, title, self.now)
        self.open[incident.id] = incident
        self.fields[f"current:{scope.value}"] = incident.id
        self.notices.append(Notice("opened", incident.id))
        self.created.add(incident.id)
        return self.touch(incident)

    def join(self, incident: Incident, tenant_id: str, tier: Tier, why: str) -> None:
        """Add a tenant; priority is settled once per attempt in `rank`."""
        self.priority_before.setdefault(incident.id, incident.priority)
        if rules.add_tenant(incident, tenant_id, tier, self.now, why, rank=False):
            self.notices.append(Notice("tenant_joined", incident.id, tenant_id))
        if incident.scope is Scope.TENANT:
            count = len(incident.tenants)
            incident.title = (
                f"tenant {tenant_id} failing" if count == 1 else f"{count} tenants failing"
            )
        self.touch(incident)

    def rank(self) -> None:
        """Reprioritize every incident tenants joined, once; note what rose."""
        for incident_id, before in self.priority_before.items():
            incident = self.open[incident_id]
            rules.reprioritize(incident, self.now)
            if incident.priority is not before:
                self.notices.append(Notice("priority_raised", incident_id))
        self.priority_before.clear()

    def change(self) -> BoardChange:
        still_open = [i for i in self.open if self.open[i].is_open]
        self.fields["open"] = json.dumps(sorted(still_open))
        return BoardChange(
            self.board.version,
            fields=self.fields,
            delivery_keys=self.delivery_keys,
            outbox=outbox_entries(self.notices),
            put={i: self.open[i] for i in self.changed},
        )


def _new_alerts(draft: Draft, signals: Signals, isolated: set[str]) -> list[tuple[str, Alert]]:
    """The alerts this board has not applied yet. A replayed firing isolation alert
    counts only while its tenant is isolated: a held-back or disabled tenant's replay
    must not land in a tenant incident."""
    fresh = []
    for scope, alert in signals.alerts:
        if not on_board(alert):
            continue
        key = alert.delivery_key
        if key in draft.board.seen or key in draft.seen_keys:
            continue
        replayed = key not in signals.fresh
        if replayed and alert.firing and alert.kind is Kind.ISOLATE and scope not in isolated:
            continue
        draft.delivery_keys.append(key)
        draft.seen_keys.add(key)
        fresh.append((scope, alert))
    return fresh


def _name(alert: Alert) -> str:
    return alert.labels.get("alertname", "alert")


def _record(
    incident: Incident, alert: Alert, now: float, tenant_id: str | None, group_key: str
) -> None:
    """Put an alert's current state on an incident."""
    rules.record_alert(
        incident,
        alert.fingerprint,
        _name(alert),
        alert.firing,
        alert.starts_at_s,
        now,
        tenant_id,
        group_key,
    )


def _apply(draft: Draft, signals: Signals, isolated: set[str]) -> None:
    now = draft.now
    alerts = _new_alerts(draft, signals, isolated)
    for tenant_id, alert in alerts:
        if (alert.culprit or alert.victim) and alert.firing:
            _shared(draft, signals, tenant_id, alert)
            continue
        if alert.kind is not Kind.ISOLATE or not alert.firing or tenant_id in signals.held:
            continue
        tier = signals.tiers.get(tenant_id, Tier.BRONZE)
        incident = (
            draft.containing(tenant_id, Scope.TENANT)
            or draft.current(Scope.TENANT)
            or draft.new(Scope.TENANT, f"tenant {tenant_id} failing")
        )
        draft.join(incident, tenant_id, tier, f"{_name(alert)} firing")
        _record(incident, alert, now, tenant_id, signals.group_key)
    held_alerts = {t: a for t, a in alerts if t in signals.held and a.firing}
    for tenant_id, reason in signals.held.items():
        incident = draft.current(Scope.PLATFORM) or draft.new(Scope.PLATFORM, SHARED_FAILURE)
        draft.join(incident, tenant_id, signals.tiers.get(tenant_id, Tier.BRONZE), reason)
        if (held := held_alerts.get(tenant_id)) is not None:
            _record(incident, held, now, tenant_id, signals.group_key)
        if tenant_id not in incident.suppressed:
            incident.suppressed.append(tenant_id)
            incident.log(
                now,
                "isolation_suppressed",
                f"isolation of {tenant_id} held back: {reason}",
                tenant_id,
            )
            draft.notices.append(Notice("isolation_suppressed", incident.id, tenant_id))
    for scope, alert in alerts:
        if is_platform_problem(alert) and alert.firing:
            incident = draft.current(Scope.PLATFORM) or draft.new(Scope.PLATFORM, SHARED_FAILURE)
            _record(incident, alert, now, None, signals.group_key)
            draft.touch(incident)
        elif not alert.firing:
            for incident in list(draft.open.values()):
                if alert.fingerprint in incident.alerts:
                    tenant = None if scope.startswith("_") else scope
                    _record(incident, alert, now, tenant, "")
                    draft.touch(incident)
    for event in signals.transitions:
        t = event.transition
        for incident in list(draft.open.values()):
            if event.tenant_id not in incident.tenants:
                continue
            mark = " (suppressed)" if t.suppressed else ""
            incident.log(
                t.at,
                "breaker",
                f"breaker {t.from_state.value} -> {t.to_state.value}{mark}: {t.reason}",
                event.tenant_id,
            )
            if t.to_state is State.OPEN and not t.suppressed:
                incident.isolated_at.setdefault(event.tenant_id, t.at)
                draft.notices.append(Notice("tenant_isolated", incident.id, event.tenant_id))
            if t.to_state is State.CLOSED:
                draft.notices.append(Notice("tenant_restored", incident.id, event.tenant_id))
            draft.touch(incident)
    if signals.partial:
        for incident_id in draft.changed:
            incident = draft.open[incident_id]
            if not incident.partial:
                incident.partial = True
                incident.log(
                    now,
                    "partial",
                    "Alertmanager truncated alerts: the incident may "
                    "miss tenants (set max_alerts: 0 on the webhook)",
                )
    for incident_id in list(draft.changed):
        if contain(draft.open[incident_id], isolated, now):
            draft.notices.append(Notice("contained", incident_id))
    draft.rank()
    settle(draft, isolated)


def _shared(draft: Draft, signals: Signals, tenant_id: str, alert: Alert) -> None:
    """A culprit or a victim of a shared failure, on the platform incident."""
    now = draft.now
    incident = draft.current(Scope.PLATFORM) or draft.new(Scope.PLATFORM, SHARED_FAILURE)
    tier = signals.tiers.get(tenant_id, Tier.BRONZE)
    if alert.culprit:
        figures = culprit_figures(alert.annotations)
        draft.join(
            incident, tenant_id, tier, f"{_name(alert)} firing: {describe(tenant_id, figures)}"
        )
        if name_culprit(incident, tenant_id, figures, now):
            draft.notices.append(Notice("culprit_named", incident.id, tenant_id))
    else:
        draft.join(incident, tenant_id, tier, f"{_name(alert)} firing: failing with the platform")
        note_victim(incident, tenant_id, alert.starts_at_s)
    _record(incident, alert, now, tenant_id, signals.group_key)


def settle(draft: Draft, isolated: set[str], candidates: Iterable[str] | None = None) -> None:
    """Resolve quiet incidents, after the quiet period if one is set."""
    quiet_period = draft.settings.incidents.quiet_period_s
    ids = draft.changed.copy() if candidates is None else set(candidates)
    for incident_id in ids:
        incident = draft.open[incident_id]
        if not incident.is_open or not rules.quiet(incident, isolated):
            continue
        if incident.quiet_since is None:
            incident.quiet_since = draft.now
            draft.touch(incident)
        if draft.now - incident.quiet_since >= quiet_period:
            rules.resolve(incident, draft.now, "all alerts resolved and no tenant isolated")
            draft.notices.append(Notice("resolved", incident.id))
            draft.touch(incident)


def _costs(
    draft: Draft,
    store: Store,
    settings: Settings,
    registry: Mapping[str, Tier],
    resolved: Mapping[str, Tier],
) -> None:
    """Per-hour cost of each changed incident; the every-known-tenant comparison is
    taken when an incident opens and when it resolves (it walks every tenant).
    `resolved` holds tiers this delivery already resolved, so they are not read again."""
    everyone: float | None = None
    for incident_id in draft.changed:
        incident = draft.open[incident_id]
        incident.cost_per_hour = rules.tenants_cost_per_hour(
            incident.tenants.values(), settings.tier_hourly_cost
        )
        victims = [tier for tenant, tier in incident.tenants.items() if tenant in incident.victims]
        incident.victims_cost_per_hour = rules.tenants_cost_per_hour(
            victims, settings.tier_hourly_cost
        )
        if incident_id in draft.created or not incident.is_open:
            if everyone is None:
                tiers = all_tiers(store, registry, resolved).values()
                everyone = rules.tenants_cost_per_hour(tiers, settings.tier_hourly_cost)
            incident.all_tenants_cost_per_hour = everyone


def all_tiers(
    store: Store, registry: Mapping[str, Tier], resolved: Mapping[str, Tier] | None = None
) -> dict[str, Tier]:
    """Every known tenant's tier; those in `resolved` are taken from there."""
    resolved = resolved or {}
    tiers: dict[str, Tier] = {}
    for batch in store.iter_known_tenants():
        unread = []
        for tenant_id in batch:
            if tenant_id in resolved:
                tiers[tenant_id] = resolved[tenant_id]
            else:
                unread.append(tenant_id)
        for tenant_id, (override, label) in store.tier_fields(unread).items():
            tiers[tenant_id] = resolve_tier(override, registry.get(tenant_id), label).tier
    return tiers


def update(
    incidents: IncidentStore,
    store: Store,
    settings: Settings,
    registry: Mapping[str, Tier],
    signals: Signals,
    now: float,
    tidy: bool = False,
) -> list[Notice]:
    """Apply signals to the incident board; with `tidy`, also expire and settle."""
    keys = signals.board_keys()
    if not (tidy or signals.held or signals.transitions or incidents.unseen(keys, now)):
        return []  # a repeat of what the board already has: skip reading incidents
    with incidents.turn():
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.001 * min(attempt, 10)))
            draft = Draft(incidents.board(now, delivery_keys=keys), settings, now)
            isolated = store.isolated()
            _apply(draft, signals, isolated)
            if tidy:
                for incident in draft.open.values():
                    if rules.expire_alerts(incident, now, settings.incidents.alert_timeout_s):
                        draft.touch(incident)
                settle(draft, isolated, candidates=list(draft.open))
            if not draft.changed:
                return []
            _costs(draft, store, settings, registry, signals.tiers)
            if incidents.commit(draft.change(), now):
                log_notices(draft.notices)
                return draft.notices
    raise CommitConflict("incident board still contended")


def outbox_entries(notices: list[Notice]) -> list[str]:
    """One outbox entry per incident: the kinds of its notices and, per kind, the
    tenants they name. A payload that makes 10,000 tenants join is one entry, not
    20,000."""
    grouped: dict[str, dict[str, set[str]]] = {}
    for notice in notices:
        tenants = grouped.setdefault(notice.incident_id, {}).setdefault(notice.kind, set())
        if notice.tenant_id:
            tenants.add(notice.tenant_id)
    return [
        json.dumps(
            {
                "incident_id": i,
                "kinds": sorted(changes),
                "changes": {kind: sorted(t) for kind, t in changes.items() if t},
            }
        )
        for i, changes in grouped.items()
    ]


def log_notices(notices: list[Notice]) -> None:
    """One line per incident, with counts, however many tenants joined."""
    by_incident: dict[str, Counter[str]] = {}
    for notice in notices:
        by_incident.setdefault(notice.incident_id, Counter())[notice.kind] += 1
    for incident_id, kinds in by_incident.items():
        summary = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in kinds.items())
        log.info("incident %s: %s", incident_id, summary, extra={"incident_id": incident_id})


def prune(incidents: IncidentStore, settings: Settings, now: float) -> int:
    """Delete resolved incidents older than the retention, keeping indexes consistent."""
    ids = incidents.resolved_before(now - settings.incidents.retention_s)
    if not ids:
        return 0
    for _ in range(MAX_ATTEMPTS):
        board = incidents.board(now)
        if incidents.commit(BoardChange(board.version, delete=ids), now):
            return len(ids)
    raise CommitConflict("incident board still contended")


def edit(
    incidents: IncidentStore,
    incident_id: str,
    change: Callable[[Incident], list[Notice]],
    now: float,
) -> tuple[Incident, list[Notice]] | None:
    """Apply an operator's change to one incident; None if there is no such incident."""
    for _ in range(MAX_ATTEMPTS):
        board = incidents.board(now, extra_ids=[incident_id])
        incident = board.incidents.get(incident_id)
        if incident is None:
            return None
        notices = change(incident)
        open_ids = [i for i, inc in board.incidents.items() if inc.is_open and i in board.open_ids]
        fields = {"open": json.dumps(sorted(open_ids))}
        outbox = outbox_entries(notices)
        change_ = BoardChange(board.version, fields, outbox=outbox, put={incident_id: incident})
        if incidents.commit(change_, now):
            return incident, notices
    raise CommitConflict("incident board still contended")
