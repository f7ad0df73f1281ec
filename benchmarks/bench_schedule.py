"""Time one ``DefaultPolicy.schedule`` call on large synthetic snapshots.

The baseline snapshot has 10,000 pending trials, 2,000 running attempts,
50 teams and 4,000 devices (500 nodes of 8 devices in 4 pools). Each row of
the printed Markdown table doubles or halves one of those four dimensions and
reports the median time of several calls, measured with
``time.perf_counter`` (and, beside it, the CPU time of the calling thread). Snapshots come from a seeded generator, so a run is
repeatable on one machine. The generator places running attempts until it
reaches the target or the nodes are full, so a row may run fewer attempts
than asked; the table prints the number placed. Validation mode is off, as
in production.

Usage::

    python benchmarks/bench_schedule.py [--repeats 7] [--seed 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter

from neurfly.core.scheduling import (
    Node,
    PendingTrial,
    PolicySettings,
    Pool,
    Preempt,
    PriorityClass,
    Reject,
    Reserve,
    RunningAttempt,
    SearchLimit,
    Snapshot,
    Start,
    Team,
)
from neurfly.core.scheduling.default import DefaultPolicy

NOW = 100_000.0
DEVICES_PER_NODE = 8
POOLS = (
    Pool("a100-eu", "eu-west", "cuda-a100", 2.0),
    Pool("a100-us", "us-east", "cuda-a100", 1.8),
    Pool("h100-eu", "eu-west", "cuda-h100", 4.0),
    Pool("h100-us", "us-east", "cuda-h100", 3.6),
)
PRIORITY_CLASSES = (
    PriorityClass("production", 1000, preemptible=False),
    PriorityClass("interactive", 500),
    PriorityClass("search", 100),
    PriorityClass("best-effort", 0),
)
PRIORITY_MIX = (("production", 2), ("interactive", 8), ("search", 70), ("best-effort", 20))
DEVICE_MIX = ((1, 70), (2, 15), (4, 10), (8, 5))


@dataclasses.dataclass(frozen=True)
class Size:
    pending: int = 10_000
    running: int = 2_000
    teams: int = 50
    devices: int = 4_000


def build_snapshot(size: Size, seed: int) -> Snapshot:
    """Build a reproducible snapshot of ``size`` from ``seed``."""
    rng = random.Random(seed)
    nodes = _nodes(size.devices)
    teams = _teams(rng, size.teams, nodes)
    searches = _searches(rng, teams)
    running = _running(rng, size.running, nodes, searches)
    pending = _pending(rng, size.pending, searches, first_id=len(running) + 1)
    return Snapshot(
        now=NOW,
        pools=POOLS,
        nodes=tuple(nodes),
        priority_classes=PRIORITY_CLASSES,
        teams=tuple(teams),
        running=tuple(running),
        pending=tuple(pending),
        searches=tuple(searches),
        settings=PolicySettings(min_runtime_s=60.0),
    )


def _nodes(devices: int) -> list[Node]:
    count = max(1, devices // DEVICES_PER_NODE)
    return [Node(f"node-{index:05d}", POOLS[index % len(POOLS)].name, DEVICES_PER_NODE) for index in range(count)]


def _teams(rng: random.Random, count: int, nodes: list[Node]) -> list[Team]:
    pool_devices = Counter()
    for node in nodes:
        pool_devices[node.pool] += node.devices
    teams = []
    for index in range(count):
        quota = {pool.name: int(0.8 * pool_devices[pool.name] / count) for pool in POOLS}
        borrowing = {pool.name: quota[pool.name] * 3 for pool in POOLS} if index % 3 == 0 else {}
        teams.append(
            Team(
                name=f"team-{index:03d}",
                weight=rng.choice((1.0, 1.0, 2.0, 4.0)),
                quota=quota,
                borrowing_limit=borrowing,
                decayed_usage=rng.uniform(0, 5e6),
            )
        )
    return teams


def _searches(rng: random.Random, teams: list[Team]) -> list[SearchLimit]:
    searches = []
    for team in teams:
        for _ in range(rng.randint(2, 6)):
            searches.append(SearchLimit(len(searches) + 1, team.name, rng.choice((8, 16, 32, 64))))
    return searches


def _weighted(rng: random.Random, mix) -> object:
    values, weights = zip(*mix, strict=True)
    return rng.choices(values, weights)[0]


def _running(rng: random.Random, count: int, nodes: list[Node], searches: list[SearchLimit]) -> list[RunningAttempt]:
    free = {node.name: list(range(node.devices)) for node in nodes}
    attempts = []
    for _ in range(count * 4):
        if len(attempts) >= count:
            break
        node = rng.choice(nodes)
        devices = _weighted(rng, DEVICE_MIX)
        if len(free[node.name]) < devices:
            continue
        slots = tuple(free[node.name][:devices])
        del free[node.name][:devices]
        search = rng.choice(searches)
        attempts.append(
            RunningAttempt(
                attempt_id=len(attempts) + 1,
                trial_id=len(attempts) + 1,
                search_id=search.search_id,
                team=search.team,
                priority=_weighted(rng, PRIORITY_MIX),
                node=node.name,
                slots=slots,
                started_at=NOW - rng.uniform(0, 7200),
                progress_at_risk=rng.uniform(0, 500),
                yielding=rng.random() < 0.02,
            )
        )
    return attempts


def _pending(rng: random.Random, count: int, searches: list[SearchLimit], first_id: int) -> list[PendingTrial]:
    trials = []
    for index in range(count):
        search = rng.choice(searches)
        pool = rng.choice(POOLS)
        regions = frozenset({pool.region}) if rng.random() < 0.1 else None
        trials.append(
            PendingTrial(
                trial_id=first_id + index,
                search_id=search.search_id,
                team=search.team,
                priority=_weighted(rng, PRIORITY_MIX),
                devices=_weighted(rng, DEVICE_MIX),
                hardware=pool.hardware,
                queued_at=NOW - rng.uniform(0, 86400),
                resumes=rng.random() < 0.1,
                allowed_regions=regions,
            )
        )
    return trials


def time_call(snapshot: Snapshot, repeats: int) -> tuple[float, float, Counter]:
    """Time ``repeats`` calls on ``snapshot``.

    Returns:
        The median wall time in seconds (``time.perf_counter``), the median
        CPU time of this thread in seconds (``time.thread_time``, which other
        processes on a busy machine inflate less), and the decision counts
        of the last call.
    """
    policy = DefaultPolicy()
    wall = []
    cpu = []
    decisions = []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.thread_time()
        decisions = policy.schedule(snapshot)
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    kinds = Counter(type(d).__name__ for d in decisions)
    return statistics.median(wall), statistics.median(cpu), kinds


def rows() -> list[tuple[str, Size]]:
    """Return the baseline size and each size with one dimension doubled or halved."""
    base = Size()
    result = [("baseline", base)]
    for field_name in ("pending", "running", "teams", "devices"):
        value = getattr(base, field_name)
        for factor, label in ((2, "x2"), (0.5, "/2")):
            result.append((f"{field_name} {label}", dataclasses.replace(base, **{field_name: int(value * factor)})))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="calls per row, of which the median is reported (default: 7)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the snapshot generator (default: 1)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be 1 or more, got {args.repeats}")

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPU(s), load average {load}, seed {args.seed}")
    print()
    print("| case | pending | running | teams | devices | median ms | median CPU ms | starts | preempts | reserves | rejects |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, size in rows():
        snapshot = build_snapshot(size, args.seed)
        seconds, cpu_seconds, kinds = time_call(snapshot, args.repeats)
        print(
            f"| {label} | {size.pending} | {len(snapshot.running)} | {size.teams} | {size.devices} | "
            f"{seconds * 1000:.1f} | {cpu_seconds * 1000:.1f} | {kinds[Start.__name__]} | "
            f"{kinds[Preempt.__name__]} | {kinds[Reserve.__name__]} | {kinds[Reject.__name__]} |"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
