"""blast-radius receiver: isolates a failing tenant before it takes the platform down."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Flask

from receiver import api, errors, logs, metrics
from receiver.config import ConfigError, Settings, load_settings
from receiver.deps import EXTENSION, Services
from receiver.notify.hub import build_hub
from receiver.store import Store, connect
from receiver.store.incidents import IncidentStore
from receiver.sweeper import Sweeper
from receiver.tenants import RegistryError, load_registry

log = logging.getLogger("receiver")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. `test_config` may carry SETTINGS, REDIS_CLIENT, CLOCK and
    SWEEPER (False to not start the background sweep)."""
    config = test_config or {}
    if not logging.getLogger().handlers:
        try:
            logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
        except ValueError as exc:
            raise SystemExit(f"blast-radius: configuration error: LOG_LEVEL: {exc}") from None
    try:
        settings: Settings = config.get("SETTINGS") or load_settings()
        registry = load_registry(settings.tenants_file)
    except (ConfigError, RegistryError) as exc:
        log.critical("configuration error: %s", exc)
        raise SystemExit(f"blast-radius: configuration error: {exc}") from None

    notify = settings.notify
    logs.add_secrets(
        [
            settings.webhook_token,
            settings.api_token,
            settings.admin_token,
            *notify.pagerduty_routing_keys.values(),
            notify.slack_webhook_url,
            notify.smtp_password,
        ]
    )
    if "REDIS_CLIENT" in config:
        client, embedded = config["REDIS_CLIENT"], False
    else:
        client, embedded = connect(settings.redis_url, settings.redis_timeout_s)
    if embedded:
        log.warning(
            "REDIS_URL is not set: using an embedded in-memory store. State is per process "
            "and lost on restart, and notifications stay queued (the worker needs Redis); "
            "set REDIS_URL for anything but a trial."
        )
    store = Store(
        client,
        log_cap=settings.breaker.transition_log_cap,
        seen_ttl_s=settings.idempotency_ttl_s,
        cause_max_age_s=settings.incidents.alert_timeout_s,
    )
    incidents = IncidentStore(client, seen_ttl_s=settings.idempotency_ttl_s)
    clock = config.get("CLOCK", time.time)

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    hub = build_hub(settings, client, store, incidents, clock)
    app.extensions[EXTENSION] = Services(settings, store, incidents, registry, clock, embedded, hub)
    errors.register(app)
    api.register(app)
    metrics.init_app(app)

    if registry:
        try:
            store.add_known(registry, clock())
        except Exception as exc:  # Redis may come up after us; tenants are indexed on use too.
            log.warning("could not index registry tenants yet: %s", exc.__class__.__name__)
    if config.get("SWEEPER", True):
        sweeper = Sweeper(app.extensions[EXTENSION])
        sweeper.start()
        app.extensions["blast_radius_sweeper"] = sweeper
    return app
