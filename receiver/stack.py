"""The whole pipeline on one machine without Docker: redis-server, the receiver and
its worker, Alertmanager and Prometheus (Debian's binaries) with the shipped files,
and the simulated platform. Also the config rewriting the tests use, so the stack
and the tests run exactly the shipped rules and routes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent


def alertmanager_config(source: Path, webhook_url: str, token_file: Path) -> dict[str, Any]:
    """The shipped routing with only the webhook URL and the token file changed."""
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook_url
            webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


def prometheus_config(
    rules: Path, targets: Mapping[str, Sequence[str]], alertmanager: str
) -> dict[str, Any]:
    """The shipped rules, a 10 s scrape of `targets`, alerts to one Alertmanager."""
    return {
        "global": {"scrape_interval": "10s", "evaluation_interval": "10s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addresses)}]}
            for job, addresses in targets.items()
        ],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError(f"{name} not found (Debian: apt-get install {name.split('-')[0]})")
    return found


class Stack:
    """Start everything in order; `stop` ends what was started, newest first."""

    def __init__(self, files: Path, env: Mapping[str, str], tenants: str) -> None:
        self.files = files
        self.env = {**os.environ, **env}
        self.tenants = tenants
        self.dir = Path(tempfile.mkdtemp(prefix="blast-radius-stack-"))
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.ports = {
            name: free_port()
            for name in ("redis", "receiver", "alertmanager", "prometheus", "platform")
        }
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}

    def _run(self, name: str, argv: list[str], ready: Callable[[], bool]) -> None:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - open while it runs
        proc = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.files
        )
        self.procs.append((name, proc))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.dir / (name + '.log')}")
            try:
                if ready():
                    return
            except (requests.RequestException, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready in 60 s; see {self.dir / (name + '.log')}")

    def start(self) -> None:
        p, u = self.ports, self.urls
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{p['redis']}/0"
        self._run(
            "redis",
            [
                binary("redis-server"),
                "--port",
                str(p["redis"]),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.dir),
            ],
            lambda: socket.create_connection(("127.0.0.1", p["redis"]), 0.2) is not None,
        )
        self._run(
            "receiver",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{p['receiver']}",
                "--workers",
                "2",
                "receiver:create_app()",
            ],
            lambda: requests.get(f"{u['receiver']}/healthz", timeout=1).ok,
        )
        self._run("worker", [sys.executable, "-m", "receiver.cli", "worker"], lambda: True)
        token = self.dir / "webhook-token"
        token.write_text(self.env["RECEIVER_WEBHOOK_TOKEN"])
        token.chmod(0o600)
        am = alertmanager_config(
            self.files / "alertmanager.yml", f"{u['receiver']}/webhook/alertmanager", token
        )
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(am, sort_keys=False))
        self._run(
            "alertmanager",
            [
                binary("prometheus-alertmanager"),
                f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'am'}",
                f"--web.listen-address=127.0.0.1:{p['alertmanager']}",
                "--cluster.listen-address=",
            ],
            lambda: requests.get(f"{u['alertmanager']}/-/ready", timeout=1).ok,
        )
        self._run(
            "platform",
            [
                sys.executable,
                "-m",
                "receiver.simulator",
                "--port",
                str(p["platform"]),
                "--receiver-url",
                u["receiver"],
                "--tenants",
                self.tenants,
            ],
            lambda: requests.get(f"{u['platform']}/state", timeout=1).ok,
        )
        targets = {
            "platform": [f"127.0.0.1:{p['platform']}"],
            "blast-radius": [f"127.0.0.1:{p['receiver']}"],
        }
        prom = prometheus_config(
            self.files / "prometheus-rules.yml", targets, f"127.0.0.1:{p['alertmanager']}"
        )
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(prom, sort_keys=False))
        self._run(
            "prometheus",
            [
                binary("prometheus"),
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{p['prometheus']}",
            ],
            lambda: requests.get(f"{u['prometheus']}/-/ready", timeout=1).ok,
        )

    def control(self, tenant_id: str, error_ratio: float) -> None:
        """Make a tenant fail (or heal it with 0)."""
        requests.post(
            f"{self.urls['platform']}/control",
            timeout=5,
            json={"tenant_id": tenant_id, "error_ratio": error_ratio},
        ).raise_for_status()

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
