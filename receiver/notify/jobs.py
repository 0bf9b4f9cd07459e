"""The jobs the notification worker runs: send one delivery, check one escalation.

Jobs carry only ids; everything else is read from Redis when they run, so a job
that waited an hour sends what is true, and a restarted worker resumes cleanly."""

from __future__ import annotations

import logging
import random
import time

from receiver import metrics
from receiver.board import Notice
from receiver.config import load_settings
from receiver.correlate import edit
from receiver.incidents import Incident, Status
from receiver.notify.channels import Rejected, RetryLater
from receiver.notify.dispatch import drain, escalation_target, retry_in, schedule_escalation
from receiver.notify.hub import Hub
from receiver.services import build_services
from receiver.store.deliveries import Delivery

log = logging.getLogger(__name__)
_hub: Hub | None = None
INLINE_WAIT_S = 2.0


def bind(hub: Hub) -> None:
    """Use this hub for jobs run in this process (the worker binds one at start)."""
    global _hub
    _hub = hub


def current_hub() -> Hub:
    global _hub
    if _hub is None:
        _hub = build_services(load_settings(), registry={}).hub
    return _hub


def backoff_s(hub: Hub, attempt: int) -> float:
    """Exponential back-off with jitter: half to all of base * 2^(attempt-1), capped."""
    notify = hub.settings.notify
    ceiling = min(notify.backoff_cap_s, notify.backoff_base_s * 2 ** min(attempt - 1, 30))
    return float(ceiling * random.uniform(0.5, 1.0))


def _record(hub: Hub, delivery: Delivery, message: str) -> None:
    """Put the delivery's outcome on its incident's timeline."""
    if not delivery.incident_id.startswith("INC-"):
        return

    def change(incident: Incident) -> list[Notice]:
        incident.log(hub.clock(), "notification", message)
        return []

    edit(hub.incidents, delivery.incident_id, change, hub.clock())


def deliver(delivery_id: str) -> str:
    hub = current_hub()
    delivery = hub.deliveries.get(delivery_id)
    if delivery is None or delivery.status in ("sent", "failed"):
        return "nothing to do"
    channel = hub.channels.get(delivery.channel)
    now = hub.clock()
    early = (delivery.next_attempt_at or now) - now
    if early > INLINE_WAIT_S:
        retry_in(hub, delivery, early)
        return f"not due for {early:.2f}s"
    if early > 0:
        # rq schedules to the whole second, so a job may start up to a second early;
        # Retry-After is a promise to the destination, so wait out the rest.
        time.sleep(early)
        now = hub.clock()
    if channel is None:
        return _fail(hub, delivery, now, f"channel {delivery.channel} is not configured")
    destination = channel.destination(delivery.payload)
    wait = hub.deliveries.take_rate_slot(destination, channel.per_s, now)
    for _ in range(3):
        if not 0 < wait <= INLINE_WAIT_S:
            break
        time.sleep(wait)  # a short wait costs less than a trip through the scheduler
        now = hub.clock()
        wait = hub.deliveries.take_rate_slot(destination, channel.per_s, now)
    if wait > 0:
        delivery.next_attempt_at = now + wait
        hub.deliveries.save(delivery)
        retry_in(hub, delivery, wait)
        metrics.observe_delivery(delivery.channel, "rate_limited")
        return f"rate limited for {wait:.2f}s"
    delivery.attempts += 1
    try:
        receipt = channel.send(delivery.payload)
    except Rejected as exc:
        return _fail(hub, delivery, hub.clock(), str(exc))
    except RetryLater as exc:
        now = hub.clock()
        if delivery.attempts >= hub.settings.notify.max_attempts:
            return _fail(hub, delivery, now, f"{exc} (gave up after {delivery.attempts} attempts)")
        delay = exc.after_s if exc.after_s is not None else backoff_s(hub, delivery.attempts)
        delivery.last_error = str(exc)
        delivery.next_attempt_at = now + delay
        delivery.updated_at = now
        delivery.history.append({"at": now, "outcome": "retry", "detail": str(exc)})
        hub.deliveries.save(delivery)
        retry_in(hub, delivery, delay)
        metrics.observe_delivery(delivery.channel, "retry")
        log.warning(
            "%s delivery will retry in %.1fs: %s",
            delivery.channel,
            delay,
            exc,
            extra={"incident_id": delivery.incident_id},
        )
        return f"retry in {delay:.1f}s"
    now = hub.clock()
    delivery.status = "sent"
    delivery.updated_at = now
    delivery.next_attempt_at = None
    delivery.history.append({"at": now, "outcome": "sent", "detail": receipt})
    hub.deliveries.save(delivery)
    log.info(
        "%s %s sent", delivery.channel, delivery.event, extra={"incident_id": delivery.incident_id}
    )
    metrics.observe_delivery(delivery.channel, "sent")
    _record(hub, delivery, f"{delivery.channel} notified ({delivery.event})")
    return "sent"


def _fail(hub: Hub, delivery: Delivery, now: float, reason: str) -> str:
    """Dead letter: kept and visible in the API, never retried."""
    delivery.status = "failed"
    delivery.last_error = reason
    delivery.updated_at = now
    delivery.next_attempt_at = None
    delivery.history.append({"at": now, "outcome": "failed", "detail": reason})
    hub.deliveries.save(delivery)
    metrics.observe_delivery(delivery.channel, "failed")
    log.error(
        "%s delivery failed: %s",
        delivery.channel,
        reason,
        extra={"incident_id": delivery.incident_id},
    )
    _record(hub, delivery, f"{delivery.channel} notification failed: {reason}")
    return "failed"


def check_escalation(incident_id: str, level: int) -> str:
    """Escalate an incident still unacknowledged past its response SLA."""
    hub = current_hub()
    now = hub.clock()
    found = hub.incidents.get_many([incident_id]).get(incident_id)
    if found is None or found.status is not Status.OPEN or found.escalation_level != level:
        return "no escalation needed"
    if now < found.sla_due_at:
        schedule_escalation(hub, found)
        return "not due yet"

    def change(incident: Incident) -> list[Notice]:
        if incident.status is not Status.OPEN or incident.escalation_level != level:
            return []
        incident.escalation_level += 1
        target = escalation_target(hub, incident.escalation_level) or "next level"
        incident.log(
            now,
            "escalated",
            f"not acknowledged within {incident.response_sla_s / 60:g} min: escalated to "
            f"level {incident.escalation_level} ({target})",
        )
        incident.sla_due_at = now + incident.response_sla_s
        return [Notice("escalated", incident.id)]

    done = edit(hub.incidents, incident_id, change, now)
    if done is None or not done[1]:
        return "no escalation needed"
    drain(hub, now)
    return f"escalated to level {done[0].escalation_level}"
