"""Where a Redis Cluster's load lands, for `bench.topologies`: each node's counters, a
bounded MONITOR sample split by hash tag, the keys per node and slot, and the
arithmetic that turns per-node costs into a capacity on paper.

MONITOR shows every command a node runs, a script's own calls included (as
`INFO commandstats` counts them), but it slows the node while it runs. So only its
shares are used: a tag's share of its node's commands in the sample, applied to the
node's commands per second measured outside the sample."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from bench.storm import calls_by_command, redis_cpu_s
from receiver.store import keys
from tests.redis_nodes import HOST
from tests.servers import need_binary, stop_process

SHARED_TAGS = (keys.GLOBAL_TAG, keys.INCIDENTS_TAG)
"""The tags every delivery touches, one slot each."""
OTHER_TAGS = (keys.NOTIFY_TAG, "_platform")
KEY = re.compile(r'"(br:\{([^}"]*)\}[^"]*)"')
LOOKUP = '"COMMAND" "GETKEYS"'
"""redis-py's cluster pipeline asks a node where each EVALSHA goes."""
TURN = f'"{keys.INCIDENTS_TURN}"'
TAKE_TURN = re.compile(rf'"SET" {re.escape(TURN)} "([0-9a-f]+)"')
TOKEN = re.compile(r'"([0-9a-f]{32})"')
"""A turn's owner token (a uuid4's hex), as the script that gives it back is passed it."""
TENANTS = "tenant tags"


def tag_slot(tag: str) -> int:
    return key_slot(f"{{{tag}}}".encode())


def role(slots: list[int]) -> str:
    """A node named by the shared tags it holds, the same whatever ports a run got."""
    held = [f"{{{tag}}}" for tag in SHARED_TAGS if tag_slot(tag) in slots]
    return " ".join(held) or "tenants only"


@dataclass(frozen=True)
class Counters:
    """One node's running totals at a moment."""

    cpu_s: float
    calls: int
    lookups: int
    """`COMMAND GETKEYS` calls: redis-py's cluster pipeline asking where an EVALSHA goes."""
    used_memory: int

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.cpu_s - other.cpu_s,
            self.calls - other.calls,
            self.lookups - other.lookups,
            self.used_memory - other.used_memory,
        )


def read_all(nodes: Mapping[str, redis.Redis]) -> dict[str, Counters]:
    """Each node's counters, by the name it is given."""
    out = {}
    for name, node in nodes.items():
        calls = calls_by_command(node)
        memory: dict[str, Any] = node.info("memory")
        out[name] = Counters(
            redis_cpu_s(node),
            sum(calls.values()),
            calls.get("cmdstat_command|getkeys", 0),
            int(memory["used_memory"]),
        )
    return out


def spent(before: Mapping[str, Counters], after: Mapping[str, Counters]) -> dict[str, Counters]:
    return {name: after[name] - before[name] for name in before}


@dataclass
class Sample:
    """What MONITOR showed on one node."""

    total: int = 0
    by_tag: Counter[str] = field(default_factory=Counter)
    """`{_global}`, `{_incidents}`, ..., or every tenant's tag together."""
    by_key: Counter[str] = field(default_factory=Counter)
    by_tenant: Counter[str] = field(default_factory=Counter)
    lookups: int = 0
    other: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    turn_tries: int = 0
    turn_holds_s: list[float] = field(default_factory=list)
    """The board's turn, each time it was given back: from the successful `SET NX` (the
    owner's last try) to the commit or release script carrying its token."""

    def share(self, what: str) -> float:
        return self.by_tag[what] / self.total if self.total else 0.0

    @property
    def span_s(self) -> float:
        return self.last_s - self.first_s


def parse(path: Path) -> Sample:
    """A `redis-cli monitor` transcript: each command counted once for the tag its keys
    carry (ours keep a command's keys in one tag) and once for each key it names."""
    sample = Sample()
    taken: dict[str, float] = {}
    with path.open(errors="replace") as lines:
        for line in lines:
            if not line[:1].isdigit():
                continue
            sample.total += 1
            at = float(line.split(" ", 1)[0])
            sample.first_s = sample.first_s or at
            sample.last_s = at
            if LOOKUP in line:
                sample.lookups += 1
                continue
            if TURN in line:
                _turn(sample, taken, line, at)
            found = KEY.findall(line)
            if not found:
                sample.other += 1
                continue
            for tag in {tag for _, tag in found}:
                if tag.startswith("_"):
                    sample.by_tag[f"{{{tag}}}"] += 1
                else:
                    sample.by_tag[TENANTS] += 1
                    sample.by_tenant[tag] += 1
            for key in {key for key, _ in found}:
                sample.by_key[key] += 1
    return sample


def _turn(sample: Sample, taken: dict[str, float], line: str, at: float) -> None:
    if took := TAKE_TURN.search(line):
        sample.turn_tries += 1
        taken[took[1]] = at
    elif '"EVALSHA"' in line:
        for token in TOKEN.findall(line):
            if token in taken:
                sample.turn_holds_s.append(at - taken.pop(token))


