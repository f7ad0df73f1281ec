"""The discrete-event simulator on hand-built traces with results computed by hand."""

from __future__ import annotations

import math

import pytest

from neurfly.core.scheduling import Preempt, Reject, Reserve, Start
from neurfly.core.scheduling.baselines import FifoPolicy, PriorityPolicy
from neurfly.core.scheduling.default import DefaultPolicy
from neurfly.core.usage import accrue
from neurfly.sim.engine import PolicyContractError, SimulationConfig, Simulator
from neurfly.sim.results import JobOutcome



@pytest.fixture
def fifo_jobs(gpu_job):
    """Three jobs for one 4-device node.

    FIFO without backfill: job 1 runs 0-100. Job 2 needs all 4 devices and
    waits until 100, running 100-150. Job 3 fits at 20 but waits behind job 2
    (head-of-line blocking) and runs 150-180.
    """
    return [gpu_job(0, 2, 100), gpu_job(10, 4, 50), gpu_job(20, 2, 30)]


def test_fifo_completion_times_by_hand(cluster_of, fifo_jobs):
    result = Simulator(cluster_of(), FifoPolicy()).run(fifo_jobs)

    assert [record.first_start for record in result.jobs] == [0, 100, 150]
    assert [record.completion for record in result.jobs] == [100, 150, 180]
    assert [record.completion_time for record in result.jobs] == [100, 140, 160]
    assert [record.wait_s for record in result.jobs] == [0, 90, 130]


def test_priority_lets_small_job_fit_around(cluster_of, fifo_jobs):
    result = Simulator(cluster_of(), PriorityPolicy()).run(fifo_jobs)

    assert [record.first_start for record in result.jobs] == [0, 100, 20]
    assert [record.completion for record in result.jobs] == [100, 150, 50]


def test_placeholder_default_policy_runs(cluster_of, fifo_jobs):
    result = Simulator(cluster_of(), DefaultPolicy()).run(fifo_jobs)

    assert all(record.outcome is JobOutcome.COMPLETED for record in result.jobs)
    assert result.jobs[0].completion == 100


def test_times_start_at_first_arrival(cluster_of, gpu_job, fifo_jobs):
    shifted = [gpu_job(record.arrival + 1_500_000_000, record.devices, record.duration) for record in fifo_jobs]

    result = Simulator(cluster_of(), FifoPolicy()).run(shifted)

    assert [record.arrival for record in result.jobs] == [0, 10, 20]
    assert result.end == 180


def test_preemption_loses_progress_since_checkpoint(cluster_of, gpu_job, preempt_once):
    # Job 1 runs from 0; at 2000 it is asked to yield, exits at 2030 after the grace
    # period with 2030 s done, keeps the checkpoint at 1800 and loses 230 s.
    # Job 2 (queued at 2000, before job 1 re-queues at 2030) runs 2030-2130,
    # then job 1 resumes with 5000 - 1800 = 3200 s left and completes at 5330.
    cluster = cluster_of({"n1": 1})
    config = SimulationConfig(checkpoint_interval_s=1800, grace_period_s=30)
    policy = preempt_once(at=2000, attempt_id=1, for_trial=2)

    result = Simulator(cluster, policy, config).run([gpu_job(0, 1, 5000), gpu_job(2000, 1, 100, priority="production")])
    first, second = result.jobs

    assert first.preemptions == 1
    assert first.lost_work_s == pytest.approx(230)
    assert second.first_start == 2030
    assert second.completion == 2130
    assert first.completion == pytest.approx(5330)
    assert first.wait_s == pytest.approx(100)
    assert result.preempt_requests == 1


def test_preemption_without_checkpoints_loses_all(cluster_of, gpu_job, preempt_once):
    cluster = cluster_of({"n1": 1})
    config = SimulationConfig(checkpoint_interval_s=math.inf, grace_period_s=30)
    policy = preempt_once(at=2000, attempt_id=1, for_trial=2)

    result = Simulator(cluster, policy, config).run([gpu_job(0, 1, 5000), gpu_job(2000, 1, 100)])

    assert result.jobs[0].lost_work_s == pytest.approx(2030)
    assert result.jobs[0].completion == pytest.approx(2130 + 5000)


def test_attempt_finishing_in_grace_completes(cluster_of, gpu_job, preempt_once):
    cluster = cluster_of({"n1": 1})
    config = SimulationConfig(grace_period_s=30)
    policy = preempt_once(at=90, attempt_id=1, for_trial=2)

    result = Simulator(cluster, policy, config).run([gpu_job(0, 1, 100), gpu_job(90, 1, 10)])

    assert result.jobs[0].completion == 100
    assert result.jobs[0].preemptions == 0
    assert result.jobs[0].lost_work_s == 0
    assert result.preempt_requests == 1
    assert result.jobs[1].first_start == 100


