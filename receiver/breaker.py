"""The per-tenant circuit breaker as a pure state machine.

Every function takes a `Breaker` and returns the next one plus the transitions it
made; nothing here touches Redis or Flask. The store commits the result atomically,
and only the caller whose commit wins records the transitions, so each one is
recorded exactly once however many workers race.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from receiver.config import BreakerSettings
from receiver.quick_init import quick_init

MAX_TICK_STEPS = 64


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class Action(StrEnum):
    FORCE_OPEN = "force_open"
    FORCE_CLOSE = "force_close"
    RESET = "reset"
    DISABLE = "disable"


@quick_init
@dataclass(frozen=True)
class Breaker:
    state: State = State.CLOSED
    opened_at: float | None = None
    half_open_at: float | None = None
    open_count: int = 0
    """Consecutive opens since the breaker last closed; drives the back-off."""
    failure_count: int = 0
    """Firing notifications counted while closed, against `failure_threshold`."""
    firing: frozenset[str] = frozenset()
    """Fingerprints of this tenant's isolation alerts that are firing now."""
    culprit: frozenset[str] = frozenset()
    """Noisy-neighbour alerts that named this tenant as the cause of a shared failure:
    kept while the breaker isolates it, even once they resolve, so the tenant is never
    released as a mere victim of the failure it caused."""


@quick_init
@dataclass(frozen=True)
class Transition:
    from_state: State
    to_state: State
    at: float
    reason: str
    suppressed: bool = False
    """True when the breaker would have moved but policy kept it (disabled)."""


@quick_init
@dataclass(frozen=True)
class TransitionEvent:
    tenant_id: str
    transition: Transition

    def as_dict(self) -> dict[str, Any]:
        t = self.transition
        return {
            "tenant_id": self.tenant_id,
            "from": t.from_state,  # StrEnums: their values as they are
            "to": t.to_state,
            "at": t.at,
            "reason": t.reason,
            "suppressed": t.suppressed,
        }


Step = tuple[Breaker, list[Transition]]


def open_timeout_s(breaker: Breaker, settings: BreakerSettings) -> float:
    """Open timeout doubled for each consecutive re-open, capped."""
    exponent = max(breaker.open_count - 1, 0)
    if exponent >= 32:
        return settings.max_open_timeout_s
    return min(settings.open_timeout_s * float(2**exponent), settings.max_open_timeout_s)


def next_transition_at(breaker: Breaker, settings: BreakerSettings) -> float | None:
    if breaker.state is State.OPEN and breaker.opened_at is not None:
        return breaker.opened_at + open_timeout_s(breaker, settings)
    if breaker.state is State.HALF_OPEN and breaker.half_open_at is not None:
        return breaker.half_open_at + settings.half_open_probation_s
    return None


def _open(breaker: Breaker, at: float, reason: str) -> Step:
    opened = Breaker(
        state=State.OPEN,
        opened_at=at,
        open_count=breaker.open_count + 1,
        firing=breaker.firing,
        culprit=breaker.culprit,
    )
    return opened, [Transition(breaker.state, State.OPEN, at, reason)]


def _close(breaker: Breaker, at: float, reason: str, *, clear_firing: bool = False) -> Step:
    kept = Breaker(firing=breaker.firing, culprit=breaker.culprit & breaker.firing)
    closed = Breaker() if clear_firing else kept
    return closed, [Transition(breaker.state, State.CLOSED, at, reason)]


def tick(breaker: Breaker, now: float, settings: BreakerSettings) -> Step:
    """Apply every time-based transition that is due at `now`, each at its due time."""
    if breaker.state is not State.OPEN and breaker.state is not State.HALF_OPEN:
        return breaker, []  # nothing timed (most breakers, most of the time)
    transitions: list[Transition] = []
    for _ in range(MAX_TICK_STEPS):
        due = next_transition_at(breaker, settings)
        if due is None or due > now:
            break
        if breaker.state is State.OPEN:
            breaker = replace(breaker, state=State.HALF_OPEN, half_open_at=due)
            transitions.append(
                Transition(State.OPEN, State.HALF_OPEN, due, "open timeout elapsed; probing")
            )
        elif breaker.firing:
            breaker, made = _open(breaker, due, "isolation alert still firing after probation")
            transitions += made
        else:
            breaker, made = _close(breaker, due, "probation passed with isolation alert resolved")
            transitions += made
    return breaker, transitions


def would_trip(breaker: Breaker, settings: BreakerSettings) -> bool:
    """Whether one more firing notification would open this closed breaker."""
    return breaker.state is State.CLOSED and breaker.failure_count + 1 >= settings.failure_threshold


