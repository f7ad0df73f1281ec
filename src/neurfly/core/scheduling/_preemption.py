"""Victim selection: which running attempts to preempt so that one trial can start.

A preemptor may take, on one node of one of its eligible pools:

* free slots and soon-free slots (held by yielding attempts that no
  reservation covers), which need no new preemption;
* attempts of a lower priority value than its own: its own team's, another
  team's that run on borrowed devices (see ``rank_borrowed``), or any team's
  when the preemptor stays within its own quota after it starts;
* attempts of any priority that another team holds as borrowed devices, when
  the preemptor stays within its own quota after it starts (reclaim).

A victim's team keeps at least its quota of standing devices whenever its
attempt is taken as borrowed. Attempts of a non-preemptible class, yielding
attempts and attempts younger than ``settings.min_runtime_s`` are never
victims (``ClusterState.build_candidates``).

Among the nodes where that is enough, the policy picks the one whose most
valuable needed victim is least valuable in victim order (``Candidate.key``).
Scanning the candidates in that order, the first node to collect enough
slots is that node. The key ends in the attempt id, so two nodes never tie.
A node where free and soon-free slots suffice beats any node that needs a
victim, and between pools that offer such a node the cheaper pool wins.
Victims that turn out unnecessary once the set is complete are spared, most
valuable first.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass

from neurfly.core.scheduling._state import Candidate, ClusterState, NodeState, Phase, TeamAccount
from neurfly.core.scheduling.snapshot import PendingTrial


@dataclass(slots=True)
class PreemptionPlan:
    """A preemptor's node and the victims it displaces there.

    Attributes:
        node: The node the preemptor reserves slots on.
        pool: The node's pool.
        victims: Attempts to preempt, in victim order.
        cost: Sort key between plans; lower is better.
        over_limit: True when the preemptor's team must give up its own
            victims' devices to stay within its limit, so the reservation
            should take the victims' slots before free ones.
    """

    node: NodeState
    pool: str
    victims: list[Candidate]
    cost: tuple
    over_limit: bool = False


@dataclass(slots=True)
class _Preemptor:
    trial: PendingTrial
    account: TeamAccount
    level: int
    pool: str
    deficit: int
    within_quota: bool


def plan_preemption(state: ClusterState, trial: PendingTrial, level: int, pools: tuple[str, ...]) -> PreemptionPlan | None:
    """Find the cheapest way to make room for ``trial`` by preemption.

    Args:
        state: The call's state; it is read, not changed.
        trial: The pending trial that found no free slots.
        level: The trial's priority value.
        pools: The trial's eligible pools, in preference order.

    Returns:
        The best plan, or ``None`` when no node can be freed for the trial.
    """
    account = state.account(trial.team)
    best: PreemptionPlan | None = None
    for pool in pools:
        preemptor = _preemptor(state, trial, account, level, pool)
        if preemptor is None:
            continue
        plan = _plan_in_pool(state, preemptor)
        if plan is not None and (best is None or plan.cost < best.cost):
            best = plan
    return best


def _preemptor(state: ClusterState, trial: PendingTrial, account: TeamAccount, level: int, pool: str) -> _Preemptor | None:
    devices = trial.devices
    committed = account.committed[pool]
    deficit = committed + devices - account.limit(pool, Phase.BORROWING)
    if deficit > 0:
        own = state.own_candidates.get((account.name, pool), ())
        releasable = sum(c.devices for c in own if not c.chosen and c.priority < level)
        if releasable < deficit:
            return None

    within_quota = committed + devices <= account.quota.get(pool, 0)
    return _Preemptor(trial, account, level, pool, int(deficit) if deficit > 0 else 0, within_quota)


def _plan_in_pool(state: ClusterState, preemptor: _Preemptor) -> PreemptionPlan | None:
    devices = preemptor.trial.devices
    deficit = preemptor.deficit
    if deficit == 0:
        node = _soon_free_node(state, preemptor.pool, devices)
        if node is not None:
            return PreemptionPlan(node, preemptor.pool, [], (False, (), 0))
    if _room_bound(state, preemptor) < devices:
        return None

    team = preemptor.account.name
    totals: dict[int, list] = {}
    for candidate in _eligible_candidates(state, preemptor):
        node = candidate.node
        entry = totals.get(node.index)
        if entry is None:
            entry = totals[node.index] = [len(node.free) + len(node.soon_free), 0, []]
        entry[0] += candidate.usable
        if candidate.team == team:
            entry[1] += candidate.devices
        entry[2].append(candidate)
        if entry[0] >= devices and entry[1] >= deficit:
            victims = _spare_unneeded(entry, preemptor)
            cost = (True, max(v.key for v in victims), len(victims)) if victims else (False, (), 0)
            return PreemptionPlan(node, preemptor.pool, victims, cost, over_limit=deficit > 0)
    return None


def _room_bound(state: ClusterState, preemptor: _Preemptor) -> int:
    """Return an upper bound of the slots one node of the pool can offer this preemptor."""
    pool = preemptor.pool
    if preemptor.within_quota:
        return state.max_room_any[pool]

    extra: dict[int, int] = defaultdict(int)
    for candidate in state.own_candidates.get((preemptor.account.name, pool), ()):
        if not candidate.chosen and candidate.priority < preemptor.level and not candidate.borrowed:
            extra[candidate.node.index] += candidate.usable
    own_best = max((state.room_borrowed[index] + slots for index, slots in extra.items()), default=0)
    return max(state.max_room_borrowed[pool], own_best)


def _eligible_candidates(state: ClusterState, preemptor: _Preemptor):
    """Yield the candidates this preemptor may take, in victim order."""
    team = preemptor.account.name
    level = preemptor.level
    pool = preemptor.pool
    if preemptor.within_quota:
        for candidate in state.candidates.get(pool, ()):
            if candidate.priority >= level:
                break
            if not candidate.chosen:
                yield candidate
        borrowed = state.borrowed_candidates.get(pool, [])
        start = bisect.bisect_left(borrowed, level, key=_priority_of)
        for candidate in borrowed[start:]:
            if not candidate.chosen and candidate.team != team and candidate.spare():
                yield candidate
        return

    for candidate in state.candidates.get(pool, ()):
        if candidate.priority >= level:
            return
        if candidate.chosen:
            continue
        if candidate.team == team or (candidate.borrowed and candidate.spare()):
            yield candidate


def _priority_of(candidate: Candidate) -> int:
    return candidate.priority


def _spare_unneeded(entry: list, preemptor: _Preemptor) -> list[Candidate]:
    slots, own, victims = entry[0], entry[1], list(entry[2])
    team = preemptor.account.name
    for candidate in reversed(entry[2]):
        own_devices = candidate.devices if candidate.team == team else 0
        if slots - candidate.usable >= preemptor.trial.devices and own - own_devices >= preemptor.deficit:
            victims.remove(candidate)
            slots -= candidate.usable
            own -= own_devices
    return victims


def _soon_free_node(state: ClusterState, pool: str, devices: int) -> NodeState | None:
    best: NodeState | None = None
    best_room = 0
    for node in state.soon_free_nodes.get(pool, {}).values():
        room = len(node.free) + len(node.soon_free)
        if room >= devices and (best is None or (room, node.index) < (best_room, best.index)):
            best, best_room = node, room
    return best
