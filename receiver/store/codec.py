"""How a breaker and its transitions are written in a scope's keys: the state hash's
fields, and one compact JSON line per transition."""

from __future__ import annotations

from receiver import jsontext
from receiver.breaker import Breaker, State, Transition

BREAKER_FIELDS = (
    "state",
    "opened_at",
    "half_open_at",
    "open_count",
    "failure_count",
    "firing",
    "culprit",
)
"""The state hash's breaker fields, in the order `breaker_values` gives them."""


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


def breaker_values(breaker: Breaker) -> list[str]:
    """The breaker's fields' values, in `BREAKER_FIELDS`' order."""
    return [
        breaker.state,  # a StrEnum: its value as it is
        _num(breaker.opened_at),
        _num(breaker.half_open_at),
        str(breaker.open_count),
        str(breaker.failure_count),
        _names(breaker.firing),
        _names(breaker.culprit),
    ]


def _names(values: frozenset[str]) -> str:
    if not values:
        return "[]"
    if len(values) == 1:
        (value,) = values
        if value.isalnum():  # nothing to escape: as JSON writes it, without the encoder
            return f'["{value}"]'
    return jsontext.dumps(sorted(values))


def breaker_from_fields(data: dict[str, str]) -> Breaker:
    if not data.get("state"):
        return Breaker()

    def num(name: str) -> float | None:
        value = data.get(name, "")
        return float(value) if value else None

    return Breaker(
        state=State(data["state"]),
        opened_at=num("opened_at"),
        half_open_at=num("half_open_at"),
        open_count=int(data.get("open_count") or 0),
        failure_count=int(data.get("failure_count") or 0),
        firing=frozenset(jsontext.loads(data.get("firing") or "[]")),
        culprit=frozenset(jsontext.loads(data.get("culprit") or "[]")),
    )


def transition_json(transition: Transition) -> str:
    return jsontext.dumps(
        {
            "from": transition.from_state,
            "to": transition.to_state,
            "at": transition.at,
            "reason": transition.reason,
            "suppressed": transition.suppressed,
        }
    )


def transition_from_json(text: str) -> Transition:
    data = jsontext.loads(text)
    return Transition(
        State(data["from"]), State(data["to"]), data["at"], data["reason"], data["suppressed"]
    )
