"""A delivery's board signals as text, for the hand-off list: a delivery that finds
another process at the board leaves its signals there, and the holder applies them
with its own change (`correlate.update`)."""

from __future__ import annotations

from typing import Any

from receiver import jsontext
from receiver.alerts import Alert
from receiver.board import Signals
from receiver.breaker import State, Transition, TransitionEvent
from receiver.tenants import Tier

VERSION = 1


def encode(signals: Signals) -> str:
    """Everything `apply_signals` reads, as one JSON array."""
    alerts = [
        [
            scope,
            a.status,
            a.labels,
            a.annotations,
            a.starts_at,
            a.ends_at,
            a.starts_at_s,
            a.ends_at_s,
            a.fingerprint,
            a.generator_url,
        ]
        for scope, a in signals.alerts
    ]
    transitions = [
        [
            e.tenant_id,
            e.transition.from_state,
            e.transition.to_state,
            e.transition.at,
            e.transition.reason,
            e.transition.suppressed,
        ]
        for e in signals.transitions
    ]
    return jsontext.dumps(
        [
            VERSION,
            alerts,
            sorted(signals.fresh),
            signals.group_key,
            dict(signals.tiers),
            dict(signals.held),
            transitions,
            signals.partial,
            dict(signals.opened_at),
        ]
    )


def decode(text: str) -> Signals:
    """The signals `encode` wrote; ValueError if the text is not such signals."""
    try:
        data: list[Any] = jsontext.loads(text)
        version, alerts, fresh, group_key, tiers, held, transitions, partial, opened = data
        if version != VERSION:
            raise ValueError(f"hand-off version {version!r}")
        return Signals(
            alerts=[(scope, Alert(*fields)) for scope, *fields in alerts],
            fresh=set(fresh),
            group_key=group_key,
            tiers={scope: Tier(tier) for scope, tier in tiers.items()},
            held=dict(held),
            transitions=[
                TransitionEvent(tenant, Transition(State(a), State(b), at, reason, suppressed))
                for tenant, a, b, at, reason, suppressed in transitions
            ],
            partial=bool(partial),
            opened_at={scope: float(at) for scope, at in opened.items()},
        )
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a hand-off: {exc}") from None
