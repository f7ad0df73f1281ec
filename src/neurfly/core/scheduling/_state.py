"""Working state of one ``DefaultPolicy.schedule`` call.

``ClusterState`` is built once from the snapshot and updated as the policy
decides, so each placement sees the starts, reservations and preemptions
decided before it in the same call. Nothing here outlives the call.

Device accounting per team and pool, in devices:

* ``held``: devices of running attempts (yielding ones too) plus the starts
  of this call. This is what the node and quota invariants count.
* ``committed``: ``held`` plus the devices of reservations whose trial has not
  started yet. New starts and reservations are admitted against it, so a
  reserved trial finds room under its team's limits when it starts, unless
  the limits shrank in between.
* ``standing``: devices of running attempts that are not yielding, minus the
  victims chosen in this call. Reclaim keeps it at or above the quota.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from enum import Enum

from neurfly.core.scheduling._fairshare import check_team_values, fair_share_rank
from neurfly.core.scheduling.snapshot import (
    Node,
    PendingTrial,
    Pool,
    PriorityClass,
    Reservation,
    RunningAttempt,
    Snapshot,
    Team,
)

_logger = logging.getLogger(__name__)

INFINITE = math.inf


class Phase(Enum):
    """The team limit that a placement is admitted against."""

    NOMINAL = "nominal"
    """Within the team's quota in the pool."""

    BORROWING = "borrowing"
    """Within the team's quota plus its borrowing limit in the pool."""


class NodeState:
    """Slots of one node as this call tracks them.

    ``free`` lists slots that no attempt holds and no reservation covers, and
    is empty on a node that is not schedulable. ``soon_free`` lists slots held
    by yielding attempts that no reservation covers: they free up without a
    new preemption. ``blocked`` is every slot reserved for some pending trial.
    """

    __slots__ = ("blocked", "free", "holder", "index", "node", "pool", "soon_free")

    def __init__(self, node: Node, index: int) -> None:
        self.node = node
        self.pool = node.pool
        self.index = index
        self.free: list[int] = []
        self.soon_free: list[int] = []
        self.blocked: set[int] = set()
        self.holder: dict[int, RunningAttempt] = {}

    @property
    def name(self) -> str:
        return self.node.name


class TeamAccount:
    """One team's entitlement and its devices per pool, updated during the call."""

    __slots__ = ("borrowing_limit", "committed", "committed_total", "held", "name", "quota", "standing", "usage", "weight")

    def __init__(self, team: Team) -> None:
        check_team_values(team.name, team.weight, team.decayed_usage)
        _check_device_counts(team)
        self.name = team.name
        self.weight = float(team.weight)
        self.usage = float(team.decayed_usage)
        self.quota = team.quota
        self.borrowing_limit = team.borrowing_limit
        self.held: dict[str, int] = defaultdict(int)
        self.committed: dict[str, int] = defaultdict(int)
        self.standing: dict[str, int] = defaultdict(int)
        self.committed_total = 0

    def limit(self, pool: str, phase: Phase) -> float:
        """Return the most devices the team may commit in ``pool`` under ``phase``."""
        quota = self.quota.get(pool, 0)
        if phase is Phase.NOMINAL:
            return quota
        extra = self.borrowing_limit.get(pool)
        return INFINITE if extra is None else quota + extra

    def rank(self, horizon_s: float) -> tuple[bool, float]:
        """Return the fair-share sort key, counting committed devices over ``horizon_s``."""
        return fair_share_rank(self.usage + horizon_s * self.committed_total, self.weight)

    def commit(self, pool: str, devices: int) -> None:
        self.committed[pool] += devices
        self.committed_total += devices


