"""Redis Sentinel and Redis Cluster on loopback for tests: every redis-server on a free
127.0.0.1 port, in the foreground, without persistence, stopped by PID by the group that
started it. URLs are in the receiver's forms, `redis+sentinel://h:p,h:p/<service>/0` and
`redis+cluster://h:p,h:p`."""

from __future__ import annotations

import signal
import subprocess

import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.redis_nodes import (
    HOST,
    NODE_ARGS,
    Address,
    Processes,
    command,
    fields,
    free_ports,
    info,
    pairs,
)
from tests.servers import need_binary, wait_for

# Redis 7 defers a diskless full sync by 5 s to batch replicas; one replica needs no batch.
REPLICATION_ARGS = ("--repl-diskless-sync-delay", "0", "--replica-announce-ip", HOST)


def reachable_peer(flags: str) -> bool:
    """A sentinel peer up and linked. `master_down` (its last word on a primary) is
    left over for 5 s after a failover and says nothing about the peer itself."""
    return set(flags.split(",")) - {"master_down"} == {"sentinel"}


class SentinelGroup:
    """A primary, its replica and three sentinels monitoring them as `service`, quorum 2:
    a failover needs two sentinels to agree, as in production."""

    def __init__(
        self,
        service: str = "br-primary",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.service = service
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.processes = Processes("br-sentinel-")
        *self.data_ports, s1, s2, s3 = free_ports(5)
        self.sentinel_ports = [s1, s2, s3]
        self.killed: int | None = None
        self.frozen: int | None = None

    @property
    def sentinels(self) -> list[Address]:
        return [(HOST, port) for port in self.sentinel_ports]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def primary_address(self) -> Address:
        """Where the sentinels say the primary is (the first sentinel that answers)."""
        error: Exception | None = None
        for port in self.sentinel_ports:
            try:
                host, primary = command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
                return host, int(primary)
            except redis.RedisError as exc:
                error = exc
        raise RuntimeError(f"no sentinel answers for {self.service}: {error!r}")

    def client(self) -> redis.Redis:
        """A client of the current primary, found through the sentinels."""
        return self._through_sentinels("master_for")

    def replica_client(self) -> redis.Redis:
        """A client of a replica, found through the sentinels."""
        return self._through_sentinels("slave_for")

    def start(self) -> SentinelGroup:
        """Start everything and wait until a failover could happen; on any failure stop
        what was started."""
        primary, replica = self.data_ports
        try:
            self._launch_node(primary)
            self._launch_node(replica, "--replicaof", HOST, str(primary))
            # Sentinels read the replica list from the primary's INFO once they connect:
            # started after the sync, they see the replica at once rather than 10 s later.
            self.processes.wait_ready("the replica's sync", lambda: self._in_sync(replica), 15)
            for port in self.sentinel_ports:
                self._launch_sentinel(port, primary)
            self.processes.wait_ready("the sentinels", self._watching, 20)
        except BaseException:
            self.stop()
            raise
        return self

    def kill_primary(self) -> Address:
        """SIGKILL the current primary; its address, for `wait_failover`."""
        old = self.primary_address()
        self.processes.kill(old[1])
        self.killed = old[1]
        return old

    def freeze_primary(self) -> Address:
        """SIGSTOP the current primary, as a machine that stops answering: its port
        still takes connections (the kernel accepts them), and nothing is answered.
        `stop` ends it for good."""
        old = self.primary_address()
        self.processes.procs[old[1]].send_signal(signal.SIGSTOP)
        self.frozen = old[1]
        return old

    def wait_failover(self, old: Address, timeout_s: float = 30) -> Address:
        """The new primary, once every sentinel has finished the failover (names one
        primary other than `old`, connected, no failover in progress) and it says it is
        a master."""

        def moved() -> bool:
            states = [
                pairs(command(port, "SENTINEL", "MASTER", self.service))
                for port in self.sentinel_ports
            ]
            named = {(state["ip"], int(state["port"])) for state in states}
            if len(named) != 1 or any(state["flags"] != "master" for state in states):
                return False
            (address,) = named
            return address != old and command(address[1], "ROLE")[0] == "master"

        wait_for(moved, timeout_s, f"a failover away from {old}")
        return self.primary_address()

    def restart_old_primary(self) -> Address:
        """Start the killed primary again (a frozen one is killed first, as a machine
        rebooted), as a replica of the current one, and wait until it is in sync and
        the sentinels count it as a healthy replica again."""
        if self.frozen is not None:
            self.processes.kill(self.frozen)
            self.killed, self.frozen = self.frozen, None
        assert self.killed is not None, "no primary was killed"
        port, self.killed = self.killed, None
        host, primary = self.primary_address()
        self._launch_node(port, "--replicaof", host, str(primary))
        self.processes.wait_ready("the old primary's sync", lambda: self._in_sync(port), 15)
        self.processes.wait_ready("the sentinels", self._watching, 20)
        return HOST, port

    def flush(self) -> None:
        """FLUSHALL on the primary, and wait until its replicas have it too."""
        port = self.primary_address()[1]
        command(port, "FLUSHALL")
        replicas = int(info(port, "replication")["connected_slaves"])
        if replicas and command(port, "WAIT", replicas, 5000) < replicas:
            raise TimeoutError("the replicas did not acknowledge the FLUSHALL within 5 s")

    def stop(self) -> None:
        if self.frozen is not None:
            self.processes.kill(self.frozen)  # SIGTERM would wait for it to continue
            self.frozen = None
        self.processes.stop(self.sentinel_ports)
        self.processes.stop()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _through_sentinels(self, role: str) -> redis.Redis:
        sentinel = redis.Sentinel(self.sentinels, socket_timeout=2)  # type: ignore[no-untyped-call]
        client: redis.Redis = getattr(sentinel, role)(
            self.service, decode_responses=True, socket_timeout=2
        )
        return client

    def _launch_node(self, port: int, *args: str) -> None:
        node_dir = self.processes.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        argv = ("--port", str(port), *NODE_ARGS, *REPLICATION_ARGS, "--dir", str(node_dir))
        self.processes.launch(port, *argv, *args)

    def _launch_sentinel(self, port: int, primary: int) -> None:
        # Each sentinel rewrites its own file (its id, the replicas and peers it learns).
        conf = self.processes.dir / f"sentinel-{port}.conf"
        name = self.service
        conf.write_text(
            f"port {port}\nbind {HOST}\ndir {self.processes.dir}\n"
            f"sentinel announce-ip {HOST}\n"
            f"sentinel monitor {name} {HOST} {primary} 2\n"
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {name} 1\n"
        )
        self.processes.launch(port, str(conf), "--sentinel")

    def _in_sync(self, port: int) -> bool:
        return info(port, "replication").get("master_link_status") == "up"

    def _watching(self) -> bool:
        """Every sentinel sees a healthy primary, every replica in sync, and the other two
        sentinels: what a failover needs."""
        replicas = len(self.processes.procs) - len(self.sentinel_ports) - 1
        for port in self.sentinel_ports:
            primary = pairs(command(port, "SENTINEL", "MASTER", self.service))
            known = [pairs(r) for r in command(port, "SENTINEL", "REPLICAS", self.service)]
            peers = [pairs(s) for s in command(port, "SENTINEL", "SENTINELS", self.service)]
            healthy = [
                r for r in known if r["flags"] == "slave" and r["master-link-status"] == "ok"
            ]
            if (
                primary["flags"] != "master"
                or len(healthy) != replicas
                or len(peers) != len(self.sentinel_ports) - 1
                or any(p["ip"] != HOST or not reachable_peer(p["flags"]) for p in peers)
            ):
                return False
        return True


class ClusterGroup:
    """Three primaries sharing the 16384 slots, no replicas: enough for MOVED, ASK and
    CROSSSLOT to happen."""

    def __init__(self, node_timeout_ms: int = 2000) -> None:
        self.cli = need_binary("redis-cli")
        self.node_timeout_ms = node_timeout_ms
        self.processes = Processes("br-cluster-")
        ports = free_ports(6)
        # The bus port is set (Redis 7's cluster-port) rather than port + 10000, which
        # may be taken or past 65535.
        self.ports, self.bus_ports = ports[:3], ports[3:]

    @property
    def addresses(self) -> list[Address]:
        return [(HOST, port) for port in self.ports]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{host}:{port}" for host, port in self.addresses)

    def client(self) -> RedisCluster:
        nodes = [ClusterNode(host, port) for host, port in self.addresses]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, decode_responses=True, socket_timeout=2)

    def start(self) -> ClusterGroup:
        """Start the nodes, create the cluster, wait until it is ok everywhere; on any
        failure stop what was started."""
        try:
            for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
                self.processes.launch(
                    port,
                    *("--port", str(port), "--cluster-port", str(bus_port), *NODE_ARGS),
                    *("--dir", str(self.processes.dir), "--cluster-enabled", "yes"),
                    *("--cluster-config-file", str(self.processes.dir / f"nodes-{port}.conf")),
                    *("--cluster-node-timeout", str(self.node_timeout_ms)),
                )
            self.processes.wait_ready("the nodes", self._answering, 10)
            self._create()
            self.processes.wait_ready("the cluster", self._healthy, 20)
        except BaseException:
            self.stop()
            raise
        return self

    def node_ids(self) -> dict[int, str]:
        return {port: str(command(port, "CLUSTER", "MYID")) for port in self.ports}

    def slots_of(self, port: int) -> list[int]:
        """The slots `port` serves, as it sees them."""
        return [
            slot
            for start, end, (_, owner, *_) in command(port, "CLUSTER", "SLOTS")
            if owner == port
            for slot in range(start, end + 1)
        ]

    def reshard(self, from_port: int, to_port: int, slots: int) -> subprocess.Popen[bytes]:
        """Start moving `slots` slots (the lowest of `from_port`'s) with their keys to
        `to_port`; the test carries on while they move, then calls `wait_reshard`."""
        ids = self.node_ids()
        argv = [self.cli, "--cluster", "reshard", f"{HOST}:{from_port}"]
        argv += ["--cluster-from", ids[from_port], "--cluster-to", ids[to_port]]
        argv += ["--cluster-slots", str(slots), "--cluster-yes"]
        with open(self.processes.dir / "reshard.out", "wb") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def wait_reshard(self, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
        """The reshard exited 0 and every node agrees on a fully covered, settled map."""
        code = proc.wait(timeout=timeout_s)
        if code != 0:
            text = (self.processes.dir / "reshard.out").read_text(errors="replace")
            raise RuntimeError(f"redis-cli --cluster reshard exited {code}:\n{text[-3000:]}")
        wait_for(self._healthy, 20, "the cluster after the reshard")

    def flush(self) -> None:
        for port in self.ports:
            command(port, "FLUSHALL")

    def stop(self) -> None:
        self.processes.stop()

    def __enter__(self) -> ClusterGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _create(self) -> None:
        nodes = [f"{host}:{port}" for host, port in self.addresses]
        argv = [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0"]
        created = subprocess.run(
            [*argv, "--cluster-yes"], capture_output=True, text=True, timeout=60
        )
        if created.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed:\n{created.stdout}\n{self.processes.output()}"
            )

    def _answering(self) -> bool:
        return all(command(port, "PING") for port in self.ports)

    def _healthy(self) -> bool:
        """Every node is `cluster_state:ok`, knows the three, has the same slot map, and
        no slot is still migrating or importing."""
        maps = set()
        for port in self.ports:
            state = fields(command(port, "CLUSTER", "INFO"))
            if state["cluster_state"] != "ok" or state["cluster_known_nodes"] != "3":
                return False
            if "[" in command(port, "CLUSTER", "NODES"):
                return False
            slots = command(port, "CLUSTER", "SLOTS")
            maps.add(tuple(sorted((start, end, node[1]) for start, end, node, *_ in slots)))
        return len(maps) == 1
