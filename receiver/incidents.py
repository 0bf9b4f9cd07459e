"""Incidents: one per real problem, prioritized by who is hurt, with a timeline.

Pure data and rules; `correlate` reads and commits them. Priority follows tier and
count: P0 if any platinum tenant or 10+ tenants, P1 if any gold tenant or 5-9, else
P2. Priority only ever rises, and every change is on the timeline.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from receiver.members import Hook, Members
from receiver.quick_init import quick_init
from receiver.tenants import TIER_POLICIES, Tier

TIMELINE_CAP = 1000
NOTES_CAP = 100
"""Notes an incident takes; each is at most `schemas.NOTE_MAX_CHARS` long."""
P0_TENANTS = 10
P1_TENANTS = 5


def _weakly(owner: Any, method: Callable[[Any, str, Any, Any], None]) -> Hook[Any]:
    """`owner`'s `method` as a hook that holds its owner weakly. Held strongly, every
    incident would be a reference cycle (incident, map, hook, incident) that only the
    cyclic collector frees: a storm's incident, its tens of thousands of alerts and
    events, walked and freed in one pass after the answer instead of as soon as the
    delivery drops it. A plain reference and the unbound function: a storm calls
    these hooks tens of thousands of times."""
    ref = weakref.ref(owner)

    def hook(key: str, old: Any, new: Any) -> None:
        bound = ref()
        if bound is not None:
            method(bound, key, old, new)

    return hook


class Priority(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"


class Scope(StrEnum):
    TENANT = "tenant"
    PLATFORM = "platform"


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


RESPONSE_SLA_S = {Priority.P0: 15 * 60, Priority.P1: 60 * 60}
RESPONSE_TEAM = {
    Priority.P0: "war room: incident commander, platform lead, on-call, CTO",
    Priority.P1: "platform lead and on-call",
    Priority.P2: "on-call",
}


def priority_for(tiers: Iterable[Tier], count: int) -> Priority:
    tiers = set(tiers)
    if Tier.PLATINUM in tiers or count >= P0_TENANTS:
        return Priority.P0
    if Tier.GOLD in tiers or count >= P1_TENANTS:
        return Priority.P1
    return Priority.P2


def response_sla_s(priority: Priority, tiers: Iterable[Tier]) -> int:
    """P0 15 min, P1 60 min; P2 by the most important tier (silver 4 h, bronze 8 h)."""
    if priority in RESPONSE_SLA_S:
        return RESPONSE_SLA_S[priority]
    return min((TIER_POLICIES[t].response_sla_s for t in tiers), default=8 * 3600)


def highest_tier(tiers: Iterable[Tier]) -> Tier | None:
    return min(tiers, key=lambda t: TIER_POLICIES[t].rank, default=None)


@dataclass
class Event:
    at: float
    kind: str
    message: str
    tenant_id: str | None = None


@quick_init
@dataclass(frozen=True)
class IncidentAlert:
    """One alert's state on an incident; replaced, never changed in place, so the
    incident's tallies follow."""

    fingerprint: str
    alertname: str
    status: str
    starts_at: float
    updated_at: float
    tenant_id: str | None = None
    expired: bool = False