class Candidate:
    """A running attempt that some preemptor may choose as a victim.

    ``key`` is the victim order: lowest priority value first, then borrowed
    before nominal, then least progress at risk, then most recently started,
    then highest attempt id. ``usable`` counts the victim's slots that no
    reservation covers, which are the ones its preemptor can take.
    """

    __slots__ = ("attempt", "borrowed", "chosen", "devices", "key", "node", "owner", "priority", "quota", "team", "usable")

    def __init__(self, attempt: RunningAttempt, node: NodeState, priority: int, borrowed: bool, owner: TeamAccount) -> None:
        self.attempt = attempt
        self.team = attempt.team
        self.owner = owner
        self.quota = owner.quota.get(node.pool, 0)
        self.node = node
        self.priority = priority
        self.borrowed = borrowed
        self.devices = len(attempt.slots)
        self.usable = sum(1 for slot in attempt.slots if slot not in node.blocked) if node.blocked else self.devices
        self.chosen = False
        self.key = (priority, not borrowed, attempt.progress_at_risk, -attempt.started_at, -attempt.attempt_id)

    def spare(self) -> bool:
        """Return whether this attempt is borrowed and its team keeps its quota without it."""
        return self.borrowed and self.owner.standing[self.node.pool] - self.devices >= self.quota


def _victim_key(candidate: Candidate) -> tuple:
    return candidate.key


class NodeLayout:
    """The parts of a snapshot's node list that do not change between calls.

    Building it checks the nodes: unique names, known pools, device counts
    of 0 or more. A caller may pass back the layout of its last call.
    ``matches`` accepts it only for the same node and pool tuple objects, so
    a changed node list always gets a fresh, checked layout.

    Raises:
        ValueError: A node name appears twice, a node is in an unknown pool,
            or a node has a negative device count.
    """

    __slots__ = (
        "capacity", "free_template", "index_of", "largest_node", "nodes", "ordered", "pool_indexes",
        "pool_of_node", "pool_order", "pools",
    )  # fmt: skip

    def __init__(self, snapshot: Snapshot) -> None:
        self.nodes = snapshot.nodes
        self.pools = snapshot.pools
        pools = {p.name: p for p in snapshot.pools}
        self.ordered: list[Node] = sorted(snapshot.nodes, key=lambda n: n.name)
        self.pool_indexes: dict[str, list[int]] = defaultdict(list)
        seen: set[str] = set()
        for index, node in enumerate(self.ordered):
            if node.name in seen:
                raise ValueError(f"node {node.name!r} appears more than once in the snapshot; node names must be unique")
            if node.pool not in pools:
                raise ValueError(f"node {node.name!r} is in unknown pool {node.pool!r}; pools are {sorted(pools)}")
            if node.devices < 0:
                raise ValueError(f"node {node.name!r} has {node.devices} devices, but a node needs 0 or more")
            seen.add(node.name)
            self.pool_indexes[node.pool].append(index)

        # max() returns the first of equal maxima, so ties go to the name that sorts first.
        self.largest_node: dict[str, Node] = {
            pool: max((self.ordered[i] for i in indexes), key=lambda n: n.devices)
            for pool, indexes in self.pool_indexes.items()
        }
        self.pool_order = {name: (pool.price_per_device_hour, name) for name, pool in pools.items()}
        self.index_of: dict[str, int] = {node.name: index for index, node in enumerate(self.ordered)}
        self.pool_of_node: dict[str, str] = {node.name: node.pool for node in self.ordered}

        # Per pool, the node indexes by free-slot count and the free slots
        # when no attempt runs and nothing is reserved: a schedulable node has
        # all its devices free, another none. Each list is sorted, so it is a heap.
        self.free_template: dict[str, list[list[int]]] = {}
        self.capacity: dict[str, int] = {}
        for pool, largest in self.largest_node.items():
            buckets: list[list[int]] = [[] for _ in range(largest.devices + 1)]
            for index in self.pool_indexes[pool]:
                node = self.ordered[index]
                buckets[node.devices if node.schedulable else 0].append(index)
            self.free_template[pool] = buckets
            self.capacity[pool] = sum(self.ordered[i].devices for i in self.pool_indexes[pool] if self.ordered[i].schedulable)

    def matches(self, snapshot: Snapshot) -> bool:
        """Return whether ``snapshot`` contains the same node and pool tuple objects as this layout's snapshot."""
        return snapshot.nodes is self.nodes and snapshot.pools is self.pools


