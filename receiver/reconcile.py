"""Bring the receiver's state in line with what Alertmanager holds now.

Applied deliveries get lost: Redis restarts without persistence or fails over to a
replica that lagged. Alertmanager re-sends a group it has delivered only every
`repeat_interval` (5 minutes for isolation, an hour for the rest), so the receiver
would not know for that long. `reconcile` asks Alertmanager for its active
alerts and applies them through the webhook's own path (`pipeline.apply`), so
anything already applied counts as a duplicate. It then
resolves the alerts we still hold as firing that Alertmanager no longer has.

Resolving is the risky half. An Alertmanager that has just restarted holds no alerts
until Prometheus sends them again, and an alert resolved here by mistake is not
re-applied by a later identical delivery. So resolving runs only when Alertmanager's
view looks complete: it has been up `min_uptime_s` and holds the Watchdog, which
Prometheus sends for as long as it evaluates rules. Alerts received after `now -
settle_s` are left alone, as their delivery may be newer than the list we fetched.
The Watchdog itself is never replayed: it proves the webhook path works, and this
is not that path.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from marshmallow import ValidationError

from receiver.alerts import (
    PLATFORM_SCOPE,
    ZERO_TIME,
    Alert,
    Kind,
    Notification,
    rfc3339,
    to_epoch,
)
from receiver.board import Notice
from receiver.breaker import TransitionEvent
from receiver.ingest import IngestResult
from receiver.pipeline import Alerts, apply
from receiver.schemas import AlertSchema
from receiver.services import Services
from receiver.tenants import is_valid_tenant_id

log = logging.getLogger(__name__)

ACTIVE_ALERTS = "/api/v2/alerts"
ACTIVE_QUERY = {"active": "true", "silenced": "false", "inhibited": "false"}
STATUS = "/api/v2/status"
MIN_UPTIME_S = 120.0
"""Prometheus sends every firing alert again within its resend delay (1 m) plus one
evaluation interval; an Alertmanager up for less may not have them all yet."""
SETTLE_S = 5.0
SAME_START_S = 0.001
"""Alertmanager's API gives times in milliseconds, its webhook in nanoseconds."""

_alert_schema = AlertSchema()


class ReconcileError(RuntimeError):
    """Alertmanager could not be read; nothing was changed."""


@dataclass
class ReconcileResult:
    active: int = 0
    """Active alerts Alertmanager holds, the Watchdog left out."""
    accepted: int = 0
    """Of those, applied for the first time: deliveries the receiver had missed."""
    duplicates: int = 0
    rejected: int = 0
    """Malformed alerts, and alerts with an invalid tenant_id."""
    resolved: list[str] = field(default_factory=list)
    """Fingerprints of alerts resolved because Alertmanager no longer has them."""
    resolve_skipped: str | None = None
    """Why resolving did not run, if it did not."""
    transitions: list[TransitionEvent] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def reconcile(
    services: Services,
    alertmanager_url: str,
    now: float,
    *,
    session: requests.Session | None = None,
    timeout_s: float = 5.0,
    min_uptime_s: float = MIN_UPTIME_S,
    settle_s: float = SETTLE_S,
) -> ReconcileResult:
    """Apply Alertmanager's active alerts, then resolve the ones it no longer has.

    Raises ReconcileError if Alertmanager cannot be read, and Redis errors as they come."""
    base = alertmanager_url.rstrip("/")
    http = session or requests.Session()
    try:
        listed = _get(http, base + ACTIVE_ALERTS, ACTIVE_QUERY, timeout_s)
        status = _get(http, base + STATUS, {}, timeout_s)
    finally:
        if session is None:
            http.close()
    if not isinstance(listed, list):
        raise ReconcileError("Alertmanager's alert list is not a JSON list")

    store = services.store
    store.add_known(services.registry, now)
    result = ReconcileResult()
    alerts, watchdog, active = _firing(listed, result)
    alerts = _same_starts(services, alerts)
    result.active = len(alerts) + result.rejected
    if alerts:
        applied = _apply(services, Notification("firing", alerts), now, result)
        result.accepted = applied.accepted
        result.duplicates = applied.duplicates
        result.rejected += len(applied.rejected)

    result.resolve_skipped = _incomplete(status, watchdog, now, min_uptime_s)
    if result.resolve_skipped is None:
        gone = _gone(services, active, now, now - settle_s)
        if gone:
            _apply(services, Notification("resolved", gone), now, result)
            result.resolved = [alert.fingerprint for alert in gone]
    else:
        log.info("reconcile: not resolving anything: %s", result.resolve_skipped)
    if result.accepted or result.resolved:
        log.warning(
            "reconcile: applied %d missed alerts, resolved %d that Alertmanager no longer has",
            result.accepted,
            len(result.resolved),
        )
    return result


def _get(http: requests.Session, url: str, params: Mapping[str, str], timeout_s: float) -> Any:
    try:
        response = http.get(url, params=params, timeout=timeout_s)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ReconcileError(f"cannot read {url}: {exc.__class__.__name__}") from None


