"""PNG plots of a comparison, drawn with matplotlib's Agg canvas (no display, no pyplot state).

matplotlib is an optional dependency (``pip install neurfly[sim]``); without it
``write_plots`` draws nothing and returns an empty list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neurfly.sim.metrics import PolicyMetrics, binned_mean
from neurfly.sim.results import JobOutcome, SimulationResult

_logger = logging.getLogger(__name__)

_MAX_UTILISATION_POINTS = 400


def write_plots(
    out: Path, results: Sequence[SimulationResult], metrics: Sequence[PolicyMetrics], window_s: float
) -> list[str]:
    """Draw the JCT CDF, utilisation over time and share per team into ``out``.

    Returns:
        The file names written, or an empty list when matplotlib is missing or there are no results.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        _logger.warning("matplotlib is not installed, so the report has no plots; pip install neurfly[sim]")
        return []
    if not results:
        return []

    drawings = (
        ("jct_cdf.png", _draw_jct_cdf, results),
        ("utilisation.png", _draw_utilisation, (results, window_s)),
        ("share.png", _draw_share, metrics),
    )
    names = []
    for name, draw, data in drawings:
        figure = Figure(figsize=(8, 4.5), layout="constrained")
        draw(figure, data)
        figure.savefig(out / name, dpi=110)
        names.append(name)
    return names


def _draw_jct_cdf(figure, results: Sequence[SimulationResult]) -> None:
    axes = figure.add_subplot()
    for result in results:
        hours = np.sort(
            [job.completion_time / 3600.0 for job in result.jobs if job.outcome is JobOutcome.COMPLETED]
        )
        if len(hours):
            axes.step(hours, np.arange(1, len(hours) + 1) / len(hours), where="post", label=result.policy)
    axes.set_xscale("log")
    axes.set_xlabel("job completion time (hours, log scale)")
    axes.set_ylabel("fraction of completed jobs")
    axes.set_title("Job completion time CDF")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()


def _draw_utilisation(figure, data: tuple[Sequence[SimulationResult], float]) -> None:
    results, window_s = data
    axes = figure.add_subplot()
    for result in results:
        bin_s = max(window_s, result.end / _MAX_UTILISATION_POINTS)
        starts, held = binned_mean(result.devices_held, result.end, bin_s)
        if len(starts) and result.capacity:
            axes.plot(starts / 86400.0, held / result.capacity, label=result.policy, linewidth=1)
    axes.set_xlabel("days since the first arrival")
    axes.set_ylabel("devices held / capacity")
    axes.set_ylim(0, 1.05)
    axes.set_title("Utilisation over time")
    axes.grid(True, alpha=0.3)
    axes.legend()


def _draw_share(figure, metrics: Sequence[PolicyMetrics]) -> None:
    axes = figure.add_subplot()
    teams = [team.team for team in metrics[0].teams] if metrics else []
    positions = np.arange(len(teams))
    width = 0.8 / (len(metrics) + 1)
    entitlement = [team.entitlement_share for team in metrics[0].teams] if metrics else []
    axes.bar(positions, entitlement, width, label="entitlement", color="0.7")
    for offset, item in enumerate(metrics, start=1):
        axes.bar(positions + offset * width, [team.usage_share for team in item.teams], width, label=item.policy)
    axes.set_xticks(positions + width * len(metrics) / 2, teams, rotation=45, ha="right")
    axes.set_ylabel("share of device-hours")
    axes.set_title("Usage share against entitlement per team")
    axes.legend()


__all__ = ["write_plots"]
