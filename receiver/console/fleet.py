"""The fleet: every known tenant as a tile, grouped by tier, and the JSON its page
polls to stay current (one request for the whole fleet)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template, url_for
from markupsafe import Markup, escape

from receiver.api.alerts import pipeline_health
from receiver.api.deps import get_services, now
from receiver.console.blueprint import bp
from receiver.console.pages import STATES
from receiver.console.session import signed_in
from receiver.fleet import Fleet, Tile, read_fleet

REFRESH_MS = 3000


def _fleet() -> Fleet:
    services = get_services()
    return read_fleet(services.store, services.settings, services.registry, now())


def summary(fleet: Fleet) -> dict[str, Any]:
    """The figures above the tiles, for the page and its poll alike."""
    health = pipeline_health()
    age = health["watchdog_age_s"]
    return {
        "known": len(fleet.tiles),
        "counts": dict(fleet.counts),
        "isolated": fleet.isolated,
        "cap": fleet.cap,
        "watchdog_age_s": None if age is None else round(age),
        "watchdog_healthy": health["healthy"],
    }


def tiles_html(tiles: list[Tile], href: str) -> Markup:
    """The tiles of one tier. Built here rather than in a template loop: at 10,000
    tiles Jinja's per-value escaping is most of the page's time; here each tenant id
    is escaped once and everything else is our own constant text."""
    parts = []
    for tile in tiles:
        tenant = escape(tile.tenant_id)
        state = tile.shown
        icon, label = STATES[state]
        parts.append(
            f'<a class="tile s-{state}" href="{href}{tenant}" data-t="{tenant}" '
            f'title="{tenant}: {label}"><i>{icon}</i>{tenant}</a>'
        )
    return Markup("".join(parts))


@bp.get("/")
@signed_in
def fleet_page() -> str:
    fleet = _fleet()
    href = url_for("console.tenant_page", tenant_id="")
    return render_template(
        "fleet.html",
        groups={
            tier: (len(tiles), tiles_html(tiles, href)) for tier, tiles in fleet.by_tier().items()
        },
        summary=summary(fleet),
        tenant_url=href,
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
