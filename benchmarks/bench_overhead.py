"""Measure the control-plane overhead per trial against Optuna.

Runs the same number of no-op trials three ways and prints a Markdown table:

* NeurFly: a search with the built-in ``noop`` workload (``max_steps`` 1,
  random strategy), stored in SQLite and run by the controller on the
  embedded local cluster, with ``max_concurrent_trials`` equal to its device
  slots. Every trial is a real worker process that saves a checkpoint and
  reports one value, as any trial does.
* Optuna with its in-memory storage and ``RandomSampler``.
* Optuna with SQLite storage and ``RandomSampler``.

Both Optuna runs call ``study.optimize`` with an objective that returns at
once, with ``n_jobs=1``. The time per trial is the wall-clock time of the
whole run divided by the number of trials. The NeurFly row also shows the
CPU time of the controller process per trial, which leaves out the time it
waits for worker processes.

Usage::

    python benchmarks/bench_overhead.py [--trials 1000] [--concurrency 4]
"""

from __future__ import annotations

# Heavy imports stay inside functions. With the forkserver start method,
# multiprocessing runs this script's top level again in every worker process
# it starts, so module-level imports would add their import time to each trial.
import argparse
import io
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Target for NeurFly's wall-clock time per no-op trial, in milliseconds.
TARGET_MS_PER_TRIAL = 10.0


@dataclass(frozen=True)
class Result:
    system: str
    trials: int
    wall_s: float
    cpu_s: float | None = None

    @property
    def ms_per_trial(self) -> float:
        return 1000.0 * self.wall_s / self.trials

    @property
    def cpu_ms_per_trial(self) -> float | None:
        return None if self.cpu_s is None else 1000.0 * self.cpu_s / self.trials


def noop_spec(trials: int, concurrency: int) -> dict:
    return {
        "name": "overhead",
        "team": "bench",
        "description": "No-op trials to measure the platform's own overhead.",
        "objective": {"metric": "objective", "direction": "minimize"},
        "space": {"value": {"type": "float", "low": 0.0, "high": 1.0}},
        "strategy": {"name": "random", "seed": 0},
        "budget": {"max_trials": trials, "max_concurrent_trials": concurrency, "max_steps": 1},
        "entrypoint": "noop",
    }


def run_neurfly(trials: int, concurrency: int, workdir: Path) -> Result:
    import yaml
    from rich.console import Console

    from neurfly.cli.runner import drive
    from neurfly.service import find_search, load_cluster, load_spec, search_summary, submit_search
    from neurfly.store import Store

    spec_file = workdir / "overhead.yaml"
    spec_file.write_text(yaml.safe_dump(noop_spec(trials, concurrency), sort_keys=False))
    cluster = load_cluster(None)
    slots = sum(node.devices for pool in cluster.pools for node in pool.nodes)
    if concurrency > slots:
        print(f"note: --concurrency {concurrency} exceeds the {slots} local device slots", file=sys.stderr)

    store = Store.open(f"sqlite:///{workdir / 'neurfly.db'}")
    spec, document, _ = load_spec(spec_file, cluster)
    quiet = Console(file=io.StringIO())

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    submission = submit_search(store, spec, document)
    drive(store, cluster, [submission.search_id], quiet, live_display=False, checkpoint_root=str(workdir / "checkpoints"))
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start

    summary = search_summary(store, find_search(store, submission.search_id))
    completed = summary["trials"].get("completed", 0)
    store.dispose()
    if completed != trials:
        raise RuntimeError(
            f"NeurFly completed {completed} of {trials} trials ({summary['trials']}); "
            "rerun with --workdir DIR and inspect the store with 'neurfly trials overhead --db sqlite:///DIR/neurfly.db'"
        )
    return Result(f"NeurFly (SQLite, local executor, {concurrency} slots)", trials, wall, cpu)


def run_optuna(trials: int, storage: str | None, label: str) -> Result:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("value", 0.0, 1.0)

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=1)
    wall = time.perf_counter() - start

    completed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    if completed != trials:
        raise RuntimeError(f"Optuna ({label}) completed {completed} of {trials} trials")
    return Result(label, trials, wall)


def machine() -> str:
    import optuna
    import sqlalchemy

    import neurfly

    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"NeurFly {neurfly.__version__}, Optuna {optuna.__version__}, SQLAlchemy {sqlalchemy.__version__}"
    )


def table(results: list[Result]) -> str:
    neurfly_row = results[0]
    lines = [
        "| system | trials | wall time (s) | ms per trial | controller CPU ms per trial | NeurFly / this |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        cpu = "-" if result.cpu_ms_per_trial is None else f"{result.cpu_ms_per_trial:.2f}"
        ratio = neurfly_row.ms_per_trial / result.ms_per_trial
        lines.append(
            f"| {result.system} | {result.trials} | {result.wall_s:.2f} | {result.ms_per_trial:.2f} | {cpu} | {ratio:.1f}x |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000, help="no-op trials per system (default: 1000)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="NeurFly's max_concurrent_trials; the embedded local cluster has 4 device slots (default: 4)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="folder for databases and checkpoints (default: a temporary one)")
    args = parser.parse_args()
    if args.trials < args.concurrency:
        parser.error(f"--trials ({args.trials}) must be at least --concurrency ({args.concurrency})")
    return args


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="neurfly-overhead-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        os.environ["NEURFLY_HOME"] = str(workdir / "home")
        os.environ.pop("NEURFLY_DATABASE_URL", None)

        results = [
            run_neurfly(args.trials, args.concurrency, workdir),
            run_optuna(args.trials, None, "Optuna (in memory, RandomSampler)"),
            run_optuna(args.trials, f"sqlite:///{workdir / 'optuna.db'}", "Optuna (SQLite, RandomSampler)"),
        ]

    print(f"Control-plane overhead, {args.trials} no-op trials per system")
    print()
    print(f"Machine: {machine()}")
    print()
    print(table(results))
    print()
    verdict = "met" if results[0].ms_per_trial < TARGET_MS_PER_TRIAL else "not met"
    print(f"Target of {TARGET_MS_PER_TRIAL:.0f} ms per trial for NeurFly: {verdict}.")


if __name__ == "__main__":
    main()
