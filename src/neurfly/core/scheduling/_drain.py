"""Draining a node for a trial that has waited too long.

Backfilling lets small trials take devices that a large gang cannot use yet,
so without a limit a gang of equal priority can wait forever behind a stream
of small trials. A trial that has waited ``settings.starvation_wait_s`` and
still finds no room (and no victims) reserves the free and soon-free slots of
one node. Other trials cannot take those slots, and each later call adds the
node's newly free slots to the reservation until it covers the whole request
and the trial starts. Only one trial drains a pool at a time.
"""

from __future__ import annotations

from neurfly.core.scheduling._state import ClusterState, NodeState, Phase, TeamAccount
from neurfly.core.scheduling.snapshot import PendingTrial


def is_starving(state: ClusterState, trial: PendingTrial) -> bool:
    """Return whether ``trial`` has waited at least ``settings.starvation_wait_s``."""
    wait = state.settings.starvation_wait_s
    return wait is not None and state.now - trial.queued_at >= wait


def draining_pools(state: ClusterState) -> set[str]:
    """Return the pools where a usable reservation covers fewer slots than its trial requests."""
    pools = set()
    for trial_id, (node, slots) in state.reservation_of.items():
        if len(slots) < state.pending[trial_id].devices:
            pools.add(node.pool)
    return pools


def choose_drain_node(
    state: ClusterState, trial: PendingTrial, account: TeamAccount, pools: tuple[str, ...], draining: set[str]
) -> NodeState | None:
    """Pick the node to drain for ``trial``, or ``None`` when no pool allows one.

    The node must be schedulable, large enough and in a pool that nobody
    drains yet and where the team's limit leaves room for the request. The
    node with the most free and soon-free slots wins, then the cheaper pool,
    then the node name that sorts first. A node with no such slot is never
    chosen, because a reservation needs at least one slot.
    """
    best: NodeState | None = None
    best_key: tuple = ()
    for rank, pool in enumerate(pools):
        if pool in draining or account.committed[pool] + trial.devices > account.limit(pool, Phase.BORROWING):
            continue
        for node in state.pool_nodes(pool):
            room = len(node.free) + len(node.soon_free)
            if not node.node.schedulable or node.node.devices < trial.devices or room == 0:
                continue
            key = (-room, rank, node.index)
            if best is None or key < best_key:
                best, best_key = node, key
    return best


def drain_slots(state: ClusterState, node: NodeState, held: tuple[int, ...], devices: int) -> tuple[int, ...]:
    """Add free, then soon-free, slots of ``node`` to ``held`` until it covers ``devices``; return the new set.

    The added slots leave the node's free and soon-free lists and become blocked.
    """
    missing = devices - len(held)
    free = node.free[:missing]
    soon_free = node.soon_free[: missing - len(free)]
    state.take_free(node, free)
    state.take_soon_free(node, soon_free)
    node.blocked.update(free)
    node.blocked.update(soon_free)
    return tuple(sorted([*held, *free, *soon_free]))
