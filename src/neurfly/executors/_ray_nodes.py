"""Matching the nodes of a Ray cluster to the nodes of the cluster file.

A Ray node is NeurFly node ``NAME`` when it carries the custom resource
``neurfly_node_NAME`` (``ray start --resources '{"neurfly_node_NAME": 4}'``).
The cluster file keeps each node's pool, and so its region, hardware, price
and the teams' quotas. Ray contributes liveness: a node is schedulable while
exactly one live Ray node carries its resource. The resource's amount caps the
node's device slots when it is lower than the cluster file's count.

The functions here take the dictionaries that ``ray.nodes()`` returns, so
they are tested without a Ray cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neurfly.core.scheduling.snapshot import Node

RESOURCE_PREFIX = "neurfly_node_"


def node_resource(node: str) -> str:
    """Return the Ray custom resource that marks a Ray node as NeurFly node ``node``."""
    if not node:
        raise ValueError("a NeurFly node name must not be empty")
    return f"{RESOURCE_PREFIX}{node}"


@dataclass(frozen=True)
class RayNode:
    """One entry of ``ray.nodes()``: its id, address, liveness and NeurFly node names."""

    node_id: str
    address: str
    alive: bool
    carried: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_ray(cls, entry: Mapping[str, Any]) -> RayNode:
        resources = entry.get("Resources") or {}
        carried = {
            key[len(RESOURCE_PREFIX):]: float(amount)
            for key, amount in resources.items()
            if key.startswith(RESOURCE_PREFIX) and len(key) > len(RESOURCE_PREFIX)
        }
        return cls(
            node_id=str(entry.get("NodeID", "")),
            address=str(entry.get("NodeManagerAddress", "")),
            alive=bool(entry.get("Alive", False)),
            carried=carried,
        )


@dataclass(frozen=True)
class NodeMatch:
    """The Ray cluster as the controller should see it.

    Attributes:
        nodes: The cluster file's nodes with ``schedulable`` and ``devices``
            set from the Ray cluster.
        placement: NeurFly node name to the id of the one live Ray node that carries it.
        ray_nodes: Every Ray node by id, dead ones included.
        problems: Findings an operator should fix, one sentence each.
    """

    nodes: tuple[Node, ...]
    placement: Mapping[str, str]
    ray_nodes: Mapping[str, RayNode]
    problems: frozenset[str]

    def is_lost(self, ray_node_id: str) -> bool:
        """Return whether the Ray node is dead or no longer listed by the cluster."""
        node = self.ray_nodes.get(ray_node_id)
        return node is None or not node.alive


def match_nodes(configured: Sequence[Node], entries: Iterable[Mapping[str, Any]]) -> NodeMatch:
    """Match the cluster file's nodes to the entries of ``ray.nodes()``.

    Args:
        configured: The cluster file's nodes, as the controller builds them.
        entries: What ``ray.nodes()`` returned.

    Returns:
        The nodes the policy should see, where each NeurFly node runs, and
        the problems found (a name carried twice, a name the cluster file
        does not list, a resource smaller than the node's device count).
    """
    ray_nodes = {node.node_id: node for node in map(RayNode.from_ray, entries)}
    carriers: dict[str, list[RayNode]] = {}
    for node in ray_nodes.values():
        if node.alive:
            for name in node.carried:
                carriers.setdefault(name, []).append(node)

    problems: set[str] = set()
    placement: dict[str, str] = {}
    nodes = []
    for expected in configured:
        node, devices = _match_one(expected, carriers.get(expected.name, []), problems)
        if node is not None:
            placement[expected.name] = node.node_id
        nodes.append(Node(expected.name, expected.pool, devices, schedulable=node is not None))

    known = {expected.name for expected in configured}
    for name in sorted(set(carriers) - known):
        ids = ", ".join(n.node_id for n in carriers[name])
        problems.add(
            f"Ray node {ids} carries {node_resource(name)!r}, but the cluster file has no node {name!r}; "
            "add the node to a pool or remove the resource"
        )
    return NodeMatch(tuple(nodes), placement, ray_nodes, frozenset(problems))


def _match_one(expected: Node, carriers: list[RayNode], problems: set[str]) -> tuple[RayNode | None, int]:
    resource = node_resource(expected.name)
    if len(carriers) > 1:
        ids = ", ".join(sorted(n.node_id for n in carriers))
        problems.add(
            f"NeurFly node {expected.name!r} is carried by {len(carriers)} live Ray nodes ({ids}); "
            f"it stays unschedulable until exactly one Ray node carries {resource!r}"
        )
        return None, expected.devices
    if not carriers:
        return None, expected.devices

    carrier = carriers[0]
    units = int(carrier.carried[expected.name])
    if units < 1:
        problems.add(f"Ray node {carrier.node_id} carries {carrier.carried[expected.name]:g} of {resource!r}; give it 1 or more")
        return None, expected.devices
    if units < expected.devices:
        problems.add(
            f"Ray node {carrier.node_id} carries {units} of {resource!r}, fewer than the {expected.devices} devices "
            f"of node {expected.name!r} in the cluster file; NeurFly uses {units}"
        )
        return carrier, units
    return carrier, expected.devices
