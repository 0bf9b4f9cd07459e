"""The whole pipeline on this machine, for the live tests and the benchmarks: Redis,
the receiver under gunicorn, the simulated platform acting as the gateway,
Alertmanager with the shipped routes and Prometheus with the shipped rules."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from receiver.simulator import Platform, Tenant
from tests.conftest import API_TOKEN, TOKENS_ENV, WEBHOOK_TOKEN
from tests.servers import Alertmanager, Prometheus, Receiver, RedisServer


@dataclass
class LiveStack:
    receiver: Receiver
    platform: Platform
    prometheus: Prometheus
    started: list[Any]
    registry: Path

    @classmethod
    def start(
        cls,
        tenants: list[Tenant],
        env: Mapping[str, str] | None = None,
        *,
        seed: int | None = None,
        capacity_pool_s: float | None = None,
    ) -> LiveStack:
        """Every tenant in the receiver's registry with its tier; `env` adds receiver
        settings. Whatever started is stopped again if a later part fails."""
        registry = Path(tempfile.mkdtemp(prefix="br-live-")) / "tenants.yml"
        registry.write_text(
            yaml.safe_dump({"tenants": {t.tenant_id: {"tier": t.tier} for t in tenants}})
        )
        started: list[Any] = []
        try:
            redis_server = RedisServer().start()
            started.append(redis_server)
            receiver_env = {
                **TOKENS_ENV,
                **(env or {}),
                "REDIS_URL": redis_server.url,
                "TENANTS_FILE": str(registry),
            }
            receiver = Receiver(receiver_env).start()
            started.append(receiver)
            platform = Platform(
                tenants,
                receiver_url=receiver.url,
                api_token=API_TOKEN,
                seed=seed,
                capacity_pool_s=capacity_pool_s,
            ).start()
            started.append(platform)
            alertmanager = Alertmanager(f"{receiver.url}/webhook/alertmanager", WEBHOOK_TOKEN)
            started.append(alertmanager.start())
            targets = {
                "platform": [platform.url.removeprefix("http://")],
                "blast-radius": [receiver.url.removeprefix("http://")],
            }
            prometheus = Prometheus(targets, alertmanager.address).start()
            started.append(prometheus)
        except BaseException:
            _stop(started, registry)
            raise
        return cls(receiver, platform, prometheus, started, registry)

    def stop(self) -> None:
        _stop(self.started, self.registry)


def _stop(started: list[Any], registry: Path) -> None:
    for server in reversed(started):
        server.stop()
    registry.unlink(missing_ok=True)
    registry.parent.rmdir()