class ClusterState:
    """Indexes of a snapshot and the capacity left as the policy decides.

    Args:
        snapshot: The cluster snapshot of this call.

    Raises:
        ValueError: The snapshot has a duplicate id, a node of an unknown
            pool, a team with a negative, infinite or NaN weight or usage, a
            negative quota, or a search with a negative ``max_concurrent``.
    """

    def __init__(self, snapshot: Snapshot, layout: NodeLayout | None = None) -> None:
        self.snapshot = snapshot
        self.now = snapshot.now
        self.settings = snapshot.settings
        self.priorities: dict[str, PriorityClass] = {c.name: c for c in snapshot.priority_classes}
        self.pools: dict[str, Pool] = {p.name: p for p in snapshot.pools}
        self.pending: dict[int, PendingTrial] = _index_pending(snapshot.pending)
        self.search_cap: dict[int, int] = _search_caps(snapshot)
        self.search_active: dict[int, int] = defaultdict(int)
        self.teams: dict[str, TeamAccount] = {t.name: TeamAccount(t) for t in snapshot.teams}
        self._eligible_cache: dict[object, tuple[str, ...]] = {}
        self.candidates_ready = False
        self._victim_bounds: tuple[float, bool] | None = None

        if layout is None or not layout.matches(snapshot):
            layout = NodeLayout(snapshot)
        self.layout = layout
        self._index_nodes(layout)
        self._index_running(snapshot.running)

    # -- indexes ---------------------------------------------------------------------------------

    def _index_nodes(self, layout: NodeLayout) -> None:
        # Node states are created on first use, because most calls touch only
        # the nodes that run attempts or hold reservations. A node without a
        # state has every device free (see ``build_capacity``).
        self._node_states: list[NodeState | None] = [None] * len(layout.ordered)
        self.largest_node: dict[str, Node] = layout.largest_node
        self.pool_order = layout.pool_order
        self.pool_names = layout.pool_indexes.keys()
        self._capacity_ready = False

    def node_at(self, index: int) -> NodeState:
        """Return the state of the node at ``index`` in name order."""
        state = self._node_states[index]
        if state is None:
            node = self.layout.ordered[index]
            state = self._node_states[index] = NodeState(node, index)
            if self._capacity_ready and node.schedulable:
                state.free = list(range(node.devices))
        return state

    def node_named(self, name: str) -> NodeState | None:
        """Return the state of the node called ``name``, or ``None`` when the snapshot has no such node."""
        index = self.layout.index_of.get(name)
        return None if index is None else self.node_at(index)

    def pool_nodes(self, pool: str) -> list[NodeState]:
        """Return the states of the nodes of ``pool``, in name order."""
        return [self.node_at(index) for index in self.layout.pool_indexes.get(pool, ())]

    def all_nodes(self) -> list[NodeState]:
        """Return the states of all nodes, in name order."""
        return [self.node_at(index) for index in range(len(self._node_states))]

    def _index_running(self, running: tuple[RunningAttempt, ...]) -> None:
        # This loop runs over every running attempt on every call, so it
        # reads the indexes directly and sums devices per team and pool
        # before it touches the accounts.
        self.running: dict[int, RunningAttempt] = {attempt.attempt_id: attempt for attempt in running}
        if len(self.running) != len(running):
            _raise_duplicate_attempt(running)

        index_of = self.layout.index_of
        ordered = self.layout.ordered
        states = self._node_states
        search_active = self.search_active
        held: dict[tuple[str, str], int] = defaultdict(int)
        standing: dict[tuple[str, str], int] = defaultdict(int)
        lost: dict[str, int] = defaultdict(int)
        for attempt in running:
            search_active[attempt.search_id] += 1
            devices = len(attempt.slots)
            index = index_of.get(attempt.node)
            if index is None:
                lost[attempt.team] += devices
                continue

            node = states[index]
            if node is None:
                node = states[index] = NodeState(ordered[index], index)
            key = (attempt.team, node.pool)
            held[key] += devices
            if not attempt.yielding:
                standing[key] += devices
            holder = node.holder
            for slot in attempt.slots:
                holder[slot] = attempt

        for (team, pool), devices in held.items():
            account = self.account(team)
            account.held[pool] += devices
            account.commit(pool, devices)
        for (team, pool), devices in standing.items():
            self.account(team).standing[pool] += devices
        for team, devices in lost.items():
            self.account(team).committed_total += devices
        if lost:
            _logger.warning("running attempt(s) of %s are on nodes missing from the snapshot; their slots are ignored", sorted(lost))

    def account(self, team: str) -> TeamAccount:
        """Return the account of ``team``; a team missing from the snapshot gets ``Team``'s defaults."""
        account = self.teams.get(team)
        if account is None:
            account = TeamAccount(Team(name=team))
            self.teams[team] = account
        return account

    def eligible_pools(self, trial: PendingTrial) -> tuple[str, ...]:
        """Return the pools a trial may run in, cheapest first, then by name."""
        if trial.allowed_regions is None and trial.allowed_pools is None:
            pools = self._eligible_cache.get(trial.hardware)
            key: object = trial.hardware
        else:
            key = (trial.hardware, trial.allowed_regions, trial.allowed_pools)
            pools = self._eligible_cache.get(key)
        if pools is None:
            pools = tuple(
                sorted(
                    (
                        name
                        for name, pool in self.pools.items()
                        if name in self.pool_names and _pool_allows(pool, trial)
                    ),
                    key=self.pool_order.__getitem__,
                )
            )
            self._eligible_cache[key] = pools
        return pools

    # -- reservations and victims ----------------------------------------------------------------

    def resolve_reservations(self, rejected: set[int]) -> None:
        """Block reserved slots and choose the reservation that each trial may use.

        A trial may use its oldest reservation when the trial is pending and
        not rejected in this call, the node is schedulable and in one of the
        trial's eligible pools, the slots are distinct slots of the node, no
        running attempt that is not yielding holds one of them, and no older
        usable reservation covers one of them. Its devices then count as
        committed for the team and as active for the search. Reservations it
        may not use still block their slots for every other trial.
        """
        for name, slots in reservation_blocks(self.snapshot, self.pending).items():
            node = self.node_named(name)
            if node is not None:
                node.blocked = slots

        self.reservation_of: dict[int, tuple[NodeState, tuple[int, ...]]] = {}
        claimed: dict[str, set[int]] = defaultdict(set)
        for reservation in sorted_reservations(self.snapshot.reservations):
            trial = self.pending.get(reservation.trial_id)
            if trial is None or trial.trial_id in rejected or trial.trial_id in self.reservation_of:
                continue
            node = self._usable_node(reservation, trial, claimed[reservation.node])
            if node is None:
                _logger.debug("reservation of trial %d on %s is not usable; it only blocks its slots", trial.trial_id, reservation.node)
                continue

            slots = tuple(sorted(reservation.slots))
            claimed[node.name].update(slots)
            self.reservation_of[trial.trial_id] = (node, slots)
            self.account(trial.team).commit(node.pool, trial.devices)
            self.search_active[trial.search_id] += 1

    def _usable_node(self, reservation: Reservation, trial: PendingTrial, claimed: set[int]) -> NodeState | None:
        node = self.node_named(reservation.node)
        if node is None or not node.node.schedulable or node.pool not in self.eligible_pools(trial):
            return None
        slots = reservation.slots
        if not slots or len(set(slots)) != len(slots) or any(not 0 <= s < node.node.devices for s in slots):
            return None
        if any(s in claimed for s in slots):
            return None
        if any(s in node.holder and not node.holder[s].yielding for s in slots):
            return None
        return node

    def build_candidates(self) -> None:
        """Index the running attempts that may become victims, in victim order per pool.

        A candidate is not yielding, runs on a schedulable node, has a known
        preemptible priority class and has run for at least
        ``settings.min_runtime_s``.
        """
        borrowed = rank_borrowed(
            self.running.values(),
            {t.name: t for t in self.snapshot.teams},
            self.priorities,
            self.layout.pool_of_node,
        )
        # This loop runs over every running attempt, so it binds its lookups
        # to local names.
        values = {name: c.value for name, c in self.priorities.items() if c.preemptible}
        now = self.now
        min_runtime = self.settings.min_runtime_s
        index_of = self.layout.index_of
        states = self._node_states
        account = self.account
        by_pool: dict[str, list[Candidate]] = defaultdict(list)
        for attempt in self.running.values():
            if attempt.yielding or now - attempt.started_at < min_runtime:
                continue
            value = values.get(attempt.priority)
            index = index_of.get(attempt.node)
            if value is None or index is None:
                continue
            node = states[index]
            if not node.node.schedulable:
                continue
            by_pool[node.pool].append(Candidate(attempt, node, value, attempt.attempt_id in borrowed, account(attempt.team)))

        # Each pool's list is sorted once, and a team's own list keeps that order.
        self.candidates: dict[str, list[Candidate]] = {}
        self.borrowed_candidates: dict[str, list[Candidate]] = {}
        self.own_candidates: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
        for pool, candidates in by_pool.items():
            candidates.sort(key=_victim_key)
            self.candidates[pool] = candidates
            self.borrowed_candidates[pool] = [c for c in candidates if c.borrowed]
            for candidate in candidates:
                self.own_candidates[candidate.team, pool].append(candidate)
        self.candidate_priorities = sorted(c.priority for candidates in by_pool.values() for c in candidates)
        self.borrowed_total = sum(len(candidates) for candidates in self.borrowed_candidates.values())
        self.candidates_ready = True

    def victim_bounds(self) -> tuple[float, bool]:
        """Return cheap stand-ins for the victim candidates, computed once per call.

        The first value is at most the priority value of any candidate
        (infinite when no running attempt has a preemptible class). The
        second is false only when no team has more standing devices than
        its quota in a pool, and then no candidate is borrowed. Both stay
        true bounds as the call goes on, because standing devices only
        decrease.
        """
        if self._victim_bounds is None:
            names = {attempt.priority for attempt in self.running.values()}
            values = [self.priorities[n].value for n in names if n in self.priorities and self.priorities[n].preemptible]
            over_quota = any(
                devices > account.quota.get(pool, 0) for account in self.teams.values() for pool, devices in account.standing.items()
            )
            self._victim_bounds = (min(values, default=INFINITE), over_quota)
        return self._victim_bounds

    def bound_rooms(self, level: int) -> None:
        """Bound the slots preemption can offer a preemptor of ``level``, per node and pool.

        ``room_borrowed`` maps a node index to its free and soon-free slots
        plus the slots of its borrowed candidates of a lower priority value.
        ``max_room_borrowed`` is the maximum of that per pool.
        ``max_room_any`` is the per-pool maximum that also counts nominal
        candidates of a lower value and borrowed ones of any value. Later in
        the call these only overestimate, so a request above them cannot
        succeed.
        """
        any_room: dict[int, int] = defaultdict(int)
        borrowed_room: dict[int, int] = defaultdict(int)
        for candidates in self.candidates.values():
            for candidate in candidates:
                if candidate.chosen:
                    continue
                is_lower = candidate.priority < level
                if is_lower or candidate.borrowed:
                    any_room[candidate.node.index] += candidate.usable
                if is_lower and candidate.borrowed:
                    borrowed_room[candidate.node.index] += candidate.usable

        self.room_borrowed: dict[int, int] = {}
        self.max_room_borrowed: dict[str, int] = defaultdict(int)
        self.max_room_any: dict[str, int] = defaultdict(int)
        for node in self.all_nodes():
            if not node.node.schedulable:
                continue
            base = len(node.free) + len(node.soon_free)
            self.room_borrowed[node.index] = base + borrowed_room[node.index]
            self.max_room_borrowed[node.pool] = max(self.max_room_borrowed[node.pool], self.room_borrowed[node.index])
            self.max_room_any[node.pool] = max(self.max_room_any[node.pool], base + any_room[node.index])

    # -- free slots ------------------------------------------------------------------------------

    def build_capacity(self) -> None:
        """Compute free and soon-free slots after running attempts and reservations.

        Starts from the layout's idle cluster and corrects it for the nodes
        with a state so far, which include every node that runs an attempt or
        has a reservation. A corrected node stays in its idle bucket as a stale
        entry, which ``best_fit`` skips.
        """
        layout = self.layout
        self.bucket: dict[str, list[list[int]]] = {
            pool: [list(indexes) for indexes in buckets] for pool, buckets in layout.free_template.items()
        }
        self.pool_free: dict[str, int] = defaultdict(int, layout.capacity)
        self.free_total = sum(layout.capacity.values())
        self.soon_free_total = 0
        self.soon_free_nodes: dict[str, dict[int, NodeState]] = defaultdict(dict)
        for state in self._node_states:
            if state is not None:
                self._fill_node(state)
        self._capacity_ready = True

    def _fill_node(self, state: NodeState) -> None:
        node = state.node
        if not node.schedulable:
            return
        holder, blocked = state.holder, state.blocked
        if blocked:
            state.free = [s for s in range(node.devices) if s not in holder and s not in blocked]
        else:
            state.free = [s for s in range(node.devices) if s not in holder]
        yielding = [s for s, attempt in holder.items() if attempt.yielding]
        if yielding:
            state.soon_free = sorted(s for s in yielding if s not in blocked and 0 <= s < node.devices)
        taken = node.devices - len(state.free)
        if taken:
            heapq.heappush(self.bucket[state.pool][len(state.free)], state.index)
            self.pool_free[state.pool] -= taken
            self.free_total -= taken
        if state.soon_free:
            self.soon_free_nodes[state.pool][state.index] = state
            self.soon_free_total += len(state.soon_free)

    def best_fit(self, pool: str, devices: int) -> NodeState | None:
        """Return the node of ``pool`` with the fewest free slots that still hold ``devices``.

        Ties go to the node whose name sorts first.
        """
        if self.pool_free[pool] < devices:
            return None

        buckets = self.bucket[pool]
        for count in range(devices, len(buckets)):
            heap = buckets[count]
            while heap and len(self.node_at(heap[0]).free) != count:
                heapq.heappop(heap)
            if heap:
                return self.node_at(heap[0])
        return None

    def take_free(self, state: NodeState, slots: Iterable[int]) -> None:
        """Remove ``slots`` from the free slots of ``state``; they must be free."""
        taken = set(slots)
        before = len(state.free)
        state.free = [s for s in state.free if s not in taken]
        removed = before - len(state.free)
        if removed:
            self.pool_free[state.pool] -= removed
            self.free_total -= removed
            heapq.heappush(self.bucket[state.pool][len(state.free)], state.index)

    def take_soon_free(self, state: NodeState, slots: Iterable[int]) -> None:
        """Remove ``slots`` from the soon-free slots of ``state``."""
        taken = set(slots)
        before = len(state.soon_free)
        state.soon_free = [s for s in state.soon_free if s not in taken]
        self.soon_free_total -= before - len(state.soon_free)
        if not state.soon_free:
            self.soon_free_nodes[state.pool].pop(state.index, None)

    def add_soon_free(self, state: NodeState, slots: Iterable[int]) -> None:
        """Mark ``slots`` of a victim that its preemptor does not need as soon free."""
        added = [s for s in slots if s not in state.blocked]
        if not added:
            return
        state.soon_free = sorted([*state.soon_free, *added])
        self.soon_free_total += len(added)
        self.soon_free_nodes[state.pool][state.index] = state


