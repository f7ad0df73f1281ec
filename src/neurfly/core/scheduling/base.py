"""The scheduling policy extension point."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from neurfly.core.scheduling.snapshot import Decision, Snapshot
from neurfly.registry import Registry


class SchedulingPolicy(ABC):
    """Decides which pending trial runs where, and what to preempt.

    Contract:
        * ``schedule`` is a pure function of the snapshot: no I/O, no clock,
          no randomness, nothing carried between calls that changes a
          decision (a cache of work on identical input is allowed). The live controller
          and the trace simulator call the same method, so what a benchmark
          measures is what production runs.
        * Equal snapshots give equal decisions, in the same order.
        * A ``Start`` places a trial on free slots of one node only (gang
          placement), on a pool of the trial's hardware type, inside its
          allowed regions and pools, and never on slots reserved for another
          trial.
        * A ``Reject`` is for requests no node could ever hold; such a trial
          never causes a preemption.
        * Decisions are applied in list order by the caller.
    """

    name: ClassVar[str] = ""

    @abstractmethod
    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        """Return the decisions for this snapshot."""


policies: Registry[SchedulingPolicy] = Registry("neurfly.policies", "scheduling policy")
