"""States of trials and attempts, and why an attempt ended."""

from __future__ import annotations

from enum import Enum


class SearchState(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self is not SearchState.RUNNING


class TrialState(str, Enum):
    """pending -> starting -> running -> {completed, failed, pruned, stopped};
    running -> preempting -> pending; running -> paused -> pending."""

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    PREEMPTING = "preempting"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    PRUNED = "pruned"
    STOPPED = "stopped"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_TRIAL_STATES

    @property
    def is_active(self) -> bool:
        """Holds or is about to hold devices."""
        return self in (TrialState.STARTING, TrialState.RUNNING, TrialState.PREEMPTING)


_FINAL_TRIAL_STATES = frozenset({TrialState.COMPLETED, TrialState.FAILED, TrialState.PRUNED, TrialState.STOPPED})


class AttemptState(str, Enum):
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    PAUSED = "paused"
    PREEMPTED = "preempted"
    PRUNED = "pruned"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"

    @property
    def is_final(self) -> bool:
        return self not in (AttemptState.STARTING, AttemptState.RUNNING)


class StopRequest(str, Enum):
    """Reason the controller requests that a running trial stop at its next check."""

    PAUSE = "pause"
    PRUNE = "prune"
    PREEMPT = "preempt"
    CANCEL = "cancel"


class StepDecision(str, Enum):
    """A strategy's decision on a report at one of a trial's decision steps."""

    CONTINUE = "continue"
    PAUSE = "pause"
    PRUNE = "prune"


class FailureKind(str, Enum):
    """Owner of a failed attempt: the search's code, its data, or the platform."""

    USER = "user"
    DATA = "data"
    INFRASTRUCTURE = "infrastructure"
    TIMEOUT = "timeout"
