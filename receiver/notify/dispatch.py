"""From committed notices to queued deliveries, and escalation checks scheduled.

Notices wait in the incident board's outbox (written with the change that caused
them). `drain` turns them into one message per incident and event batch, picks the
channels the incident's priority routes to, stores a delivery per channel and
queues a job for it. Tenant-level events (`message.UPDATES`) of an incident that
sent a message less than `NOTIFY_UPDATE_INTERVAL_S` ago are deferred and go
out together when the interval is up (the sweep drains every few seconds). A crash
before the outbox is trimmed means a notice may be handled twice, never lost."""

from __future__ import annotations

import logging
import os
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from rq import Retry

from receiver.breaker import tick
from receiver.config import Enforcement
from receiver.incidents import Incident, Priority, Scope, Status
from receiver.notify.hub import Hub
from receiver.notify.message import Message, build, deferred_until, listed_tenants, main_event
from receiver.store.deliveries import Delivery
from receiver.store.outbox import decode, kinds_of

log = logging.getLogger(__name__)
BATCH = 200
ABANDONED_RETRIES = 5
"""How often rq re-runs a delivery whose worker died mid-send."""
WATCHDOG = "watchdog"


STATES_SHOWN = 50
"""Breaker states read for a message; channels show at most this many tenants."""


def _states(hub: Hub, incident: Incident, now: float) -> dict[str, str]:
    shown = listed_tenants(incident)[:STATES_SHOWN]
    snapshots = hub.store.read({t: [] for t in shown}, now)
    settings = hub.settings.breaker
    return {t: tick(s.breaker, now, settings)[0].state.value for t, s in snapshots.items()}


def escalation_target(hub: Hub, level: int) -> str | None:
    chain = hub.settings.notify.escalation_chain
    if level <= 0 or not chain:
        return None
    return chain[min(level, len(chain)) - 1]


def enqueue(hub: Hub, message: Message, now: float) -> list[Delivery]:
    """ScopeStore and queue one delivery per routed, configured channel."""
    routes = hub.settings.notify.routes.get(message.priority, ())
    deliveries = []
    for name in routes:
        channel = hub.channels.get(name)
        if channel is None or not channel.applies(message):
            continue
        deliveries.append(
            Delivery(
                id=uuid.uuid4().hex,
                incident_id=message.incident_id,
                channel=name,
                event=message.event,
                payload=channel.render(message),
                created_at=now,
                updated_at=now,
            )
        )
    if deliveries:
        hub.deliveries.add(deliveries)
        for delivery in deliveries:
            hub.queue.enqueue(
                "receiver.notify.jobs.deliver",
                delivery.id,
                retry=Retry(max=ABANDONED_RETRIES),
                job_timeout=max(30, int(hub.settings.notify.timeout_s * 3)),
            )
    return deliveries


def schedule_escalation(hub: Hub, incident: Incident) -> None:
    if incident.status is not Status.OPEN:
        return
    at = datetime.fromtimestamp(incident.sla_due_at, UTC)
    hub.queue.enqueue_at(
        at, "receiver.notify.jobs.check_escalation", incident.id, incident.escalation_level
    )


def watchdog_message(now: float, age_s: float | None) -> Message:
    silent = "never seen" if age_s is None else f"silent for {age_s:.0f} s"
    return Message(
        event="watchdog_missing",
        incident_id=WATCHDOG,
        title=f"no Watchdog alert from Alertmanager ({silent}); detection may be blind",
        priority=Priority.P1.value,
        status="open",
        scope=Scope.PLATFORM.value,
        tier=None,
    )


def drain(hub: Hub, now: float, rounds: int = 20) -> int:
    """Turn outbox entries into deliveries until the outbox is empty (at most
    `rounds` batches); returns how many entries were handled."""
    handled = 0
    for _ in range(rounds):
        done = _drain_batch(hub, now)
        handled += done
        if done < BATCH:
            break
    return handled


