"""Validation of one webhook body: the schema's `load` against the cheap check that
stands in for it (`NotificationSchema.checked`), in one run, for a one-alert delivery
(Alertmanager's per-tenant groups) and a 10,000-alert payload.

Run: .venv/bin/python -m bench.validation
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

from bench.throughput import grouped
from receiver.schemas import AlertLimits, NotificationSchema
from tests.conftest import isolate_alert


def best_us(call: Callable[[], Any], number: int) -> float:
    """The fastest of 5 repeats, per call, in microseconds."""
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def main() -> None:
    schema = NotificationSchema(limits=AlertLimits())
    for name, body, number in (
        ("1 alert", isolate_alert("acme"), 2000),
        ("10,000 alerts", grouped(10000, "v"), 3),
    ):
        assert schema.checked(body) == schema.load(body)
        loaded = best_us(lambda body=body: schema.load(body), number)
        checked = best_us(lambda body=body: schema.checked(body), number)
        print(
            f"{name:>14}: load {loaded:10.1f} us, checked {checked:10.1f} us "
            f"({checked / loaded:.2f} of load)"
        )


if __name__ == "__main__":
    main()
