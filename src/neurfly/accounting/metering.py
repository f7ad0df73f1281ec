"""Metering: device-seconds and wasted progress of attempts, from their records alone.

This module is pure: it takes attempt records and returns values, with no
clock and no store. The rules, also stated in ``docs/costs.md``:

* An attempt holds ``devices`` devices of its pool from ``started_at`` (its
  placement, when the controller reserved the devices) to ``ended_at`` (when
  its worker exited and the devices were freed). An attempt that is still
  open is metered up to ``now``.
* Each attempt is billed for its own lifetime and nothing else. A trial that
  waits between attempts (preempted, paused, queued after a failure) is not
  billed for the wait. Where two records of one trial overlap, which the
  controller never writes, the later one is billed only from the earlier
  one's end, so no device-second is billed twice.
* Only the part of a lifetime inside the report window ``[since, until)`` is
  counted, so a lifetime that spans two months is split between them.
* Wasted progress: an attempt that ended with ``progress_lost`` steps done
  since its last checkpoint wasted ``devices * progress_lost *
  seconds_per_step`` device-seconds, at most its whole lifetime.
  ``seconds_per_step`` is the time from placement to the last report,
  divided by the steps the attempt reported (``end_step - start_step``); an
  attempt that reported no step has wasted nothing by this rule. Waste is a
  part of the billed lifetime shown apart, never billed on top, and it
  belongs to the window that contains the attempt's end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from neurfly.accounting.money import to_decimal
from neurfly.core.states import AttemptState

UNKNOWN = "unknown"

_ZERO = Decimal(0)


class WasteReason(str, Enum):
    """Reason that an attempt's progress since its last checkpoint was thrown away."""

    PREEMPTION = "preemption"
    BUDGET_STOP = "budget-stop"
    FAILURE = "failure"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """The fields of one attempt row that metering reads.

    Attributes:
        attempt_id: Attempt id.
        trial_id: Trial id; attempts of one trial are never billed twice for the same second.
        search_id: Search id.
        team: Team that owns the search.
        priority: Priority class of the search.
        pool: Pool of the placement.
        devices: Devices the placement reserved.
        started_at: Placement time, seconds since the epoch.
        ended_at: Time the devices were freed; ``None`` while the attempt runs.
        state: The attempt's state.
        start_step: Step the attempt resumed from.
        end_step: Last step the attempt reported, if any.
        last_report_at: Time of the last report, if any.
        progress_lost: Steps since the last checkpoint that the end threw away.
        search_name: Search name, for reports.
        max_steps: The search's ``budget.max_steps``, for forecasts.
    """

    attempt_id: int
    trial_id: int
    search_id: int
    team: str
    priority: str
    pool: str
    devices: int
    started_at: float
    ended_at: float | None
    state: AttemptState = AttemptState.RUNNING
    start_step: int = 0
    end_step: int | None = None
    last_report_at: float | None = None
    progress_lost: int = 0
    search_name: str = ""
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.devices < 0:
            raise ValueError(f"attempt {self.attempt_id}: devices must be 0 or more, got {self.devices}")
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError(
                f"attempt {self.attempt_id}: ended_at {self.ended_at} is before started_at {self.started_at}"
            )

    @property
    def running(self) -> bool:
        return self.ended_at is None

    @property
    def steps_reported(self) -> int:
        """Steps this attempt reported beyond the step it resumed from."""
        if self.end_step is None:
            return 0
        return max(0, self.end_step - self.start_step)


@dataclass(frozen=True, slots=True)
class Cause:
    """Cause of an attempt's wasted progress.

    ``team`` and ``priority`` name the request that caused a preemption, or
    ``unknown`` where no request is recorded (a failure, a cancel, a stop
    requested by hand or by a controller that was shutting down).
    """

    reason: WasteReason
    team: str = UNKNOWN
    priority: str = UNKNOWN


@dataclass(frozen=True, slots=True)
class MeteredAttempt:
    """One attempt's metered share of a window.

    Attributes:
        record: The attempt.
        start: Start of the billed part inside the window.
        end: End of the billed part inside the window (``start`` when none).
        device_seconds: ``devices * (end - start)``.
        running: The attempt had not ended at the time of metering.
        waste_device_seconds: Wasted device-seconds, when the attempt ended inside the window.
        cause: Why the waste happened; ``None`` when there is no waste in the window.
    """

    record: AttemptRecord
    start: float
    end: float
    device_seconds: Decimal
    running: bool
    waste_device_seconds: Decimal = _ZERO
    cause: Cause | None = None


def lifetime_end(record: AttemptRecord, now: float) -> float:
    """Return when ``record``'s devices were freed, or ``now`` (not before its start) while it runs."""
    if record.ended_at is not None:
        return record.ended_at
    return max(record.started_at, now)


