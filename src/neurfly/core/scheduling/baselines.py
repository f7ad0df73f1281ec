"""Baseline scheduling policies to compare the production policy against.

``fifo``, ``priority`` and ``fair-share`` differ only in the order in which
they serve the queue and in whether a trial that does not fit holds back the
ones behind it. None of them preempts or reserves. All three share these
placement rules:

* Gang placement: a trial runs on free slots of one schedulable node, on a
  pool of its hardware type, inside its allowed regions and pools. It never
  gets slots of a running attempt (yielding or not) or slots reserved for
  another trial, but a trial with a reservation may use its reserved slots.
* Best fit: among the nodes that fit, the one with the fewest free slots,
  then the first in snapshot order, so large gangs keep finding empty nodes.
* Limits: a team never uses more devices in a pool than its quota plus its
  borrowing limit (no borrowing limit means no cap), and a search never runs
  more attempts than its ``max_concurrent``. A trial held back by a limit is
  skipped and holds back no one.
* Reject: a trial that no eligible node could ever hold, or that its team's
  quota plus borrowing limit never allows, is rejected with the reason.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from neurfly.core.scheduling.base import SchedulingPolicy
from neurfly.core.scheduling.snapshot import (
    Decision,
    Node,
    PendingTrial,
    Pool,
    Reject,
    Reservation,
    Snapshot,
    Start,
    Team,
)

_ARRIVAL_ORDER = attrgetter("queued_at", "trial_id")
"""Sort key of FIFO order: when a trial became pending, then its id."""


@dataclass(frozen=True, slots=True)
class _ClusterIndex:
    """Lookups over a snapshot's pools and nodes, which rarely change between calls.

    Attributes:
        pools: Pools by name, in snapshot order.
        nodes_by_pool: Each pool's nodes, in snapshot order.
        position: A node's pool and its index in ``nodes_by_pool``.
        capacity: Each pool's free slots when nothing runs (0 for an unschedulable node).
        largest: Each pool's node with the most slots, schedulable or not (pools with nodes only).
    """

    pools: dict[str, Pool]
    nodes_by_pool: dict[str, list[Node]]
    position: dict[str, tuple[str, int]]
    capacity: dict[str, list[int]]
    largest: dict[str, Node]

    @classmethod
    def of(cls, pools: tuple[Pool, ...], nodes: tuple[Node, ...]) -> _ClusterIndex:
        nodes_by_pool: dict[str, list[Node]] = {pool.name: [] for pool in pools}
        position: dict[str, tuple[str, int]] = {}
        for node in nodes:
            members = nodes_by_pool.setdefault(node.pool, [])
            position[node.name] = (node.pool, len(members))
            members.append(node)
        capacity = {
            pool: [node.devices if node.schedulable else 0 for node in members]
            for pool, members in nodes_by_pool.items()
        }
        largest = {
            pool: max(members, key=lambda node: node.devices) for pool, members in nodes_by_pool.items() if members
        }
        return cls({pool.name: pool for pool in pools}, nodes_by_pool, position, capacity, largest)


_last_index: tuple[tuple[Pool, ...], tuple[Node, ...], _ClusterIndex] | None = None


def _cluster_index(snapshot: Snapshot) -> _ClusterIndex:
    """Return the index of the snapshot's pools and nodes, reusing the last one for the same tuples.

    The simulator passes the same pool and node tuples in every snapshot.
    Both are immutable, so an index built for those very objects is still
    right, and decisions stay a function of the snapshot alone.
    """
    global _last_index
    cached = _last_index
    if cached is not None and cached[0] is snapshot.pools and cached[1] is snapshot.nodes:
        return cached[2]

    index = _ClusterIndex.of(snapshot.pools, snapshot.nodes)
    _last_index = (snapshot.pools, snapshot.nodes, index)
    return index


class _Placer:
    """Free slots, team allocations and search counts of one snapshot.

    The policy updates it as it places trials within one ``schedule`` call.
    Free slot counts are kept per pool in node order (``free[pool][i]`` for
    ``nodes_by_pool[pool][i]``) because best fit scans them once per placement.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self._index_cluster(snapshot)
        self._count_running(snapshot)
        self._hold_reservations(snapshot)
        self._count_free()
        self._options_cache: dict[tuple, list[tuple[Node, float]]] = {}
        self._fit_limit: dict[tuple, float] = {}

    def _index_cluster(self, snapshot: Snapshot) -> None:
        index = _cluster_index(snapshot)
        self.pools = index.pools
        self.nodes_by_pool = index.nodes_by_pool
        self.position = index.position
        self.capacity = index.capacity
        self.largest = index.largest
        self.teams = {team.name: team for team in snapshot.teams}
        self.capped_teams = {team.name for team in snapshot.teams if team.borrowing_limit}

    def _count_running(self, snapshot: Snapshot) -> None:
        running_slots: dict[str, set[int]] = defaultdict(set)
        for attempt in snapshot.running:
            running_slots[attempt.node].update(attempt.slots)
        self.running_slots = running_slots

        self.team_devices: Counter[tuple[str, str]] = Counter()
        if self.capped_teams:
            for attempt in snapshot.running:
                if attempt.team in self.capped_teams and attempt.node in self.position:
                    self.team_devices[attempt.team, self.position[attempt.node][0]] += len(attempt.slots)

        self.search_limit = {search.search_id: search.max_concurrent for search in snapshot.searches}
        self.search_running: Counter[int] = Counter()
        if self.search_limit:
            self.search_running.update(attempt.search_id for attempt in snapshot.running)

    def _hold_reservations(self, snapshot: Snapshot) -> None:
        """Index the reservations of pending trials; a reservation of any other trial is stale and ignored."""
        pending = {trial.trial_id for trial in snapshot.pending}
        self.reservation_of: dict[int, Reservation] = {}
        self.reserved_slots: dict[str, set[int]] = defaultdict(set)
        for reservation in snapshot.reservations:
            if reservation.trial_id in pending:
                self.reservation_of[reservation.trial_id] = reservation
                self.reserved_slots[reservation.node].update(reservation.slots)

    def _count_free(self) -> None:
        self.free = {pool: list(capacity) for pool, capacity in self.capacity.items()}
        for name in self.running_slots.keys() | self.reserved_slots.keys():
            self._recount(name)
        self.max_free = {pool: max(free, default=0) for pool, free in self.free.items()}

    def _recount(self, node_name: str) -> None:
        """Set the node's free count: slots neither running an attempt nor reserved (0 if unschedulable)."""
        if node_name not in self.position:
            return
        pool, index = self.position[node_name]
        node = self.nodes_by_pool[pool][index]
        if not node.schedulable:
            return

        occupied = self.running_slots.get(node_name, set())
        reserved = self.reserved_slots.get(node_name)
        if reserved:
            occupied = occupied | reserved
        self.free[pool][index] = node.devices - len(occupied)

    def _available(self, node: Node, reservation: Reservation | None) -> list[int]:
        """Return the node's slots that ``reservation``'s trial may use now, in order."""
        running = self.running_slots.get(node.name, set())
        reserved = self.reserved_slots.get(node.name, set())
        own = reservation.slots if reservation is not None and reservation.node == node.name else ()
        return [slot for slot in range(node.devices) if slot not in running and (slot not in reserved or slot in own)]

    @property
    def full(self) -> bool:
        """True when no trial can start: no node has a free slot and no pending trial has a reservation."""
        return not self.reservation_of and not any(self.max_free.values())

    def rejection(self, trial: PendingTrial) -> str | None:
        """Return why ``trial`` can never be placed, or ``None`` if some node could hold it one day."""
        key = (trial.hardware, trial.allowed_regions, trial.allowed_pools, trial.team)
        limit = self._fit_limit.get(key)
        if limit is None:
            limit = max((min(node.devices, cap) for node, cap in self._options(trial)), default=0)
            self._fit_limit[key] = limit
        if trial.devices <= limit:
            return None

        options = self._options(trial)
        if not options:
            return (
                f"trial {trial.trial_id} requests {trial.devices} {trial.hardware} device(s) but no node of "
                "that hardware type is in its allowed regions and pools"
            )

        largest = max(options, key=lambda option: option[0].devices)[0]
        if largest.devices < trial.devices:
            return (
                f"trial {trial.trial_id} requests {trial.devices} {trial.hardware} device(s) on one node, "
                f"but the largest eligible node, {largest.name}, has {largest.devices}"
            )
        caps = [cap for node, cap in options if node.devices >= trial.devices]
        return (
            f"trial {trial.trial_id} requests {trial.devices} device(s) but team {trial.team!r} may hold "
            f"at most {max(caps)} in any pool with a node that large (quota plus borrowing limit)"
        )

    def _options(self, trial: PendingTrial) -> list[tuple[Node, float]]:
        """Return the largest node and the team's cap of each pool that ``trial`` may use, cached per call."""
        key = (trial.hardware, trial.allowed_regions, trial.allowed_pools, trial.team)
        options = self._options_cache.get(key)
        if options is None:
            options = [
                (self.largest[pool.name], self._cap(trial.team, pool.name))
                for pool in self.pools.values()
                if _pool_allows(pool, trial) and pool.name in self.largest
            ]
            self._options_cache[key] = options
        return options

    def held_by_limit(self, trial: PendingTrial) -> bool:
        """Return whether a search or team limit, not a lack of free devices, keeps ``trial`` waiting."""
        limit = self.search_limit.get(trial.search_id)
        if limit is not None and self.search_running[trial.search_id] >= limit:
            return True
        if trial.team not in self.capped_teams:
            return False

        return not any(
            self._headroom(trial.team, pool.name) >= trial.devices
            for pool in self.pools.values()
            if _pool_allows(pool, trial)
        )

    def place(self, trial: PendingTrial, reason: str) -> Start | None:
        """Start ``trial`` on the best-fitting node, or return ``None`` if no node has room now."""
        reservation = self.reservation_of.get(trial.trial_id)
        node = self._reserved_node(trial, reservation) or self._best_fit(trial)
        if node is None:
            return None

        slots = tuple(self._available(node, reservation)[: trial.devices])
        self._commit(trial, node, slots, reservation)
        return Start(trial.trial_id, node.name, slots, reason=reason)

    def _reserved_node(self, trial: PendingTrial, reservation: Reservation | None) -> Node | None:
        if reservation is None or reservation.node not in self.position:
            return None

        pool, index = self.position[reservation.node]
        node = self.nodes_by_pool[pool][index]
        if not node.schedulable or self._headroom(trial.team, pool) < trial.devices:
            return None
        if len(self._available(node, reservation)) < trial.devices:
            return None
        return node

    def _best_fit(self, trial: PendingTrial) -> Node | None:
        """Return the eligible node with the fewest free slots that still fit, earliest on ties."""
        devices = trial.devices
        best_free = math.inf
        best_node: Node | None = None
        for pool in self.pools.values():
            if self.max_free[pool.name] < devices or not _pool_allows(pool, trial):
                continue
            if self._headroom(trial.team, pool.name) < devices:
                continue
            for index, free in enumerate(self.free[pool.name]):
                if devices <= free < best_free:
                    best_free, best_node = free, self.nodes_by_pool[pool.name][index]
                    if free == devices:
                        return best_node
        return best_node

    def _commit(self, trial: PendingTrial, node: Node, slots: tuple[int, ...], reservation: Reservation | None) -> None:
        if reservation is not None:
            del self.reservation_of[trial.trial_id]
            self.reserved_slots[reservation.node].difference_update(reservation.slots)
            self._recount_with_max(reservation.node)

        self.running_slots[node.name].update(slots)
        self._recount_with_max(node.name)
        if trial.team in self.capped_teams:
            self.team_devices[trial.team, node.pool] += len(slots)
        self.search_running[trial.search_id] += 1

    def _recount_with_max(self, node_name: str) -> None:
        if node_name not in self.position:
            return
        self._recount(node_name)
        pool = self.position[node_name][0]
        self.max_free[pool] = max(self.free[pool])

    def _cap(self, team_name: str, pool: str) -> float:
        team = self.teams.get(team_name)
        if team is None or pool not in team.borrowing_limit:
            return math.inf
        return team.quota.get(pool, 0) + team.borrowing_limit[pool]

    def _headroom(self, team: str, pool: str) -> float:
        if team not in self.capped_teams:
            return math.inf
        return self._cap(team, pool) - self.team_devices[team, pool]


