"""The fleet: every known tenant as a tile, grouped by tier, and the JSON its page
polls to stay current (one request for the whole fleet)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template, url_for

from receiver.api.deps import get_services, now
from receiver.console.blueprint import bp
from receiver.console.session import signed_in
from receiver.fleet import Fleet, read_fleet

REFRESH_MS = 3000


def _fleet() -> Fleet:
    services = get_services()
    return read_fleet(services.store, services.settings, services.registry, now())


def summary(fleet: Fleet) -> dict[str, Any]:
    """The figures above the tiles, for the page and its poll alike."""
    limit = get_services().settings.watchdog_max_age_s
    age = fleet.watchdog_age_s
    return {
        "known": len(fleet.tiles),
        "counts": dict(fleet.counts),
        "isolated": fleet.isolated,
        "cap": fleet.cap,
        "watchdog_age_s": None if age is None else round(age),
        "watchdog_healthy": age is not None and age <= limit,
    }


@bp.get("/")
@signed_in
def fleet_page() -> str:
    fleet = _fleet()
    return render_template(
        "fleet.html",
        groups=fleet.by_tier(),
        summary=summary(fleet),
        tenant_url=url_for("console.tenant_page", tenant_id=""),
        poll_url=url_for("console.fleet_json"),
        refresh_ms=REFRESH_MS,
    )


@bp.get("/console/fleet.json")
@signed_in
def fleet_json() -> Response:
    """Every tile as `[tenant, tier, state]` and the summary."""
    fleet = _fleet()
    tiles = [[t.tenant_id, t.tier, t.shown] for t in fleet.tiles]
    return jsonify({"tiles": tiles, **summary(fleet)})
