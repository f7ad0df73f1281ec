"""Helpers for tests: spec documents, CLI subprocesses and waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NEURFLY = [sys.executable, "-m", "neurfly"]


def make_spec(**overrides: Any) -> dict[str, Any]:
    """A small no-op search spec; keyword arguments replace top-level fields."""
    spec: dict[str, Any] = {
        "name": "probe",
        "team": "team-a",
        "objective": {"metric": "objective", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "strategy": {"name": "random", "seed": 1},
        "budget": {"max_trials": 4, "max_concurrent_trials": 2, "max_steps": 2},
        "entrypoint": "noop",
        "fixed": {"sleep_s": 0.05},
    }
    spec.update(overrides)
    return spec


def cli_env(home: Path, extra_path: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, NEURFLY_HOME=str(home), COLUMNS="200")
    env.pop("NEURFLY_DATABASE_URL", None)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH", "")]))
    return env


def run_cli(home: Path, *args: str, timeout: float = 120, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NEURFLY, *args], env=cli_env(home, extra_path), capture_output=True, text=True, timeout=timeout, check=False
    )


def start_cli(home: Path, *args: str, extra_path: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*NEURFLY, *args], env=cli_env(home, extra_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill_hard(process: subprocess.Popen[str]) -> None:
    """SIGKILL a CLI process and reap it, as a crash would end it."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
