"""The breaker state machine, without Redis or HTTP."""

from __future__ import annotations

from dataclasses import replace

import pytest

from receiver.breaker import (
    Action,
    Breaker,
    State,
    admit,
    apply_action,
    is_held,
    is_victim_isolation,
    next_transition_at,
    on_firing,
    on_resolved,
    open_timeout_s,
    release_hold,
    release_victim,
    tick,
)
from receiver.config import BreakerSettings

S = BreakerSettings(open_timeout_s=60, max_open_timeout_s=900, half_open_probation_s=60)
T = 1000.0


def opened(at: float = T, count: int = 1, firing: frozenset[str] = frozenset({"a"})) -> Breaker:
    return Breaker(state=State.OPEN, opened_at=at, open_count=count, firing=firing)


def test_firing_opens_a_closed_breaker() -> None:
    """A firing isolation alert opens the breaker with one recorded transition."""
    breaker, made = on_firing(Breaker(), "a", T, S)
    assert breaker.state is State.OPEN
    assert breaker.opened_at == T and breaker.open_count == 1
    assert [(t.from_state, t.to_state) for t in made] == [(State.CLOSED, State.OPEN)]


def test_failure_threshold_counts_firing_notifications() -> None:
    """With failure_threshold 3 the third firing notification opens the breaker."""
    settings = BreakerSettings(failure_threshold=3)
    breaker = Breaker()
    for fingerprint in ("a", "b"):
        breaker, made = on_firing(breaker, fingerprint, T, settings)
        assert breaker.state is State.CLOSED and made == []
    breaker, made = on_firing(breaker, "c", T, settings)
    assert breaker.state is State.OPEN and len(made) == 1


def test_resolution_while_closed_resets_the_count() -> None:
    """Failures must be consecutive: a full resolution starts the count again."""
    settings = BreakerSettings(failure_threshold=2)
    breaker, _ = on_firing(Breaker(), "a", T, settings)
    breaker, _ = on_resolved(breaker, "a", T, settings)
    assert breaker.failure_count == 0
    breaker, _ = on_firing(breaker, "a", T, settings)
    assert breaker.state is State.CLOSED


def test_resolved_does_not_close_an_open_breaker() -> None:
    """An isolated tenant has no traffic; its resolved alert is no proof of health."""
    breaker, made = on_resolved(opened(), "a", T + 5, S)
    assert breaker.state is State.OPEN and made == []
    assert breaker.firing == frozenset()


def test_open_moves_to_half_open_after_timeout() -> None:
    """open -> half_open exactly when the open timeout has elapsed, stamped at the due time."""
    breaker, made = tick(opened(), T + 59.9, S)
    assert breaker.state is State.OPEN and made == []
    breaker, made = tick(opened(), T + 75, S)
    assert breaker.state is State.HALF_OPEN
    assert breaker.half_open_at == T + 60
    assert [(t.to_state, t.at) for t in made] == [(State.HALF_OPEN, T + 60)]


@pytest.mark.parametrize(
    ("open_count", "expected_s"), [(1, 60), (2, 120), (3, 240), (4, 480), (5, 900), (40, 900)]
)
def test_open_timeout_doubles_up_to_the_cap(open_count: int, expected_s: float) -> None:
    """Each consecutive re-open doubles the timeout, never beyond max_open_timeout_s."""
    assert open_timeout_s(opened(count=open_count), S) == expected_s


def test_half_open_closes_after_probation_when_resolved() -> None:
    """half_open -> closed after probation with the isolation alert resolved."""
    half = Breaker(state=State.HALF_OPEN, opened_at=T, half_open_at=T + 60, open_count=2)
    breaker, made = tick(half, T + 120, S)
    assert breaker == Breaker()
    assert [(t.from_state, t.to_state, t.at) for t in made] == [
        (State.HALF_OPEN, State.CLOSED, T + 120)
    ]


