"""How views reach the services the app built (`receiver.services`)."""

from __future__ import annotations

from flask import current_app

from receiver.services import Services

EXTENSION = "blast_radius"


def get_services() -> Services:
    services: Services = current_app.extensions[EXTENSION]
    return services


def now() -> float:
    return get_services().clock()