def _pool_allows(pool: Pool, trial: PendingTrial) -> bool:
    if pool.hardware != trial.hardware:
        return False
    if trial.allowed_regions is not None and pool.region not in trial.allowed_regions:
        return False
    return trial.allowed_pools is None or pool.name in trial.allowed_pools


def _serve_in_order(
    snapshot: Snapshot, order: Sequence[PendingTrial], reason: str, head_of_line_blocking: bool
) -> list[Decision]:
    """Place trials in ``order`` and reject those that can never be placed.

    With head-of-line blocking, no trial starts after the first one that has
    no room. Once no trial can start (blocked, or no free device is left),
    the rest of the queue is only checked for rejections.
    """
    placer = _Placer(snapshot)
    decisions: list[Decision] = []
    blocked = False
    for trial in order:
        rejection = placer.rejection(trial)
        if rejection is not None:
            decisions.append(Reject(trial.trial_id, rejection))
            continue
        if blocked or placer.full or placer.held_by_limit(trial):
            continue

        start = placer.place(trial, reason)
        if start is not None:
            decisions.append(start)
        elif head_of_line_blocking:
            blocked = True
    _validate_if_asked(snapshot, decisions)
    return decisions


class FifoPolicy(SchedulingPolicy):
    """Serve trials in arrival order, like a plain FIFO queue, without backfill.

    The oldest waiting trial that lacks free devices holds back every trial
    behind it, even one that would fit (head-of-line blocking). A trial held
    back only by its search's or team's limit is skipped. Order: ``queued_at``,
    then ``trial_id``. Priority classes and usage are ignored.
    """

    name = "fifo"

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        order = sorted(snapshot.pending, key=_ARRIVAL_ORDER)
        return _serve_in_order(snapshot, order, "fifo: oldest waiting trial", head_of_line_blocking=True)


