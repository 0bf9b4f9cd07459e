"""How a breaker and its transitions are written in a scope's keys: the state hash's
fields, and one compact JSON line per transition."""

from __future__ import annotations

import json

from receiver.breaker import Breaker, State, Transition


def breaker_fields(breaker: Breaker) -> dict[str, str]:
    def num(value: float | None) -> str:
        return "" if value is None else repr(value)

    return {
        "state": breaker.state.value,
        "opened_at": num(breaker.opened_at),
        "half_open_at": num(breaker.half_open_at),
        "open_count": str(breaker.open_count),
        "failure_count": str(breaker.failure_count),
        "firing": json.dumps(sorted(breaker.firing)),
        "culprit": json.dumps(sorted(breaker.culprit)),
    }


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
        firing=frozenset(json.loads(data.get("firing") or "[]")),
        culprit=frozenset(json.loads(data.get("culprit") or "[]")),
    )


compact_json = json.JSONEncoder(separators=(",", ":")).encode
"""`json.dumps` with compact separators, without building an encoder per call."""


def transition_json(transition: Transition) -> str:
    return compact_json(
        {
            "from": transition.from_state.value,
            "to": transition.to_state.value,
            "at": transition.at,
            "reason": transition.reason,
            "suppressed": transition.suppressed,
        }
    )


def transition_from_json(text: str) -> Transition:
    data = json.loads(text)
    return Transition(
        State(data["from"]), State(data["to"]), data["at"], data["reason"], data["suppressed"]
    )
