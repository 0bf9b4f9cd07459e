"""Real processes for tests: redis-server, the receiver under gunicorn, Alertmanager and
Prometheus with the shipped configuration, on loopback ports picked free, stopped by
whoever started them."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from receiver.stack import alertmanager_config, free_port, prometheus_config

ROOT = Path(__file__).resolve().parent.parent


def need_binary(name: str) -> str:
    """The binary's path. Missing: a failure under CI (it must be installed), else a skip."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path:
        return path
    message = f"{name} is not installed (the test command installs it: scripts/test.sh)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def wait_for(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout_s}s (last error: {last!r})")


class RedisServer:
    def __init__(self) -> None:
        self.binary = need_binary("redis-server")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="br-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_for(up, 10, "redis-server")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class Receiver:
    """The receiver under real gunicorn."""

    def __init__(
        self,
        env: Mapping[str, str],
        workers: int = 2,
        app: str = "receiver:create_app()",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.workers = workers
        self.app = app
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open while the server runs
            prefix="br-gunicorn-", suffix=".log", delete=False
        )

    @property
    def url(self) -> str:
        scheme = "https" if self.env.get("RECEIVER_TLS_CERT") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> str | bool:
        """What `requests` should trust: the receiver's own certificate, if it has one."""
        return self.env.get("RECEIVER_TLS_CERT") or True

    def start(self) -> Receiver:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--graceful-timeout",
                "5",
                *self.extra_args,
                self.app,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: requests.get(f"{self.url}/healthz", timeout=1, verify=self.verify).ok,
                30,
                "gunicorn",
            )
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"gunicorn did not start:\n{self.output()}") from None
        return self

    def api(self, path: str, timeout_s: float = 5.0) -> Any:
        """`GET /api/v1<path>` with its reader token; the decoded body (raises on an
        error status)."""
        headers = {"Authorization": f"Bearer {self.env['RECEIVER_API_TOKEN']}"}
        response = requests.get(
            f"{self.url}/api/v1{path}", headers=headers, timeout=timeout_s, verify=self.verify
        )
        response.raise_for_status()
        return response.json()

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """End a process we started: SIGTERM, then SIGKILL if it lingers."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(url: str) -> bool:
    return requests.get(f"{url}/-/ready", timeout=1).status_code == 200


class Daemon:
    """A Prometheus-family binary run from its own temporary folder, logging to
    `log` there; the folder is kept when start-up fails, for its log."""

    proc: subprocess.Popen[bytes] | None
    dir: Path

    def launch(self, argv: list[str], what: str, ready: list[tuple[object, float]]) -> None:
        """Run `argv`, then wait for each (check, timeout) in turn."""
        with open(self.dir / "log", "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            for check, timeout_s in ready:
                wait_for(check, timeout_s, what)
        except TimeoutError:
            self.stop(keep_dir=True)
            raise TimeoutError(f"{what} did not start:\n{self.output()}") from None

    def output(self) -> str:
        return (self.dir / "log").read_text(errors="replace")

    def stop(self, keep_dir: bool = False) -> None:
        stop_process(self.proc)
        self.proc = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class Alertmanager(Daemon):
    """Alertmanager with the shipped `alertmanager.yml`; only the webhook URL and the
    token file are rewritten, so every route and timing is the production one."""

    def __init__(self, webhook_url: str, webhook_token: str) -> None:
        self.binary = need_binary("prometheus-alertmanager")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="br-alertmanager-"))
        self.proc: subprocess.Popen[bytes] | None = None
        token_file = self.dir / "webhook-token"
        token_file.write_text(webhook_token)
        token_file.chmod(0o600)
        config = alertmanager_config(ROOT / "alertmanager.yml", webhook_url, token_file)
        self.config_file = self.dir / "alertmanager.yml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> Alertmanager:
        argv = [
            self.binary,
            f"--config.file={self.config_file}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address={self.address}",
            *self.cluster_args(),
        ]
        self.launch(argv, "alertmanager", [(lambda: _ready(self.url), 30)])
        return self

    def cluster_args(self) -> list[str]:
        return ["--cluster.listen-address="]


class Prometheus(Daemon):
    """Prometheus with the shipped `prometheus-rules.yml`, scraping `targets` every 10s
    (as in production) and alerting to one Alertmanager."""

    def __init__(self, targets: Mapping[str, list[str]], alertmanager: str) -> None:
        self.binary = need_binary("prometheus")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="br-prometheus-"))
        self.alertmanager = alertmanager
        self.proc: subprocess.Popen[bytes] | None = None
        config = prometheus_config(ROOT / "prometheus-rules.yml", targets, alertmanager)
        self.config_file = self.dir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        """Start, and wait until Prometheus has discovered the Alertmanager: an alert
        firing before that reaches it only with the next re-send, up to 1 minute later."""
        argv = [
            self.binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

        def discovered() -> bool:
            reply = requests.get(f"{self.url}/api/v1/alertmanagers", timeout=1).json()
            active = reply["data"]["activeAlertmanagers"]
            return any(self.alertmanager in am["url"] for am in active)

        self.launch(argv, "prometheus", [(lambda: _ready(self.url), 60), (discovered, 30)])
        return self

    def query(self, expr: str) -> list[dict[str, object]]:
        reply = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        reply.raise_for_status()
        result: list[dict[str, object]] = reply.json()["data"]["result"]
        return result


class AlertmanagerPeer(Alertmanager):
    """One Alertmanager of an HA pair, gossiping with its peers over loopback.

    Only command-line flags differ from a single Alertmanager. A short gossip interval
    makes the cluster settle in about two seconds instead of ten; `peer_timeout_s` is
    how long the second peer waits for the first to deliver (production: 15s)."""

    def __init__(self, webhook_url: str, webhook_token: str, peer_timeout_s: float = 15.0) -> None:
        super().__init__(webhook_url, webhook_token)
        self.cluster_port = free_port()
        self.peer_timeout_s = peer_timeout_s
        self.peers: list[str] = []

    @classmethod
    def pair(
        cls, webhook_url: str, webhook_token: str, peer_timeout_s: float = 15.0
    ) -> tuple[AlertmanagerPeer, AlertmanagerPeer]:
        first = cls(webhook_url, webhook_token, peer_timeout_s)
        second = cls(webhook_url, webhook_token, peer_timeout_s)
        first.peers, second.peers = [second.cluster_address], [first.cluster_address]
        return first, second

    @property
    def cluster_address(self) -> str:
        return f"127.0.0.1:{self.cluster_port}"

    def cluster_args(self) -> list[str]:
        return [
            f"--cluster.listen-address={self.cluster_address}",
            f"--cluster.advertise-address={self.cluster_address}",
            f"--cluster.peer-timeout={self.peer_timeout_s}s",
            "--cluster.gossip-interval=50ms",
            *(f"--cluster.peer={peer}" for peer in self.peers),
        ]

    def cluster_status(self) -> str:
        reply = requests.get(f"{self.url}/api/v2/status", timeout=5).json()
        status: str = reply["cluster"]["status"]
        return status


class AlertmanagerApi:
    """What Prometheus does to an Alertmanager (post alerts), and what tests read back:
    its active alerts and how many webhook requests it made."""

    def __init__(self, url: str) -> None:
        self.url = url

    @staticmethod
    def time_text(epoch_s: float) -> str:
        """RFC 3339 in milliseconds, as Prometheus sends start times."""
        millis = round(epoch_s * 1000)
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000))
        return f"{seconds}.{millis % 1000:03d}Z"

    @classmethod
    def alert(
        cls, labels: Mapping[str, str], starts_at: float, ends_at: float | None = None
    ) -> dict[str, object]:
        """An alert as Prometheus posts it; firing ones end 4 minutes ahead, as there."""
        end = ends_at if ends_at is not None else time.time() + 240
        return {
            "labels": dict(labels),
            "annotations": {"summary": f"{labels.get('alertname')} for tests"},
            "startsAt": cls.time_text(starts_at),
            "endsAt": cls.time_text(end),
            "generatorURL": "http://prometheus.invalid/graph",
        }

    def post(self, *alerts: Mapping[str, object]) -> None:
        response = requests.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=5)
        response.raise_for_status()

    def active(self) -> list[dict[str, object]]:
        response = requests.get(f"{self.url}/api/v2/alerts", params={"active": "true"}, timeout=5)
        response.raise_for_status()
        alerts: list[dict[str, object]] = response.json()
        return alerts

    def webhook_requests(self) -> tuple[int, int]:
        """Webhook requests made so far, and how many of them failed."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        counts = {"total": 0, "failed_total": 0}
        for line in text.splitlines():
            for kind in counts:
                name = f'alertmanager_notification_requests_{kind}{{integration="webhook"}}'
                if line.startswith(name + " "):
                    counts[kind] = int(float(line.split()[-1]))
        return counts["total"], counts["failed_total"]


