"""The comparison report: Markdown, JSON, per-job CSV files and PNG plots.

Files written to the output folder:

* ``report.md``: the tables and plots for people.
* ``report.json``: the same figures; ``timings`` holds the only values that
  change between runs of the same inputs (wall-clock seconds).
* ``jobs-<policy>.csv``: one row per job and policy.
* ``jct_cdf.png``, ``utilisation.png``, ``share.png``: plots (need matplotlib).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from neurfly.core.cluster import ClusterConfig
from neurfly.sim.derive import Derivation
from neurfly.sim.engine import SimulationConfig
from neurfly.sim.metrics import Distribution, PolicyMetrics, ratio
from neurfly.sim.plots import write_plots
from neurfly.sim.results import SimulationResult

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReportContext:
    """Inputs and settings of the run, stated at the top of the report.

    Attributes:
        trace: Where the trace came from.
        cluster_source: Where the cluster came from.
        cluster: The cluster simulated.
        config: Checkpoint interval, grace period and validation.
        derivation: What was derived for fields the trace lacks, or ``None``.
        seed: Seed of the derivation.
        limit: ``--limit`` value, or ``None``.
        arrival_scale: Factor applied to the gaps between arrivals.
        window_s: Window of the per-window fairness and the utilisation plot.
        baseline: Policy the ratios compare against.
        failed: Error per policy whose run stopped.
    """

    trace: str
    cluster_source: str
    cluster: ClusterConfig
    config: SimulationConfig
    derivation: Derivation | None
    seed: int
    limit: int | None
    arrival_scale: float
    window_s: float
    baseline: str | None
    failed: dict[str, str] = field(default_factory=dict)


def write_report(
    out: Path,
    context: ReportContext,
    results: Sequence[SimulationResult],
    metrics: Sequence[PolicyMetrics],
    plots: bool = True,
) -> Path:
    """Write every report file to ``out`` and return the path of ``report.md``; ``plots=False`` skips the PNGs."""
    out.mkdir(parents=True, exist_ok=True)
    for result in results:
        _write_jobs_csv(out / f"jobs-{result.policy}.csv", result)
    drawn = write_plots(out, results, metrics, context.window_s) if plots and results else None
    (out / "report.json").write_text(json.dumps(report_json(context, metrics), indent=2) + "\n", encoding="utf-8")

    path = out / "report.md"
    path.write_text(report_markdown(context, metrics, drawn), encoding="utf-8")
    _logger.info("wrote the report to %s", path)
    return path


def report_json(context: ReportContext, metrics: Sequence[PolicyMetrics]) -> dict:
    """Return the report's figures as a JSON-ready dict, wall-clock timings under ``timings``."""
    policies = {}
    timings = {}
    for item in metrics:
        figures = item.to_dict()
        timings[item.policy] = {name: figures.pop(name) for name in ("wall_s", "policy_wall_s")}
        timings[item.policy]["events_per_s"] = item.events / item.wall_s if item.wall_s else None
        policies[item.policy] = figures

    return {
        "trace": context.trace,
        "cluster": context.cluster_source,
        "devices": sum(pool.devices for pool in context.cluster.pools),
        "settings": {
            **asdict(context.config),
            "seed": context.seed,
            "limit": context.limit,
            "arrival_scale": context.arrival_scale,
            "window_s": context.window_s,
            "usage_half_life_s": context.cluster.usage_half_life_s,
            "baseline": context.baseline,
        },
        "derivation": None if context.derivation is None else context.derivation.describe(),
        "policies": policies,
        "failed": dict(context.failed),
        "timings": timings,
    }


