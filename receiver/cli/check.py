"""`blast-radius check`: the deployment readiness checklist as real checks."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import redis
import requests
import yaml

from receiver.config import ConfigError, Settings, load_settings
from receiver.services import build_services
from receiver.store import connect
from receiver.store.client import primaries

Check = tuple[bool, str]
WEAK_TOKENS = {"changeme", "secret", "token", "password", "test", "example"}


def _tokens(settings: Settings) -> Check:
    values = [settings.webhook_token, settings.api_token, settings.admin_token]
    if len(set(values)) < 3:
        return False, "the three tokens must differ"
    if any(len(v) < 24 or any(w in v.lower() for w in WEAK_TOKENS) for v in values):
        return False, "use random tokens of 24+ characters (e.g. openssl rand -base64 32)"
    if Path(".dev-tokens").is_file() and any(v in Path(".dev-tokens").read_text() for v in values):
        return False, "tokens are the development ones from .dev-tokens"
    return True, "set, distinct and strong"


def _redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return False, "REDIS_URL is unset: the embedded store is per process and not persisted"
    client, _ = connect(settings.redis_url, settings.redis_timeout_s)
    try:
        client.ping()
        # On a cluster, every primary must be persistent and never evict.
        servers = primaries(client)
        found = [
            {
                name: s.config_get(name).get(name)
                for name in ("appendonly", "save", "maxmemory-policy")
            }
            for s in servers
        ]
    except redis.RedisError as exc:
        return False, f"unreachable or refusing CONFIG: {exc.__class__.__name__}"
    for config in found:
        aof, save, policy = config["appendonly"], config["save"], config["maxmemory-policy"]
        if aof != "yes" and not save:
            return False, "reachable but not persistent: enable appendonly (AOF) or RDB saves"
        if policy not in (None, "noeviction"):
            return False, f"maxmemory-policy {policy} may evict state; use noeviction"
    aof, save = found[0]["appendonly"], found[0]["save"]
    where = f" on {len(found)} primaries" if len(found) > 1 else ""
    return True, f"reachable, persistent{where} (appendonly={aof}, save='{save}')"


def _notifiers(settings: Settings) -> Check:
    notify = settings.notify
    configured = [c for c in ("pagerduty", "slack", "email") if notify.configured(c)]
    routed = {c for channels in notify.routes.values() for c in channels}
    missing = sorted(routed - set(configured))
    if not configured:
        return False, "no channel configured: nobody hears about incidents"
    if missing:
        return False, f"routed but not configured: {', '.join(missing)}"
    return True, f"configured: {', '.join(configured)}"


def _tool(tool: str, args: list[str], path: str | None) -> Check:
    if not path:
        return True, "skipped (no file given)"
    if shutil.which(tool) is None:
        return True, f"skipped ({tool} not installed)"
    result = subprocess.run([tool, *args, path], capture_output=True, text=True, timeout=60)
    last = (result.stdout + result.stderr).strip().splitlines()[-1:] or [""]
    return result.returncode == 0, last[0]


def _routes_to_us(route: dict[str, Any], labels: dict[str, str]) -> str | None:
    """The receiver Alertmanager picks for `labels` (first matching route, depth first)."""
    for child in route.get("routes") or []:
        matchers = child.get("matchers") or []
        if all(_matches(m, labels) for m in matchers):
            return _routes_to_us(child, labels) or child.get("receiver") or route.get("receiver")
    return route.get("receiver")


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    for op in ("!=", "=~", "!~", "="):
        name, sep, value = matcher.partition(op)
        if sep:
            value = value.strip().strip('"')
            actual = labels.get(name.strip(), "")
            if op == "=":
                return actual == value
            if op == "!=":
                return actual != value
            found = re.fullmatch(value, actual) is not None
            return found if op == "=~" else not found
    return False


def _alertmanager(url: str | None) -> Check:
    if not url:
        return False, "ALERTMANAGER_URL unset: cannot verify routing"
    try:
        status = requests.get(f"{url.rstrip('/')}/api/v2/status", timeout=5).json()
    except (requests.RequestException, ValueError) as exc:
        return False, f"unreachable: {exc.__class__.__name__}"
    config = yaml.safe_load(status["config"]["original"])
    labels = {
        "alertname": "TenantErrorRateHigh",
        "action": "isolate",
        "tenant_id": "x",
        "severity": "critical",
    }
    name = _routes_to_us(config["route"], labels)
    receiver: dict[str, Any] = next(
        (r for r in config.get("receivers", []) if r.get("name") == name), {}
    )
    hooks = [w.get("url", "") for w in receiver.get("webhook_configs", [])]
    if not any("/webhook/alertmanager" in h for h in hooks):
        return False, f"TenantErrorRateHigh goes to '{name}', which is not this receiver"
    if not all(w.get("send_resolved", True) for w in receiver.get("webhook_configs", [])):
        return False, "send_resolved is off: recoveries would never arrive"
    return True, f"routes TenantErrorRateHigh to '{name}' ({hooks[0]})"


def _watchdog(settings: Settings) -> Check:
    if not settings.redis_url:
        return False, "needs REDIS_URL"
    store = build_services(settings, registry={}).store
    try:
        last = store.watchdog_last_seen()
    except redis.RedisError:
        return False, "Redis unreachable"
    if last is None:
        return False, "never seen: is the Watchdog rule loaded and routed here?"
    age = time.time() - last
    if age > settings.watchdog_max_age_s:
        return False, f"last seen {age:.0f} s ago (limit {settings.watchdog_max_age_s:.0f} s)"
    return True, f"seen {age:.0f} s ago"


@click.command()
@click.option(
    "--rules",
    default="prometheus-rules.yml",
    show_default=True,
    help="rule file to check with promtool ('' to skip)",
)
@click.option(
    "--alertmanager-config",
    default="alertmanager.yml",
    show_default=True,
    help="config to check with amtool ('' to skip)",
)
@click.option(
    "--alertmanager-url",
    envvar="ALERTMANAGER_URL",
    default=None,
    help="Alertmanager to ask about routing [env ALERTMANAGER_URL]",
)
def check(rules: str, alertmanager_config: str, alertmanager_url: str | None) -> None:
    """Is this deployment ready for production? Exits 1 if not."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"✗ configuration: {exc}")
        raise SystemExit(1) from None
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("tokens", lambda: _tokens(settings)),
        ("redis", lambda: _redis(settings)),
        ("notifications", lambda: _notifiers(settings)),
        ("prometheus rules", lambda: _tool("promtool", ["check", "rules"], rules or None)),
        (
            "alertmanager config",
            lambda: _tool("amtool", ["check-config"], alertmanager_config or None),
        ),
        ("alertmanager routing", lambda: _alertmanager(alertmanager_url)),
        ("watchdog", lambda: _watchdog(settings)),
    ]
    ready = True
    for name, run in checks:
        try:
            ok, reason = run()
        except Exception as exc:  # a check that breaks is a failed check, with its reason
            ok, reason = False, f"{exc.__class__.__name__}: {exc}"
        ready &= ok
        click.echo(f"{'✓' if ok else '✗'} {name}: {reason}")
    click.echo("ready for production" if ready else "not ready")
    raise SystemExit(0 if ready else 1)
