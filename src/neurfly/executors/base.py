"""The executor extension point: carries out the controller's decisions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from neurfly.core.scheduling.snapshot import Node
from neurfly.core.states import StepDecision, StopRequest
from neurfly.executors.protocol import ExecutorEvent, LaunchSpec
from neurfly.registry import Registry


class Executor(ABC):
    """Runs attempts; contains no scheduling logic.

    Contract:
        * ``launch`` starts the attempt on the node and slots the policy chose
          and returns at once; it raises only if the attempt could not start.
        * ``poll`` returns the events of every attempt in the order each
          attempt produced them. Each launched attempt ends with exactly one
          ``Exited`` event, also when it crashes or is killed.
        * ``request_stop`` asks an attempt to yield at its next
          ``should_stop()``; ``kill`` ends it at once.
        * ``active`` lists attempts launched and not yet reported as exited.
        * After ``shutdown`` no attempt of this executor runs any more.
        * ``nodes`` may return the cluster file's nodes as the executor sees
          them (schedulable or not, device count); ``None`` keeps the file's view.
    """

    name: ClassVar[str] = ""

    @abstractmethod
    def launch(self, spec: LaunchSpec) -> int | None:
        """Start an attempt; returns the worker's process id where there is one."""

    @abstractmethod
    def poll(self, timeout: float) -> list[ExecutorEvent]:
        """Wait up to ``timeout`` seconds for events and return them."""

    @abstractmethod
    def decide(self, attempt_id: int, step: int, decision: StepDecision) -> None:
        """Send the strategy's decision for a report at a decision step."""

    @abstractmethod
    def request_stop(self, attempt_id: int, reason: StopRequest) -> None:
        """Ask the attempt to save its state and return."""

    @abstractmethod
    def kill(self, attempt_id: int) -> None:
        """End the attempt now; its ``Exited`` event follows in ``poll``."""

    @abstractmethod
    def active(self) -> set[int]:
        """Attempt ids this executor runs."""

    @abstractmethod
    def shutdown(self) -> None:
        """Kill every attempt and release resources."""

    def nodes(self, configured: Sequence[Node]) -> list[Node] | None:
        """Return ``configured`` with liveness and capacity as this executor sees them, or ``None``."""
        return None


executors: Registry[Executor] = Registry("neurfly.executors", "executor")
