"""Search spaces: parameter distributions, conditions, sampling and grids.

Pure values and functions: nothing here reads files or clocks. Randomness
comes from a ``numpy.random.Generator`` that the caller seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

ParamValue = float | int | str | bool | None


@dataclass(frozen=True)
class Condition:
    """A parameter is active only while ``parent`` takes one of ``values``."""

    parent: str
    values: tuple[ParamValue, ...]


@dataclass(frozen=True)
class FloatParam:
    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None
    condition: Condition | None = None

    def grid_values(self) -> list[float] | None:
        if self.step is None:
            return None
        count = int(round((self.high - self.low) / self.step)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def same_distribution(self, other: object) -> bool:
        return isinstance(other, FloatParam) and (self.low, self.high, self.log, self.step) == (
            other.low,
            other.high,
            other.log,
            other.step,
        )


@dataclass(frozen=True)
class IntParam:
    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1
    condition: Condition | None = None

    def grid_values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def same_distribution(self, other: object) -> bool:
        return isinstance(other, IntParam) and (self.low, self.high, self.log, self.step) == (
            other.low,
            other.high,
            other.log,
            other.step,
        )


@dataclass(frozen=True)
class CategoricalParam:
    name: str
    choices: tuple[ParamValue, ...]
    condition: Condition | None = None

    def grid_values(self) -> list[ParamValue]:
        return list(self.choices)

    def same_distribution(self, other: object) -> bool:
        return isinstance(other, CategoricalParam) and self.choices == other.choices


@dataclass(frozen=True)
class ConstantParam:
    """A parameter with one value; a single-choice categorical becomes this."""

    name: str
    value: ParamValue
    condition: Condition | None = None

    def grid_values(self) -> list[ParamValue]:
        return [self.value]

    def same_distribution(self, other: object) -> bool:
        return isinstance(other, ConstantParam) and self.value == other.value


Param = FloatParam | IntParam | CategoricalParam | ConstantParam


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters in which parents come before their children.

    A name may appear more than once when each entry has the same distribution
    and a condition on a different parent value; the entries then share one
    value and the parameter is active when any of its conditions holds.
    """

    params: tuple[Param, ...]
    _by_name: dict[str, list[Param]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for param in self.params:
            self._by_name.setdefault(param.name, []).append(param)

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def distribution(self, name: str) -> Param:
        return self._by_name[name][0]

    def is_active(self, name: str, params: Mapping[str, ParamValue]) -> bool:
        """Return whether ``name`` is active given the values of its ancestors in ``params``."""
        for entry in self._by_name[name]:
            condition = entry.condition
            if condition is None:
                return True
            if condition.parent in params and self.is_active(condition.parent, params):
                if params[condition.parent] in condition.values:
                    return True
        return False

    def unique_params(self) -> Iterator[Param]:
        """Yield each distinct name once, in declaration order."""
        for entries in self._by_name.values():
            yield entries[0]

    def sample(self, rng: np.random.Generator) -> dict[str, ParamValue]:
        """Draw one configuration uniformly (log-uniformly where ``log``), active parameters only."""
        values: dict[str, ParamValue] = {}
        for param in self.unique_params():
            if not self.is_active(param.name, values):
                continue
            values[param.name] = sample_param(param, rng)
        return values

    @cached_property
    def _grid_size(self) -> float:
        if not self.is_discrete():
            return math.inf
        parents = {p.condition.parent for p in self.params if p.condition is not None}
        return float(self._count(list(self.unique_params()), {}, parents))

    def grid_size(self) -> float:
        """Number of grid points, or ``math.inf`` if a float parameter has no step.

        Only parameters that others depend on are enumerated; the others
        multiply, so the count is fast for large grids.
        """
        return self._grid_size

    def _count(self, remaining: list[Param], partial: dict[str, ParamValue], parents: set[str]) -> int:
        total = 1
        for index, param in enumerate(remaining):
            if not self.is_active(param.name, partial):
                continue
            if param.name not in parents:
                total *= len(param.grid_values())
                continue
            branches = 0
            for value in param.grid_values():
                partial[param.name] = value
                branches += self._count(remaining[index + 1 :], partial, parents)
            del partial[param.name]
            return total * branches
        return total

    def is_discrete(self) -> bool:
        return all(not (isinstance(p, FloatParam) and p.step is None) for p in self.params)

    def iter_grid(self) -> Iterator[dict[str, ParamValue]]:
        """Yield every grid point in a fixed order; inactive parameters are left out.

        Raises:
            ValueError: A float parameter has no ``step``, so the grid is infinite.
        """
        if not self.is_discrete():
            raise ValueError("a grid needs every float parameter to have a step")
        yield from self._expand(list(self.unique_params()), {})

    def _expand(self, remaining: list[Param], partial: dict[str, ParamValue]) -> Iterator[dict[str, ParamValue]]:
        if not remaining:
            yield dict(partial)
            return
        head, rest = remaining[0], remaining[1:]
        if not self.is_active(head.name, partial):
            yield from self._expand(rest, partial)
            return
        for value in head.grid_values():
            partial[head.name] = value
            yield from self._expand(rest, partial)
            del partial[head.name]


def sample_param(param: Param, rng: np.random.Generator) -> ParamValue:
    if isinstance(param, ConstantParam):
        return param.value
    if isinstance(param, CategoricalParam):
        return param.choices[int(rng.integers(len(param.choices)))]
    if isinstance(param, IntParam):
        return _sample_int(param, rng)
    return _sample_float(param, rng)


def _sample_float(param: FloatParam, rng: np.random.Generator) -> float:
    if param.step is not None:
        return float(rng.choice(param.grid_values()))
    if param.log:
        return float(math.exp(rng.uniform(math.log(param.low), math.log(param.high))))
    return float(rng.uniform(param.low, param.high))


def _sample_int(param: IntParam, rng: np.random.Generator) -> int:
    if param.log:
        # Log-uniform over [low - 0.5, high + 0.5] then rounded, so both ends are reachable.
        value = math.exp(rng.uniform(math.log(param.low - 0.5 + 1e-9), math.log(param.high + 0.5)))
        return int(min(param.high, max(param.low, round(value))))
    count = (param.high - param.low) // param.step + 1
    return int(param.low + param.step * int(rng.integers(count)))


def config_key(params: Mapping[str, Any]) -> str:
    """Return a canonical string for a configuration, equal for equal values."""
    normalised = {name: _normalise(value) for name, value in params.items()}
    return json.dumps(normalised, sort_keys=True, separators=(",", ":"))


def _normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        # 2.0 and 2 are the same configuration.
        return int(number) if number.is_integer() else number
    return value


__all__ = [
    "CategoricalParam",
    "Condition",
    "ConstantParam",
    "FloatParam",
    "IntParam",
    "Param",
    "ParamValue",
    "SearchSpace",
    "config_key",
    "sample_param",
]
