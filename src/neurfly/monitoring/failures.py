"""Failure classification: what class of problem ended an attempt, and why we think so.

``classify_failure`` is a pure function of what the store and the last
resource samples record about an attempt. The monitoring service turns its
result into an ``attempt_failures`` row with an owner and a failure alert.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from neurfly.core.detectors import ResourceSample
from neurfly.core.states import AttemptState, FailureKind

# Exceptions raised while loading the entrypoint or its parameters: the spec is wrong, not the code.
CONFIGURATION_ERRORS = frozenset({"ModuleNotFoundError", "ImportError", "SpecError"})
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): ")
_SIGNAL = re.compile(r"killed by signal (\d+)")


class FailureCategory(str, Enum):
    """The class of a failed attempt; each maps to a responsibility category of the same name."""

    USER_CODE = "user_code"
    CONFIGURATION = "configuration"
    DATA = "data"
    INFRASTRUCTURE = "infrastructure"


@dataclass(frozen=True)
class FailureFacts:
    """Facts about a failed attempt, as known when it is classified.

    Attributes:
        state: The attempt's final state (``failed`` or ``lost``).
        failure_kind: ``attempts.failure_kind`` as the controller set it.
        reason: ``attempts.reason``: the error message or how the process ended.
        traceback: The trial's traceback, when it raised.
        last_sample: The attempt's last resource sample, if any was taken.
        memory_fraction: Memory use, as a fraction of the limit, that counts as near the limit.
        oom_kills: Kernel out-of-memory kills in the worker's cgroup during the attempt, if readable.
        io_stalled: The resource detector found the attempt's I/O stalled.
        dataset: The search's dataset, if it names one.
    """

    state: str
    failure_kind: str | None
    reason: str | None
    traceback: str | None = None
    last_sample: ResourceSample | None = None
    memory_fraction: float = 0.9
    oom_kills: int | None = None
    io_stalled: bool = False
    dataset: str | None = None


@dataclass(frozen=True)
class FailureClass:
    category: FailureCategory
    cause: str
    evidence: dict[str, Any] = field(default_factory=dict)


def classify_failure(facts: FailureFacts) -> FailureClass:
    """Classify a failed or lost attempt by who must act on it.

    * ``data``: the trial raised ``DataError``.
    * ``infrastructure``: a lost worker, a worker killed by a signal or
      exiting without a result, or a launch or executor error. A kill for
      memory counts here too: SIGKILL with the worker near its memory limit,
      or a kernel OOM kill during the attempt. So does a report timeout
      while the attempt's I/O stalled.
    * ``configuration``: the entrypoint could not be imported, or the trial
      never reported the objective metric named in the spec.
    * ``user_code``: any other exception, or a report timeout.
    """
    evidence = {"failure_kind": facts.failure_kind, "reason": facts.reason, "state": facts.state}
    evidence.update(_memory_evidence(facts))

    if facts.failure_kind == FailureKind.DATA.value:
        return FailureClass(FailureCategory.DATA, "data_error", {**evidence, "dataset": facts.dataset, "exception": _exception(facts.reason)})
    if facts.state == AttemptState.LOST.value or facts.failure_kind == FailureKind.INFRASTRUCTURE.value:
        return FailureClass(FailureCategory.INFRASTRUCTURE, _infrastructure_cause(facts), evidence)
    if facts.failure_kind == FailureKind.TIMEOUT.value:
        if facts.io_stalled:
            return FailureClass(FailureCategory.INFRASTRUCTURE, "io_stalled", evidence)
        return FailureClass(FailureCategory.USER_CODE, "report_timeout", evidence)
    return _user_failure(facts, evidence)


def _infrastructure_cause(facts: FailureFacts) -> str:
    reason = facts.reason or ""
    number = _signal_number(reason)
    if number == signal.SIGKILL and (facts.oom_kills or _near_limit(facts)):
        return "out_of_memory"
    if facts.state == AttemptState.LOST.value or "lost its controller" in reason:
        return "worker_lost"
    if reason.startswith("launch failed"):
        return "launch_failed"
    if number is not None:
        return f"killed_by_{signal.Signals(number).name}" if number in _SIGNAL_NUMBERS else f"killed_by_signal_{number}"
    if "exited with status" in reason:
        return "worker_exited"
    return "executor_error"


_SIGNAL_NUMBERS = {int(s) for s in signal.Signals}


def _user_failure(facts: FailureFacts, evidence: dict[str, Any]) -> FailureClass:
    reason = facts.reason or ""
    exception = _exception(reason)
    evidence = {**evidence, "exception": exception}
    if "without reporting the objective metric" in reason:
        return FailureClass(FailureCategory.CONFIGURATION, "objective_not_reported", evidence)
    if exception in CONFIGURATION_ERRORS:
        return FailureClass(FailureCategory.CONFIGURATION, "entrypoint_import", evidence)
    return FailureClass(FailureCategory.USER_CODE, f"exception:{exception}" if exception else "error", evidence)


def _memory_evidence(facts: FailureFacts) -> dict[str, Any]:
    evidence: dict[str, Any] = {}
    sample = facts.last_sample
    if sample is not None:
        evidence["last_memory_bytes"] = sample.memory_bytes
        evidence["memory_limit_bytes"] = sample.memory_limit_bytes
        evidence["last_sample_at"] = sample.at
    if facts.oom_kills is not None:
        evidence["oom_kills"] = facts.oom_kills
    return evidence


def _near_limit(facts: FailureFacts) -> bool:
    sample = facts.last_sample
    if sample is None or not sample.memory_limit_bytes:
        return False
    return sample.memory_bytes >= facts.memory_fraction * sample.memory_limit_bytes


def _signal_number(reason: str) -> int | None:
    match = _SIGNAL.search(reason)
    return int(match.group(1)) if match else None


def _exception(reason: str | None) -> str | None:
    match = _EXCEPTION.match(reason or "")
    return match.group(1).rsplit(".", 1)[-1] if match else None


__all__ = ["CONFIGURATION_ERRORS", "FailureCategory", "FailureClass", "FailureFacts", "classify_failure"]
