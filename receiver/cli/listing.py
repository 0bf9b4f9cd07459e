"""`blast-radius tenants` and `blast-radius incidents`: what the receiver knows."""

from __future__ import annotations

import click

from receiver.cli.client import DEFAULT_URL, Api, money, table


@click.command()
@click.option("--url", default=DEFAULT_URL, show_default=True, help="the receiver")
@click.option("--state", default=None, help="only tenants in this breaker state")
def tenants(url: str, state: str | None) -> None:
    """Known tenants with tier and breaker state."""
    api = Api(url)
    items = api.get("/api/v1/tenants?per_page=500")["items"]
    rows = [
        (t["tenant_id"], t["tier"], t["breaker"]["state"], t["breaker"]["open_count"])
        for t in items
        if state is None or t["breaker"]["state"] == state
    ]
    click.echo(table(("tenant", "tier", "breaker", "opens"), rows))


@click.command()
@click.option("--url", default=DEFAULT_URL, show_default=True, help="the receiver")
@click.option("--status", default=None, type=click.Choice(["open", "acknowledged", "resolved"]))
def incidents(url: str, status: str | None) -> None:
    """Incidents, newest first."""
    api = Api(url)
    query = f"&status={status}" if status else ""
    click.echo(incident_table(api.get(f"/api/v1/incidents?per_page=100{query}")["items"]))


def incident_table(items: list[dict[str, object]]) -> str:
    rows = []
    for i in items:
        impact: dict[str, float] = i["impact"]  # type: ignore[assignment]
        tenants: dict[str, str] = i["tenants"]  # type: ignore[assignment]
        rows.append(
            (
                i["id"],
                i["priority"],
                i["scope"],
                i["status"],
                len(tenants),
                money(impact["cost_per_hour"]) + "/h",
                money(impact["avoided"]),
                i["title"],
            )
        )
    return table(
        ("incident", "prio", "scope", "status", "tenants", "cost", "avoided", "title"), rows
    )
