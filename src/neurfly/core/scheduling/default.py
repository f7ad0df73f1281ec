"""The default scheduling policy."""

from __future__ import annotations

from collections import Counter

from neurfly.core.scheduling.base import SchedulingPolicy
from neurfly.core.scheduling.snapshot import Decision, Node, PendingTrial, Reject, Snapshot, Start


class DefaultPolicy(SchedulingPolicy):
    """Priority first, then resumed trials, then arrival order; gang placement.

    Ties are broken by ``queued_at`` and then by ``trial_id``, so equal
    snapshots give equal decisions.
    """

    name = "default"

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        priority_value = {c.name: c.value for c in snapshot.priority_classes}
        pool_of = {p.name: p for p in snapshot.pools}
        free = _free_slots(snapshot)
        running_per_search = Counter(a.search_id for a in snapshot.running)
        limit_of = {s.search_id: s.max_concurrent for s in snapshot.searches}

        order = sorted(
            snapshot.pending,
            key=lambda t: (-priority_value.get(t.priority, 0), not t.resumes, t.queued_at, t.trial_id),
        )
        decisions: list[Decision] = []
        for trial in order:
            eligible = [n for n in snapshot.nodes if _fits_constraints(trial, n, pool_of)]
            if not any(n.devices >= trial.devices for n in eligible):
                decisions.append(Reject(trial.trial_id, _never_fits(trial, eligible)))
                continue
            if running_per_search[trial.search_id] >= limit_of.get(trial.search_id, 1 << 30):
                continue
            node = next((n for n in eligible if len(free[n.name]) >= trial.devices), None)
            if node is None:
                continue
            slots = tuple(sorted(free[node.name])[: trial.devices])
            free[node.name] -= set(slots)
            running_per_search[trial.search_id] += 1
            decisions.append(Start(trial.trial_id, node.name, slots, reason="free devices"))
        return decisions


def _free_slots(snapshot: Snapshot) -> dict[str, set[int]]:
    free = {n.name: set(range(n.devices)) if n.schedulable else set() for n in snapshot.nodes}
    for attempt in snapshot.running:
        free.get(attempt.node, set()).difference_update(attempt.slots)
    for reservation in snapshot.reservations:
        free.get(reservation.node, set()).difference_update(reservation.slots)
    return free


def _fits_constraints(trial: PendingTrial, node: Node, pool_of: dict) -> bool:
    pool = pool_of[node.pool]
    if pool.hardware != trial.hardware:
        return False
    if trial.allowed_regions is not None and pool.region not in trial.allowed_regions:
        return False
    return trial.allowed_pools is None or pool.name in trial.allowed_pools


def _never_fits(trial: PendingTrial, eligible: list[Node]) -> str:
    if not eligible:
        return (
            f"trial {trial.trial_id} asks for {trial.devices} {trial.hardware} device(s) but no node of that "
            "hardware type is in its allowed regions and pools"
        )
    largest = max(eligible, key=lambda n: n.devices)
    return (
        f"trial {trial.trial_id} asks for {trial.devices} {trial.hardware} device(s) on one node, "
        f"but the largest eligible node, {largest.name}, has {largest.devices}"
    )
