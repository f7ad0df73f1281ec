"""Metering as a pure function over attempt records with chosen times."""

from __future__ import annotations

from decimal import Decimal

import pytest

from neurfly.accounting.metering import AttemptRecord, Cause, WasteReason, meter, seconds_per_step, wasted_device_seconds
from neurfly.core.states import AttemptState

T0 = 1_800_000_000.0
MINUTE = 60.0
HOUR = 3600.0


def _attempt(attempt_id: int, start: float, end: float | None, **fields) -> AttemptRecord:
    values = dict(
        attempt_id=attempt_id, trial_id=1, search_id=1, team="team-a", priority="search", pool="eu",
        devices=2, started_at=start, ended_at=end, state=AttemptState.COMPLETED,
    )
    values.update(fields)
    return AttemptRecord(**values)


def _preempted_then_resumed() -> list[AttemptRecord]:
    # 30 minutes, preempted after step 30 with its last checkpoint at step 20; an hour queued; 20 more minutes.
    first = _attempt(
        1, T0, T0 + 30 * MINUTE, state=AttemptState.PREEMPTED, start_step=0, end_step=30,
        last_report_at=T0 + 30 * MINUTE, progress_lost=10,
    )
    second = _attempt(2, T0 + 90 * MINUTE, T0 + 110 * MINUTE, start_step=20, end_step=40, last_report_at=T0 + 110 * MINUTE)
    return [first, second]


def test_resumed_trial_billed_for_fifty_minutes() -> None:
    metered = meter(_preempted_then_resumed(), T0 - HOUR, T0 + 3 * HOUR, T0 + 4 * HOUR)

    billed = sum(m.device_seconds for m in metered)

    assert billed == Decimal(2 * 50 * 60)
    assert [m.device_seconds for m in metered] == [Decimal(2 * 30 * 60), Decimal(2 * 20 * 60)]


def test_preempted_progress_metered_apart() -> None:
    causes = {1: Cause(WasteReason.PREEMPTION, "team-b", "production")}

    first, second = meter(_preempted_then_resumed(), T0 - HOUR, T0 + 3 * HOUR, T0 + 4 * HOUR, causes)

    # 30 steps in 30 minutes is a minute per step; 10 steps lost on 2 devices.
    assert first.waste_device_seconds == Decimal(2 * 10 * 60)
    assert first.cause == Cause(WasteReason.PREEMPTION, "team-b", "production")
    assert first.device_seconds == Decimal(2 * 30 * 60)
    assert second.waste_device_seconds == 0
    assert second.cause is None


def test_waste_without_event_has_unknown_cause() -> None:
    first, _ = meter(_preempted_then_resumed(), T0, T0 + 3 * HOUR, T0 + 3 * HOUR)

    assert first.cause == Cause(WasteReason.PREEMPTION, "unknown", "unknown")


def test_window_splits_lifetime() -> None:
    records = _preempted_then_resumed()

    before = meter(records, T0 - HOUR, T0 + 15 * MINUTE, T0 + 4 * HOUR)
    after = meter(records, T0 + 15 * MINUTE, T0 + 4 * HOUR, T0 + 4 * HOUR)

    assert sum(m.device_seconds for m in before) == Decimal(2 * 15 * 60)
    assert sum(m.device_seconds for m in after) == Decimal(2 * 35 * 60)
    assert all(m.waste_device_seconds == 0 for m in before)
    assert sum(m.waste_device_seconds for m in after) == Decimal(2 * 10 * 60)


def test_gap_between_attempts_not_billed() -> None:
    records = _preempted_then_resumed()

    gap = meter(records, T0 + 31 * MINUTE, T0 + 89 * MINUTE, T0 + 4 * HOUR)

    assert gap == []


def test_running_attempt_accrues_to_now() -> None:
    record = _attempt(1, T0, None, state=AttemptState.RUNNING)

    early = meter([record], T0, T0 + HOUR, T0 + 10 * MINUTE)
    later = meter([record], T0, T0 + HOUR, T0 + 25 * MINUTE)
    past_window = meter([record], T0, T0 + HOUR, T0 + 3 * HOUR)

    assert early[0].device_seconds == Decimal(2 * 10 * 60)
    assert early[0].running
    assert later[0].device_seconds == Decimal(2 * 25 * 60)
    assert past_window[0].device_seconds == Decimal(2 * 60 * 60)


