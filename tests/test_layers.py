"""The house stays drawn: each module's imports, read with `ast`, keep to its layer
(docs/architecture.md). web -> pipeline -> domain; pipeline -> store; notify -> store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "receiver"

DOMAIN = {
    "cost",
    "alerts",
    "attribution",
    "board",
    "breaker",
    "causes",
    "config",
    "env",
    "figures",
    "incident_doc",
    "gate",
    "guard",
    "incidents",
    "jsontext",
    "members",
    "postmortem",
    "quick_init",
    "redis_url",
    "schemas",
    "tenants",
}
PIPELINE = {
    "containment",
    "correlate",
    "fleet",
    "followups",
    "ingest",
    "metrics",
    "operator",
    "pipeline",
    "reconcile",
    "services",
    "sweeper",
    "upkeep",
}
TOOLS = {"admission_client", "gc_pause", "logs", "simulator", "stack", "workload"}
"""Stand on their own: the gateway's client, the collector's pause, logging, the
simulated platform, the local stack."""

FORBIDDEN: dict[str, set[str]] = {
    "domain": {"flask", "redis", "rq", "requests", "web", "cli", "pipeline", "store", "notify"},
    "store": {"flask", "web", "cli", "pipeline", "notify"},
    "notify": {"flask", "web", "cli"},
    "pipeline": {"flask", "web", "cli"},
    "tools": {"flask", "web", "cli", "pipeline", "store", "notify"},
}


def layer_of(module: str) -> str:
    """`receiver.x.y` -> its layer; third-party packages are their own top name."""
    parts = module.split(".")
    if parts[0] != "receiver":
        return parts[0]
    if len(parts) == 1:
        return "web"  # the app factory
    top = parts[1]
    if top in ("api", "console"):
        return "web"
    if top in ("cli", "store", "notify"):
        return top
    if top in DOMAIN:
        return "domain"
    if top in PIPELINE:
        return "pipeline"
    if top in TOOLS:
        return "tools"
    raise AssertionError(f"{module}: in no layer; add it to tests/test_layers.py")


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def imports(path: Path) -> set[str]:
    """Every module imported, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "receiver":  # from receiver import x: the module x
                names.update(f"receiver.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_keep_to_the_layer(module: str, path: Path) -> None:
    """No module imports what its layer must not: the domain neither Flask nor Redis,
    the store no web, notify no web, and nothing but web and cli imports Flask."""
    layer = layer_of(module)
    forbidden = FORBIDDEN.get(layer, set())
    broken = sorted(name for name in imports(path) if layer_of(name) in forbidden)
    assert not broken, f"{module} ({layer}) imports {broken}"


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("receiver", "web"),
        ("receiver.api.webhook", "web"),
        ("receiver.console.fleet", "web"),
        ("receiver.board", "domain"),
        ("receiver.store.scopes", "store"),
        ("receiver.pipeline", "pipeline"),
        ("flask", "flask"),
    ],
)
def test_layers_are_read_from_module_names(module: str, layer: str) -> None:
    """The map itself: package, sub-packages, domain and pipeline modules, third parties."""
    assert layer_of(module) == layer


def test_a_broken_rule_is_caught(tmp_path: Path) -> None:
    """A domain module importing Flask, or the store importing a view, is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from flask import g\nimport receiver.api.deps\nfrom receiver import store\n")
    found = {layer_of(name) for name in imports(bad)}
    assert {"flask", "web", "store"} <= found & FORBIDDEN["domain"]
