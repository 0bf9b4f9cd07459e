"""Our Redis clients, built here and nowhere else: one server, a primary found through
Sentinel, or a Redis Cluster (the URL forms are `receiver.redis_url`'s), each with
decoded strings, bounded timeouts and a bounded retry budget.

Failover: a command that finds its server gone (connection refused, a demoted primary
answering READONLY, which redis-py's Sentinel connection turns into a reconnect to
the primary Sentinel names now) is retried with a back-off for about
`retry_budget_s`; then the error reaches the caller, which answers 503, and
Alertmanager retries later. Every write is a compare-and-set or idempotent, so a
retry of a write whose reply was lost changes nothing twice.

Scripts: a server that lacks one (NOSCRIPT: a promoted replica, a new cluster node)
gets it loaded and the call re-run. redis-py does that for a direct call and, on one
server, for a pipeline; our pipelines do it on a cluster too, re-running only the
calls that failed."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, cast

import hiredis
import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster, TransactionStrategy
from redis.commands.core import Script
from redis.connection import SSLConnection
from redis.exceptions import DataError, NoScriptError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from receiver.redis_url import Kind, RedisTarget, parse_redis_url

DEFAULT_RETRY_BUDGET_S = {Kind.STANDALONE: 0.1, Kind.SENTINEL: 2.0, Kind.CLUSTER: 2.0}
"""One server has no failover to wait for, so a few quick retries and then 503; a
Sentinel or cluster failover takes seconds, worth riding out."""
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 0.5
SOURCES: dict[str, str] = {}
"""Every script our clients registered, by SHA: what a NOSCRIPT reply needs loaded."""


def retries_for(budget_s: float) -> int:
    """How many retries of the back-off add up to about `budget_s` of waiting."""
    waited, count = 0.0, 0
    while waited < budget_s:
        count += 1
        waited += min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**count)
    return count


class _Packer:
    """redis-py's hiredis packer, but with its pass over every argument (turning a
    bytearray or memoryview into bytes) only when hiredis refuses one: a
    10,000-tenant payload sends half a million arguments, none of them those."""

    def pack(self, *args: Any) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):
            if " " in first:
                args = (*first.split(), *args[1:])
        elif b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass
        args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


def _retry(budget_s: float) -> Retry:
    return Retry(ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S), retries_for(budget_s))


class _Registering:
    def register_script(self, script: Any) -> Script:
        registered: Script = super().register_script(script)  # type: ignore[misc]
        SOURCES[registered.sha] = str(script)
        return registered


def _rerun_missing_scripts(
    owner_of: Callable[[], Any],
    commands: list[tuple[Any, ...]],
    results: list[Any],
    raise_on_error: bool,
) -> list[Any]:
    """Load the scripts whose calls failed with NOSCRIPT and run those calls again,
    through the client `owner_of` gives (asked only then)."""
    owner: Any = None
    for index, result in enumerate(results):
        if isinstance(result, NoScriptError):
            owner = owner or owner_of()
            args = commands[index]
            owner.script_load(SOURCES[str(args[1])])
            try:
                results[index] = owner.execute_command(*args)
            except redis.ResponseError as exc:
                results[index] = exc
    if raise_on_error:
        for result in results:
            if isinstance(result, Exception):
                raise result
    return results


class _ServerPipeline(redis.client.Pipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.__dict__.get("transaction") or self.watching:
            return super().execute(raise_on_error)
        commands = [args for args, _ in self.command_stack]
        # No SCRIPT EXISTS round trip first (redis-py's way): a call the server lacks
        # the script for answers NOSCRIPT, and is loaded and run again below.
        self.scripts.clear()
        results = super().execute(raise_on_error=False)
        pool = self.connection_pool

        def owner_of() -> redis.Redis:
            return redis.Redis(connection_pool=pool)

        return _rerun_missing_scripts(owner_of, commands, results, raise_on_error)


class ServerClient(_Registering, redis.Redis):
    """One server, or the primary Sentinel names."""

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> _ServerPipeline:
        return _ServerPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


class _ClusterPipeline(ClusterPipeline):
    """redis-py refuses EVALSHA in a cluster pipeline, for want of a NOSCRIPT answer;
    this one has it, so it routes each call by its keys like any other command. In a
    transaction a failed call cannot be re-run alone, so there a script goes whole
    (EVAL): ours are a few lines there."""

    owner: RedisCluster

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if self._in_transaction():
            return self.execute_command("EVAL", SOURCES[sha], numkeys, *keys_and_args)  # type: ignore[no-untyped-call]
        # Routed by its first key here: redis-py would ask a node which the keys are
        # (COMMAND GETKEYS), a round trip per call. A stale map answers MOVED, and the
        # retry routes by the keys as usual.
        options: dict[str, Any] = {}
        if numkeys:
            slot = self.owner.keyslot(keys_and_args[0])  # type: ignore[no-untyped-call]
            options["target_nodes"] = self.owner.nodes_manager.get_node_from_slot(slot)
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args, **options)  # type: ignore[no-untyped-call]

    def _in_transaction(self) -> bool:
        return isinstance(cast(Any, self)._execution_strategy, TransactionStrategy)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self._in_transaction():
            return super().execute(raise_on_error)
        queue = cast(Any, self)._execution_strategy.command_queue
        commands = [tuple(c.args) for c in queue]
        results = super().execute(raise_on_error=False)
        return _rerun_missing_scripts(lambda: self.owner, commands, results, raise_on_error)


class ClusterClient(_Registering, RedisCluster):
    """A Redis Cluster. A pipeline spans slots (redis-py sends each node its part);
    a script or a transaction keeps to one slot, as every one of ours does."""

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        pipe: ClusterPipeline = super().pipeline(transaction, shard_hint)  # type: ignore[no-untyped-call]
        pipe.__class__ = _ClusterPipeline
        cast(_ClusterPipeline, pipe).owner = self
        return pipe


class _PrimaryConnection(SentinelManagedConnection):
    """Asks the sentinels where the primary is on every connect. redis-py asks only
    when its pool hands out a connection, and a command's retries reconnect to the
    address they had (redis-py #3874): a write in flight when the primary's machine
    stopped answering timed out on it until the budget ran out, though Sentinel had
    promoted the replica seconds into it. Each retry is one connect, to the address
    named then."""

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self._sock and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health, retry_socket_connect=False)


class _PrimarySSLConnection(_PrimaryConnection, SSLConnection):
    pass


def _tls_kwargs(target: RedisTarget) -> dict[str, Any]:
    if not target.tls:
        return {}
    options: dict[str, Any] = {"ssl": True, **target.tls_options}
    reqs = options.get("ssl_cert_reqs")
    if isinstance(reqs, str):
        options["ssl_cert_reqs"] = {
            "none": ssl.CERT_NONE,
            "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED,
        }[reqs.lower()]
    return options


def open_client(
    url: str, timeout_s: float, *, retry_budget_s: float | None = None, decode: bool = True
) -> redis.Redis:
    """A client of what `url` names. A cluster client is typed as the one-server one:
    it offers the same commands for keys that share a slot, which is all we send."""
    target = parse_redis_url(url)
    common: dict[str, Any] = {
        "decode_responses": decode,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": _retry(
            DEFAULT_RETRY_BUDGET_S[target.kind] if retry_budget_s is None else retry_budget_s
        ),
    }
    if target.kind is Kind.STANDALONE:
        pool = redis.ConnectionPool.from_url(
            url, health_check_interval=15, command_packer=_Packer(), **common
        )
        return ServerClient(connection_pool=pool)
    credentials: dict[str, Any] = {"username": target.username, "password": target.password}
    tls = _tls_kwargs(target)
    if target.kind is Kind.SENTINEL:
        sentinel_kwargs = {
            "username": target.sentinel_username,
            "password": target.sentinel_password,
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            **tls,
        }
        hosts = list(target.hosts)
        sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        client = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service,
            redis_class=ServerClient,
            connection_class=_PrimarySSLConnection if target.tls else _PrimaryConnection,
            db=target.db,
            health_check_interval=15,
            command_packer=_Packer(),
            **credentials,
            **common,
            **tls,
        )
        return cast(redis.Redis, client)
    node = cast(Any, ClusterNode)
    nodes = [node(host, port) for host, port in target.hosts]
    cluster = ClusterClient(startup_nodes=nodes, **credentials, **common, **tls)
    return cast(redis.Redis, cluster)


def connect(
    url: str | None, timeout_s: float, retry_budget_s: float | None = None
) -> tuple[redis.Redis, bool]:
    """Our Redis client: decoded strings, bounded timeouts, one pool per process.

    Without a URL, an embedded in-memory Redis (fakeredis with Lua); the second
    value says whether that happened."""
    if url:
        return open_client(url, timeout_s, retry_budget_s=retry_budget_s), False
    try:
        import fakeredis
    except ImportError:
        raise RuntimeError(
            "REDIS_URL is not set and the embedded store is not installed: "
            "set REDIS_URL or install blast-radius[embedded]"
        ) from None
    return fakeredis.FakeRedis(decode_responses=True), True


def is_cluster(client: redis.Redis) -> bool:
    return isinstance(client, RedisCluster)


def primaries(client: redis.Redis) -> list[redis.Redis]:
    """A client per primary: the one server, or each primary of a cluster."""
    if not is_cluster(client):
        return [client]
    cluster = cast(RedisCluster, client)
    nodes = cluster.get_primaries()  # type: ignore[no-untyped-call]
    return [cluster.get_redis_connection(node) for node in nodes]


def binary_twin(client: redis.Redis) -> redis.Redis:
    """A client of the same server (or Sentinel primary) that returns bytes, as rq
    needs for its jobs. Not for a cluster: rq cannot run on one."""
    if is_cluster(client):
        raise ValueError("rq cannot run on a Redis Cluster: set NOTIFY_REDIS_URL")
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["decode_responses"] = False
    if isinstance(pool, SentinelConnectionPool):
        twin: redis.ConnectionPool = SentinelConnectionPool(  # type: ignore[no-untyped-call]
            pool.service_name,
            pool.sentinel_manager,
            connection_class=pool.connection_class,
            **kwargs,
        )
    else:
        twin = pool.__class__(connection_class=pool.connection_class, **kwargs)
    return redis.Redis(connection_pool=twin)
