"""The Executor contract, checked on every registered executor with real workers.

Each executor runs three attempts of the no-op workload: one to its end, one
killed, one asked to stop. Every attempt reports its steps in order and ends
with exactly one Exited event of the expected outcome.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from neurfly.core.scheduling.snapshot import Node
from neurfly.core.states import StopRequest
from neurfly.executors import Executor, executors
from neurfly.executors.protocol import Exited, LaunchSpec, Outcome, Report

pytestmark = pytest.mark.slow

NODES = (Node("head", "head-pool", 2),)


@pytest.fixture(params=executors.names())
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    name = request.param
    if name == "ray":
        head = request.getfixturevalue("ray_head")
        request.getfixturevalue("ray_driver")
        instance = executors.get(name)(address=head.address)
    else:
        instance = executors.get(name)()
    try:
        yield instance
    finally:
        instance.shutdown()


class _Events:
    """Every event an executor reported, by attempt, gathered over many polls."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.by_attempt: dict[int, list] = defaultdict(list)

    def poll_until(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s; events: {dict(self.by_attempt)}")
            for event in self.executor.poll(0.05):
                self.by_attempt[event.attempt_id].append(event)

    def exits(self, attempt_id: int) -> list[Exited]:
        return [e for e in self.by_attempt[attempt_id] if isinstance(e, Exited)]

    def steps(self, attempt_id: int) -> list[int]:
        return [e.step for e in self.by_attempt[attempt_id] if isinstance(e, Report)]


def _launch(tmp_path: Path, attempt_id: int, **fixed: object) -> LaunchSpec:
    return LaunchSpec(
        attempt_id=attempt_id, trial_id=attempt_id, search_id=1, trial_number=attempt_id, entrypoint="noop",
        params={"x": 0.5}, fixed={"sleep_s": 0.05, **fixed}, max_steps=4, decision_steps=(), objective="objective",
        metrics=(), data={}, seed=1, checkpoint_root=str(tmp_path / "checkpoints"), node="head", slots=(0,),
    )


def test_attempts_end_once(executor: Executor, tmp_path: Path) -> None:
    executor.nodes(NODES)
    events = _Events(executor)

    executor.launch(_launch(tmp_path, 1))
    executor.launch(_launch(tmp_path, 2, sleep_s=5.0))
    executor.launch(_launch(tmp_path, 3, sleep_s=0.3))
    assert executor.active() == {1, 2, 3}
    events.poll_until(lambda: bool(events.steps(3)))
    executor.kill(2)
    executor.request_stop(3, StopRequest.PREEMPT)
    events.poll_until(lambda: not executor.active())

    for attempt_id in (1, 2, 3):
        assert len(events.exits(attempt_id)) == 1, events.by_attempt[attempt_id]
        assert isinstance(events.by_attempt[attempt_id][-1], Exited)
    assert events.exits(1)[0].outcome is Outcome.COMPLETED
    assert events.steps(1) == [1, 2, 3, 4]
    assert events.exits(2)[0].outcome is Outcome.KILLED
    assert events.exits(3)[0].outcome is Outcome.STOPPED
    assert events.steps(3) == list(range(1, len(events.steps(3)) + 1))
    assert len(events.steps(3)) < 4


def test_nodes_keep_configured_names(executor: Executor) -> None:
    seen = executor.nodes(NODES)

    if seen is not None:
        assert [(n.name, n.pool) for n in seen] == [("head", "head-pool")]
        assert seen[0].schedulable


def test_user_error_reported(executor: Executor, tmp_path: Path) -> None:
    executor.nodes(NODES)
    events = _Events(executor)

    executor.launch(_launch(tmp_path, 7, fail_at=2))
    events.poll_until(lambda: not executor.active())

    exited = events.exits(7)
    assert len(exited) == 1
    assert exited[0].outcome is Outcome.ERROR
    assert exited[0].error_kind == "user"
    assert "fail_at" in exited[0].message
    assert events.steps(7) == [1]