@dataclass
class Incident:
    id: str
    scope: Scope
    title: str
    created_at: float
    priority: Priority = Priority.P2
    status: Status = Status.OPEN
    response_sla_s: int = 8 * 3600
    sla_due_at: float = 0.0
    tenants: Members[Tier] = field(default_factory=Members)
    alerts: Members[IncidentAlert] = field(default_factory=Members)
    group_keys: Members[int] = field(default_factory=Members)
    """Alertmanager group keys seen, each with its order of arrival."""
    partial: bool = False
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    quiet_since: float | None = None
    false_positive: bool = False
    isolated_at: Members[float] = field(default_factory=Members)
    """First isolation of each tenant, for detection latency (alert start -> isolation)."""
    suppressed: Members[int] = field(default_factory=Members)
    """Tenants whose isolation the blast-radius guard held back, each with its order."""
    culprits: dict[str, dict[str, float]] = field(default_factory=dict)
    """Tenants named as the cause of a shared failure, with their shares of the shared
    load (`share`, `baseline_share`, `growth`) when the alert said."""
    victims: Members[float] = field(default_factory=Members)
    """Tenants failing with the platform, and when each started failing."""
    contained_at: float | None = None
    """When the victims recovered with the culprits isolated."""
    cost_per_hour: float = 0.0
    victims_cost_per_hour: float = 0.0
    all_tenants_cost_per_hour: float = 0.0
    """What an hour would cost if every known tenant were affected."""
    escalation_level: int = 0
    notes: list[dict[str, Any]] = field(default_factory=list)
    """The notes loaded with the incident (none when loaded for a change), then those
    added since; like the timeline, the store keeps them in a list of their own."""
    notes_count: int = 0
    stored_notes: int = 0
    postmortem: dict[str, Any] = field(default_factory=dict)
    timeline: list[Event] = field(default_factory=list)
    """The events loaded with the incident (none when loaded for a change), then
    those added since; the store keeps them in a list of their own."""
    stored_events: int = 0
    """How many of `timeline` are already stored; the rest are new."""
    tier_counts: dict[str, int] = field(default_factory=dict)
    """Tenants per tier, kept as they join: what priority and cost are ranked by."""
    victim_tiers: dict[str, int] = field(default_factory=dict)
    """Victims per tier (their cost until containment)."""
    first_victim_at: float | None = None
    live_alerts: int = 0
    """Alerts firing and not expired: none left is one half of quiet."""
    live_seen_from: float | None = None
    """No live alert was last seen before this (a bound, not always the oldest): the
    sweep walks the alerts for expiry only once one could be due. None with live
    alerts is not known (a document from before it was kept)."""
    alert_tally: Members[list[int]] = field(default_factory=Members)
    """Per tenant ("" for alerts that name none): [live alerts, all alerts]."""

    def __post_init__(self) -> None:
        self.tenants.hooks.append(_weakly(self, Incident._tenant_changed))
        self.victims.hooks.append(_weakly(self, Incident._victim_changed))
        self.alerts.hooks.append(_weakly(self, Incident._alert_changed))

    def _tenant_changed(self, tenant_id: str, old: Tier | None, new: Tier | None) -> None:
        _move(self.tier_counts, old, new)
        if old is not None and old is not new and tenant_id in self.victims:
            _move(self.victim_tiers, old, new)

    def _victim_changed(self, tenant_id: str, old: float | None, new: float | None) -> None:
        tier = self.tenants.get(tenant_id)
        if tier is not None and (old is None) != (new is None):
            _move(self.victim_tiers, None if old is None else tier, None if new is None else tier)
        if new is not None and (self.first_victim_at is None or new < self.first_victim_at):
            self.first_victim_at = new

    def _alert_changed(
        self, fingerprint: str, old: IncidentAlert | None, new: IncidentAlert | None
    ) -> None:
        if old is not None:
            self._tally(old, -1)
        if new is not None:
            self._tally(new, 1)

    def _tally(self, alert: IncidentAlert, sign: int) -> None:
        live = sign if alert.status == "firing" and not alert.expired else 0
        if live > 0:
            if not self.live_alerts:
                self.live_seen_from = alert.updated_at
            elif self.live_seen_from is not None:
                self.live_seen_from = min(self.live_seen_from, alert.updated_at)
        self.live_alerts += live
        key = alert.tenant_id or ""
        tally = self.alert_tally.get(key)
        self.alert_tally[key] = (
            [live, sign] if tally is None else [tally[0] + live, tally[1] + sign]
        )

    def tiers(self) -> set[Tier]:
        """The tiers of its tenants, from the tally (no walk over the tenants)."""
        return {Tier(tier) for tier, n in self.tier_counts.items() if n > 0}

    def others_alerts(self) -> tuple[int, int]:
        """[live, all] alerts of anyone but the culprits, from the tallies."""
        self.alert_tally.prefetch(list(self.culprits))
        live, total = self.live_alerts, len(self.alerts)
        for tenant_id in self.culprits:
            tally = self.alert_tally.get(tenant_id) or [0, 0]
            live, total = live - tally[0], total - tally[1]
        return live, total

    def log(self, at: float, kind: str, message: str, tenant_id: str | None = None) -> None:
        self.timeline.append(Event(at, kind, message, tenant_id))

    def add_note(self, at: float, author: str | None, text: str) -> bool:
        """False when the incident already has `NOTES_CAP` notes."""
        if self.notes_count >= NOTES_CAP:
            return False
        self.notes.append({"at": at, "author": author, "text": text})
        self.notes_count += 1
        self.log(at, "note", f"note by {author or 'operator'}")
        return True

    def new_notes(self) -> list[dict[str, Any]]:
        return self.notes[self.stored_notes :]

    def new_events(self) -> list[Event]:
        """Events to store: at most the cap, keeping the first (how a new incident
        began) and the newest."""
        new = self.timeline[self.stored_events :]
        return capped(new)

    @property
    def is_open(self) -> bool:
        return self.status is not Status.RESOLVED


def _move(counts: dict[str, int], old: Tier | None, new: Tier | None) -> None:
    if old is not None:
        counts[old.value] = counts.get(old.value, 0) - 1
        if counts[old.value] <= 0:
            del counts[old.value]
    if new is not None:
        counts[new.value] = counts.get(new.value, 0) + 1


def capped(events: list[Event]) -> list[Event]:
    if len(events) <= TIMELINE_CAP:
        return events
    return events[:1] + events[-(TIMELINE_CAP - 1) :]


