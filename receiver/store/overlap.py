"""Pipelines sent while the next is still being built. A 10,000-tenant commit is a
few hundred milliseconds of the client building script calls and as long again of
Redis running them; one pipeline does the two in turn. Here each part goes to Redis,
on a connection of its own, as soon as it is built, so Redis runs one part while
the client builds the next (a thread waits for each reply, the lock released)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis

Fill = Callable[[Any], None]
"""Puts one part's commands on the pipeline it is given."""

_lock = threading.Lock()
_executor: tuple[int, ThreadPoolExecutor] | None = None


def _sender() -> ThreadPoolExecutor:
    """One sending thread per process, made in the process that uses it (a thread
    does not survive gunicorn's fork)."""
    global _executor
    with _lock:
        if _executor is None or _executor[0] != os.getpid():
            _executor = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="redis-send"))
        return _executor[1]


def execute_overlapped(client: redis.Redis, parts: Iterable[Fill]) -> list[Any]:
    """Each part's commands in a pipeline of its own, sent while the next part is
    built; the replies of all, in order. The first part's error is raised, after
    every part has been answered (a connection goes back to its pool clean)."""
    futures: list[Future[list[Any]]] = []
    sender = _sender()
    for fill in parts:
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        futures.append(sender.submit(pipe.execute))
    replies: list[Any] = []
    error: BaseException | None = None
    for future in futures:
        try:
            replies += future.result()
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error
    return replies
