"""The `blast-radius` command."""

from __future__ import annotations

import os
import sys

import click

from receiver.config import ConfigError, load_settings

WORKER_TTL_S = 20
"""rq's `worker_ttl`. rq blocks on the queue for this less 15 s and gives every
command on the queue's connection a socket timeout 10 s above that: how long the
worker, its job and its scheduler wait on a primary whose machine stopped answering
before they reconnect to the one Sentinel promoted. rq's default, 420, is 7 min."""


@click.group()
def main() -> None:
    """blast-radius: keep one tenant's failure that tenant's problem."""


@main.command()
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="host:port to listen on")
@click.option(
    "--workers", type=int, default=None, help="gunicorn workers (1 on the embedded store)"
)
def serve(bind: str, workers: int | None) -> None:
    """Run the receiver under gunicorn."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if workers is None:
        workers = 1 if not settings.redis_url else min(2 * (os.cpu_count() or 1) + 1, 8)
    if not settings.redis_url and workers > 1:
        raise click.ClickException(
            "the embedded store is per process: use --workers 1 or set REDIS_URL"
        )
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "receiver:create_app()",
    ]
    os.execv(sys.executable, argv)


@main.command()
@click.option("--burst", is_flag=True, help="exit when the queue is empty (for scripts)")
def worker(burst: bool) -> None:
    """Send queued notifications and run escalation checks (needs REDIS_URL)."""
    from rq import Worker

    from receiver.notify import jobs

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.redis_url:
        raise click.ClickException("the worker needs REDIS_URL (the embedded store is per process)")
    from receiver import metrics

    if path := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics.prepare_multiprocess_dir(path)
    if port := os.environ.get("WORKER_METRICS_PORT"):
        metrics.start_worker_exporter(int(port))
    hub = jobs.current_hub()
    if not hub.channels:
        click.echo("warning: no notification channel is configured; deliveries fail", err=True)
    Worker([hub.queue], connection=hub.queue.connection, worker_ttl=WORKER_TTL_S).work(
        burst=burst, with_scheduler=True
    )


def _register() -> None:
    from receiver.cli import check, demo, listing, stack

    main.add_command(demo.demo)
    main.add_command(check.check)
    main.add_command(listing.tenants)
    main.add_command(listing.incidents)
    main.add_command(stack.stack)


_register()
