"""Messages between a trial's worker and the controller, and the launch request."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a worker needs to run one attempt of a trial.

    Attributes:
        entrypoint: A built-in workload name or ``module:function``.
        decision_steps: Steps at which the worker waits for the strategy's decision.
        checkpoint_in: URI and digest of the checkpoint to resume from, if any.
        checkpoint_root: Where new checkpoints go (a folder or fsspec URL).
        env: Environment variables for the worker (device pinning from the hardware backend).
    """

    attempt_id: int
    trial_id: int
    search_id: int
    trial_number: int
    entrypoint: str
    params: dict[str, Any]
    fixed: dict[str, Any]
    max_steps: int
    decision_steps: tuple[int, ...]
    objective: str
    metrics: tuple[str, ...]
    data: dict[str, Any]
    seed: int
    checkpoint_root: str
    checkpoint_in: tuple[str, str] | None = None
    start_step: int = 0
    env: dict[str, str] = field(default_factory=dict)
    node: str = ""
    slots: tuple[int, ...] = ()
    # The hardware kind of the attempt's pool, so the executor reads the right devices' load.
    hardware: str = "cpu"


class MessageKind(str, Enum):
    REPORT = "report"
    CHECKPOINT = "checkpoint"
    DATA = "data"
    DONE = "done"
    ERROR = "error"
    # controller -> worker
    LAUNCH = "launch"
    DECISION = "decision"
    STOP = "stop"


class Outcome(str, Enum):
    """How an attempt's process ended, as its executor saw it."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    ERROR = "error"
    CRASHED = "crashed"
    KILLED = "killed"


@dataclass(frozen=True)
class Report:
    attempt_id: int
    step: int
    metrics: dict[str, float]
    at: float


@dataclass(frozen=True)
class CheckpointSaved:
    attempt_id: int
    step: int
    uri: str
    digest: str
    size_bytes: int
    at: float


@dataclass(frozen=True)
class DataRecorded:
    attempt_id: int
    versions: dict[str, Any]
    at: float


@dataclass(frozen=True)
class Exited:
    """The attempt's process is gone.

    ``error_kind`` is a ``FailureKind`` value when ``outcome`` is ERROR or CRASHED.
    """

    attempt_id: int
    outcome: Outcome
    at: float
    exitcode: int | None = None
    error_kind: str | None = None
    message: str | None = None
    traceback: str | None = None


ExecutorEvent = Report | CheckpointSaved | DataRecorded | Exited


def event_from_message(attempt_id: int, message: tuple) -> ExecutorEvent:
    """Turn a message a worker sent (see ``neurfly.trial`` and the worker) into an executor event."""
    kind = MessageKind(message[0])
    if kind is MessageKind.REPORT:
        return Report(attempt_id, message[1], message[2], message[3])
    if kind is MessageKind.CHECKPOINT:
        return CheckpointSaved(attempt_id, message[1], message[2], message[3], message[4], message[5])
    if kind is MessageKind.DATA:
        return DataRecorded(attempt_id, message[1], message[2])
    if kind is MessageKind.DONE:
        return Exited(attempt_id, Outcome(message[1]), message[2], exitcode=0)
    return Exited(attempt_id, Outcome.ERROR, message[4], error_kind=message[1], message=message[2], traceback=message[3])
