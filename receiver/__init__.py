"""blast-radius receiver: isolates a failing tenant before it takes the platform down."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Flask

from receiver import api, console, logs
from receiver.api import errors
from receiver.api import metrics as metrics_api
from receiver.api.deps import EXTENSION
from receiver.api.json_provider import OrjsonProvider
from receiver.config import ConfigError, Settings, load_settings
from receiver.services import build_services
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
            settings.metrics_token,
            settings.session_secret,
            *notify.pagerduty_routing_keys.values(),
            notify.slack_webhook_url,
            notify.smtp_password,
        ]
    )
    clock = config.get("CLOCK", time.time)
    services = build_services(
        settings, client=config.get("REDIS_CLIENT"), registry=registry, clock=clock
    )

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes)
    app.json = OrjsonProvider(app)
    app.extensions[EXTENSION] = services
    errors.register(app)
    api.register(app)
    console.init_app(app, settings)
    metrics_api.init_app(app)

    if registry:
        try:
            services.store.add_known(registry, clock())
        except Exception as exc:  # Redis may come up after us; tenants are indexed on use too.
            log.warning("could not index registry tenants yet: %s", exc.__class__.__name__)
    if config.get("SWEEPER", True):
        sweeper = Sweeper(services)
        sweeper.start()
        app.extensions["blast_radius_sweeper"] = sweeper
    return app
