"""Results of one simulation: per-job records and the cluster's state over time."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class JobOutcome(str, Enum):
    """Final state of a trace job in the simulation."""

    COMPLETED = "completed"
    REJECTED = "rejected"
    UNFINISHED = "unfinished"


@dataclass(slots=True)
class JobRecord:
    """One job's life in the simulation. Times are seconds after the trace's first arrival.

    Attributes:
        trial_id: Trial id the policy saw.
        job_id: The trace's job id.
        team: Owning team.
        priority: Priority class name.
        devices: Devices needed at once.
        duration: Seconds of work without interruptions.
        arrival: Submission time.
        first_start: Start of the first attempt, or ``None`` if it never started.
        completion: End of the attempt that finished the work, or ``None``.
        wait_s: Seconds spent pending, over every wait (first and after preemptions).
        preemptions: Attempts that ended by preemption.
        lost_work_s: Seconds of work thrown away by preemptions (since the last checkpoint).
        outcome: Completed, rejected, or unfinished when the simulation ended.
        reason: The policy's reason for a rejection.
    """

    trial_id: int
    job_id: str
    team: str
    priority: str
    devices: int
    duration: float
    arrival: float
    first_start: float | None = None
    completion: float | None = None
    wait_s: float = 0.0
    preemptions: int = 0
    lost_work_s: float = 0.0
    outcome: JobOutcome = JobOutcome.UNFINISHED
    reason: str = ""

    @property
    def completion_time(self) -> float | None:
        """Job completion time (JCT): seconds from arrival to completion, or ``None``."""
        return None if self.completion is None else self.completion - self.arrival


@dataclass(slots=True)
class StepSeries:
    """A value that changes at discrete times and stays constant in between.

    ``values[i]`` is in force from ``times[i]`` until ``times[i + 1]`` (or the end).
    """

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def record(self, time: float, value: float) -> None:
        """Set the value from ``time`` on; a second record at the same time replaces the first."""
        if self.values and self.values[-1] == value:
            return
        if self.times and self.times[-1] == time:
            self.values[-1] = value
            if len(self.values) > 1 and self.values[-2] == value:
                self.times.pop()
                self.values.pop()
            return
        self.times.append(time)
        self.values.append(value)


@dataclass(slots=True)
class SimulationResult:
    """Everything the report needs from one policy's run.

    Attributes:
        policy: Registered name of the policy.
        jobs: One record per trace job, in trace order.
        capacity: Devices on schedulable nodes.
        end: Time of the last event.
        devices_held: Devices held by attempts (running or yielding) over time.
        devices_held_by_team: Devices held per team over time.
        demand_by_team: Devices per team that pending trials could use, over time; trials of a
            search at its ``max_concurrent`` limit do not count.
        preempt_requests: Preempt decisions applied (an attempt that finishes within its grace period counts here only).
        reservations: Reserve decisions applied.
        schedule_calls: Calls of the policy's ``schedule``.
        events: Arrivals, completions and preemption exits processed.
        wall_s: Wall-clock seconds the run took.
        policy_wall_s: Wall-clock seconds spent inside ``schedule``.
    """

    policy: str
    jobs: list[JobRecord]
    capacity: int
    end: float
    devices_held: StepSeries
    devices_held_by_team: dict[str, StepSeries]
    demand_by_team: dict[str, StepSeries]
    preempt_requests: int = 0
    reservations: int = 0
    schedule_calls: int = 0
    events: int = 0
    wall_s: float = 0.0
    policy_wall_s: float = 0.0


__all__ = ["JobOutcome", "JobRecord", "SimulationResult", "StepSeries"]