def _firing(listed: list[Any], result: ReconcileResult) -> tuple[list[Alert], bool, set[str]]:
    """Alertmanager's active alerts as firing `Alert`s, whether the Watchdog is among
    them, and every active fingerprint."""
    alerts: list[Alert] = []
    watchdog = False
    active: set[str] = set()
    for item in listed:
        if not isinstance(item, dict):
            result.rejected += 1
            continue
        status = item.get("status")
        if isinstance(status, dict) and status.get("state") == "suppressed":
            continue
        try:
            alert: Alert = _alert_schema.load(
                {
                    "status": "firing",
                    "labels": item.get("labels"),
                    "annotations": item.get("annotations") or {},
                    "startsAt": item.get("startsAt"),
                    "endsAt": ZERO_TIME,
                    "generatorURL": item.get("generatorURL") or "",
                    "fingerprint": item.get("fingerprint"),
                }
            )
        except ValidationError:
            result.rejected += 1
            continue
        active.add(alert.fingerprint)
        if alert.kind is Kind.WATCHDOG:
            watchdog = True
        else:
            alerts.append(alert)
    return alerts, watchdog, active


def _same_starts(services: Services, alerts: list[Alert]) -> list[Alert]:
    """Write each start time as the webhook did: the delivery key is built from that
    text, and Alertmanager's API writes times differently. The text we stored from the
    webhook wins when it is the same instant; else the webhook's format is rebuilt."""
    scopes: dict[str, list[Alert]] = {}
    for alert in alerts:
        scopes.setdefault(alert.tenant_id or PLATFORM_SCOPE, []).append(alert)
    aligned: list[Alert] = []
    for scope, members in scopes.items():
        stored = services.store.alerts(scope) if _valid_scope(scope) else {}
        for alert in members:
            text = stored.get(alert.fingerprint, {}).get("startsAt")
            moment = _epoch(text)
            if not (text and moment is not None and abs(moment - alert.starts_at_s) < SAME_START_S):
                text, moment = go_time_text(alert.starts_at), alert.starts_at_s
            aligned.append(dataclasses.replace(alert, starts_at=text, starts_at_s=moment))
    return aligned


def go_time_text(text: str) -> str:
    """An RFC 3339 time as Alertmanager's webhook writes it (Go's RFC3339Nano): trailing
    zeros of the fraction dropped, and the dot with them. Prometheus gives start times
    in milliseconds, which the API writes as `.120Z` and the webhook as `.12Z`."""
    head, dot, rest = text.partition(".")
    if not dot:
        return text
    digits = len(rest) - len(rest.lstrip("0123456789"))
    fraction = rest[:digits].rstrip("0")
    return f"{head}{'.' if fraction else ''}{fraction}{rest[digits:]}"


def _incomplete(status: Any, watchdog: bool, now: float, min_uptime_s: float) -> str | None:
    if not watchdog:
        return "Alertmanager holds no Watchdog alert (Prometheus not sending to it?)"
    uptime = status.get("uptime") if isinstance(status, dict) else None
    started = _epoch(uptime)
    if started is None:
        return "Alertmanager's status has no uptime"
    if now - started < min_uptime_s:
        return f"Alertmanager up {max(0.0, now - started):.0f}s, less than {min_uptime_s:g}s"
    return None


def _gone(services: Services, active: set[str], now: float, before: float) -> list[Alert]:
    """Resolved versions of the alerts we hold as firing that Alertmanager does not have:
    in the platform scope and in every tenant whose breaker has a firing alert."""
    store = services.store
    scopes = [PLATFORM_SCOPE]
    for batch in store.iter_known_tenants():
        snapshots = store.read({tenant: [] for tenant in batch}, now)
        scopes += [scope for scope, snap in snapshots.items() if snap.breaker.firing]
    gone: list[Alert] = []
    for scope in scopes:
        for fingerprint, record in store.alerts(scope).items():
            if fingerprint in active or record.get("status") != "firing":
                continue
            if not isinstance(record.get("receivedAt"), int | float):
                continue
            if record["receivedAt"] >= before:
                continue
            alert = _resolved(fingerprint, record, now)
            if alert is not None and alert.kind is not Kind.WATCHDOG:
                gone.append(alert)
    return gone


def _resolved(fingerprint: str, record: Mapping[str, Any], now: float) -> Alert | None:
    labels, starts_at = record.get("labels"), record.get("startsAt")
    moment = _epoch(starts_at)
    if not isinstance(labels, dict) or not isinstance(starts_at, str) or moment is None:
        log.warning("reconcile: stored alert %s is unreadable; left as it is", fingerprint)
        return None
    return Alert(
        status="resolved",
        labels=labels,
        annotations=record.get("annotations") or {},
        starts_at=starts_at,
        ends_at=rfc3339(now),
        starts_at_s=moment,
        ends_at_s=now,
        fingerprint=fingerprint,
        generator_url=record.get("generatorURL") or "",
    )


def _apply(
    services: Services, notification: Notification, now: float, result: ReconcileResult
) -> IngestResult:
    outcome = apply(services, Alerts(notification, "reconcile"), now)
    result.notices += outcome.notices
    result.transitions += outcome.transitions
    assert outcome.ingest is not None
    return outcome.ingest


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return to_epoch(text)
    except ValueError:
        return None


def _valid_scope(scope: str) -> bool:
    return scope == PLATFORM_SCOPE or is_valid_tenant_id(scope)
