"""Order in which the default policy visits the pending trials of one priority level.

The order is recomputed as the policy decides, because it depends on how many
devices each team and how many trials each search hold:

1. Teams by fair share: the team whose ``(decayed usage + horizon x committed
   devices) / weight`` is lowest goes first, which is the highest Slurm
   fair-share factor. Teams of weight 0 go after all others. Ties go to the
   team whose next trial was queued first, then to the lower trial id.
2. Within a team, searches by how many trials they hold now (running,
   yielding or reserved), fewest first, so a team's searches take turns.
   Ties go to the search whose next trial resumes earlier work, then to the
   one queued first, then to the lower trial id.
3. Within a search, trials that resume earlier work (``resumes=True``) first,
   then by ``queued_at``, then by trial id.

A search with ``max_concurrent`` trials running, yielding or reserved drops
out of the walk.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Callable, Iterable
from enum import Enum

from neurfly.core.scheduling._state import ClusterState, TeamAccount
from neurfly.core.scheduling.snapshot import PendingTrial


class Visit(Enum):
    """The outcome of visiting a trial, which decides how the walk goes on."""

    PLACED = "placed"
    """The trial started or got a reservation."""

    WAITING = "waiting"
    """The trial stays pending; the walk goes on."""

    TEAM_DONE = "team_done"
    """Nothing more of this team can be placed in this walk."""

    STOP = "stop"
    """Nothing more of anyone can be placed in this walk."""


_BY_AGE = operator.attrgetter("queued_at", "trial_id")


def sort_search_trials(trials: list[PendingTrial]) -> list[PendingTrial]:
    """Return a search's trials in order: resuming ones first, then by ``queued_at``, then by trial id."""
    resuming = [t for t in trials if t.resumes]
    if not resuming:
        return sorted(trials, key=_BY_AGE)
    fresh = [t for t in trials if not t.resumes]
    return sorted(resuming, key=_BY_AGE) + sorted(fresh, key=_BY_AGE)


class SearchQueue:
    """The pending trials of one search at one priority level, in ``sort_search_trials`` order.

    Trials whose id is in ``skip`` (already started or reserved earlier in
    the call) are passed over when the queue advances, which costs less
    than copying the list without them.
    """

    __slots__ = ("cap", "position", "search_id", "skip", "trials")

    def __init__(self, search_id: int, trials: list[PendingTrial], cap: int | None, skip: set[int]) -> None:
        self.search_id = search_id
        self.trials = trials
        self.position = 0
        self.cap = cap
        self.skip = skip

    def key(self, active: int) -> tuple:
        """Return the search's sort key; call only after ``exhausted`` returned False."""
        head = self.trials[self.position]
        return (active, not head.resumes, head.queued_at, head.trial_id)

    def exhausted(self, active: int) -> bool:
        """Pass over skipped trials and return whether the search has nothing left to visit."""
        trials = self.trials
        position = self.position
        while position < len(trials) and trials[position].trial_id in self.skip:
            position += 1
        self.position = position
        return position >= len(trials) or (self.cap is not None and active >= self.cap)


class TeamQueue:
    """The searches of one team at one priority level, as a heap by search order."""

    __slots__ = ("account", "heap")

    def __init__(self, account: TeamAccount, searches: Iterable[SearchQueue], state: ClusterState) -> None:
        self.account = account
        active = state.search_active
        self.heap = [(s.key(active[s.search_id]), s.search_id, s) for s in searches if not s.exhausted(active[s.search_id])]
        heapq.heapify(self.heap)

    def key(self, horizon_s: float) -> tuple:
        head = self.heap[0][2]
        trial = head.trials[head.position]
        return (self.account.rank(horizon_s), trial.queued_at, trial.trial_id)


def walk(teams: Iterable[TeamQueue], state: ClusterState, visit: Callable[[PendingTrial], Visit]) -> None:
    """Visit pending trials in policy order until they run out or ``visit`` returns ``STOP``.

    Args:
        teams: One queue per team; empty ones are skipped.
        state: The call's state; search and team counts are read from it after each visit.
        visit: Decides on one trial and updates ``state``.
    """
    horizon = state.settings.fair_share_horizon_s
    active = state.search_active
    heap = [(team.key(horizon), team.account.name, team) for team in teams if team.heap]
    heapq.heapify(heap)

    while heap:
        team = heap[0][2]
        search = team.heap[0][2]
        trial = search.trials[search.position]
        search.position += 1

        outcome = visit(trial)
        if outcome is Visit.STOP:
            return

        count = active[search.search_id]
        if search.exhausted(count):
            heapq.heappop(team.heap)
        else:
            heapq.heapreplace(team.heap, (search.key(count), search.search_id, search))
        if outcome is Visit.TEAM_DONE or not team.heap:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (team.key(horizon), team.account.name, team))
