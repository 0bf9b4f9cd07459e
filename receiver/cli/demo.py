"""`blast-radius demo`: a scripted story through real webhook posts to a running
receiver, so a newcomer sees isolation, correlation, the guard and recovery."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import click

from receiver.alerts import rfc3339
from receiver.cli.client import DEFAULT_URL, Api, money, table
from receiver.cli.listing import incident_table

FLEET = (
    [(f"plat-{i:02d}", "platinum") for i in range(1, 6)]
    + [(f"gold-{i:02d}", "gold") for i in range(1, 11)]
    + [(f"silver-{i:02d}", "silver") for i in range(1, 16)]
    + [(f"bronze-{i:02d}", "bronze") for i in range(1, 21)]
)
"""Fifty tenants, as in a mid-sized RAG platform."""


ERROR_RATE = {"alertname": "TenantErrorRateHigh", "action": "isolate", "severity": "critical"}
SHARED_FAILURE = {"alertname": "TenantSharedFailure", "cause": "shared", "severity": "warning"}
NOISY_NEIGHBOR = {
    "alertname": "TenantNoisyNeighbor",
    "action": "isolate",
    "cause": "noisy_neighbor",
    "severity": "critical",
}
PLATFORM = {"alertname": "PlatformErrorRateHigh", "scope": "platform", "severity": "critical"}


def notification(
    tenants: list[tuple[str, str]],
    status: str,
    starts_at: float,
    rule: dict[str, str] = ERROR_RATE,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An Alertmanager v4 webhook payload of one rule's alerts, one per tenant (or one
    naming no tenant, for a platform rule given no tenants)."""
    alerts = []
    for tenant_id, tier in tenants or [("", "")]:
        labels = {**rule, **({"tenant_id": tenant_id, "tier": tier} if tenant_id else {})}
        key = f"{rule['alertname']}/{tenant_id}"
        alerts.append(
            {
                "status": status,
                "labels": labels,
                "annotations": annotations or {"summary": f"{rule['alertname']} {tenant_id}"},
                "startsAt": rfc3339(starts_at),
                "endsAt": rfc3339(time.time()) if status == "resolved" else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.invalid/graph",
                "fingerprint": hashlib.blake2b(key.encode(), digest_size=8).hexdigest(),
            }
        )
    return {
        "version": "4",
        "status": status,
        "receiver": "blast-radius",
        "alerts": alerts,
        "groupLabels": {"alertname": rule["alertname"]},
        "commonLabels": dict(rule),
        "groupKey": f'{{}}:{{alertname="{rule["alertname"]}"}}',
        "truncatedAlerts": 0,
        "externalURL": "http://alertmanager.invalid",
    }


def _scene(title: str) -> None:
    click.echo()
    click.secho(f"== {title}", bold=True)


def _breakers(api: Api, only: set[str]) -> None:
    items = api.get("/api/v1/tenants?per_page=500")["items"]
    rows = [
        (t["tenant_id"], t["tier"], t["breaker"]["state"]) for t in items if t["tenant_id"] in only
    ]
    click.echo(table(("tenant", "tier", "breaker"), rows))


def _transitions(reply: dict[str, Any]) -> None:
    opened = [
        t["tenant_id"] for t in reply["transitions"] if t["to"] == "open" and not t["suppressed"]
    ]
    held = [t["tenant_id"] for t in reply["transitions"] if t["suppressed"]]
    if opened:
        click.echo(f"isolated: {', '.join(opened)}")
    if held:
        click.echo(f"held back: {', '.join(held)}")


