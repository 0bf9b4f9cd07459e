"""redis-server processes on loopback and the few commands tests send them: the parts
tests/topologies.py builds Sentinel and Cluster groups from."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from receiver.stack import free_port
from tests.servers import need_binary, stop_process, wait_for

HOST = "127.0.0.1"
Address = tuple[str, int]
NODE_ARGS = ("--bind", HOST, "--save", "", "--appendonly", "no", "--daemonize", "no")


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def command(port: int, *args: str | int) -> Any:
    """One command on a fresh connection, strings decoded. Each word is its own argument,
    so a multi-word command's reply is left raw by redis-py; RESP2 keeps field lists flat
    (redis-py 8 speaks RESP3 unless told)."""
    client = redis.Redis(
        host=HOST,
        port=port,
        protocol=2,
        decode_responses=True,
        socket_timeout=2,
        socket_connect_timeout=1,
    )
    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def info(port: int, section: str) -> dict[str, Any]:
    """INFO, parsed by redis-py (a one-word command keeps its callback)."""
    fields: dict[str, Any] = command(port, "INFO", section)
    return fields


def fields(text: str) -> dict[str, str]:
    """A CLUSTER INFO reply as a dict."""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def pairs(reply: list[str]) -> dict[str, str]:
    """A flat [field, value, ...] reply (SENTINEL MASTER and friends) as a dict."""
    return dict(zip(reply[::2], reply[1::2], strict=True))


class Processes:
    """redis-server processes by port, each logging to `<dir>/<port>.log`."""

    def __init__(self, prefix: str) -> None:
        self.binary = need_binary("redis-server")
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def launch(self, port: int, *args: str) -> None:
        with open(self.dir / f"{port}.log", "ab") as log:
            self.procs[port] = subprocess.Popen(
                [self.binary, *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )

    def kill(self, port: int) -> None:
        """SIGKILL, as a crash: no shutdown, no goodbye to replicas or sentinels."""
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def output(self) -> str:
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(self.dir.glob("*.log"))
        )

    def wait_ready(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        """Wait for `check`; a timeout says what the servers logged last."""
        try:
            wait_for(check, timeout_s, what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.output()}") from None

    def stop(self, ports: list[int] | None = None) -> None:
        for port in ports if ports is not None else list(self.procs):
            stop_process(self.procs.pop(port, None))
        if ports is None:
            shutil.rmtree(self.dir, ignore_errors=True)
