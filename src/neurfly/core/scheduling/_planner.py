"""The steps of one ``DefaultPolicy.schedule`` call, in the order they run.

1. Reject the trials that no node could ever hold.
2. For each priority level, highest value first: start the reserved trials
   whose slots are free; place trials within their team's quota (a starving
   trial may also borrow or drain a node here); then place trials on
   borrowed devices, and let a trial that still finds no room preempt
   victims and reserve their slots, or drain a node if it is starving.
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict

from neurfly.core.scheduling._drain import choose_drain_node, drain_slots, draining_pools, is_starving
from neurfly.core.scheduling._preemption import PreemptionPlan, plan_preemption
from neurfly.core.scheduling._queue import SearchQueue, TeamQueue, Visit, sort_search_trials, walk
from neurfly.core.scheduling._state import INFINITE, ClusterState, NodeLayout, NodeState, Phase, TeamAccount
from neurfly.core.scheduling.snapshot import Decision, PendingTrial, Preempt, Reject, Reserve, Snapshot, Start

_logger = logging.getLogger(__name__)

_Levels = list[tuple[int, dict[str, dict[int, list[PendingTrial]]]]]


class Planner:
    """Computes the decisions of one call; use once.

    Args:
        snapshot: The cluster snapshot.

    Raises:
        ValueError: The snapshot is malformed (see ``ClusterState``).
    """

    def __init__(self, snapshot: Snapshot, layout: NodeLayout | None = None) -> None:
        self.state = ClusterState(snapshot, layout)
        self.decisions: list[Decision] = []
        self.rejected: set[int] = set()
        self.done: set[int] = set()
        self.preemptors = 0
        self.level = 0
        self.lower_left = 0
        self.borrowed_left = 0
        self.chosen: list[tuple[int, bool]] = []
        self._bounds_ready = False
        self._victims_counted = False
        # Smallest request per (team, eligible pools, phase) that found no room,
        # and per (team, eligible pools) that found no victims or no node to
        # drain, in the current walk. Free slots and victims only shrink
        # during a walk, so any request at least that large fails too.
        self._no_room: dict[tuple, int] = {}
        self._no_victims: dict[tuple, int] = {}
        self._no_drain: dict[tuple, int] = {}
        self._smallest: dict[tuple[int, str], tuple[dict, dict]] = {}
        self._level_teams: dict[str, dict[int, list[PendingTrial]]] = {}
        self._grouped: dict[tuple[int, str, int], list[PendingTrial]] = defaultdict(list)
        self.draining: set[str] = set()

    def plan(self) -> list[Decision]:
        """Return the decisions, in the order the caller applies them."""
        state = self.state
        self._reject_impossible()
        state.resolve_reservations(self.rejected)
        state.build_capacity()
        self.draining = draining_pools(state)

        for level, teams in self._levels():
            self._place_level(level, teams)

        _logger.debug(
            "schedule at t=%s: %d decision(s) for %d pending trial(s), %d preemptor(s)",
            state.now,
            len(self.decisions),
            len(state.pending),
            self.preemptors,
        )
        return self.decisions

    # -- rejection -------------------------------------------------------------------------------

    def _reject_impossible(self) -> None:
        """Reject the trials no node could ever hold, and group the others by level, team and search."""
        state = self.state
        value_of = {name: priority_class.value for name, priority_class in state.priorities.items()}
        limits: dict[tuple, tuple] = {}
        grouped = self._grouped
        rejects = []
        for trial in state.pending.values():
            pools = state.eligible_pools(trial)
            if pools and trial.devices >= 1 and trial.priority in value_of:
                key = (trial.team, pools)
                if key not in limits:
                    limits[key] = self._largest_allowed(state.account(trial.team), pools)
                if trial.devices <= limits[key][2]:
                    grouped[value_of[trial.priority], trial.team, trial.search_id].append(trial)
                    continue
            rejects.append(Reject(trial.trial_id, self._never_fits(trial, limits)))

        rejects.sort(key=lambda reject: reject.trial_id)
        self.rejected.update(reject.trial_id for reject in rejects)
        self.decisions.extend(rejects)

    def _never_fits(self, trial: PendingTrial, limits: dict[tuple, tuple]) -> str:
        """Return why no node could ever hold ``trial``, or an empty string when one could."""
        state = self.state
        pools = state.eligible_pools(trial)
        request = f"trial {trial.trial_id} requests {trial.devices} {trial.hardware} device(s) on one node"
        if trial.priority not in state.priorities:
            return f"{request} at priority class {trial.priority!r}, which is not defined; defined classes are {sorted(state.priorities)}"
        if trial.devices < 1:
            return f"{request}; a trial must request at least 1 device"
        if not pools:
            return f"{request}, but no pool of that hardware type is in its allowed regions and pools, so no node is eligible"

        key = (trial.team, pools)
        if key not in limits:
            limits[key] = self._largest_allowed(state.account(trial.team), pools)
        largest, max_limit, max_allowed = limits[key]
        largest_text = f"the largest eligible node, {largest.name} in pool {largest.pool}, has {largest.devices}"
        if trial.devices > largest.devices:
            return f"{request}, but {largest_text}"
        if trial.devices > max_limit:
            return (
                f"{request}, but team {trial.team!r} may hold at most {max_limit} in any eligible pool "
                f"(quota plus borrowing limit); {largest_text}"
            )
        if trial.devices > max_allowed:
            return (
                f"{request}, but no eligible pool has both a node that large and a quota plus borrowing limit "
                f"of team {trial.team!r} that large; {largest_text}"
            )
        return ""

    def _largest_allowed(self, account: TeamAccount, pools: tuple[str, ...]) -> tuple:
        state = self.state
        largest = max((state.largest_node[p] for p in pools), key=lambda n: n.devices)
        max_limit = max(account.limit(p, Phase.BORROWING) for p in pools)
        max_allowed = max(min(state.largest_node[p].devices, account.limit(p, Phase.BORROWING)) for p in pools)
        return largest, max_limit, max_allowed

    # -- reservations ----------------------------------------------------------------------------

    def _start_reserved(self, level: int) -> None:
        """Start the reserved trials of ``level`` whose slots suffice, and grow the reservations of draining trials.

        A reserved trial starts when its reserved slots that no attempt holds,
        topped up with free slots of the same node, cover its request and its
        team would stay within its limit. Otherwise it starts on another node
        that has room now, if any, and the caller drops the reservation. A
        reservation smaller than its request (a drain) that still waits takes
        the node's newly free and soon-free slots.
        """
        state = self.state
        for trial_id, (node, slots) in state.reservation_of.items():
            trial = state.pending[trial_id]
            if state.priorities[trial.priority].value != level:
                continue
            account = state.account(trial.team)
            ready = [s for s in slots if s not in node.holder][: trial.devices]
            missing = trial.devices - len(ready)
            within_limit = account.held[node.pool] + trial.devices <= account.limit(node.pool, Phase.BORROWING)
            if within_limit and missing <= len(node.free):
                self._start_on_reservation(trial, account, node, ready, node.free[:missing])
            elif self._start_elsewhere(trial, account, node.pool):
                continue
            elif len(slots) < trial.devices:
                self._grow_drain(trial, node, slots)

    def _start_elsewhere(self, trial: PendingTrial, account: TeamAccount, reserved_pool: str) -> bool:
        """Try to place a reserved trial on free slots of any node, as if it held no reservation."""
        state = self.state
        if not state.free_total:
            return False
        account.commit(reserved_pool, -trial.devices)
        state.search_active[trial.search_id] -= 1
        cap = state.search_cap.get(trial.search_id)
        within_cap = cap is None or state.search_active[trial.search_id] < cap
        if within_cap and self._place(trial, account, Phase.BORROWING):
            return True
        account.commit(reserved_pool, trial.devices)
        state.search_active[trial.search_id] += 1
        return False

    def _start_on_reservation(self, trial: PendingTrial, account: TeamAccount, node: NodeState, ready: list[int], top_up: list[int]) -> None:
        self.state.take_free(node, top_up)
        account.held[node.pool] += trial.devices
        self.done.add(trial.trial_id)
        reason = "its reserved devices are free" if not top_up else "its reserved devices, topped up with free ones, suffice"
        self.decisions.append(Start(trial.trial_id, node.name, tuple(sorted([*ready, *top_up])), reason=reason))

    def _grow_drain(self, trial: PendingTrial, node: NodeState, slots: tuple[int, ...]) -> None:
        grown = drain_slots(self.state, node, slots, trial.devices)
        if len(grown) > len(slots):
            reason = f"drains {node.name} for trial {trial.trial_id}: {len(grown)} of {trial.devices} device(s) held"
            self.decisions.append(Reserve(trial.trial_id, node.name, grown, reason=reason))

    # -- levels ----------------------------------------------------------------------------------

    def _levels(self) -> _Levels:
        """Return the trials to walk per priority value, team and search, highest value first.

        Trials with a usable reservation are left out of the walks, but their
        priority value still gets a level so that they can start.
        """
        state = self.state
        reserved = state.reservation_of
        groups: dict[int, dict[str, dict[int, list[PendingTrial]]]] = {}
        for trial_id in reserved:
            groups.setdefault(state.priorities[state.pending[trial_id].priority].value, {})

        for (value, team, search_id), trials in self._grouped.items():
            if reserved:
                trials = [t for t in trials if t.trial_id not in reserved]
            if trials:
                groups.setdefault(value, {}).setdefault(team, {})[search_id] = sort_search_trials(trials)
        return sorted(groups.items(), key=lambda item: -item[0])

    def _team_queues(self, teams: dict[str, dict[int, list[PendingTrial]]]) -> list[TeamQueue]:
        state = self.state
        done = self.done
        queues = []
        for team, searches in teams.items():
            search_queues = [
                SearchQueue(search_id, trials, state.search_cap.get(search_id), done) for search_id, trials in searches.items()
            ]
            queues.append(TeamQueue(state.account(team), search_queues, state))
        return queues

    def _place_level(self, level: int, teams: dict[str, dict[int, list[PendingTrial]]]) -> None:
        self.level = level
        self._level_teams = teams
        self._start_reserved(level)
        self._no_room.clear()
        walk(self._team_queues(teams), self.state, self._visit_nominal)

        self._victims_counted = False
        self._bounds_ready = False
        self._no_room.clear()
        self._no_victims.clear()
        self._no_drain.clear()
        walk(self._team_queues(teams), self.state, self._visit_borrowing)

    def _smallest_requests(self, team: str) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
        """Return the team's smallest request per eligible pools at this level, over all and over starving trials."""
        key = (self.level, team)
        if key not in self._smallest:
            state = self.state
            smallest: dict[tuple[str, ...], int] = {}
            starving: dict[tuple[str, ...], int] = {}
            for trials in self._level_teams.get(team, {}).values():
                for trial in trials:
                    pools = state.eligible_pools(trial)
                    smallest[pools] = min(trial.devices, smallest.get(pools, trial.devices))
                    if is_starving(state, trial):
                        starving[pools] = min(trial.devices, starving.get(pools, trial.devices))
            self._smallest[key] = (smallest, starving)
        return self._smallest[key]

    # -- placement -------------------------------------------------------------------------------

    def _visit_nominal(self, trial: PendingTrial) -> Visit:
        state = self.state
        if state.free_total == 0:
            return Visit.STOP

        account = state.account(trial.team)
        if self._place(trial, account, Phase.NOMINAL):
            return Visit.PLACED
        if is_starving(state, trial) and self._serve_starving(trial, account):
            return Visit.PLACED
        return Visit.WAITING if self._may_place(account, Phase.NOMINAL) else Visit.TEAM_DONE

    def _serve_starving(self, trial: PendingTrial, account: TeamAccount) -> bool:
        """Let a starving trial borrow idle devices, or else drain a node, before the trials behind it backfill."""
        if self.state.free_total and self._place(trial, account, Phase.BORROWING):
            return True
        return self._drain(trial, account)

    def _visit_borrowing(self, trial: PendingTrial) -> Visit:
        state = self.state
        account = state.account(trial.team)
        if state.free_total and self._place(trial, account, Phase.BORROWING):
            return Visit.PLACED
        preemption_open = self._preemption_open()
        if state.free_total == 0 and not preemption_open:
            return Visit.STOP
        if preemption_open and self._preempt(trial, account):
            return Visit.PLACED
        if is_starving(state, trial) and self._drain(trial, account):
            return Visit.PLACED
        return Visit.WAITING if self._team_may_act(account) else Visit.TEAM_DONE

    def _team_may_act(self, account: TeamAccount) -> bool:
        """Return whether some trial of the team could still start, preempt or drain in this walk.

        The smallest request per eligible pools decides: once it failed an
        action, every larger request of the team fails it too.
        """
        state = self.state
        team = account.name
        preemption_open = self._preemption_open()
        requests, starving = self._smallest_requests(team)
        for pools, smallest in requests.items():
            if state.free_total and smallest < self._no_room.get((team, pools, Phase.BORROWING), INFINITE):
                return True
            if preemption_open and smallest < self._no_victims.get((team, pools), INFINITE):
                return True
        for pools, smallest in starving.items():
            if smallest < self._no_drain.get((team, pools), INFINITE):
                return True
        return False

    def _place(self, trial: PendingTrial, account: TeamAccount, phase: Phase) -> bool:
        state = self.state
        pools = state.eligible_pools(trial)
        devices = trial.devices
        key = (account.name, pools, phase)
        if devices >= self._no_room.get(key, devices + 1):
            return False

        for pool in pools:
            if account.committed[pool] + devices > account.limit(pool, phase):
                continue
            node = state.best_fit(pool, devices)
            if node is not None:
                self._start(trial, account, node, phase)
                return True
        self._no_room[key] = min(devices, self._no_room.get(key, devices))
        return False

    def _start(self, trial: PendingTrial, account: TeamAccount, node: NodeState, phase: Phase) -> None:
        state = self.state
        slots = tuple(node.free[: trial.devices])
        state.take_free(node, slots)
        account.held[node.pool] += trial.devices
        account.commit(node.pool, trial.devices)
        state.search_active[trial.search_id] += 1
        self.done.add(trial.trial_id)
        if phase is Phase.NOMINAL:
            reason = f"free devices within the quota of team {account.name!r} in pool {node.pool}"
        else:
            reason = f"idle devices borrowed by team {account.name!r} in pool {node.pool}"
        self.decisions.append(Start(trial.trial_id, node.name, slots, reason=reason))

    def _drain(self, trial: PendingTrial, account: TeamAccount) -> bool:
        state = self.state
        pools = state.eligible_pools(trial)
        key = (account.name, pools)
        if trial.devices >= self._no_drain.get(key, INFINITE):
            return False
        node = choose_drain_node(state, trial, account, pools, self.draining)
        if node is None:
            self._no_drain[key] = min(trial.devices, self._no_drain.get(key, trial.devices))
            return False

        slots = drain_slots(state, node, (), trial.devices)
        account.commit(node.pool, trial.devices)
        state.search_active[trial.search_id] += 1
        self.done.add(trial.trial_id)
        self.draining.add(node.pool)
        waited = state.now - trial.queued_at
        reason = f"drains {node.name} for trial {trial.trial_id}, which has waited {waited:.0f} s: {len(slots)} of {trial.devices} device(s) held"
        self.decisions.append(Reserve(trial.trial_id, node.name, slots, reason=reason))
        return True

    def _may_place(self, account: TeamAccount, phase: Phase) -> bool:
        state = self.state
        return any(
            free > 0 and account.committed[pool] < account.limit(pool, phase) for pool, free in state.pool_free.items()
        )

    # -- preemption ------------------------------------------------------------------------------

    def _count_victims(self) -> None:
        """Count the candidates still free to choose at this level: those below it and the borrowed ones.

        Victim candidates are built on the first need in a call, because most
        calls place every trial on free devices and never look at them.
        Building them late gives the same candidates, because the slots that
        drains and reservations block before then are free or soon free,
        never slots of a candidate.
        """
        state = self.state
        if not state.candidates_ready:
            state.build_candidates()
        level = self.level
        lower = bisect.bisect_left(state.candidate_priorities, level)
        self.lower_left = lower - sum(1 for priority, _ in self.chosen if priority < level)
        self.borrowed_left = state.borrowed_total - sum(1 for _, borrowed in self.chosen if borrowed)
        self._victims_counted = True

    def _preemption_open(self) -> bool:
        limit = self.state.settings.max_preemptors_per_call
        if limit is not None and self.preemptors >= limit:
            return False
        state = self.state
        if state.soon_free_total > 0:
            return True
        if not state.candidates_ready:
            lowest, over_quota = state.victim_bounds()
            return lowest < self.level or over_quota
        if not self._victims_counted:
            self._count_victims()
        return self.lower_left > 0 or self.borrowed_left > 0

    def _preempt(self, trial: PendingTrial, account: TeamAccount) -> bool:
        pools = self.state.eligible_pools(trial)
        devices = trial.devices
        key = (account.name, pools)
        if devices >= self._no_victims.get(key, devices + 1):
            return False
        if not self.state.candidates_ready and not self._may_find_victims(account, pools, devices):
            self._no_victims[key] = min(devices, self._no_victims.get(key, devices))
            return False

        if not self._victims_counted:
            self._count_victims()
        if not self._bounds_ready:
            self.state.bound_rooms(self.level)
            self._bounds_ready = True
        plan = plan_preemption(self.state, trial, self.level, pools)
        if plan is None:
            self._no_victims[key] = min(devices, self._no_victims.get(key, devices))
            return False
        self._apply(trial, account, plan)
        return True

    def _may_find_victims(self, account: TeamAccount, pools: tuple[str, ...], devices: int) -> bool:
        """Return false when no preemption plan can exist for this request, without building the candidates.

        A plan needs soon-free slots, a candidate of a lower priority value,
        or a borrowed candidate of another team while the request keeps its
        team within its quota in the pool. A larger request of the same team
        fails the same checks, so the caller may remember the failure.
        """
        state = self.state
        if state.soon_free_total > 0:
            return True
        lowest, over_quota = state.victim_bounds()
        if lowest < self.level:
            return True
        return over_quota and any(account.committed[p] + devices <= account.quota.get(p, 0) for p in pools)

    def _apply(self, trial: PendingTrial, account: TeamAccount, plan: PreemptionPlan) -> None:
        state = self.state
        node = plan.node
        slots = self._reserve_slots(trial.devices, plan)
        for victim in plan.victims:
            victim.chosen = True
            state.account(victim.attempt.team).standing[plan.pool] -= victim.devices
            self.lower_left -= victim.priority < self.level
            self.borrowed_left -= victim.borrowed
            self.chosen.append((victim.priority, victim.borrowed))
            self.decisions.append(Preempt(victim.attempt.attempt_id, trial.trial_id, reason=self._preempt_reason(trial, account, victim)))

        account.commit(plan.pool, trial.devices)
        state.search_active[trial.search_id] += 1
        self.done.add(trial.trial_id)
        if plan.victims:
            self.preemptors += 1
            reason = f"holds the devices of {len(plan.victims)} preempted attempt(s) for trial {trial.trial_id}"
        else:
            reason = f"holds devices that yielding attempts are freeing for trial {trial.trial_id}"
        self.decisions.append(Reserve(trial.trial_id, node.name, slots, reason=reason))

    def _reserve_slots(self, devices: int, plan: PreemptionPlan) -> tuple[int, ...]:
        """Take the reserved slots and mark the victims' other slots soon free.

        Free slots come first, then soon-free ones, then the victims'. When the
        team must release its own victims to stay within its limit, the
        victims' slots come first instead, so free slots stay free meanwhile.
        """
        state = self.state
        node = plan.node
        victim_slots = sorted(s for v in plan.victims for s in v.attempt.slots if s not in node.blocked)
        if plan.over_limit:
            sources = [victim_slots, node.soon_free, node.free]
        else:
            sources = [node.free, node.soon_free, victim_slots]
        chosen: list[int] = []
        for source in sources:
            chosen.extend(source[: devices - len(chosen)])

        taken = set(chosen)
        state.take_free(node, [s for s in node.free if s in taken])
        state.take_soon_free(node, [s for s in node.soon_free if s in taken])
        node.blocked.update(chosen)
        spare = [s for s in victim_slots if s not in taken]
        if spare:
            state.add_soon_free(node, spare)
            self._no_victims.clear()
            self._no_drain.clear()
        return tuple(sorted(chosen))

    def _preempt_reason(self, trial: PendingTrial, account: TeamAccount, victim) -> str:
        attempt = victim.attempt
        if victim.priority < self.level:
            return (
                f"priority: trial {trial.trial_id} of class {trial.priority!r} ({self.level}) outranks attempt "
                f"{attempt.attempt_id} of class {attempt.priority!r} ({victim.priority}) on {attempt.node}"
            )
        quota = account.quota.get(victim.node.pool, 0)
        return (
            f"reclaim: team {account.name!r} is under its quota of {quota} in pool {victim.node.pool}, and attempt "
            f"{attempt.attempt_id} of team {attempt.team!r} runs on borrowed devices there"
        )