def report_markdown(
    context: ReportContext, metrics: Sequence[PolicyMetrics], plots: Sequence[str] | None = None
) -> str:
    """Return the report as Markdown; ``plots`` lists the PNG files drawn, ``None`` when plots were not asked for."""
    sections = [
        _header(context, metrics),
        _summary_table(metrics),
        _ratio_table(metrics, context.baseline),
        _fairness_and_preemption(metrics),
        _published_anchor(metrics),
        *(_team_table(item) for item in metrics),
        _rejections(metrics),
        _plots(plots),
        _timings(metrics),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _header(context: ReportContext, metrics: Sequence[PolicyMetrics]) -> str:
    cluster = context.cluster
    nodes = sum(len(pool.nodes) for pool in cluster.pools)
    devices = sum(pool.devices for pool in cluster.pools)
    jobs = metrics[0].jobs if metrics else 0
    lines = [
        "# Scheduling simulation report",
        "",
        f"- Trace: `{context.trace}`, {jobs} jobs"
        + (f" (the first {context.limit} by arrival)" if context.limit else "")
        + (f", arrival gaps scaled by {context.arrival_scale:g}" if context.arrival_scale != 1 else "")
        + ".",
        f"- Cluster: {context.cluster_source}: {devices} devices on {nodes} nodes in {len(cluster.pools)} pool(s); "
        f"usage half-life {_duration(cluster.usage_half_life_s)}.",
        f"- Runtime: checkpoint every {_duration(context.config.checkpoint_interval_s)} of progress, "
        f"preemption grace period {_duration(context.config.grace_period_s)}, "
        f"validation {'on' if context.config.validate else 'off'}; seed {context.seed}.",
    ]
    if context.derivation is not None:
        lines += ["", "## Derived fields", "", context.derivation.describe()]
    for policy, error in context.failed.items():
        lines += ["", f"**Policy `{policy}` failed:** {error}"]
    return "\n".join(lines)


def _summary_table(metrics: Sequence[PolicyMetrics]) -> str:
    rows = [
        "## Summary",
        "",
        "Job completion time (JCT) is over completed jobs; queueing delay is over jobs that started.",
        "",
        "| policy | completed | rejected | unfinished | JCT mean | JCT median | JCT p95 "
        "| delay mean | delay median | delay p95 | utilisation |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for item in metrics:
        jct, delay = item.completion_time, item.queueing_delay
        rows.append(
            f"| {item.policy} | {item.completed} | {item.rejected} | {item.unfinished} "
            f"| {_duration(jct.mean)} | {_duration(jct.median)} | {_duration(jct.p95)} "
            f"| {_duration(delay.mean)} | {_duration(delay.median)} | {_duration(delay.p95)} "
            f"| {item.utilisation:.1%} |"
        )
    return "\n".join(rows)


def _ratio_table(metrics: Sequence[PolicyMetrics], baseline: str | None) -> str:
    base = next((item for item in metrics if item.policy == baseline), None)
    if base is None or len(metrics) < 2:
        return ""

    rows = [
        f"## Against `{baseline}`",
        "",
        "Each figure divided by the same figure under the baseline (below 1 is better).",
        "",
        "| policy | JCT mean | JCT p95 | delay mean | delay p95 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for item in metrics:
        rows.append(
            f"| {item.policy} | {_ratio(item.completion_time.mean, base.completion_time.mean)} "
            f"| {_ratio(item.completion_time.p95, base.completion_time.p95)} "
            f"| {_ratio(item.queueing_delay.mean, base.queueing_delay.mean)} "
            f"| {_ratio(item.queueing_delay.p95, base.queueing_delay.p95)} |"
        )
    return "\n".join(rows)


def _fairness_and_preemption(metrics: Sequence[PolicyMetrics]) -> str:
    window = _duration(metrics[0].window_s) if metrics else ""
    rows = [
        "## Fairness, preemption and the highest class",
        "",
        "Jain's index of each team's usage against its entitlement: over the whole run (usage share against "
        f"quota share), and the mean over {window} windows in which some demand waited (usage against the "
        "weighted max-min fair share of the window given each team's demand). 1 is perfectly fair.",
        "",
        "| policy | Jain (run) | Jain (windows) | contended windows | preemptions | device-hours lost "
        "| highest class | its time to start: mean | median | p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for item in metrics:
        start = item.top_class_time_to_start
        rows.append(
            f"| {item.policy} | {_number(item.jain_whole_run)} | {_number(item.jain_windowed)} "
            f"| {item.contended_windows} | {item.preemptions} | {item.lost_device_hours:.1f} "
            f"| {item.top_class or '-'} | {_duration(start.mean)} | {_duration(start.median)} "
            f"| {_duration(start.p95)} |"
        )
    return "\n".join(rows)


def _published_anchor(metrics: Sequence[PolicyMetrics], policy: str = "default") -> str:
    """State ``policy``'s mean JCT against each other policy, next to a published figure, and what it costs.

    Tiresias (Gu et al., NSDI 2019, https://www.usenix.org/conference/nsdi19/presentation/gu)
    reports up to 5.5x lower mean JCT than the Apache YARN-based resource
    manager of a production GPU cluster, in testbed runs and trace-driven
    simulations. FIFO is the nearest baseline here to that manager, but not the same.
    """
    own = next((item for item in metrics if item.policy == policy), None)
    others = [item for item in metrics if item.policy != policy]
    if own is None or not others or own.completion_time.mean is None:
        return ""

    lines = [
        "## Against the published anchor",
        "",
        "[Tiresias](https://www.usenix.org/conference/nsdi19/presentation/gu) (Gu et al., NSDI 2019) reports up to "
        "5.5x lower mean JCT than the Apache YARN-based resource manager of a production GPU cluster, in testbed "
        "runs and trace-driven simulations. FIFO is the nearest baseline here to that manager, but not the same.",
        "",
    ]
    for item in others:
        factor = ratio(item.completion_time.mean, own.completion_time.mean)
        if factor is None:
            continue
        word = "lower" if factor >= 1 else "higher"
        magnitude = factor if factor >= 1 else 1 / factor
        lines.append(f"- Mean JCT under `{policy}` is {magnitude:.2f}x {word} than under `{item.policy}`.")

    best = min((item for item in others if item.completion_time.mean is not None), key=lambda i: i.completion_time.mean, default=None)
    costs = []
    if best is not None and best.completion_time.mean < own.completion_time.mean:
        costs.append(
            f"its mean JCT is {own.completion_time.mean / best.completion_time.mean:.2f}x that of `{best.policy}`, "
            "the best policy on this figure"
        )
    best_tail = min((item for item in others if item.completion_time.p95 is not None), key=lambda i: i.completion_time.p95, default=None)
    if best_tail is not None and own.completion_time.p95 is not None and best_tail.completion_time.p95 < own.completion_time.p95:
        costs.append(
            f"its p95 JCT is {own.completion_time.p95 / best_tail.completion_time.p95:.2f}x that of `{best_tail.policy}`"
        )
    if own.preemptions:
        costs.append(f"{own.preemptions} preemptions threw away {own.lost_device_hours:.1f} device-hours of work")
    utilisation_gap = max(item.utilisation for item in others) - own.utilisation
    if utilisation_gap > 0.0005:
        costs.append(f"utilisation is {utilisation_gap:.1%} below the best baseline's")
    fairness = ", ".join(f"`{item.policy}` {_number(item.jain_windowed)}" for item in others)
    lines += [
        "",
        f"What `{policy}` gives up for fairness and priority: " + ("; ".join(costs) if costs else "nothing measurable on this trace") + ".",
        f"Jain's index over contended windows is {_number(own.jain_windowed)} under `{policy}`, against {fairness}.",
    ]
    return "\n".join(lines)


def _team_table(item: PolicyMetrics) -> str:
    rows = [
        f"## Per team: `{item.policy}`",
        "",
        "| team | jobs | completed | JCT mean / median / p95 | delay mean / median / p95 | device-hours "
        "| usage share | entitlement share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for team in item.teams:
        rows.append(
            f"| {team.team} | {team.jobs} | {team.completed} | {distribution_row(team.completion_time)} "
            f"| {distribution_row(team.queueing_delay)} | {team.device_hours:.1f} "
            f"| {team.usage_share:.1%} | {team.entitlement_share:.1%} |"
        )
    return "\n".join(rows)


def _rejections(metrics: Sequence[PolicyMetrics]) -> str:
    if not any(item.rejected or item.unfinished for item in metrics):
        return ""
    rows = [
        "## Rejected and unfinished jobs",
        "",
        "A rejected job is one the policy decided no node could ever hold (for example more devices than "
        "the largest node); an unfinished job was still pending or running when no event was left.",
        "",
        "| policy | rejected | their device-hours | unfinished |",
        "| --- | ---: | ---: | ---: |",
    ]
    for item in metrics:
        rows.append(f"| {item.policy} | {item.rejected} | {item.rejected_device_hours:.1f} | {item.unfinished} |")
    return "\n".join(rows)


def _plots(plots: Sequence[str] | None) -> str:
    if plots is None:
        return ""
    if not plots:
        return "## Plots\n\nNo plots: matplotlib is not installed (`pip install neurfly[sim]`)."
    titles = {
        "jct_cdf.png": "Job completion time CDF",
        "utilisation.png": "Utilisation over time",
        "share.png": "Usage share against entitlement per team",
    }
    return "## Plots\n\n" + "\n\n".join(f"![{titles.get(name, name)}]({name})" for name in plots)


def _timings(metrics: Sequence[PolicyMetrics]) -> str:
    rows = [
        "## Run",
        "",
        "Wall-clock figures of this run; they vary between runs and machines.",
        "",
        "| policy | events | schedule calls | wall time | events/s | time in schedule |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for item in metrics:
        rate = item.events / item.wall_s if item.wall_s else 0.0
        share = item.policy_wall_s / item.wall_s if item.wall_s else 0.0
        rows.append(
            f"| {item.policy} | {item.events} | {item.schedule_calls} | {item.wall_s:.1f} s "
            f"| {rate:,.0f} | {share:.0%} |"
        )
    return "\n".join(rows)


def _write_jobs_csv(path: Path, result: SimulationResult) -> None:
    columns = (
        "job_id", "trial_id", "team", "priority", "devices", "duration", "arrival", "first_start",
        "completion", "completion_time", "wait_s", "preemptions", "lost_work_s", "outcome", "reason",
    )  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for job in result.jobs:
            writer.writerow(
                [
                    job.job_id, job.trial_id, job.team, job.priority, job.devices, job.duration, job.arrival,
                    _blank(job.first_start), _blank(job.completion), _blank(job.completion_time), job.wait_s,
                    job.preemptions, job.lost_work_s, job.outcome.value, job.reason,
                ]
            )  # fmt: skip


def _blank(value: float | None) -> object:
    return "" if value is None else value


def _duration(seconds: float | None) -> str:
    """Format seconds for people: 42 s, 12.5 min, 3.2 h, 4.1 d."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio(value: float | None, baseline: float | None) -> str:
    quotient = ratio(value, baseline)
    return "-" if quotient is None else f"{quotient:.2f}"


def distribution_row(distribution: Distribution) -> str:
    """Format a distribution as ``mean / median / p95``."""
    return " / ".join(_duration(value) for value in (distribution.mean, distribution.median, distribution.p95))


__all__ = ["ReportContext", "distribution_row", "report_json", "report_markdown", "write_report"]
