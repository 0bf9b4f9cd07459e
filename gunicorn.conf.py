"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py 'receiver:create_app()'`.

gunicorn also reads this file by itself when started from this directory; any
command-line flag overrides it. From the environment:

- `BIND` (default `0.0.0.0:8080`)
- `WEB_CONCURRENCY`: workers; default 2 x CPUs + 1, at most 8, or 1 without
  `REDIS_URL` (the embedded store lives in one process)
- `LOG_LEVEL` (default `info`)
- `RECEIVER_TLS_CERT`, `RECEIVER_TLS_KEY`: PEM files; both set, gunicorn serves HTTPS
- `PROMETHEUS_MULTIPROC_DIR`: where workers keep their metric files; emptied at
  start. Unset, a private temporary directory is used and removed at exit, so
  `/metrics` counts every worker's requests either way.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any


def _refuse(name: str, problem: str) -> None:
    """A bad setting is one line on stderr and exit 1, never a traceback."""
    sys.exit(f"blast-radius: configuration error: {name}: {problem}")


def _workers() -> int:
    configured = os.environ.get("WEB_CONCURRENCY", "").strip()
    if configured:
        if not configured.isdigit():
            _refuse("WEB_CONCURRENCY", f"expected a whole number, got {configured!r}")
        return max(1, int(configured))
    if not os.environ.get("REDIS_URL"):
        return 1
    return min(2 * (os.cpu_count() or 1) + 1, 8)


bind = os.environ.get("BIND", "0.0.0.0:8080")

# TLS: every call carries a bearer token, so serve HTTPS beyond loopback, here or on
# the proxy in front (deploy/nginx/receiver.conf).
certfile = os.environ.get("RECEIVER_TLS_CERT") or None
keyfile = os.environ.get("RECEIVER_TLS_KEY") or None
if (certfile is None) != (keyfile is None):
    _refuse("RECEIVER_TLS_CERT", "set it together with RECEIVER_TLS_KEY, or neither")
for _name, _path in (("RECEIVER_TLS_CERT", certfile), ("RECEIVER_TLS_KEY", keyfile)):
    if _path is not None and not os.access(_path, os.R_OK):
        _refuse(_name, f"cannot read {_path!r}")
workers = _workers()
wsgi_app = "receiver:create_app()"
proc_name = "blast-radius"
# gunicorn's control socket is one path per user: several servers on a host would
# take it from each other, and a user without a home cannot create it.
control_socket_disable = True

# A worker silent this long is killed. Alertmanager's per-tenant groups keep a
# delivery to a few alerts; one of 10,000 takes 2-3 s on 2 cores
# (docs/benchmarks.md), and a killed delivery is retried, resuming where it stopped.
timeout = 60
graceful_timeout = 20
# The heartbeat file on tmpfs: on an overlay filesystem a slow disk write can
# get a healthy worker killed.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

loglevel = os.environ.get("LOG_LEVEL", "info").lower()
accesslog = "-"
errorlog = "-"
logger_class = "receiver.logs.GunicornLogger"

# Set before any worker imports prometheus_client, which picks its mode at import.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="blast-radius-metrics-")
else:
    _dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    try:
        os.makedirs(_dir, exist_ok=True)
    except OSError as exc:
        _refuse("PROMETHEUS_MULTIPROC_DIR", f"cannot create {_dir!r}: {exc.strerror}")
    if not os.access(_dir, os.W_OK):
        _refuse("PROMETHEUS_MULTIPROC_DIR", f"{_dir!r} is not writable")


def on_starting(server: Any) -> None:
    """Check every setting once, in the master, so a bad one is one line and exit 1
    rather than each worker failing to boot. Then empty the metrics directory: files
    of an earlier run's workers would be added to this run's counters (the rule of
    receiver.metrics.prepare_multiprocess_dir)."""
    from receiver.config import ConfigError, load_settings
    from receiver.tenants import RegistryError, load_registry

    try:
        load_registry(load_settings().tenants_file)
    except (ConfigError, RegistryError) as exc:
        sys.exit(f"blast-radius: configuration error: {exc}")
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    own = f"_{os.getpid()}.db"
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db") and not name.endswith(own):
            os.remove(os.path.join(path, name))


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's counters stay (they are totals); its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