def test_lost_attempt_ends_at_last_report() -> None:
    # A controller restart records a lost attempt's end at its last report, 12 minutes in.
    lost = _attempt(1, T0, T0 + 12 * MINUTE, state=AttemptState.LOST, last_report_at=T0 + 12 * MINUTE, end_step=12)
    resumed = _attempt(2, T0 + 20 * MINUTE, T0 + 30 * MINUTE, start_step=10, end_step=20)

    metered = meter([lost, resumed], T0, T0 + HOUR, T0 + HOUR)

    assert sum(m.device_seconds for m in metered) == Decimal(2 * 22 * 60)


def test_overlapping_records_never_billed_twice() -> None:
    first = _attempt(1, T0, T0 + 30 * MINUTE, state=AttemptState.FAILED)
    overlapping = _attempt(2, T0 + 20 * MINUTE, T0 + 40 * MINUTE)
    other_trial = _attempt(3, T0 + 20 * MINUTE, T0 + 40 * MINUTE, trial_id=2)

    metered = {m.record.attempt_id: m for m in meter([overlapping, first, other_trial], T0, T0 + HOUR, T0 + HOUR)}

    assert metered[1].device_seconds == Decimal(2 * 30 * 60)
    assert metered[2].device_seconds == Decimal(2 * 10 * 60)
    assert metered[2].start == T0 + 30 * MINUTE
    assert metered[3].device_seconds == Decimal(2 * 20 * 60)


def test_waste_capped_at_lifetime() -> None:
    # Start-up took most of the time; 5 steps reported, 50 claimed lost.
    record = _attempt(1, T0, T0 + 10 * MINUTE, state=AttemptState.FAILED, start_step=0, end_step=5,
                      last_report_at=T0 + 10 * MINUTE, progress_lost=50)

    assert wasted_device_seconds(record) == Decimal(2 * 10 * 60)


def test_waste_zero_without_reported_steps() -> None:
    record = _attempt(1, T0, T0 + 10 * MINUTE, state=AttemptState.PREEMPTED, progress_lost=3)

    assert seconds_per_step(record, T0 + HOUR) is None
    assert wasted_device_seconds(record) == 0


def test_waste_uses_time_to_last_report() -> None:
    # 4 steps reported by minute 8; the stop took 2 more minutes, which do not slow the pace.
    record = _attempt(1, T0, T0 + 10 * MINUTE, state=AttemptState.PREEMPTED, start_step=0, end_step=4,
                      last_report_at=T0 + 8 * MINUTE, progress_lost=1)

    assert seconds_per_step(record, T0 + HOUR) == Decimal(120)
    assert wasted_device_seconds(record) == Decimal(2 * 120)


def test_waste_reason_follows_state() -> None:
    ended = dict(start_step=0, end_step=2, last_report_at=T0 + 2 * MINUTE, progress_lost=1)
    killed = _attempt(1, T0, T0 + 2 * MINUTE, state=AttemptState.KILLED, **ended)
    failed = _attempt(2, T0, T0 + 2 * MINUTE, state=AttemptState.FAILED, trial_id=2, **ended)

    reasons = {m.record.attempt_id: m.cause.reason for m in meter([killed, failed], T0, T0 + HOUR, T0 + HOUR)}

    assert reasons == {1: WasteReason.CANCEL, 2: WasteReason.FAILURE}


def test_invalid_records_rejected() -> None:
    with pytest.raises(ValueError, match="before started_at"):
        _attempt(1, T0, T0 - 1)
    with pytest.raises(ValueError, match="devices must be 0 or more"):
        _attempt(1, T0, T0 + 1, devices=-1)
    with pytest.raises(ValueError, match="before it starts"):
        meter([], T0 + 1, T0, T0)
    with pytest.raises(ValueError, match="still running"):
        wasted_device_seconds(_attempt(1, T0, None))