def on_firing(
    breaker: Breaker,
    fingerprint: str,
    now: float,
    settings: BreakerSettings,
    hold: str | None = None,
    culprit: bool = False,
) -> Step:
    """A new firing notification of one of the tenant's isolation alerts.

    `hold` is why a trip must not happen now (the blast-radius guard): the breaker
    stays closed and the would-be transition is logged as suppressed. A `culprit`
    alert names this tenant as the cause of a shared failure; the caller never holds
    it back, since isolating it is what contains the failure."""
    closed = breaker.state is State.CLOSED
    firing = breaker.firing | {fingerprint}
    culprits = breaker.culprit | {fingerprint} if culprit else breaker.culprit
    what = "noisy-neighbour alert" if culprit else "isolation alert"
    if closed and hold is None and breaker.failure_count + 1 >= settings.failure_threshold:
        # A trip, built in one step: a storm opens thousands.
        opened = Breaker(State.OPEN, now, None, breaker.open_count + 1, 0, firing, culprits)
        return opened, [Transition(State.CLOSED, State.OPEN, now, f"{what} {fingerprint} firing")]
    breaker = Breaker(  # one copy, not one per field
        state=breaker.state,
        opened_at=breaker.opened_at,
        half_open_at=breaker.half_open_at,
        open_count=breaker.open_count,
        failure_count=breaker.failure_count + 1 if closed else breaker.failure_count,
        firing=firing,
        culprit=culprits,
    )
    if closed:
        if breaker.failure_count < settings.failure_threshold:
            return breaker, []
        if hold is not None:
            return breaker, [Transition(State.CLOSED, State.OPEN, now, hold, suppressed=True)]
        return _open(breaker, now, f"{what} {fingerprint} firing")
    if breaker.state is State.HALF_OPEN:
        return _open(breaker, now, f"{what} {fingerprint} firing during probation")
    if breaker.state is State.DISABLED:
        return breaker, [
            Transition(
                State.DISABLED,
                State.OPEN,
                now,
                f"isolation alert {fingerprint} firing; breaker disabled",
                suppressed=True,
            )
        ]
    return breaker, []


def is_held(breaker: Breaker, settings: BreakerSettings) -> bool:
    """A trip the blast-radius guard held back: closed, though its alert fires on."""
    return (
        breaker.state is State.CLOSED
        and bool(breaker.firing)
        and breaker.failure_count >= settings.failure_threshold
    )


def release_hold(breaker: Breaker, now: float) -> Step:
    """Open a held-back breaker now that the guard has a slot for it."""
    fingerprint = min(breaker.firing)
    return _open(breaker, now, f"isolation alert {fingerprint} still firing; a guard slot is free")


def on_resolved(breaker: Breaker, fingerprint: str, now: float, settings: BreakerSettings) -> Step:
    """A resolved notification. It never closes an open breaker by itself: an
    isolated tenant has no traffic, so its healthy-looking ratio proves nothing."""
    firing = breaker.firing - {fingerprint}
    culprit = breaker.culprit - {fingerprint} if breaker.state is State.CLOSED else breaker.culprit
    if breaker.state is State.CLOSED and not firing:
        return replace(breaker, firing=firing, culprit=culprit, failure_count=0), []
    return replace(breaker, firing=firing, culprit=culprit), []


def is_victim_isolation(breaker: Breaker, opened_since: float) -> bool:
    """Open or on probation since `opened_since` for alerts that do not name this
    tenant as a culprit: isolated for a failure it only suffered."""
    return (
        breaker.state in (State.OPEN, State.HALF_OPEN)
        and not breaker.culprit
        and breaker.opened_at is not None
        and breaker.opened_at >= opened_since
    )


def release_victim(breaker: Breaker, now: float, reason: str, settings: BreakerSettings) -> Step:
    """Close a victim's breaker. Its trip stays held (`is_held`): if its alert still
    fires once the shared cause is over, the tenant fails on its own and is isolated."""
    closed = Breaker(
        firing=breaker.firing,
        failure_count=settings.failure_threshold if breaker.firing else 0,
    )
    return closed, [Transition(breaker.state, State.CLOSED, now, reason)]


def apply_action(breaker: Breaker, action: Action, now: float, reason: str) -> Step:
    """An operator's override."""
    if action is Action.RESET:
        if breaker == Breaker():
            return breaker, []
        return _close(breaker, now, reason, clear_firing=True)
    if action is Action.FORCE_CLOSE:
        if breaker.state is State.CLOSED:
            return breaker, []
        return _close(breaker, now, reason)
    target = State.FORCED_OPEN if action is Action.FORCE_OPEN else State.DISABLED
    if breaker.state is target:
        return breaker, []
    moved = Breaker(
        state=target,
        opened_at=now if target is State.FORCED_OPEN else None,
        firing=breaker.firing,
        culprit=breaker.culprit,
    )
    return moved, [Transition(breaker.state, target, now, reason)]


ISOLATING = frozenset({State.OPEN, State.HALF_OPEN, State.FORCED_OPEN})
"""States that hold one of the blast-radius guard's isolation slots."""


@dataclass(frozen=True)
class Admission:
    allow: bool
    state: State
    retry_after_s: int | None


def admit(breaker: Breaker, now: float, settings: BreakerSettings, draw: float) -> Admission:
    """Whether the gateway should serve one request; `draw` is uniform in [0, 1)."""
    state = breaker.state
    if state in (State.CLOSED, State.DISABLED):
        return Admission(True, state, None)
    if state is State.FORCED_OPEN:
        return Admission(False, state, None)
    if state is State.HALF_OPEN:
        if draw * 100 < settings.half_open_probe_percent:
            return Admission(True, state, None)
        return Admission(False, state, 1)
    due = next_transition_at(breaker, settings)
    wait = 1 if due is None else max(1, math.ceil(due - now))
    return Admission(False, state, wait)
