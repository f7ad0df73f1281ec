"""Time a whole-trace replay per scheduling policy and print a Markdown table.

Each policy replays the same trace once (by default the Philly trace on the
packaged ``philly`` cluster), with priorities and searches derived by the
default seeded rule. The table has one row per policy with its wall-clock
seconds and its process CPU seconds. The simulator runs in one thread, so
CPU time is less sensitive than wall time to other load on the machine.
The other columns are the share of wall time spent inside ``schedule``, the
events processed (arrivals, completions and preemption exits), events per
wall-clock second, schedule calls, and the mean job completion time as a
ratio to the first policy listed.

Usage::

    python benchmarks/bench_simulate.py [--trace PATH] [--cluster philly] [--policy fifo ...]
                                        [--limit N] [--arrival-scale 1.0] [--seed 0]

The Philly trace is looked up in ``shared/data/traces/philly.csv`` beside the
repository unless ``--trace`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from neurfly.core.cluster import ClusterConfig
from neurfly.core.scheduling import policies
from neurfly.sim.derive import DerivationRule, derive_missing
from neurfly.sim.engine import PolicyContractError, SimulationConfig, Simulator
from neurfly.sim.metrics import ratio, summarize
from neurfly.sim.runner import load_cluster, load_trace, resolve_policies, scale_arrivals
from neurfly.sim.trace import TraceJob

DEFAULT_TRACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces" / "philly.csv"
DEFAULT_POLICIES = ("fifo", "priority", "fair-share", "default")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="trace file (neutral or Philly CSV)")
    parser.add_argument("--cluster", default="philly", help="cluster file or packaged cluster name")
    parser.add_argument("--policy", action="append", help="policy to time; repeat for several (default: all four)")
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N jobs by arrival")
    parser.add_argument("--arrival-scale", type=float, default=1.0, help="factor on the gaps between arrivals")
    parser.add_argument("--seed", type=int, default=0, help="seed of the derivation rule")
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    if not arguments.trace.is_file():
        print(f"trace not found: {arguments.trace}; pass --trace", file=sys.stderr)
        return 2

    cluster, cluster_source = load_cluster(arguments.cluster)
    names = resolve_policies(arguments.policy or list(DEFAULT_POLICIES))
    loaded = scale_arrivals(load_trace(arguments.trace, arguments.limit), arguments.arrival_scale)
    jobs, _ = derive_missing(loaded, cluster, DerivationRule(seed=arguments.seed))

    print(f"trace: {arguments.trace} ({len(jobs)} jobs, arrival scale {arguments.arrival_scale:g})")
    print(f"cluster: {cluster_source} ({sum(pool.devices for pool in cluster.pools)} devices)")
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    print("| policy | wall s | CPU s | in schedule | events | events/s | schedule calls | mean JCT vs first |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    first_mean: float | None = None
    for index, name in enumerate(names):
        measurement = measure(name, cluster, jobs)
        if index == 0:
            first_mean = measurement.mean_jct
        print(measurement.row(first_mean), flush=True)
    return 0


@dataclass(frozen=True)
class Measurement:
    """One policy's replay: timings and the mean JCT, or the error that stopped it."""

    policy: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    policy_wall_s: float = 0.0
    events: int = 0
    schedule_calls: int = 0
    mean_jct: float | None = None
    error: str = ""

    def row(self, first_mean: float | None) -> str:
        if self.error:
            return f"| {self.policy} | failed: {self.error} | | | | | | |"
        relative = ratio(self.mean_jct, first_mean)
        return (
            f"| {self.policy} | {self.wall_s:.1f} | {self.cpu_s:.1f} | {self.policy_wall_s / self.wall_s:.0%} "
            f"| {self.events:,} | {self.events / self.wall_s:,.0f} | {self.schedule_calls:,} "
            f"| {'-' if relative is None else f'{relative:.3f}'} |"
        )


def measure(name: str, cluster: ClusterConfig, jobs: list[TraceJob]) -> Measurement:
    """Replay ``jobs`` under the policy registered as ``name`` and time it."""
    simulator = Simulator(cluster, policies.get(name)(), SimulationConfig(), policy_name=name)
    cpu_started = time.process_time()
    try:
        result = simulator.run(jobs)
    except PolicyContractError as exc:
        return Measurement(name, error=str(exc))

    return Measurement(
        policy=name,
        wall_s=result.wall_s,
        cpu_s=time.process_time() - cpu_started,
        policy_wall_s=result.policy_wall_s,
        events=result.events,
        schedule_calls=result.schedule_calls,
        mean_jct=summarize(result, cluster).completion_time.mean,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
