"""The default scheduling policy: priority, fair share, quotas, gangs and preemption."""

from __future__ import annotations

import math

from neurfly.core.scheduling._planner import Planner
from neurfly.core.scheduling._state import NodeLayout
from neurfly.core.scheduling._validate import check_decisions
from neurfly.core.scheduling.base import SchedulingPolicy
from neurfly.core.scheduling.snapshot import Decision, PolicySettings, Snapshot


class DefaultPolicy(SchedulingPolicy):
    """The production policy: a pure function from a snapshot to decisions.

    **Rejection.** A trial that no node could ever hold is rejected at once
    and takes no further part. That is the case when its priority class is
    not defined, when it requests fewer than 1 device, or when no pool
    matches its hardware, allowed regions and allowed pools. It is also the
    case when no eligible pool has both a node with as many devices as the
    trial requests and a team limit (quota plus borrowing limit) that large.
    The reason names the request and the largest eligible node. Nodes that
    are not schedulable count here, because they may come back.

    **Order.** Pending trials are served by priority value, highest first.
    Within one value, the order is recomputed after every decision:

    1. Teams by Slurm's fair-share factor ``F = 2 ** (-U / S)``, highest
       first, where ``U`` is the team's share of all usage and ``S`` its
       share of all weights. Usage is ``Team.decayed_usage`` plus
       ``settings.fair_share_horizon_s`` device-seconds per device the team
       holds, has reserved or is given in this call, so one call spreads its
       devices across teams. Teams of weight 0 come after every other team
       (ordered among themselves by usage) and never divide by zero. Ties go
       to the team whose next trial was queued first, then to the lower
       trial id of that trial.
    2. Within a team, its searches take turns: the search holding the fewest
       trials (running, yielding or reserved) goes first. Ties go to the
       search whose next trial resumes earlier work, then to the earlier
       ``queued_at`` of its next trial, then to the lower trial id.
    3. Within a search, trials with ``resumes=True`` (preempted, or paused
       and promoted) come before new ones, then earlier ``queued_at``, then
       lower trial id.

    A search holding ``max_concurrent`` trials starts nothing more.

    **Placement.** A trial gets all its devices on one node of one eligible
    pool, or waits. Pools are tried cheapest first, then by name; within a
    pool the node with the fewest free slots that still fit wins (best fit),
    ties going to the node name that sorts first; slots are the lowest free
    numbers. Each priority level is walked twice: first every trial may use
    free devices only within its team's quota in the pool, then within quota
    plus borrowing limit (a missing borrowing limit means no cap). A trial
    that does not fit never holds back the trials behind it (backfill).

    **Borrowed devices.** Per team and pool, the team's attempts that are not
    yielding fill its quota in this order: non-preemptible classes first,
    then higher priority value, then earlier start, then lower attempt id.
    An attempt whose predecessors already fill the quota is borrowed, so the
    most recently started attempts of the lowest priority are the borrowed
    ones.

    **Preemption.** A trial that still finds no room in the second walk may
    preempt, on one node, attempts that are older than
    ``settings.min_runtime_s``, not yielding and of a preemptible class:

    * of a lower priority value, when they are its own team's, or when the
      trial will stay within its team's quota in that pool, or when they are
      borrowed;
    * of any priority value, when they are borrowed by another team and the
      trial will stay within its own team's quota in that pool (reclaim).

    Taking a borrowed attempt never leaves its team with fewer standing
    devices than its quota, and a reclaiming team stops at its quota, so two
    teams each entitled to part of a pool settle instead of taking devices
    back and forth. A team at its limit may still preempt its own attempts
    of a lower priority value to make room within that limit. The node
    chosen is the one whose most valuable needed victim is least valuable in
    victim order: lowest priority value first, then borrowed before nominal,
    then least ``progress_at_risk``, then most recently started, then
    highest attempt id, so no two nodes tie. A node where free and soon-free
    slots suffice comes before any node that needs a victim, the cheaper
    pool first. Victims found unnecessary are spared. Slots of yielding
    attempts that no reservation covers count as soon free and are used
    before any new victim. At most ``settings.max_preemptors_per_call``
    trials preempt in one call.

    **Reservations.** Each preempting trial gets a ``Reserve`` for exactly the
    slots it needs on the victims' node: free slots first, then soon-free
    ones, then the victims' (the victims' first when the team must release
    them to stay within its limit). A reservation counts against its team's
    limits and its search's ``max_concurrent`` while the trial is pending.
    The trial starts, at its priority level, as soon as its reserved slots
    are free (topped up with free slots of the same node if needed), or
    earlier on any node that has room; it never preempts while it holds a
    usable reservation. Any stored reservation of a pending trial blocks its
    slots for every other trial. A reservation the trial cannot use (its
    node is missing, not schedulable or not eligible, its slots are invalid,
    overlap an older reservation or are held by an attempt that is not
    yielding) only blocks; the trial is scheduled as if it had none, and a
    new ``Reserve`` for it replaces the old one.

    **Starvation.** Backfill could keep a large gang waiting forever behind
    small trials. A trial that has waited ``settings.starvation_wait_s`` and
    finds no room (within its quota, then borrowing) reserves the free and
    soon-free slots of one node, ahead of the trials behind it: the node of
    an eligible pool with the most such slots, within its team's limit. Each
    later call adds the node's newly free slots to that reservation (a new
    ``Reserve`` with the grown slot set) until the trial starts. One trial
    drains a pool at a time, and a draining trial does not preempt.

    **Decision order.** Rejections by trial id; then, per priority level,
    the starts and reservation growth of reserved trials, then starts,
    preemptions and reservations in walk order. Every ``Preempt`` comes right
    before the ``Reserve`` of its preemptor.
    """

    name = "default"

    # The node layout of the last call, reused while the caller passes the
    # same node and pool tuples. It only saves work: a changed node list gets
    # a fresh layout, so decisions never depend on earlier calls.
    _layout: NodeLayout | None = None

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        """Return the decisions for ``snapshot``.

        Raises:
            ValueError: The snapshot or its settings are malformed, for
                example a duplicate trial id or a negative team weight.
            SchedulingInvariantError: ``settings.validate`` is on and a
                decision breaks an invariant.
        """
        _check_settings(snapshot.settings)

        planner = Planner(snapshot, self._layout)
        self._layout = planner.state.layout
        decisions = planner.plan()
        if snapshot.settings.validate:
            check_decisions(snapshot, decisions)
        return decisions


def _check_settings(settings: PolicySettings) -> None:
    for name in ("min_runtime_s", "fair_share_horizon_s"):
        value = getattr(settings, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"PolicySettings.{name} must be a finite number of 0 or more, got {value!r}")

    wait = settings.starvation_wait_s
    if wait is not None and (not math.isfinite(wait) or wait < 0):
        raise ValueError(f"PolicySettings.starvation_wait_s must be None or a finite number of 0 or more, got {wait!r}")

    limit = settings.max_preemptors_per_call
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"PolicySettings.max_preemptors_per_call must be None or an integer of 0 or more, got {limit!r}")
