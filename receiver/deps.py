"""What the app builds once and views reach: settings, stores, registry, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from receiver.config import Settings
from receiver.notify.hub import Hub
from receiver.store import Store
from receiver.store.incidents import IncidentStore
from receiver.tenants import Tier

EXTENSION = "blast_radius"


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    incidents: IncidentStore
    registry: dict[str, Tier]
    clock: Callable[[], float]
    embedded: bool
    hub: Hub


def get_services() -> Services:
    services: Services = current_app.extensions[EXTENSION]
    return services


def now() -> float:
    return get_services().clock()
