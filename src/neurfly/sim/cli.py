"""Command line of the simulator: ``simulate``, ``convert-philly`` and ``generate-automl``.

``simulate_command`` is a plain function with typer options, so the main
``neurfly`` CLI can mount it as ``neurfly simulate``; ``app`` groups the three
commands for ``python -m neurfly.sim``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from neurfly.errors import NeurflyError
from neurfly.sim.automl import AutoMLWorkload, generate_automl_trace
from neurfly.sim.derive import DerivationRule, derive_missing
from neurfly.sim.engine import SimulationConfig
from neurfly.sim.metrics import DEFAULT_WINDOW_S, PolicyMetrics, summarize
from neurfly.sim.philly import read_philly
from neurfly.sim.report import ReportContext, distribution_row, write_report
from neurfly.sim.runner import load_cluster, load_trace, resolve_policies, run_policies, scale_arrivals
from neurfly.sim.trace import write_trace

_logger = logging.getLogger(__name__)
_console = Console()

EXIT_INPUT_ERROR = 2
EXIT_POLICY_FAILED = 1
BASELINE_POLICY = "fifo"


def simulate_command(
    trace: Annotated[Path, typer.Option(help="Trace file: neutral CSV or Parquet, or a Philly CSV.")],
    cluster: Annotated[
        str, typer.Option(help="Cluster YAML file, or a packaged cluster: 'philly' or 'automl'.")
    ],
    policy: Annotated[
        list[str] | None,
        typer.Option(help="Registered policy name; repeat to compare several, or 'all'. Default: 'default'."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for report.md, report.json, plots and per-job CSVs.")] = Path(
        "sim-report"
    ),
    limit: Annotated[int | None, typer.Option(min=1, help="Simulate only the first N jobs by arrival.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the rule that derives missing priorities.")] = 0,
    checkpoint_interval: Annotated[
        float, typer.Option(help="Seconds of progress between checkpoints; 'inf' for none.")
    ] = 1800.0,
    grace_period: Annotated[
        float, typer.Option(min=0.0, help="Seconds a preempted attempt keeps its devices before it exits.")
    ] = 30.0,
    report_interval: Annotated[
        float, typer.Option(min=0.0, help="Seconds of progress between a trial's progress reports; 0 for exact.")
    ] = 60.0,
    production_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Probability that a job outside a search becomes production.")
    ] = 0.10,
    search_gap: Annotated[
        float, typer.Option(min=0.0, help="Maximum seconds between jobs of one derived search.")
    ] = 300.0,
    arrival_scale: Annotated[
        float, typer.Option(help="Factor on the gaps between arrivals; 0.5 doubles the load.")
    ] = 1.0,
    window: Annotated[
        float, typer.Option(help="Seconds per window of the fairness index and plots.")
    ] = DEFAULT_WINDOW_S,
    validate: Annotated[bool, typer.Option(help="Check the scheduling invariants after every decision.")] = False,
    baseline: Annotated[str, typer.Option(help="Policy the report's ratios compare against.")] = BASELINE_POLICY,
    plots: Annotated[bool, typer.Option(help="Draw PNG plots (needs matplotlib).")] = True,
) -> None:
    """Replay a trace under one or more scheduling policies and write a comparison report."""
    try:
        context, results, metrics = _simulate(
            trace, cluster, policy or ["default"], limit, seed, checkpoint_interval, grace_period, report_interval,
            production_fraction, search_gap, arrival_scale, window, validate, baseline,
        )  # fmt: skip
    except (NeurflyError, ValueError) as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INPUT_ERROR) from None

    path = write_report(out, context, results, metrics, plots=plots)
    _print_summary(metrics)
    _console.print(f"report: {path}")
    if context.failed:
        raise typer.Exit(EXIT_POLICY_FAILED)


def _simulate(
    trace: Path, cluster_name: str, policy_names: list[str], limit: int | None, seed: int,
    checkpoint_interval: float, grace_period: float, report_interval: float, production_fraction: float,
    search_gap: float,
    arrival_scale: float, window: float, validate: bool, baseline: str,
) -> tuple[ReportContext, list, list[PolicyMetrics]]:  # fmt: skip
    cluster, cluster_source = load_cluster(cluster_name)
    names = resolve_policies(policy_names)
    rule = DerivationRule(seed=seed, production_fraction=production_fraction, search_gap_s=search_gap)
    jobs, derivation = derive_missing(scale_arrivals(load_trace(trace, limit), arrival_scale), cluster, rule)
    config = SimulationConfig(
        checkpoint_interval_s=checkpoint_interval,
        grace_period_s=grace_period,
        report_interval_s=report_interval,
        validate=validate,
    )

    runs = run_policies(jobs, cluster, names, config)
    if baseline not in names:
        baseline = names[0]
    results = [run.result for run in runs if run.result is not None]
    metrics = [summarize(result, cluster, window) for result in results]
    context = ReportContext(
        trace=str(trace),
        cluster_source=cluster_source,
        cluster=cluster,
        config=config,
        derivation=derivation,
        seed=seed,
        limit=limit,
        arrival_scale=arrival_scale,
        window_s=window,
        baseline=baseline,
        failed={run.policy: run.error for run in runs if run.result is None},
    )
    return context, results, metrics


def _print_summary(metrics: list[PolicyMetrics]) -> None:
    table = Table(title="Simulation summary")
    for column in ("policy", "completed", "rejected", "JCT mean / median / p95", "utilisation", "preemptions"):
        table.add_column(column)
    for item in metrics:
        table.add_row(
            item.policy,
            str(item.completed),
            str(item.rejected),
            distribution_row(item.completion_time),
            f"{item.utilisation:.1%}",
            str(item.preemptions),
        )
    _console.print(table)


def convert_philly_command(
    source: Annotated[Path, typer.Argument(help="Philly CSV: timestamp, duration, num_gpus, gpu_time, cluster.")],
    target: Annotated[Path, typer.Argument(help="Neutral trace to write: .csv, or .parquet with pyarrow.")],
    limit: Annotated[int | None, typer.Option(min=1, help="Keep only the first N jobs by arrival.")] = None,
    derive_with: Annotated[
        str | None,
        typer.Option(
            "--derive-with",
            help="Cluster (file, 'philly' or 'automl') to derive priority, search and hardware for; default: none.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the derivation rule.")] = 0,
) -> None:
    """Convert a Philly CSV to the neutral trace format, optionally with derived fields."""
    try:
        jobs = read_philly(source, limit)
        if derive_with is not None:
            cluster, _ = load_cluster(derive_with)
            jobs, derivation = derive_missing(jobs, cluster, DerivationRule(seed=seed))
            _console.print(derivation.describe())
        write_trace(jobs, target)
    except (NeurflyError, ValueError) as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    _console.print(f"wrote {len(jobs)} jobs to {target}")


def generate_automl_command(
    target: Annotated[Path, typer.Argument(help="Neutral trace to write: .csv, or .parquet with pyarrow.")],
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 0,
    hours: Annotated[float, typer.Option(help="Hours during which jobs arrive.")] = 48.0,
    searches_per_hour: Annotated[float, typer.Option(min=0.0, help="Mean arrival rate of searches.")] = 3.0,
    trials: Annotated[int, typer.Option(min=1, help="Trials per search.")] = 64,
    max_concurrent: Annotated[int, typer.Option(min=1, help="Running trials allowed per search.")] = 16,
    production_per_hour: Annotated[float, typer.Option(min=0.0, help="Mean arrival rate of production jobs.")] = 1.5,
    hardware: Annotated[str, typer.Option(help="Hardware type of every job.")] = "gpu",
) -> None:
    """Generate ASHA searches mixed with long production jobs, in the neutral trace format."""
    try:
        workload = AutoMLWorkload(
            horizon_s=hours * 3600.0,
            searches_per_hour=searches_per_hour,
            trials_per_search=trials,
            max_concurrent=max_concurrent,
            production_per_hour=production_per_hour,
            hardware=hardware,
        )
        jobs = generate_automl_trace(workload, seed)
        write_trace(jobs, target)
    except (NeurflyError, ValueError) as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    _console.print(f"wrote {len(jobs)} jobs to {target}")


app = typer.Typer(help="Trace-driven scheduling simulator.", no_args_is_help=True, add_completion=False)
app.command("simulate")(simulate_command)
app.command("convert-philly")(convert_philly_command)
app.command("generate-automl")(generate_automl_command)


def main() -> None:
    """Run the simulator's command line with INFO logging to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app()


__all__ = ["app", "convert_philly_command", "generate_automl_command", "main", "simulate_command"]