def test_half_open_reopens_after_probation_when_still_firing() -> None:
    """half_open -> open after probation if the alert never resolved, with a longer timeout."""
    half = Breaker(
        state=State.HALF_OPEN,
        opened_at=T,
        half_open_at=T + 60,
        open_count=1,
        firing=frozenset({"a"}),
    )
    breaker, made = tick(half, T + 130, S)
    assert breaker.state is State.OPEN and breaker.opened_at == T + 120
    assert breaker.open_count == 2
    assert next_transition_at(breaker, S) == T + 120 + 120
    assert [t.to_state for t in made] == [State.OPEN]


def test_firing_during_half_open_reopens() -> None:
    """A new firing notification while probing isolates the tenant again at once."""
    half = Breaker(state=State.HALF_OPEN, opened_at=T, half_open_at=T + 60, open_count=1)
    breaker, made = on_firing(half, "a", T + 70, S)
    assert breaker.state is State.OPEN and breaker.opened_at == T + 70
    assert breaker.open_count == 2
    assert [(t.from_state, t.to_state) for t in made] == [(State.HALF_OPEN, State.OPEN)]


def test_long_silence_replays_every_due_transition() -> None:
    """A read long after opening sees open -> half_open -> closed, each at its own time."""
    breaker, _ = on_resolved(opened(), "a", T + 1, S)
    breaker, made = tick(breaker, T + 10_000, S)
    assert breaker.state is State.CLOSED
    assert [(t.to_state, t.at) for t in made] == [
        (State.HALF_OPEN, T + 60),
        (State.CLOSED, T + 120),
    ]


def test_stuck_firing_alert_cycles_with_growing_timeouts() -> None:
    """An alert that never resolves keeps the tenant mostly isolated, backing off."""
    breaker, made = tick(opened(), T + 60 + 60 + 120 + 60 + 1, S)
    assert [t.to_state for t in made] == [
        State.HALF_OPEN,
        State.OPEN,
        State.HALF_OPEN,
        State.OPEN,
    ]
    assert breaker.open_count == 3


@pytest.mark.parametrize(
    ("action", "start", "expected"),
    [
        (Action.FORCE_OPEN, Breaker(), State.FORCED_OPEN),
        (Action.FORCE_OPEN, opened(), State.FORCED_OPEN),
        (Action.FORCE_CLOSE, opened(), State.CLOSED),
        (Action.FORCE_CLOSE, Breaker(state=State.FORCED_OPEN, opened_at=T), State.CLOSED),
        (Action.RESET, opened(), State.CLOSED),
        (Action.DISABLE, opened(), State.DISABLED),
        (Action.DISABLE, Breaker(), State.DISABLED),
    ],
)
def test_operator_actions(action: Action, start: Breaker, expected: State) -> None:
    """Operator actions override the breaker and are recorded as one transition."""
    breaker, made = apply_action(start, action, T, "operator")
    assert breaker.state is expected
    assert [(t.from_state, t.to_state, t.reason) for t in made] == [
        (start.state, expected, "operator")
    ]


def test_repeated_action_records_nothing() -> None:
    """Forcing open a forced-open breaker is not a transition."""
    forced, _ = apply_action(Breaker(), Action.FORCE_OPEN, T, "x")
    again, made = apply_action(forced, Action.FORCE_OPEN, T + 1, "x")
    assert again == forced and made == []


def test_reset_forgets_firing_alerts_but_force_close_keeps_them() -> None:
    """reset clears everything; force_close keeps what is still firing."""
    assert apply_action(opened(), Action.RESET, T, "r")[0].firing == frozenset()
    assert apply_action(opened(), Action.FORCE_CLOSE, T, "r")[0].firing == frozenset({"a"})


def test_forced_open_ignores_time_and_alerts() -> None:
    """forced_open stays until an operator releases it."""
    forced, _ = apply_action(Breaker(), Action.FORCE_OPEN, T, "x")
    assert tick(forced, T + 10**6, S) == (forced, [])
    breaker, made = on_resolved(forced, "a", T + 5, S)
    assert breaker.state is State.FORCED_OPEN and made == []


def test_disabled_never_trips_but_records_what_would_have_happened() -> None:
    """disabled: a firing alert leaves the state alone and logs a suppressed open."""
    disabled, _ = apply_action(Breaker(), Action.DISABLE, T, "x")
    breaker, made = on_firing(disabled, "a", T + 1, S)
    assert breaker.state is State.DISABLED
    assert len(made) == 1 and made[0].suppressed and made[0].to_state is State.OPEN


