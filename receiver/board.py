"""The incident board's rules: which incident a failing tenant joins, when a platform
incident opens, how breaker transitions reach timelines, and when an incident is
quiet enough to resolve. Pure: a `Draft` is one attempt's working copy of the
board; `correlate` reads it from the store and commits it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from receiver.alerts import Alert, Kind
from receiver.attribution import contain, culprit_figures, describe, name_culprit, note_victim
from receiver.breaker import State, TransitionEvent
from receiver.config import Settings
from receiver.incidents import (
    Incident,
    Priority,
    Scope,
    add_tenant,
    open_incident,
    quiet,
    record_alert,
    reprioritize,
    resolve,
)
from receiver.quick_init import quick_init
from receiver.tenants import Tier

SHARED_FAILURE = "suspected shared-resource failure"


@quick_init
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
    board_unseen: bool | None = None
    """Whether the board had yet to see any of the alerts' states, if already read
    (in the delivery's first read); None: not read yet."""
    opened_at: Mapping[str, float] = field(default_factory=dict)
    """When the committed breaker of each tenant whose replayed alert reaches the board
    opened: a delivery retried after a crash between the breaker commit and the board
    commit carries no transitions, so the board takes the isolation from here."""

    def board_keys(self) -> list[str]:
        """Delivery keys of the alerts incidents care about (isolation, platform)."""
        return [a.delivery_key for _, a in self.alerts if on_board(a)]


def wanted(signals: Signals) -> dict[str, list[str]]:
    """The entries of each open incident's collections that applying `signals` looks
    at, so the store reads them together; anything else is read when asked for."""
    tenants = list(
        dict.fromkeys(
            [
                *(scope for scope, _ in signals.alerts),
                *signals.held,
                *(event.tenant_id for event in signals.transitions),
                *signals.opened_at,
            ]
        )
    )
    return {
        "tenants": tenants,
        "alerts": [alert.fingerprint for _, alert in signals.alerts],
        "isolated_at": tenants,
        "victims": tenants,
        "suppressed": list(signals.held),
        "group_keys": [signals.group_key] if signals.group_key else [],
        "alert_tally": [*tenants, ""],
    }


def is_platform_problem(alert: Alert) -> bool:
    return alert.kind is Kind.PLATFORM and alert.labels.get("scope") == "platform"


def on_board(alert: Alert) -> bool:
    """The alerts incidents care about: isolation, the platform's, and victims'."""
    return alert.kind is Kind.ISOLATE or alert.victim or is_platform_problem(alert)


class Draft:
    """One attempt's working copy of the board."""

    def __init__(
        self,
        stored: Mapping[str, str],
        loaded: Mapping[str, Incident],
        seen: frozenset[str],
        settings: Settings,
        now: float,
    ) -> None:
        self.stored = stored
        """The board's fields as read: current incident per scope, id counters."""
        self.seen = seen
        """Delivery keys of alert states already on the board."""
        self.settings = settings
        self.now = now
        self.open = {i: inc for i, inc in loaded.items() if inc.is_open}
        self.fields: dict[str, str] = {}
        self.delivery_keys: list[str] = []
        self.seen_keys: set[str] = set()
        self.changed: set[str] = set()
        self.created: set[str] = set()
        self.priority_before: dict[str, Priority] = {}
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
        key = f"current:{scope}"
        incident_id = self.fields.get(key) or self.stored.get(key)
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
        seq = int(self.fields.get(counter) or self.stored.get(counter) or 0) + 1
        self.fields[counter] = str(seq)
        incident = open_incident(f"INC-{day}-{seq:04d}", scope, title, self.now)
        self.open[incident.id] = incident
        self.fields[f"current:{scope.value}"] = incident.id
        self.notices.append(Notice("opened", incident.id))
        self.created.add(incident.id)
        return self.touch(incident)

    def join(self, incident: Incident, tenant_id: str, tier: Tier, why: str) -> None:
        """Add a tenant; priority is settled once per attempt in `rank`."""
        self.priority_before.setdefault(incident.id, incident.priority)
        if add_tenant(incident, tenant_id, tier, self.now, why, rank=False):
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
            reprioritize(incident, self.now)
            if incident.priority is not before:
                self.notices.append(Notice("priority_raised", incident_id))
        self.priority_before.clear()

    @property
    def open_ids(self) -> list[str]:
        return sorted(i for i, incident in self.open.items() if incident.is_open)


def _new_alerts(
    draft: Draft, signals: Signals, isolated: Collection[str]
) -> list[tuple[str, Alert]]:
    """The alerts this board has not applied yet. A replayed firing isolation alert
    counts only while its tenant is isolated: a held-back or disabled tenant's replay
    must not land in a tenant incident."""
    fresh = []
    for scope, alert in signals.alerts:
        if not on_board(alert):
            continue
        key = alert.delivery_key
        if key in draft.seen or key in draft.seen_keys:
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
    record_alert(
        incident,
        alert.fingerprint,
        _name(alert),
        alert.firing,
        alert.starts_at_s,
        now,
        tenant_id,
        group_key,
    )


def apply_signals(draft: Draft, signals: Signals, isolated: Collection[str]) -> None:
    """Put a delivery's (or a sweep's) signals on the board: tenants into incidents,
    breaker transitions on their timelines; then rank and settle what changed."""
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
        if incident.suppressed.add(tenant_id, len(incident.suppressed)):
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
    incidents = list(draft.open.values())  # none opens from here on
    for event in signals.transitions:
        t = event.transition
        for incident in incidents:
            if event.tenant_id not in incident.tenants:
                continue
            mark = " (suppressed)" if t.suppressed else ""
            incident.log(
                t.at,
                "breaker",
                f"breaker {t.from_state} -> {t.to_state}{mark}: {t.reason}",
                event.tenant_id,
            )
            if t.to_state is State.OPEN and not t.suppressed:
                incident.isolated_at.setdefault(event.tenant_id, t.at)
                draft.notices.append(Notice("tenant_isolated", incident.id, event.tenant_id))
            if t.to_state is State.CLOSED:
                draft.notices.append(Notice("tenant_restored", incident.id, event.tenant_id))
            draft.touch(incident)
    for tenant_id, at in signals.opened_at.items():
        for incident in incidents:
            if tenant_id not in incident.tenants or tenant_id in incident.isolated_at:
                continue
            incident.isolated_at[tenant_id] = at
            incident.log(
                at,
                "breaker",
                "breaker closed -> open: taken from the committed breaker "
                "(the delivery that opened it was retried)",
                tenant_id,
            )
            draft.notices.append(Notice("tenant_isolated", incident.id, tenant_id))
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


def settle(
    draft: Draft, isolated: Collection[str], candidates: Iterable[str] | None = None
) -> None:
    """Resolve quiet incidents, after the quiet period if one is set."""
    quiet_period = draft.settings.incidents.quiet_period_s
    ids = draft.changed.copy() if candidates is None else set(candidates)
    for incident_id in ids:
        incident = draft.open[incident_id]
        if not incident.is_open or not quiet(incident, isolated):
            continue
        if incident.quiet_since is None:
            incident.quiet_since = draft.now
            draft.touch(incident)
        if draft.now - incident.quiet_since >= quiet_period:
            resolve(incident, draft.now, "all alerts resolved and no tenant isolated")
            draft.notices.append(Notice("resolved", incident.id))
            draft.touch(incident)
