"""`blast-radius stack` runs the live pipeline and stops all of it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import READER, TOKENS_ENV
from tests.servers import ROOT, need_binary, wait_for

pytestmark = pytest.mark.e2e


def test_stack_isolates_a_failed_tenant_and_stops_cleanly() -> None:
    """fail t2 at the prompt -> the live pipeline isolates it; quit stops every process."""
    for name in ("redis-server", "prometheus", "prometheus-alertmanager"):
        need_binary(name)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "receiver.cli",
            "stack",
            "--files",
            str(ROOT),
            "--tenants",
            "t1:gold:10,t2:silver:10,t3:bronze:10,t4:bronze:10,t5:bronze:10",
        ],
        env={**os.environ, **TOKENS_ENV},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdin and proc.stdout
    try:
        lines = []
        while not any(line.startswith("commands:") for line in lines):
            line = proc.stdout.readline()
            assert line, "stack exited:\n" + "".join(lines)
            lines.append(line)
        receiver = re.search(r"receiver\s+(http://\S+)", "".join(lines))
        assert receiver, "".join(lines)
        url = receiver.group(1)
        proc.stdin.write("fail t2\n")
        proc.stdin.flush()

        def state(tenant: str) -> str:
            body = requests.get(f"{url}/api/v1/tenants/{tenant}", headers=READER, timeout=5)
            return str(body.json()["breaker"]["state"])

        wait_for(lambda: state("t2") == "open", 180, "t2 isolated by the live stack")
        assert state("t1") == "closed"
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=2)
