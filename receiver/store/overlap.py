"""Pipelines sent while the next is still being built. A 10,000-tenant commit is a
few hundred milliseconds of the client computing breakers and building script calls
and as long again of Redis running them; one pipeline does the two in turn. Here
each part goes to Redis, on a connection of its own, as soon as it is built, so
Redis runs one part while the client computes the next (a thread waits for each
reply, with the interpreter's lock released)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis

Fill = Callable[[Any], None]
"""Puts one part's commands on the pipeline it is given."""

SENDERS = 2
"""Parts in flight at once: Redis has the next part queued while a sending thread
waits for its turn at the interpreter to read the last one's replies."""
_lock = threading.Lock()
_executor: tuple[int, ThreadPoolExecutor] | None = None


def _sender() -> ThreadPoolExecutor:
    """The sending threads of this process, made in the process that uses them (a
    thread does not survive gunicorn's fork)."""
    global _executor
    with _lock:
        if _executor is None or _executor[0] != os.getpid():
            _executor = (os.getpid(), ThreadPoolExecutor(SENDERS, thread_name_prefix="redis-send"))
        return _executor[1]


def send_soon(client: redis.Redis, fill: Fill) -> Future[list[Any]]:
    """One pipeline of `fill`'s commands, sent from a sending thread while the caller
    goes on; its replies (or error) in the future."""
    pipe = client.pipeline(transaction=False)
    fill(pipe)
    return submit(pipe)


def submit(pipe: Any) -> Future[list[Any]]:
    """`pipe` executed from a sending thread; its replies (or error) in the future."""
    return _sender().submit(pipe.execute)


def execute_overlapped(client: redis.Redis, parts: Iterable[Fill]) -> Iterator[list[Any]]:
    """Each part's commands in a pipeline of its own, sent while the next part is
    built (`parts` may be a generator doing that work); once every part is sent, the
    replies of each part in order, as soon as it is answered. An error building a
    part is raised as it is, else the first part's error, and either only once every
    part sent has been answered: a caller sees each part's outcome in Redis, and no
    reply is left unread."""
    futures: list[Future[list[Any]]] = []
    try:
        for fill in parts:
            futures.append(send_soon(client, fill))
    except BaseException:
        for future in futures:
            future.exception()
        raise
    for i, future in enumerate(futures):
        error = future.exception()
        if error is not None:
            for later in futures[i + 1 :]:
                later.exception()
            raise error
        yield future.result()