def _drain_batch(hub: Hub, now: float) -> int:
    owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    batch = hub.updates.begin(owner, 30, now, BATCH)
    if batch is None:
        return 0
    try:
        by_incident = decode(batch.entries)
        interval = hub.settings.notify.update_interval_s
        # Due now: also those deferred before the interval was set to 0.
        due_now: dict[str, set[str]] = {i: set() for i in batch.due}
        due_now.update(hub.updates.deferred(batch.due))
        carried = dict(due_now)  # what was deferred when read: the message carries it
        for incident_id, members in due_now.items():
            by_incident[incident_id].update(members)
        deferred: dict[str, tuple[set[str], float]] = {}
        for incident_id, members in list(by_incident.items()):
            if incident_id in due_now:
                continue
            due = deferred_until(kinds_of(members), batch.last_sent.get(incident_id), now, interval)
            if due is not None:
                deferred[incident_id] = (members, due)
                del by_incident[incident_id]
        # A message that goes now carries what is deferred for later too.
        early = [incident_id for incident_id in by_incident if incident_id not in due_now]
        for incident_id, members in hub.updates.deferred(early).items():
            by_incident[incident_id].update(members)
            carried[incident_id] = members
        found = hub.incidents.outlines(list(by_incident))
        for incident_id, members in by_incident.items():
            incident = found.get(incident_id)
            if incident is None:
                hub.updates.sent(incident_id, now, final=True, carried=())
            else:
                _notify(hub, incident, members, now, carried.get(incident_id, set()))
    except BaseException:
        hub.updates.unlock(batch)
        raise
    hub.updates.finish(batch, deferred)
    return len(batch.entries)


def _changes(members: set[str]) -> dict[str, list[str]]:
    changes: dict[str, list[str]] = defaultdict(list)
    for member in members:
        kind, colon, tenant = member.partition(":")
        if colon:
            changes[kind].append(tenant)
    return changes


def _notify(hub: Hub, incident: Incident, members: set[str], now: float, carried: set[str]) -> None:
    """One message about the incident, reporting its notices as one event and saying
    which tenants each was about; `carried` are those of them read from its deferred
    update, which the message takes off it."""
    kinds = sorted(kinds_of(members))
    target = escalation_target(hub, incident.escalation_level)
    states = _states(hub, incident, now)
    url = hub.settings.notify.public_url
    enforced = hub.settings.enforcement is Enforcement.ENFORCE
    event = main_event(kinds)
    message = build(incident, event, now, states, url, target, _changes(members), enforced)
    sent = enqueue(hub, message, now)
    log.info(
        "incident %s: %s queued for %s",
        incident.id,
        message.event,
        ", ".join(d.channel for d in sent) or "no channel",
        extra={"incident_id": incident.id},
    )
    if {"opened", "priority_raised", "escalated"} & set(kinds):
        schedule_escalation(hub, incident)
    hub.updates.sent(incident.id, now, final=not incident.is_open, carried=carried)


def retry_in(hub: Hub, delivery: Delivery, delay_s: float) -> None:
    hub.queue.enqueue_in(
        timedelta(seconds=delay_s),
        "receiver.notify.jobs.deliver",
        delivery.id,
        retry=Retry(max=ABANDONED_RETRIES),
        job_timeout=max(30, int(hub.settings.notify.timeout_s * 3)),
    )


def drain_quietly(hub: Hub, now: float) -> None:
    """Drain from a request or the sweep: a failure leaves the notices in the outbox
    for the next drain, so it is logged, not raised."""
    try:
        drain(hub, now)
    except Exception as exc:
        log.warning("notification outbox not drained yet: %s", exc.__class__.__name__)


def check_watchdog(hub: Hub, now: float) -> bool:
    """Notify once when the Watchdog goes silent; re-arm when it is back."""
    last = hub.store.watchdog_last_seen()
    if last is None:
        return False
    age = now - last
    if age <= hub.settings.watchdog_max_age_s:
        hub.store.clear_watchdog_missing()
        return False
    if not hub.store.flag_watchdog_missing():
        return False
    log.error("Watchdog missing for %.0f s: the alert pipeline may be broken", age)
    enqueue(hub, watchdog_message(now, age), now)
    return True