def test_yielding_attempt_is_visible_and_holds_slots(cluster_of, gpu_job, preempt_once, recording):
    cluster = cluster_of({"n1": 1})
    recorder = recording(preempt_once(at=50, attempt_id=1, for_trial=2))

    Simulator(cluster, recorder, SimulationConfig(grace_period_s=30)).run(
        [gpu_job(0, 1, 1000), gpu_job(50, 1, 10), gpu_job(60, 1, 10)]
    )
    at_60 = next(snapshot for snapshot in recorder.snapshots if snapshot.now == 60)

    assert [attempt.yielding for attempt in at_60.running] == [True]
    assert [trial.trial_id for trial in at_60.pending] == [2, 3]


def test_resumed_trial_is_pending_with_resumes(cluster_of, gpu_job, preempt_once, recording):
    cluster = cluster_of({"n1": 1})
    recorder = recording(preempt_once(at=50, attempt_id=1, for_trial=2))

    Simulator(cluster, recorder, SimulationConfig(grace_period_s=30)).run([gpu_job(0, 1, 1000), gpu_job(50, 1, 10)])
    at_80 = next(snapshot for snapshot in recorder.snapshots if snapshot.now == 80)
    resumed = next(trial for trial in at_80.pending if trial.trial_id == 1)

    assert resumed.resumes is True
    assert resumed.queued_at == 80


def test_progress_at_risk_follows_reports(cluster_of, gpu_job, recording):
    # Reports every 60 s of progress and checkpoints every 100 s: at 130 s the
    # last report is at 120 and the last checkpoint at 100, so 20 s are at risk.
    cluster = cluster_of({"n1": 2})
    config = SimulationConfig(checkpoint_interval_s=100, report_interval_s=60)
    recorder = recording()

    Simulator(cluster, recorder, config).run([gpu_job(0, 1, 1000), gpu_job(130, 1, 10), gpu_job(205, 1, 10)])
    by_time = {snapshot.now: snapshot for snapshot in recorder.snapshots}

    assert by_time[130].running[0].progress_at_risk == pytest.approx(20)
    assert by_time[205].running[0].progress_at_risk == pytest.approx(0)


def test_exact_progress_at_risk(cluster_of, gpu_job, recording):
    cluster = cluster_of({"n1": 2})
    config = SimulationConfig(checkpoint_interval_s=100, report_interval_s=0)
    recorder = recording()

    Simulator(cluster, recorder, config).run([gpu_job(0, 1, 1000), gpu_job(130, 1, 10)])

    assert recorder.snapshots[-1].running[0].progress_at_risk == pytest.approx(30)


def test_oversized_job_is_rejected_and_counted(cluster_of, gpu_job):
    result = Simulator(cluster_of(), FifoPolicy()).run([gpu_job(0, 8, 10), gpu_job(1, 1, 10)])

    assert result.jobs[0].outcome is JobOutcome.REJECTED
    assert "largest eligible node" in result.jobs[0].reason
    assert result.jobs[1].outcome is JobOutcome.COMPLETED


def test_reservation_carried_until_start(cluster_of, gpu_job, recording, scripted):
    cluster = cluster_of({"n1": 2})
    recorder = recording(
        scripted(
            {
                0: lambda snapshot: [Start(1, "n1", (0, 1))],
                5: lambda snapshot: [Reserve(2, "n1", (0, 1))],
                100: lambda snapshot: [Start(2, "n1", (0, 1))],
            }
        )
    )

    result = Simulator(cluster, recorder).run([gpu_job(0, 2, 100), gpu_job(5, 2, 10), gpu_job(50, 1, 1)])
    by_time = {snapshot.now: snapshot for snapshot in recorder.snapshots}

    assert [r.trial_id for r in by_time[50].reservations] == [2]
    assert [r.trial_id for r in by_time[100].reservations] == [2]
    assert result.jobs[1].first_start == 100
    assert result.reservations == 1


def test_reserved_slots_refused_to_others(cluster_of, gpu_job, scripted):
    cluster = cluster_of({"n1": 2})
    policy = scripted(
        {
            0: lambda snapshot: [Reserve(1, "n1", (0,)), Start(2, "n1", (0,))],
        }
    )

    with pytest.raises(PolicyContractError, match="reserved for trial 1"):
        Simulator(cluster, policy).run([gpu_job(0, 1, 10), gpu_job(0, 1, 10)])


def test_start_on_busy_slot_refused(cluster_of, gpu_job, scripted):
    cluster = cluster_of({"n1": 1})
    policy = scripted(
        {
            0: lambda snapshot: [Start(1, "n1", (0,))],
            5: lambda snapshot: [Start(2, "n1", (0,))],
        }
    )

    with pytest.raises(PolicyContractError, match="held by a running attempt"):
        Simulator(cluster, policy).run([gpu_job(0, 1, 10), gpu_job(5, 1, 10)])