@pytest.mark.parametrize(
    ("breaker", "draw", "allow", "retry_after_s"),
    [
        (Breaker(), 0.99, True, None),
        (opened(), 0.0, False, 50),
        (Breaker(state=State.FORCED_OPEN, opened_at=T), 0.0, False, None),
        (Breaker(state=State.DISABLED), 0.5, True, None),
        (Breaker(state=State.HALF_OPEN, opened_at=T, half_open_at=T), 0.05, True, None),
        (Breaker(state=State.HALF_OPEN, opened_at=T, half_open_at=T), 0.15, False, 1),
    ],
)
def test_admission(breaker: Breaker, draw: float, allow: bool, retry_after_s: int | None) -> None:
    """What the gateway is told in each state; half_open lets about 10% through."""
    decision = admit(breaker, T + 10, S, draw)
    assert decision.allow is allow
    assert decision.retry_after_s == retry_after_s
    assert decision.state is breaker.state


def test_held_trip_is_released_when_a_slot_frees() -> None:
    """A trip held back by the guard stays closed and is recognised; releasing opens it."""
    breaker, made = on_firing(Breaker(), "a", T, S, hold="guard full")
    assert breaker.state is State.CLOSED and made[0].suppressed
    assert is_held(breaker, S)
    opened, step = release_hold(breaker, T + 30)
    assert opened.state is State.OPEN and opened.opened_at == T + 30
    assert "a guard slot is free" in step[0].reason
    assert not is_held(on_resolved(breaker, "a", T + 1, S)[0], S)


def test_a_culprit_stays_one_while_isolated_and_is_forgotten_once_closed() -> None:
    """A noisy-neighbour alert opens the breaker and marks it a culprit; its resolution
    leaves the mark while the breaker isolates, and closing clears it."""
    breaker, made = on_firing(Breaker(), "nn", T, S, culprit=True)
    assert (breaker.state, breaker.culprit) == (State.OPEN, frozenset({"nn"}))
    assert made[0].reason == "noisy-neighbour alert nn firing"
    breaker, _ = on_resolved(breaker, "nn", T + 5, S)
    assert (breaker.state, breaker.culprit, breaker.firing) == (
        State.OPEN,
        frozenset({"nn"}),
        frozenset(),
    )
    assert not is_victim_isolation(breaker, T - 1)
    breaker, _ = tick(breaker, T + 200, S)
    assert (breaker.state, breaker.culprit) == (State.CLOSED, frozenset())


@pytest.mark.parametrize(
    ("breaker", "since", "victim"),
    [
        (opened(at=T), T - 1, True),
        (opened(at=T), T + 1, False),
        (replace(opened(at=T), state=State.HALF_OPEN, half_open_at=T + 60), T, True),
        (replace(opened(at=T), culprit=frozenset({"a"})), T - 1, False),
        (Breaker(state=State.FORCED_OPEN, opened_at=T), T - 1, False),
        (Breaker(), T - 1, False),
    ],
    ids=["open-since", "open-before", "half-open", "culprit", "forced-open", "closed"],
)
def test_victim_isolation_is_an_automatic_open_since_the_time_that_is_no_culprits(
    breaker: Breaker, since: float, victim: bool
) -> None:
    """Only open or probing breakers opened since then, not for a culprit alert, are victims'."""
    assert is_victim_isolation(breaker, since) is victim


def test_a_released_victim_closes_with_its_trip_held() -> None:
    """Released while its alert fires: closed, and the trip is held for a later retry."""
    breaker, made = release_victim(opened(), T + 5, "released: shared cause", S)
    assert breaker.state is State.CLOSED and breaker.firing == frozenset({"a"})
    assert is_held(breaker, S)
    assert [(t.from_state, t.to_state, t.reason) for t in made] == [
        (State.OPEN, State.CLOSED, "released: shared cause")
    ]
    quiet, _ = release_victim(opened(firing=frozenset()), T + 5, "released", S)
    assert not is_held(quiet, S) and quiet == Breaker()
