"""The blast-radius guard's rule: how many tenants may be isolated at once."""

from __future__ import annotations


def guard_cap(known: int, max_isolated_percent: float) -> int:
    """How many tenants the guard lets be isolated at once, of `known`: the rule the
    slot scripts apply in Redis (`store.scope_scripts.TAKE_SLOT`), for the code that
    decides or shows it beforehand."""
    return max(1, int(known * max_isolated_percent // 100))