def monitor(ports: list[int], window_s: float) -> dict[int, Sample]:
    """`redis-cli monitor` on every node at once for `window_s`, each stopped by PID."""
    cli = need_binary("redis-cli")
    folder = Path(tempfile.mkdtemp(prefix="br-monitor-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            with open(folder / f"{port}.txt", "wb") as out:
                argv = [cli, "-h", HOST, "-p", str(port), "monitor"]
                procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL))
        time.sleep(window_s)
    finally:
        for proc in procs:
            stop_process(proc)
    try:
        return {port: parse(folder / f"{port}.txt") for port in ports}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Polled:
    """The board's turn key read every few milliseconds."""

    reads: int
    held: int
    """Reads that found the turn taken."""
    owners: int
    """Distinct owner tokens seen: one per change that held the turn long enough."""


def poll_turn(port: int, seconds: float, every_s: float = 0.001) -> Polled:
    """GET the board's turn every `every_s` for about `seconds` (redis-cli `-r` and `-i`:
    one command at a time, a light load beside MONITOR's)."""
    count = int(seconds / (every_s * 1.2))  # each read also takes a round trip
    argv = [need_binary("redis-cli"), "-h", HOST, "-p", str(port), "-r", str(count)]
    argv += ["-i", str(every_s), "GET", keys.INCIDENTS_TURN]
    replies = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds * 5 + 10, check=True
    ).stdout.splitlines()
    taken = [reply for reply in replies if reply]
    return Polled(len(replies), len(taken), len(set(taken)))


@dataclass
class Census:
    """One node's keys after the storm."""

    keys: int
    slots: int
    tag_keys: dict[str, int]
    """Keys in each tag's slot held here (ours and the rest in OTHER_TAGS)."""
    busiest_tenant_slot: int
    """Most keys in one slot that holds no shared tag."""
    biggest: list[tuple[str, int]]
    """The largest keys in the shared tags' slots here, with their bytes."""

    @property
    def tenant_keys(self) -> int:
        return self.keys - sum(self.tag_keys.values())


def census(node: redis.Redis, slots: list[int]) -> Census:
    """CLUSTER COUNTKEYSINSLOT for every slot the node serves, and MEMORY USAGE of the
    keys in the shared tags' slots."""
    pipe = node.pipeline(transaction=False)
    for slot in slots:
        pipe.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)  # type: ignore[no-untyped-call]
    counts = dict(zip(slots, (int(n) for n in pipe.execute()), strict=True))
    tags = {tag: tag_slot(tag) for tag in (*SHARED_TAGS, *OTHER_TAGS)}
    tag_keys = {tag: counts[slot] for tag, slot in tags.items() if slot in counts}
    biggest: list[tuple[str, int]] = []
    for tag in SHARED_TAGS:
        if tag in tag_keys:
            names = node.execute_command("CLUSTER", "GETKEYSINSLOT", tags[tag], 10_000)  # type: ignore[no-untyped-call]
            biggest += [(name, int(node.memory_usage(name, samples=0) or 0)) for name in names]
    tenant_counts = [n for slot, n in counts.items() if slot not in tags.values()]
    return Census(
        keys=int(node.dbsize()),
        slots=len(slots),
        tag_keys=tag_keys,
        busiest_tenant_slot=max(tenant_counts, default=0),
        biggest=sorted(biggest, key=lambda kv: -kv[1])[:3],
    )


def even_owner(slot: int, primaries: int) -> int:
    """Which of `primaries` holds `slot` when `redis-cli --cluster create` splits the
    slots evenly."""
    bounds = [round(i * REDIS_CLUSTER_HASH_SLOTS / primaries) for i in range(1, primaries)]
    return sum(slot >= bound for bound in bounds)


@dataclass(frozen=True)
class Ceiling:
    primaries: int
    alerts_s: float
    """Where the busiest primary's main thread would spend one whole core."""
    busiest: str
    redis_cores: float
    """Redis CPU over every primary at that rate."""


def on_paper(
    cpu_per_alert: Mapping[str, float],
    tenant_keys: Mapping[str, int],
    sizes: tuple[int, ...] = (3, 6, 12),
) -> tuple[float, dict[str, float], list[Ceiling]]:
    """Per-tenant Redis CPU per alert (from the nodes that hold no shared tag, scaled by
    their share of the tenant keys), each shared tag's own CPU per alert (its node's
    excess over that share), and the rate at which the busiest primary of an evenly
    split cluster of each size spends one core. Nodes are named by `role`, and each
    shared tag must have a node of its own."""
    total = sum(tenant_keys.values())
    tags = {f"{{{tag}}}": tag for tag in SHARED_TAGS}
    plain = [node for node in cpu_per_alert if node not in tags]
    tenant = statistics.mean(cpu_per_alert[n] / (tenant_keys[n] / total) for n in plain)
    own = {
        tag: cpu_per_alert[node] - tenant * tenant_keys[node] / total for node, tag in tags.items()
    }
    ceilings = []
    for size in sizes:
        load: dict[int, float] = {}
        names: dict[int, list[str]] = {}
        for tag, cost in own.items():
            owner = even_owner(tag_slot(tag), size)
            load[owner] = load.get(owner, 0.0) + max(cost, 0.0)
            names.setdefault(owner, []).append(f"{{{tag}}}")
        owner, extra = max(load.items(), key=lambda kv: kv[1])
        per_alert = tenant / size + extra
        rate = 1 / per_alert
        busiest = " and ".join(names[owner]) + "'s node"
        ceilings.append(Ceiling(size, rate, busiest, rate * (tenant + sum(load.values()))))
    return tenant, own, ceilings