class Nginx(Daemon):
    """nginx with a shipped site file from `deploy/nginx` in a minimal main config. Only
    the strings in `rewrite` (addresses, paths, the token) are replaced, and each must
    be in the file, so the test runs what ships; `listen` is the shipped listen line."""

    def __init__(
        self, site: str, listen: str, rewrite: Mapping[str, str], ready_path: str = "/healthz"
    ) -> None:
        self.binary = need_binary("nginx")
        self.port = free_port()
        self.ready_path = ready_path
        self.dir = Path(tempfile.mkdtemp(prefix="br-nginx-"))
        self.proc: subprocess.Popen[bytes] | None = None
        text = (ROOT / "deploy" / "nginx" / site).read_text()
        for old, replacement in {listen: f"listen 127.0.0.1:{self.port};", **rewrite}.items():
            assert old in text, f"{site} no longer has {old!r}"
            text = text.replace(old, replacement)
        (self.dir / "site.conf").write_text(text)
        temp = {name: self.dir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir()
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {self.dir / 'nginx.pid'};\n"
            f"error_log {self.dir / 'error.log'} warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"  access_log off;\n"
            f"  client_body_temp_path {temp['body']};\n"
            f"  proxy_temp_path {temp['proxy']};\n"
            f"  fastcgi_temp_path {temp['fastcgi']};\n"
            f"  uwsgi_temp_path {temp['uwsgi']};\n"
            f"  scgi_temp_path {temp['scgi']};\n"
            f"  include {self.dir / 'site.conf'};\n"
            "}\n"
        )

    @classmethod
    def receiver_proxy(cls, upstream: str) -> Nginx:
        """`receiver.conf`: the buffering proxy in front of the receiver at `upstream`."""
        rewrite = {"server 127.0.0.1:8080;": f"server {upstream};"}
        return cls("receiver.conf", "listen 127.0.0.1:8081;", rewrite)

    @classmethod
    def gateway(cls, platform: str, receiver: str, token: str, fail_open: bool = True) -> Nginx:
        """`blast-radius.conf`: the platform's gateway at `platform`, asking the receiver
        at `receiver` with `token`; `fail_open=False` makes the documented change."""
        cache = Path(tempfile.mkdtemp(prefix="br-nginx-cache-"))
        rewrite = {
            "server 127.0.0.1:9000;": f"server {platform};",
            "server 127.0.0.1:8080;": f"server {receiver};",
            "CHANGE-ME-RECEIVER-API-TOKEN": token,
            "/var/cache/nginx/blast-radius": str(cache),
        }
        if not fail_open:
            rewrite["proxy_pass http://platform;  # fail open"] = "return 503;"
        nginx = cls("blast-radius.conf", "listen 127.0.0.1:8000;", rewrite, ready_path="/")
        nginx.cache_dir = cache
        return nginx

    cache_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        argv = [self.binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]

        def proxying() -> bool:
            return requests.get(f"{self.url}{self.ready_path}", timeout=1).status_code == 200

        self.launch(argv, "nginx", [(proxying, 30)])
        return self

    def stop(self, keep_dir: bool = False) -> None:
        super().stop(keep_dir)
        if self.cache_dir is not None and not keep_dir:
            shutil.rmtree(self.cache_dir, ignore_errors=True)


class Upstream:
    """A tiny platform behind a gateway: answers 200 "ok" to any method and path,
    and counts the requests that reached it."""

    def __init__(self) -> None:
        self.hits = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go in two writes: without this, delayed ACKs hold
                # each answer on a keep-alive connection for 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Upstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
