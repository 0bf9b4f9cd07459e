"""What every page's template gets: the operator, the CSRF token, the state
labels, the clock, and how to show times and money."""

from __future__ import annotations

from typing import Any

from receiver.api.deps import now
from receiver.console import session
from receiver.console.blueprint import bp
from receiver.postmortem import money, span, when

STATES: dict[str, tuple[str, str]] = {
    "closed": ("✓", "closed"),
    "half_open": ("◐", "half open: probing"),
    "open": ("✕", "open: isolated"),
    "forced_open": ("■", "forced open"),
    "disabled": ("⊘", "disabled"),
    "held": ("◇", "held back by the guard"),
}
"""Each tile state's icon and label: colour is never the only carrier."""


@bp.app_template_filter("when")
def _when(at: float | None) -> str:
    return when(at)


@bp.app_template_filter("span")
def _span(seconds: float | None) -> str:
    return span(seconds)


@bp.app_template_filter("money")
def _money(amount: float) -> str:
    return money(amount)


@bp.context_processor
def _context() -> dict[str, Any]:
    return {
        "operator": session.current(),
        "csrf_token": session.csrf_token,
        "csrf_field": session.CSRF_FIELD,
        "states": STATES,
        "server_now": now(),
    }