def seconds_per_step(record: AttemptRecord, now: float) -> Decimal | None:
    """Return the attempt's seconds per reported step, or ``None`` when it reported no step.

    The time runs from placement to the last report (to ``now``, or the end,
    when no report time is recorded), so start-up time is spread over the
    steps the attempt reported.
    """
    steps = record.steps_reported
    if steps <= 0:
        return None
    until = record.last_report_at if record.last_report_at is not None else lifetime_end(record, now)
    span = to_decimal(max(until, record.started_at)) - to_decimal(record.started_at)
    return span / steps


def wasted_device_seconds(record: AttemptRecord) -> Decimal:
    """Return the device-seconds of progress that ``record``'s end threw away (see the module rules).

    Raises:
        ValueError: The attempt is still running.
    """
    if record.ended_at is None:
        raise ValueError(f"attempt {record.attempt_id} is still running; only an ended attempt has wasted progress")
    if record.progress_lost <= 0:
        return _ZERO
    per_step = seconds_per_step(record, record.ended_at)
    if per_step is None:
        return _ZERO

    lifetime = to_decimal(record.ended_at) - to_decimal(record.started_at)
    return record.devices * min(per_step * record.progress_lost, lifetime)


def default_cause(record: AttemptRecord) -> Cause:
    """Return the cause that ``record``'s state implies when no event names a better one."""
    if record.state is AttemptState.PREEMPTED:
        return Cause(WasteReason.PREEMPTION)
    if record.state is AttemptState.KILLED:
        return Cause(WasteReason.CANCEL)
    return Cause(WasteReason.FAILURE)


def meter(
    records: Iterable[AttemptRecord],
    since: float,
    until: float,
    now: float,
    causes: Mapping[int, Cause] | None = None,
) -> list[MeteredAttempt]:
    """Meter every attempt's device-seconds inside ``[since, until)``, and its waste.

    Args:
        records: Attempts; any order, any window.
        since: Start of the window, seconds since the epoch.
        until: End of the window (exclusive); values after ``now`` are cut to ``now``.
        now: Time of metering; open attempts are metered up to it.
        causes: Cause of each preempted attempt's waste, by attempt id;
            attempts without one get ``default_cause``.

    Returns:
        One entry per record that overlaps the window or ended inside it,
        ordered by attempt id.

    Raises:
        ValueError: ``until`` is before ``since``.
    """
    if until < since:
        raise ValueError(f"the window ends ({until}) before it starts ({since}); pass until >= since")
    causes = causes or {}
    end_of_window = min(until, now)

    metered = []
    for record, billed_from in _billed_starts(records, now):
        metered_attempt = _meter_one(record, billed_from, since, end_of_window, now, causes)
        if metered_attempt is not None:
            metered.append(metered_attempt)
    metered.sort(key=lambda m: m.record.attempt_id)
    return metered


def _billed_starts(records: Iterable[AttemptRecord], now: float) -> list[tuple[AttemptRecord, float]]:
    """Pair each record with the time its billing starts, after the end of earlier attempts of its trial."""
    by_trial: dict[int, list[AttemptRecord]] = {}
    for record in records:
        by_trial.setdefault(record.trial_id, []).append(record)

    pairs = []
    for attempts in by_trial.values():
        attempts.sort(key=lambda r: (r.started_at, r.attempt_id))
        covered_until = float("-inf")
        for record in attempts:
            pairs.append((record, max(record.started_at, covered_until)))
            covered_until = max(covered_until, lifetime_end(record, now))
    return pairs


def _meter_one(
    record: AttemptRecord, billed_from: float, since: float, end_of_window: float, now: float, causes: Mapping[int, Cause]
) -> MeteredAttempt | None:
    end = lifetime_end(record, now)
    start = max(billed_from, since)
    stop = min(end, end_of_window)
    overlaps = stop > start
    ends_inside = record.ended_at is not None and since <= record.ended_at < end_of_window
    if not overlaps and not ends_inside:
        return None

    device_seconds = record.devices * (to_decimal(stop) - to_decimal(start)) if overlaps else _ZERO
    waste = wasted_device_seconds(record) if ends_inside else _ZERO
    cause = causes.get(record.attempt_id, default_cause(record)) if waste > 0 else None
    return MeteredAttempt(
        record=record,
        start=start if overlaps else end,
        end=stop if overlaps else end,
        device_seconds=device_seconds,
        running=record.ended_at is None or record.ended_at > now,
        waste_device_seconds=waste,
        cause=cause,
    )


__all__ = [
    "UNKNOWN",
    "AttemptRecord",
    "Cause",
    "MeteredAttempt",
    "WasteReason",
    "default_cause",
    "lifetime_end",
    "meter",
    "seconds_per_step",
    "wasted_device_seconds",
]