@click.command()
@click.option("--url", default=DEFAULT_URL, show_default=True, help="a running receiver")
@click.option("--heal-timeout", default=180, show_default=True, help="seconds to wait for recovery")
def demo(url: str, heal_timeout: int) -> None:
    """Play a failure story against a running receiver and show what it does."""
    api = Api(url)
    _scene(f"Registering {len(FLEET)} tenants (5 platinum, 10 gold, 15 silver, 20 bronze)")
    for tenant_id, tier in FLEET:
        api.admin("PUT", f"/api/v1/tenants/{tenant_id}", {"tier": tier})
    click.echo("done: the guard now knows the whole fleet")

    _scene("1. A platinum tenant's runaway query exhausts its share")
    start = time.time()
    _transitions(api.webhook(notification([("plat-01", "platinum")], "firing", start)))
    click.echo(incident_table(api.get("/api/v1/incidents?status=open")["items"]))
    first = api.get("/api/v1/incidents?status=open")["items"][0]["id"]
    admission = api.get("/api/v1/tenants/plat-01/admission")
    click.echo(
        f"gateway asks about plat-01: allow={admission['allow']}, "
        f"retry after {admission['retry_after_s']} s"
    )
    api.admin("POST", f"/api/v1/incidents/{first}/acknowledge", {"by": "demo on-call"})
    api.admin(
        "POST",
        f"/api/v1/incidents/{first}/notes",
        {"text": "runaway embedding batch from plat-01", "author": "demo on-call"},
    )
    api.admin(
        "POST",
        f"/api/v1/incidents/{first}/resolve",
        {"by": "demo on-call", "reason": "batch capped; tenant recovers on probation"},
    )
    click.echo(
        f"on-call acknowledged and resolved {first}; plat-01 stays isolated until it proves healthy"
    )

    _scene("2. Six silver tenants fail one after another")
    silver = [(f"silver-{i:02d}", "silver") for i in range(1, 7)]
    for tenant in silver:
        api.webhook(notification([tenant], "firing", time.time()))
        current = api.get("/api/v1/incidents?status=open&scope=tenant")["items"][0]
        click.echo(
            f"{tenant[0]} fails -> {current['id']} has {len(current['tenants'])} "
            f"tenants, priority {current['priority']}"
        )

    _scene("3. One tenant's 100x-expensive queries exhaust the shared pool: all fail")
    shared = [(f"bronze-{i:02d}", "bronze") for i in range(1, 21)]
    onset = time.time()
    api.webhook(notification([], "firing", onset, PLATFORM))
    victims = api.webhook(notification(shared, "firing", onset, SHARED_FAILURE))
    click.echo(f"{len(shared)} tenants failing with the platform: {victims['accepted']} recorded")
    _transitions(api.webhook(notification(shared[:3], "firing", onset)))
    figures = {"share": "0.71", "baseline_share": "0.03", "growth": "79"}
    culprit = [("gold-01", "gold")]
    _transitions(api.webhook(notification(culprit, "firing", onset, NOISY_NEIGHBOR, figures)))
    click.echo(incident_table(api.get("/api/v1/incidents?status=open&scope=platform")["items"]))

    _scene("4. Everything heals")
    api.webhook(notification([], "resolved", onset, PLATFORM))
    api.webhook(notification(shared, "resolved", onset, SHARED_FAILURE))
    api.webhook(notification(shared[:3], "resolved", onset))
    api.webhook(notification(culprit, "resolved", onset, NOISY_NEIGHBOR, figures))
    platform = api.get("/api/v1/incidents?scope=platform")["items"][0]
    events = api.get(f"/api/v1/incidents/{platform['id']}")["timeline"]
    click.echo(next((e["message"] for e in events if e["kind"] == "contained"), "not contained"))
    failing = [("plat-01", "platinum"), *silver, *culprit]
    api.webhook(notification(failing[:-1], "resolved", start))
    names = {t for t, _ in failing}
    deadline = time.time() + heal_timeout
    while time.time() < deadline:
        states = [
            t["breaker"]["state"]
            for t in api.get("/api/v1/tenants?per_page=500")["items"]
            if t["tenant_id"] in names
        ]
        isolated = sum(s != "closed" for s in states)
        click.echo(f"  {isolated} tenants still isolated or on probation")
        if not isolated:
            break
        time.sleep(5)
    _breakers(api, {t for t, _ in failing[:8]})
    click.echo()
    click.echo(incident_table(api.get("/api/v1/incidents?per_page=10")["items"]))
    stats = api.get(f"/api/v1/stats?since={start - 1}")
    click.echo()
    click.echo(
        f"incidents: {stats['total']}  by priority: {stats['by_priority']}  "
        f"cost accrued {money(stats['cost_accrued'])}, avoided {money(stats['cost_avoided'])}"
    )
