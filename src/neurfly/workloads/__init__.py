"""Built-in workloads (entry-point group ``neurfly.workloads``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from neurfly.registry import Registry


class Workload(ABC):
    """Training code shipped with NeurFly, run inside a trial's worker.

    Contract:
        * ``run`` trains through the ``neurfly.trial`` SDK: it resumes from
          ``trial.load_checkpoint()``, saves a checkpoint before each report,
          reports steps 1..max_steps, and returns once ``trial.should_stop()``.
        * ``metrics`` names every metric it reports by default; the spec's
          objective must be one of them or of the metrics the spec adds.
        * ``default_dataset`` is used when the spec names none.
        * A resumed run ends with the same metrics as an uninterrupted one.
    """

    name: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    default_dataset: ClassVar[str | None] = None

    @abstractmethod
    def run(self) -> None:
        """Train, reporting through ``neurfly.trial``."""


workloads: Registry[Workload] = Registry("neurfly.workloads", "workload")


def workload_metrics() -> dict[str, frozenset[str]]:
    """Each registered workload's name and the metrics it reports."""
    return {name: frozenset(workloads.get(name).metrics) for name in workloads.names()}


__all__ = ["Workload", "workload_metrics", "workloads"]