@pytest.mark.parametrize(
    "decision, message",
    [
        (Start(9, "n1", (0,)), "trial 9 is not pending"),
        (Start(1, "n9", (0,)), "not in the cluster"),
        (Start(1, "n1", (0, 1)), "distinct slot"),
        (Start(1, "n1", (5,)), "has slots 0..1"),
        (Preempt(7, 1), "attempt 7 is not running"),
        (Reject(9, "no"), "trial 9 is not pending"),
    ],
)
def test_invalid_decisions_refused(decision, message, cluster_of, gpu_job, scripted):
    policy = scripted({0: lambda snapshot: [decision]})

    with pytest.raises(PolicyContractError, match=message):
        Simulator(cluster_of({"n1": 2}), policy).run([gpu_job(0, 1, 10)])


def test_unstarted_jobs_count_as_unfinished(cluster_of, gpu_job, scripted):
    result = Simulator(cluster_of(), scripted({})).run([gpu_job(0, 1, 10)])

    assert result.jobs[0].outcome is JobOutcome.UNFINISHED
    assert result.schedule_calls == 1


def test_schedule_skipped_without_pending(cluster_of, gpu_job, recording):
    # Arrivals at 0 and 1000; the completion at 10 leaves nothing pending, so no call.
    recorder = recording()

    result = Simulator(cluster_of(), recorder).run([gpu_job(0, 1, 10), gpu_job(1000, 1, 10)])

    assert [snapshot.now for snapshot in recorder.snapshots] == [0, 1000]
    assert result.events == 4


def test_same_time_events_batched(cluster_of, gpu_job, recording):
    recorder = recording()

    Simulator(cluster_of(), recorder).run([gpu_job(0, 1, 10), gpu_job(0, 1, 10), gpu_job(10, 1, 5), gpu_job(10, 2, 5)])

    assert [snapshot.now for snapshot in recorder.snapshots] == [0, 10]
    assert len(recorder.snapshots[1].pending) == 2


def test_decayed_usage_matches_accrual(cluster_of, gpu_job, recording):
    # Team a runs on 2 devices from 0, so at 3600 its decayed usage is the exact integral.
    cluster = cluster_of({"n1": 4}, usage_half_life_s=1800)
    recorder = recording()

    Simulator(cluster, recorder).run([gpu_job(0, 2, 10_000), gpu_job(3600, 1, 10, team="b")])
    team_a = next(team for team in recorder.snapshots[-1].teams if team.name == "a")

    assert team_a.decayed_usage == pytest.approx(accrue(2, 3600, 1800))
    assert team_a.decayed_usage == pytest.approx(2 * 1800 / math.log(2) * 0.75)


def test_search_limit_passed_to_policy(cluster_of, gpu_job, recording):
    recorder = recording()
    jobs = [gpu_job(0, 1, 10, search_id="s", max_concurrent=1), gpu_job(0, 1, 10, search_id="s", max_concurrent=1)]

    result = Simulator(cluster_of(), recorder).run(jobs)

    assert [(limit.search_id, limit.max_concurrent) for limit in recorder.snapshots[0].searches] == [(1, 1)]
    assert [record.first_start for record in result.jobs] == [0, 10]


def test_validate_mode_checks_team_cap(cluster_of, gpu_job, scripted):
    cluster = cluster_of({"n1": 4}, teams=[{"name": "a", "quota": {"p": 1}, "borrowing_limit": {"p": 0}}])
    policy = scripted({0: lambda snapshot: [Start(1, "n1", (0,)), Start(2, "n1", (1,))]})

    with pytest.raises(PolicyContractError, match="over its cap of 1"):
        Simulator(cluster, policy, SimulationConfig(validate=True)).run([gpu_job(0, 1, 10), gpu_job(0, 1, 10)])


def test_incomplete_jobs_rejected_with_hint(cluster_of, gpu_job):
    incomplete = [gpu_job(0, 1, 10, priority=None)]

    with pytest.raises(ValueError, match="derive_missing"):
        Simulator(cluster_of(), FifoPolicy()).run(incomplete)


def test_empty_trace_rejected(cluster_of):
    with pytest.raises(ValueError, match="no jobs"):
        Simulator(cluster_of(), FifoPolicy()).run([])


@pytest.mark.parametrize(
    "fields",
    [{"checkpoint_interval_s": 0}, {"grace_period_s": -1}, {"report_interval_s": -1}, {"min_runtime_s": -1}],
)
def test_config_rejects_invalid_values(fields):
    with pytest.raises(ValueError, match=next(iter(fields))):
        SimulationConfig(**fields)


def test_stale_completion_triggers_no_call(cluster_of, gpu_job, recording, preempt_once):
    # Attempt 1 is preempted at 50 and exits at 80; its completion event at 1000 is stale.
    recorder = recording(preempt_once(at=50, attempt_id=1, for_trial=2))

    Simulator(cluster_of({"n1": 1}), recorder, SimulationConfig(grace_period_s=30)).run(
        [gpu_job(0, 1, 1000), gpu_job(50, 1, 5000)]
    )

    assert 1000 not in [snapshot.now for snapshot in recorder.snapshots]
