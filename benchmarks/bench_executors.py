"""Compare the local executor, the Ray executor and Ray Tune on the same short trials.

Runs the same number of no-op trials three ways in one process and prints a
Markdown table:

* NeurFly with the local executor: a search of the built-in ``noop``
  workload (random strategy, ``--steps`` steps, no sleep) on the embedded
  local cluster of 2 nodes with 2 device slots each. Every trial is a worker
  process that saves a checkpoint and reports at each step.
* NeurFly with the Ray executor: the same search and cluster, on a Ray
  instance started by this script on 127.0.0.1, whose one Ray node carries
  ``neurfly_node_eu-node-1`` and ``neurfly_node_us-node-1`` (2 units each).
  Every attempt is a Ray actor, with the same checkpoints and reports.
* Ray Tune alone on the same Ray instance: ``tune.Tuner`` with a function
  trainable that reports ``--steps`` times and saves no checkpoint, with
  ``num_samples`` equal to the trials, the same concurrency and 1 logical CPU per trial.

The wall time runs from submitting the search (or calling ``Tuner.fit``) to
its end; starting Ray is timed separately. The overhead per trial is the wall
time times the concurrency divided by the trials: the slot-seconds each
trial held, since the no-op workload itself takes well under a millisecond.
Ratios compare each row with the local executor.

Usage::

    python benchmarks/bench_executors.py [--trials 200] [--steps 3] [--skip-tune]
"""

from __future__ import annotations

# Heavy imports stay inside functions: with the forkserver start method,
# multiprocessing runs this script's top level again in the fork server.
import argparse
import contextlib
import io
import logging
import os
import platform
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Two nodes of two slots: the embedded local cluster, and the Ray node's custom resources.
CONCURRENCY = 4
NODES = ("eu-node-1", "us-node-1")
OBJECT_STORE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Result:
    system: str
    trials: int
    wall_s: float

    @property
    def trials_per_s(self) -> float:
        return self.trials / self.wall_s

    @property
    def overhead_ms(self) -> float:
        return 1000.0 * self.wall_s * CONCURRENCY / self.trials


def noop_spec(trials: int, steps: int) -> dict:
    return {
        "name": "executors",
        "team": "bench",
        "description": "No-op trials to compare executors.",
        "objective": {"metric": "objective", "direction": "minimize"},
        "space": {"value": {"type": "float", "low": 0.0, "high": 1.0}},
        "strategy": {"name": "random", "seed": 0},
        "budget": {"max_trials": trials, "max_concurrent_trials": CONCURRENCY, "max_steps": steps},
        "entrypoint": "noop",
    }


def run_neurfly(executor: str, trials: int, steps: int, workdir: Path) -> Result:
    import yaml
    from rich.console import Console

    from neurfly.cli.runner import drive
    from neurfly.service import find_search, load_cluster, load_spec, search_summary, submit_search
    from neurfly.store import Store

    folder = workdir / executor
    folder.mkdir()
    spec_file = folder / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(noop_spec(trials, steps), sort_keys=False))
    cluster = load_cluster(None).model_copy(update={"executor": executor})
    store = Store.open(f"sqlite:///{folder / 'neurfly.db'}")
    spec, document, _ = load_spec(spec_file, cluster)

    started = time.perf_counter()
    submission = submit_search(store, spec, document)
    drive(store, cluster, [submission.search_id], Console(file=io.StringIO()), live_display=False,
          checkpoint_root=str(folder / "checkpoints"))
    wall = time.perf_counter() - started

    summary = search_summary(store, find_search(store, submission.search_id))
    store.dispose()
    completed = summary["trials"].get("completed", 0)
    if completed != trials:
        raise RuntimeError(f"NeurFly with the {executor} executor completed {completed} of {trials} trials ({summary['trials']})")
    return Result(f"NeurFly, {executor} executor", trials, wall)


def start_ray(temp_dir: Path) -> float:
    """Start a one-node Ray instance on 127.0.0.1 that carries both NeurFly nodes; returns seconds taken."""
    # Ray on Linux binds its servers to the machine's outward address unless this is "0".
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # A token for this run only; without one, ray.init creates ~/.ray/auth_token.
    if "RAY_AUTH_TOKEN" not in os.environ and "RAY_AUTH_TOKEN_PATH" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    import ray

    started = time.perf_counter()
    ray.init(
        num_cpus=CONCURRENCY,
        resources={f"neurfly_node_{node}": 2 for node in NODES},
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(temp_dir),
        logging_level=logging.WARNING,
    )
    return time.perf_counter() - started


def run_tune(trials: int, steps: int, workdir: Path) -> Result:
    from ray import tune

    def trainable(config: dict) -> None:
        for _ in range(steps):
            tune.report({"objective": config["value"]})

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"value": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=CONCURRENCY, metric="objective", mode="min"),
        run_config=tune.RunConfig(storage_path=str(workdir / "tune"), name="executors", verbose=0),
    )
    started = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - started

    completed = sum(1 for result in results if result.error is None)
    if completed != trials:
        raise RuntimeError(f"Ray Tune completed {completed} of {trials} trials")
    return Result("Ray Tune alone (function trainable)", trials, wall)


def machine() -> str:
    import ray

    import neurfly

    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"NeurFly {neurfly.__version__}, Ray {ray.__version__}"
    )


def table(results: list[Result]) -> str:
    local = results[0]
    lines = [
        "| system | trials | wall time (s) | trials/s | overhead per trial (slot-ms) | wall time / local |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.system} | {result.trials} | {result.wall_s:.2f} | {result.trials_per_s:.2f} | "
            f"{result.overhead_ms:.0f} | {result.wall_s / local.wall_s:.2f}x |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="no-op trials per system (default: 200)")
    parser.add_argument("--steps", type=int, default=3, help="reports (and NeurFly checkpoints) per trial (default: 3)")
    parser.add_argument("--skip-tune", action="store_true", help="leave out the Ray Tune row")
    args = parser.parse_args()
    if args.trials < CONCURRENCY:
        parser.error(f"--trials ({args.trials}) must be at least {CONCURRENCY}")
    if args.steps < 1:
        parser.error(f"--steps must be 1 or more, got {args.steps}")
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="neurfly-executors-") as temporary:
        workdir = Path(temporary)
        os.environ["NEURFLY_HOME"] = str(workdir / "home")
        os.environ.pop("NEURFLY_DATABASE_URL", None)

        # Ray Tune prints its progress to stdout; stdout keeps only the report below.
        with contextlib.redirect_stdout(sys.stderr):
            results = [run_neurfly("local", args.trials, args.steps, workdir)]
            ray_start_s = start_ray(workdir / "ray-temp")
            results.append(run_neurfly("ray", args.trials, args.steps, workdir))
            if not args.skip_tune:
                results.append(run_tune(args.trials, args.steps, workdir))
            about = machine()

            import ray

            ray.shutdown()

    print(f"Executors compared: {args.trials} no-op trials of {args.steps} steps each, {CONCURRENCY} at a time")
    print()
    print(f"Machine: {about}")
    print()
    print(table(results))
    print()
    print(f"Starting the one-node Ray instance took {ray_start_s:.1f} s (not in the rows above).")


if __name__ == "__main__":
    sys.exit(main())