class PriorityPolicy(SchedulingPolicy):
    """Serve the highest priority class first, FIFO within a class, without preemption.

    Every trial that fits starts, in that order, so a large trial of a high
    class can wait behind a stream of small ones of lower classes that fit
    around it. An unknown class counts as value 0. Order: class value
    (highest first), ``queued_at``, ``trial_id``.
    """

    name = "priority"

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        value = {priority_class.name: priority_class.value for priority_class in snapshot.priority_classes}
        order = sorted(
            snapshot.pending, key=lambda trial: (-value.get(trial.priority, 0), trial.queued_at, trial.trial_id)
        )
        return _serve_in_order(snapshot, order, "priority: highest class first", head_of_line_blocking=False)


class FairSharePolicy(SchedulingPolicy):
    """Serve the team with the least decayed usage per unit of weight first, without preemption.

    Teams are served one trial at a time: each step starts the oldest trial
    that fits of the team whose ``decayed_usage / weight`` is lowest. Within
    one call, each start adds ``devices * start_charge_s`` device-seconds to
    that team's score, so one call does not hand every free device to a
    single team. A team with weight 0 is served after every other team.
    Priority classes are ignored.

    Attributes:
        start_charge_s: Seconds of use that a start adds to its team's score
            within one call.
    """

    name = "fair-share"
    start_charge_s: float = 600.0

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        placer = _Placer(snapshot)
        decisions: list[Decision] = []
        queues = self._queues_by_team(snapshot, placer, decisions)
        teams = {team.name: team for team in snapshot.teams}
        heap = [(_fair_share_score(teams.get(name), 0.0), name) for name in sorted(queues)]
        heapq.heapify(heap)
        charged: Counter[str] = Counter()

        while heap and not placer.full:
            _, name = heapq.heappop(heap)
            start = self._start_next(placer, queues[name])
            if start is None:
                continue
            decisions.append(start)
            charged[name] += len(start.slots) * self.start_charge_s
            if queues[name]:
                heapq.heappush(heap, (_fair_share_score(teams.get(name), charged[name]), name))

        _validate_if_asked(snapshot, decisions)
        return decisions

    @staticmethod
    def _queues_by_team(
        snapshot: Snapshot, placer: _Placer, decisions: list[Decision]
    ) -> dict[str, list[PendingTrial]]:
        """Group placeable trials by team, oldest first, and reject those that can never be placed."""
        queues: dict[str, list[PendingTrial]] = defaultdict(list)
        for trial in sorted(snapshot.pending, key=_ARRIVAL_ORDER):
            rejection = placer.rejection(trial)
            if rejection is not None:
                decisions.append(Reject(trial.trial_id, rejection))
            else:
                queues[trial.team].append(trial)
        for queue in queues.values():
            queue.reverse()
        return queues

    @staticmethod
    def _start_next(placer: _Placer, queue: list[PendingTrial]) -> Start | None:
        """Start the oldest trial in ``queue`` (stored newest first) that fits, removing it from the queue."""
        for position in range(len(queue) - 1, -1, -1):
            trial = queue[position]
            if placer.held_by_limit(trial):
                continue
            start = placer.place(trial, "fair-share: lowest decayed usage per weight")
            if start is not None:
                del queue[position]
                return start
        queue.clear()
        return None


def _fair_share_score(team: Team | None, charge: float) -> tuple[int, float]:
    usage = (team.decayed_usage if team is not None else 0.0) + charge
    weight = team.weight if team is not None else 1.0
    if weight <= 0:
        return (1, usage)
    return (0, usage / weight)


def _validate_if_asked(snapshot: Snapshot, decisions: list[Decision]) -> None:
    """Run the shared invariant checks on ``decisions`` when ``snapshot.settings.validate`` is on.

    Raises:
        SchedulingInvariantError: A decision breaks an invariant (a bug in this module).
    """
    if not snapshot.settings.validate:
        return

    # Imported here so that the policies load without the checker, which only validation mode needs.
    from neurfly.core.scheduling._validate import check_decisions

    check_decisions(snapshot, decisions)


__all__ = ["FairSharePolicy", "FifoPolicy", "PriorityPolicy"]