def _pool_allows(pool: Pool, trial: PendingTrial) -> bool:
    if pool.hardware != trial.hardware:
        return False
    if trial.allowed_regions is not None and pool.region not in trial.allowed_regions:
        return False
    return trial.allowed_pools is None or pool.name in trial.allowed_pools


def _index_pending(trials: tuple[PendingTrial, ...]) -> dict[int, PendingTrial]:
    index = {trial.trial_id: trial for trial in trials}
    if len(index) != len(trials):
        seen: set[int] = set()
        for trial in trials:
            if trial.trial_id in seen:
                raise ValueError(f"pending trial {trial.trial_id} appears more than once in the snapshot; ids must be unique")
            seen.add(trial.trial_id)
    return index


def _search_caps(snapshot: Snapshot) -> dict[int, int]:
    caps: dict[int, int] = {}
    for search in snapshot.searches:
        if search.max_concurrent < 0:
            raise ValueError(f"search {search.search_id} has max_concurrent={search.max_concurrent}, but it must be 0 or more")
        caps[search.search_id] = search.max_concurrent
    return caps


def _raise_duplicate_attempt(running: Iterable[RunningAttempt]) -> None:
    seen: set[int] = set()
    for attempt in running:
        if attempt.attempt_id in seen:
            raise ValueError(f"attempt {attempt.attempt_id} appears more than once in snapshot.running")
        seen.add(attempt.attempt_id)