def open_incident(incident_id: str, scope: Scope, title: str, now: float) -> Incident:
    incident = Incident(id=incident_id, scope=scope, title=title, created_at=now)
    if scope is Scope.PLATFORM:
        incident.priority = Priority.P0
    incident.response_sla_s = response_sla_s(incident.priority, [])
    incident.sla_due_at = now + incident.response_sla_s
    incident.log(
        now, "opened", f"{scope.value} incident opened at {incident.priority.value}: {title}"
    )
    return incident


def reprioritize(incident: Incident, now: float) -> None:
    """Raise priority (never lower it) as tenants join; the SLA due time tightens with it."""
    tiers = incident.tiers()
    count = len(incident.tenants)
    wanted = priority_for(tiers, count)
    order = list(Priority)
    if order.index(wanted) < order.index(incident.priority):
        incident.log(
            now,
            "priority_changed",
            f"priority raised {incident.priority.value} -> {wanted.value} "
            f"({count} tenants, highest tier {highest_tier(tiers)})",
        )
        incident.priority = wanted
    sla = response_sla_s(incident.priority, tiers)
    if sla < incident.response_sla_s or incident.response_sla_s == 0:
        incident.response_sla_s = sla
        incident.sla_due_at = min(incident.sla_due_at, incident.created_at + sla)


def add_tenant(
    incident: Incident, tenant_id: str, tier: Tier, now: float, why: str, rank: bool = True
) -> bool:
    """Add a tenant (or update its tier); True if it joined just now. With
    `rank=False` the caller reprioritizes once after adding many."""
    joined = tenant_id not in incident.tenants
    if joined:
        incident.log(now, "tenant_joined", f"tenant {tenant_id} ({tier}) joined: {why}", tenant_id)
    incident.tenants[tenant_id] = tier
    if rank:
        reprioritize(incident, now)
    incident.quiet_since = None
    return joined


def record_alert(
    incident: Incident,
    fingerprint: str,
    alertname: str,
    firing: bool,
    starts_at: float,
    now: float,
    tenant_id: str | None = None,
    group_key: str = "",
) -> None:
    status = "firing" if firing else "resolved"
    known = incident.alerts.get(fingerprint)
    if known is None or known.status != status or known.starts_at != starts_at:
        who = f" for tenant {tenant_id}" if tenant_id else ""
        incident.log(now, f"alert_{status}", f"{alertname}{who} {status}", tenant_id)
    incident.alerts[fingerprint] = IncidentAlert(
        fingerprint, alertname, status, starts_at, now, tenant_id
    )
    if group_key:
        incident.group_keys.add(group_key, len(incident.group_keys))
    if firing:
        incident.quiet_since = None


def expire_alerts(incident: Incident, now: float, timeout_s: float) -> list[str]:
    """Firing alerts with no word for `timeout_s` (silenced ones never resolve) expire."""
    expired: list[str] = []
    if not incident.live_alerts:
        return expired
    seen_from = incident.live_seen_from
    if seen_from is not None and now - seen_from < timeout_s:
        return expired  # none can be due: the walk below reads every alert
    oldest: float | None = None
    for alert in list(incident.alerts.values()):
        if alert.status != "firing" or alert.expired:
            continue
        if now - alert.updated_at >= timeout_s:
            incident.alerts[alert.fingerprint] = replace(alert, expired=True)
            expired.append(alert.fingerprint)
            incident.log(
                now,
                "alert_expired",
                f"{alert.alertname} expired: no notification for {timeout_s / 3600:g} h",
                alert.tenant_id,
            )
        elif oldest is None or alert.updated_at < oldest:
            oldest = alert.updated_at
    incident.live_seen_from = oldest
    return expired


def quiet(incident: Incident, isolated: Iterable[str]) -> bool:
    """Every alert resolved (or expired) and none of its tenants isolated any more."""
    if incident.live_alerts:
        return False
    isolated = list(isolated)
    incident.tenants.prefetch(isolated)
    return not any(tenant_id in incident.tenants for tenant_id in isolated)


def acknowledge(incident: Incident, now: float, who: str) -> bool:
    if incident.status is not Status.OPEN:
        return False
    incident.status = Status.ACKNOWLEDGED
    incident.acknowledged_at = now
    incident.log(now, "acknowledged", f"acknowledged by {who}")
    return True


def resolve(incident: Incident, now: float, why: str) -> bool:
    if incident.status is Status.RESOLVED:
        return False
    incident.status = Status.RESOLVED
    incident.resolved_at = now
    incident.log(now, "resolved", f"resolved: {why}")
    return True


def duration_s(incident: Incident, now: float) -> float:
    end = incident.resolved_at if incident.resolved_at is not None else now
    return max(0.0, end - incident.created_at)
