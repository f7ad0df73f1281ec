"""Matching Ray nodes to the cluster file's nodes, on the dictionaries ray.nodes() returns."""

from __future__ import annotations

import pytest

from neurfly.core.scheduling.snapshot import Node
from neurfly.executors._ray_nodes import match_nodes, node_resource

CONFIGURED = (Node("head", "head-pool", 2), Node("worker", "worker-pool", 4))


def _entry(node_id: str, alive: bool = True, **resources: float) -> dict:
    return {"NodeID": node_id, "NodeManagerAddress": "10.0.0.1", "Alive": alive, "Resources": {"CPU": 2.0, **resources}}


def test_carried_resource_names_node() -> None:
    match = match_nodes(CONFIGURED, [_entry("a", neurfly_node_head=2), _entry("b", neurfly_node_worker=4)])

    assert match.nodes == (Node("head", "head-pool", 2, True), Node("worker", "worker-pool", 4, True))
    assert match.placement == {"head": "a", "worker": "b"}
    assert match.problems == frozenset()


def test_missing_node_not_schedulable() -> None:
    match = match_nodes(CONFIGURED, [_entry("a", neurfly_node_head=2)])

    assert match.nodes[1] == Node("worker", "worker-pool", 4, schedulable=False)
    assert "worker" not in match.placement


def test_dead_node_not_schedulable_and_lost() -> None:
    match = match_nodes(CONFIGURED, [_entry("a", neurfly_node_head=2), _entry("b", alive=False, neurfly_node_worker=4)])

    assert not match.nodes[1].schedulable
    assert match.is_lost("b")
    assert not match.is_lost("a")
    assert match.is_lost("never-listed")


def test_restarted_node_replaces_dead_one() -> None:
    entries = [_entry("old", alive=False, neurfly_node_worker=4), _entry("new", neurfly_node_worker=4), _entry("a", neurfly_node_head=2)]

    match = match_nodes(CONFIGURED, entries)

    assert match.placement["worker"] == "new"
    assert match.nodes[1].schedulable


def test_two_carriers_make_node_unschedulable() -> None:
    entries = [_entry("a", neurfly_node_head=2), _entry("b", neurfly_node_head=2)]

    match = match_nodes(CONFIGURED, entries)

    assert not match.nodes[0].schedulable
    assert "head" not in match.placement
    assert any("2 live Ray nodes" in problem for problem in match.problems)


def test_smaller_resource_caps_devices() -> None:
    match = match_nodes(CONFIGURED, [_entry("b", neurfly_node_worker=3)])

    assert match.nodes[1] == Node("worker", "worker-pool", 3, True)
    assert any("fewer than the 4 devices" in problem for problem in match.problems)


def test_larger_resource_keeps_file_count() -> None:
    match = match_nodes(CONFIGURED, [_entry("b", neurfly_node_worker=16)])

    assert match.nodes[1].devices == 4


def test_fraction_below_one_not_schedulable() -> None:
    match = match_nodes(CONFIGURED, [_entry("a", neurfly_node_head=0.5)])

    assert not match.nodes[0].schedulable
    assert any("give it 1 or more" in problem for problem in match.problems)


def test_unknown_name_reported() -> None:
    match = match_nodes(CONFIGURED, [_entry("c", neurfly_node_gpu7=8)])

    assert [n.schedulable for n in match.nodes] == [False, False]
    assert any("no node 'gpu7'" in problem for problem in match.problems)


def test_one_ray_node_may_carry_several() -> None:
    match = match_nodes(CONFIGURED, [_entry("a", neurfly_node_head=2, neurfly_node_worker=4)])

    assert match.placement == {"head": "a", "worker": "a"}


def test_bare_prefix_ignored() -> None:
    match = match_nodes(CONFIGURED, [{"NodeID": "a", "Alive": True, "Resources": {"neurfly_node_": 1.0}}])

    assert match.problems == frozenset()
    assert match.placement == {}


def test_node_resource_name() -> None:
    assert node_resource("eu-node-1") == "neurfly_node_eu-node-1"
    with pytest.raises(ValueError, match="must not be empty"):
        node_resource("")