def _check_device_counts(team: Team) -> None:
    for field_name in ("quota", "borrowing_limit"):
        for pool, count in getattr(team, field_name).items():
            if count < 0:
                raise ValueError(f"team {team.name!r} has {field_name}[{pool!r}]={count}, but it must be 0 or more")


def reservation_blocks(snapshot: Snapshot, pending_ids: Iterable[int]) -> dict[str, set[int]]:
    """Return, per node, the slots that reservations of pending trials cover.

    Every stored reservation of a pending trial blocks its slots for other
    trials, even one the policy cannot use, because the controller and the
    simulator reject a ``Start`` on another trial's reserved slots.
    """
    pending = set(pending_ids)
    blocked: dict[str, set[int]] = defaultdict(set)
    for reservation in snapshot.reservations:
        if reservation.trial_id in pending:
            blocked[reservation.node].update(reservation.slots)
    return blocked


def sorted_reservations(reservations: Iterable[Reservation]) -> list[Reservation]:
    """Return reservations oldest first, then by trial id and node name."""
    return sorted(reservations, key=lambda r: (r.created_at, r.trial_id, r.node))


def rank_borrowed(attempts: Iterable[RunningAttempt], teams: dict[str, Team], priorities: dict[str, PriorityClass], pool_of_node: dict[str, str]) -> set[int]:
    """Return the ids of the running attempts that hold borrowed devices.

    Per team and pool, the team's attempts that are not yielding are ranked:
    attempts of a non-preemptible (or unknown) priority class first, then by
    priority value, highest first, then oldest start first, then lowest
    attempt id. They fill the team's quota in that order. An attempt is
    borrowed when the attempts ranked before it already fill the quota, so a
    borrowed attempt lies wholly above the quota, and an attempt that
    straddles the quota counts as nominal. Yielding attempts are leaving and
    are not ranked.
    """
    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for attempt in attempts:
        pool = pool_of_node.get(attempt.node)
        if attempt.yielding or pool is None:
            continue
        priority_class = priorities.get(attempt.priority)
        protected = priority_class is None or not priority_class.preemptible
        value = priority_class.value if priority_class is not None else 0
        groups[attempt.team, pool].append((not protected, -value, attempt.started_at, attempt.attempt_id, len(attempt.slots)))

    borrowed: set[int] = set()
    for (team_name, pool), ranked in groups.items():
        team = teams.get(team_name)
        quota = team.quota.get(pool, 0) if team is not None else 0
        filled = 0
        for entry in sorted(ranked):
            if filled >= quota:
                borrowed.add(entry[3])
            filled += entry[4]
    return borrowed
