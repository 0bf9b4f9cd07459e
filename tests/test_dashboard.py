"""The Grafana dashboard only queries metrics that exist: recorded by the rules,
exported by the platform, or exported by the receiver."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import fakeredis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from receiver import create_app, metrics
from receiver.breaker import State, Transition, TransitionEvent
from receiver.config import Settings
from tests.conftest import T0, WEBHOOK, Clock, isolate_alert, payload
from tests.servers import ROOT, need_binary

DASHBOARD = ROOT / "dashboards" / "blast-radius.json"
PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
}
BUILTIN = {"up"}
"""Series Prometheus makes itself for every scrape target."""
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$tenant": ".*"}


def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found += [item] if item.get("type") != "row" else []
        found += panels(item.get("panels", []))
    return found


def expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: what is left once strings, label
    matchers, ranges, grouping clauses and function calls are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", promql(expr))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    text = re.sub(r"\boffset\s+\S+", " ", text)
    for match in re.finditer(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def recorded() -> set[str]:
    rules = yaml.safe_load((ROOT / "prometheus-rules.yml").read_text())
    return {r["record"] for group in rules["groups"] for r in group["rules"] if "record" in r}


def platform_inputs() -> set[str]:
    """The platform's metrics, as the README's table documents them."""
    return set(re.findall(r"^\| `(rag_[a-z_]+)`", (ROOT / "README.md").read_text(), re.M))


def exported(settings: Settings) -> set[str]:
    """Every sample name the receiver's /metrics shows after some of everything."""
    app = create_app(
        {
            "SETTINGS": settings,
            "REDIS_CLIENT": fakeredis.FakeRedis(decode_responses=True),
            "CLOCK": Clock(),
            "SWEEPER": False,
        }
    )
    client = app.test_client()
    client.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    client.post("/webhook/alertmanager", json=payload("watchdog-firing.json"), headers=WEBHOOK)
    metrics.observe_delivery("slack", "sent")
    held = Transition(State.CLOSED, State.OPEN, T0, "blast-radius guard", suppressed=True)
    metrics.observe_transitions([TransitionEvent("acme", held)])
    text = client.get("/metrics").get_data(as_text=True)
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_metric_name_extraction() -> None:
    """The extraction itself: functions, labels, ranges and grouping are not names."""
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{x=~"y|z"}[5m]))) '
        "/ on (tenant_id) group_left (tier) b:c:rate30s unless d_total offset 5m"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b:c:rate30s", "d_total"}


def test_every_panel_queries_a_metric_that_exists(settings: Settings) -> None:
    """No panel shows 'No data' because of a name that nothing exports."""
    known = recorded() | platform_inputs() | exported(settings) | BUILTIN
    assert {"rag_queries_total", "rag_query_errors_total"} <= known
    missing = {
        (title, name)
        for title, expr in expressions()
        for name in metric_names(expr)
        if name not in known
    }
    assert not missing, f"panels query metrics nothing exports: {sorted(missing)}"


def test_panels_are_complete_and_use_the_datasource_variable() -> None:
    """Every panel has a query, a unique id, fits the 24-column grid, and reads
    the data source the user picked."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "blast-radius" and dashboard["schemaVersion"] >= 36
    every = panels(dashboard["panels"])
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids))
    for panel in every:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "tenant"} <= variables


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query (as a recording rule)."""
    promtool = need_binary("promtool")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": promql(expr)}
                    for i, (_, expr) in enumerate(expressions())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
