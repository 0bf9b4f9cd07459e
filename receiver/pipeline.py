"""One path for every input: an Alertmanager delivery (webhook or reconcile), an
operator's breaker action, or the passage of time (the sweep). `apply` commits to
the breakers, puts the result on the incident board, and runs the follow-ups
(`followups.LISTENERS`: metrics, logs, notifications) on what it committed. Every
caller is a few lines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from receiver.alerts import Notification
from receiver.board import Notice, Signals
from receiver.breaker import Action, TransitionEvent
from receiver.correlate import update
from receiver.followups import LISTENERS, Listener
from receiver.ingest import IngestResult, ingest
from receiver.operator import act
from receiver.services import Services
from receiver.store.pending import Pending
from receiver.upkeep import sweep


@dataclass(frozen=True)
class Alerts:
    notification: Notification
    source: Literal["webhook", "reconcile"] = "webhook"


@dataclass(frozen=True)
class OperatorAction:
    tenant_id: str
    action: Action
    reason: str


@dataclass(frozen=True)
class Tick:
    """Time passed: due transitions, held trips retried, victims released, the
    board tidied (expired alerts, quiet incidents resolved)."""


Input = Alerts | OperatorAction | Tick
OVERLAP_ALERTS = 500
"""Alerts from which a delivery's breaker follow-ups (`Listener.committed`) run while
its board change is in Redis: for fewer, both take less than handing the change to
a sending thread costs."""


class _Once:
    def __init__(self, work: Callable[[], None]) -> None:
        self._work: Callable[[], None] | None = work

    def __call__(self) -> None:
        work, self._work = self._work, None
        if work is not None:
            work()


@dataclass
class Outcome:
    transitions: list[TransitionEvent] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    ingest: IngestResult | None = None
    source: str = ""
    queued: bool = False
    """Whether the board put notices in the outbox (to drain now)."""


def signals_of(result: IngestResult) -> Signals:
    return Signals(
        alerts=result.alerts,
        fresh=result.fresh,
        group_key=result.group_key,
        tiers=result.tiers,
        held=result.held,
        transitions=result.transitions,
        partial=result.partial,
        board_unseen=result.board_unseen,
    )


def apply(
    services: Services,
    item: Input,
    now: float,
    listeners: Sequence[Listener] = LISTENERS,
) -> Outcome:
    s = services
    settings = s.settings
    pending = Pending()  # what follows a delivery's breakers, sent with the board read
    if isinstance(item, Alerts):
        result = ingest(item.notification, s.store, settings, s.registry, now, pending)
        outcome = Outcome(result.transitions, ingest=result, source=item.source)
        signals = signals_of(result)
    elif isinstance(item, OperatorAction):
        events = act(s.store, item.tenant_id, item.action, item.reason, settings.breaker, now)
        outcome = Outcome(events, source="operator")
        signals = Signals(transitions=events)
    else:
        events = sweep(
            s.store,
            settings.breaker,
            now,
            settings.max_isolated_percent,
            settings.shared_settle_s,
            settings.shared_release_window_s,
        )
        outcome = Outcome(events, source="sweep")
        signals = Signals(transitions=events)
    tidy = isinstance(item, Tick)
    # A webhook's board signals may be left for the process at the board (its answer
    # does not wait for them); the others apply their own.
    hand_off = isinstance(item, Alerts) and item.source == "webhook"

    def follow_breakers() -> None:
        for listener in listeners:
            listener.committed(outcome)

    committed = _Once(follow_breakers)
    # A large delivery's follow-ups run while Redis applies its board change.
    meanwhile = committed if len(signals.alerts) >= OVERLAP_ALERTS else None
    try:
        if meanwhile is None:
            committed()
        posted = update(
            s.incidents,
            s.store,
            settings,
            s.registry,
            signals,
            now,
            tidy,
            pending,
            hand_off,
            meanwhile,
        )
    finally:
        committed()  # if the board committed nothing, or failed
        pending.flush(s.store.client)  # unless the board read carried it
    if settings.redis_min_replicas and not tidy:
        # Acknowledged only once replicas have it: a failover now loses nothing.
        s.store.confirm_replicated(settings.redis_min_replicas, settings.redis_timeout_s / 2, now)
    outcome.notices, outcome.queued = posted.notices, posted.queued
    for listener in listeners:
        listener.noticed(outcome, services, now)
    return outcome
