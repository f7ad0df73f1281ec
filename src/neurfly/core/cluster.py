"""The cluster file: pools, nodes, teams and priority classes.

``parse_cluster`` takes the YAML mapping (the core does no I/O) and returns a
validated ``ClusterConfig``; ``default_cluster`` is the embedded local cluster
used when no file is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, ValidationError, field_validator, model_validator

from neurfly.errors import SpecError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeConfig(_Strict):
    name: str = Field(min_length=1)
    devices: int = Field(ge=1, description="device slots on this node")


class PoolConfig(_Strict):
    name: str = Field(min_length=1)
    region: str = Field(min_length=1)
    hardware: str = Field(default="cpu", min_length=1, description="hardware type, also the backend plug-in name")
    price_per_device_hour: float = Field(default=0.0, ge=0.0)
    nodes: tuple[NodeConfig, ...] = Field(min_length=1)

    @property
    def devices(self) -> int:
        return sum(node.devices for node in self.nodes)


class TeamConfig(_Strict):
    """A tenant's share of the cluster.

    A pool missing from ``quota`` gives the team no nominal devices there; a
    pool missing from ``borrowing_limit`` lets it borrow any idle device there.
    Borrowed devices are reclaimed when their owner needs them.
    """

    name: str = Field(min_length=1)
    weight: float = Field(default=1.0, ge=0.0, description="fair-share weight")
    quota: dict[str, int] = Field(default_factory=dict, description="nominal devices per pool")
    borrowing_limit: dict[str, int] = Field(default_factory=dict, description="devices per pool beyond the quota")

    @field_validator("quota", "borrowing_limit")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for pool, count in value.items():
            if count < 0:
                raise ValueError(f"pool {pool!r} has {count} devices; use 0 or more")
        return value


class PriorityClassConfig(_Strict):
    name: str = Field(min_length=1)
    value: int
    preemptible: bool = True


DEFAULT_PRIORITY_CLASSES = (
    PriorityClassConfig(name="production", value=1000, preemptible=False),
    PriorityClassConfig(name="interactive", value=500, preemptible=True),
    PriorityClassConfig(name="search", value=100, preemptible=True),
    PriorityClassConfig(name="best-effort", value=0, preemptible=True),
)


class IdleCostPolicy(str, Enum):
    """Payer of the cost of devices that no attempt held: the platform, or the teams in proportion to their usage."""

    PLATFORM = "platform"
    SHARED = "shared"


class ClusterConfig(_Strict):
    """A validated cluster: every pool, node, team and priority class.

    Teams that are not listed get ``default_team``'s weight, quota and
    borrowing limit under their own name. A pool's cost per device-hour is
    its ``price_per_device_hour`` times ``billing_weights`` of its hardware
    type (1 for a type not listed).
    """

    pools: tuple[PoolConfig, ...] = Field(min_length=1)
    teams: tuple[TeamConfig, ...] = ()
    priority_classes: tuple[PriorityClassConfig, ...] = DEFAULT_PRIORITY_CLASSES
    default_team: TeamConfig = TeamConfig(name="*")
    executor: str = "local"
    executor_options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the executor plug-in, e.g. the Ray address")
    usage_half_life_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    responsibilities: str | None = Field(default=None, description="responsibility file of alert owners and notifiers")
    billing_weights: dict[str, NonNegativeFloat] = Field(default_factory=dict, description="price factor per hardware type")
    idle_cost_policy: IdleCostPolicy = IdleCostPolicy.PLATFORM

    @model_validator(mode="after")
    def _check_references(self) -> ClusterConfig:
        problems = []
        _check_unique("pools", [p.name for p in self.pools], problems)
        _check_unique("nodes", [n.name for p in self.pools for n in p.nodes], problems)
        _check_unique("teams", [t.name for t in self.teams], problems)
        _check_unique("priority_classes", [c.name for c in self.priority_classes], problems)
        _check_unique("priority_classes values", [str(c.value) for c in self.priority_classes], problems)

        pool_names = {p.name for p in self.pools}
        for team in (*self.teams, self.default_team):
            for field_name in ("quota", "borrowing_limit"):
                for pool in getattr(team, field_name):
                    if pool not in pool_names:
                        problems.append(
                            f"teams.{team.name}.{field_name}: unknown pool {pool!r}; pools are {sorted(pool_names)}"
                        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def team(self, name: str) -> TeamConfig:
        for team in self.teams:
            if team.name == name:
                return team
        return self.default_team.model_copy(update={"name": name})

    def priority_class(self, name: str) -> PriorityClassConfig:
        for priority_class in self.priority_classes:
            if priority_class.name == name:
                return priority_class
        raise KeyError(name)

    @property
    def lowest_priority_class(self) -> PriorityClassConfig:
        return min(self.priority_classes, key=lambda c: c.value)

    def pool_of_node(self, node: str) -> PoolConfig:
        for pool in self.pools:
            if any(n.name == node for n in pool.nodes):
                return pool
        raise KeyError(node)


def _check_unique(what: str, names: list[str], problems: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(f"{what}: {name!r} appears more than once; names must be unique")
        seen.add(name)


def parse_cluster(document: Mapping[str, Any], source: str | None = None) -> ClusterConfig:
    """Validate a cluster document.

    Raises:
        SpecError: Each problem, naming the field and the value.
    """
    try:
        return ClusterConfig.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"]) or "cluster"
            problems.append(f"{location}: {error['msg']} (got {error.get('input')!r})")
        raise SpecError(problems, source) from None


def default_cluster(slots_per_node: int = 2) -> ClusterConfig:
    """Build the embedded local cluster: two pools in two regions on this machine.

    Each pool has one node of ``slots_per_node`` simulated device slots, and a
    trial's worker process stands for the device it holds.
    """
    return ClusterConfig(
        pools=(
            PoolConfig(
                name="eu-local",
                region="eu-west",
                hardware="cpu",
                price_per_device_hour=1.0,
                nodes=(NodeConfig(name="eu-node-1", devices=slots_per_node),),
            ),
            PoolConfig(
                name="us-local",
                region="us-east",
                hardware="cpu",
                price_per_device_hour=0.8,
                nodes=(NodeConfig(name="us-node-1", devices=slots_per_node),),
            ),
        ),
        default_team=TeamConfig(name="*", weight=1.0),
    )


__all__ = [
    "ClusterConfig",
    "IdleCostPolicy",
    "NodeConfig",
    "PoolConfig",
    "PriorityClassConfig",
    "TeamConfig",
    "default_cluster",
    "parse_cluster",
]
