"""Search spaces: sampling bounds, conditions, grids and configuration keys."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from neurfly.core.space import (
    CategoricalParam,
    Condition,
    ConstantParam,
    FloatParam,
    IntParam,
    SearchSpace,
    config_key,
    sample_param,
)

DRAWS = 4000


def draws(param: FloatParam | IntParam, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [sample_param(param, rng) for _ in range(DRAWS)]


def conditional_space() -> SearchSpace:
    """optimizer -> momentum (sgd) and beta (adam); momentum -> nesterov (sgd only, nested)."""
    return SearchSpace(
        (
            CategoricalParam("optimizer", ("adam", "sgd", "rmsprop")),
            IntParam("units", 1, 3),
            FloatParam("momentum", 0.0, 0.9, step=0.45, condition=Condition("optimizer", ("sgd",))),
            CategoricalParam("nesterov", (True, False), condition=Condition("optimizer", ("sgd",))),
            CategoricalParam("beta", (0.9, 0.99), condition=Condition("optimizer", ("adam",))),
            IntParam("warmup", 0, 2, condition=Condition("nesterov", (True,))),
        )
    )


# -- sampling -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "param",
    [
        FloatParam("uniform", -2.0, 3.0),
        FloatParam("log", 1e-6, 1e-1, log=True),
        FloatParam("log-wide", 1e-12, 1e6, log=True),
        FloatParam("step", 0.1, 0.7, step=0.2),
        IntParam("int", -5, 5),
        IntParam("int-log", 1, 1000, log=True),
        IntParam("int-step", 0, 100, step=25),
    ],
    ids=lambda p: p.name,
)
def test_samples_stay_in_bounds(param: FloatParam | IntParam) -> None:
    values = draws(param)

    assert min(values) >= param.low
    assert max(values) <= param.high


@pytest.mark.parametrize(
    "param",
    [FloatParam("step", 0.1, 0.7, step=0.2), IntParam("int-step", 0, 100, step=25)],
    ids=lambda p: p.name,
)
def test_step_samples_on_grid(param: FloatParam | IntParam) -> None:
    allowed = set(param.grid_values())

    assert set(draws(param)) == allowed


def test_float_step_grid_is_exact() -> None:
    assert FloatParam("p", 0.1, 0.7, step=0.2).grid_values() == [0.1, 0.3, 0.5, 0.7]


def test_log_float_is_log_uniform() -> None:
    values = np.array(draws(FloatParam("lr", 1e-5, 1e-1, log=True)))

    # Each decade contains a quarter of the draws under a log-uniform distribution.
    per_decade = np.histogram(np.log10(values), bins=[-5, -4, -3, -2, -1])[0] / DRAWS
    assert np.all(np.abs(per_decade - 0.25) < 0.04), per_decade


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (IntParam("int", 1, 3), {1, 2, 3}),
        (IntParam("int-negative", -2, 0), {-2, -1, 0}),
        (IntParam("int-log", 1, 4, log=True), {1, 2, 3, 4}),
        (IntParam("int-step", 0, 10, step=5), {0, 5, 10}),
    ],
    ids=lambda value: value.name if isinstance(value, IntParam) else "",
)
def test_int_samples_include_both_ends(param: IntParam, expected: set[int]) -> None:
    values = draws(param)

    assert set(values) == expected
    assert all(isinstance(value, int) for value in values)


def test_int_log_samples_favour_small_values() -> None:
    counts = Counter(draws(IntParam("units", 1, 100, log=True)))

    assert sum(counts[v] for v in range(1, 11)) > sum(counts[v] for v in range(91, 101))


def test_constant_param_always_same() -> None:
    rng = np.random.default_rng(0)

    assert {sample_param(ConstantParam("c", "relu"), rng) for _ in range(20)} == {"relu"}


def test_sample_is_seeded() -> None:
    space = conditional_space()

    first = [space.sample(np.random.default_rng(seed)) for seed in range(20)]
    second = [space.sample(np.random.default_rng(seed)) for seed in range(20)]

    assert first == second


# -- conditions -----------------------------------------------------------------------------------


def test_conditional_params_only_when_active() -> None:
    space = conditional_space()
    rng = np.random.default_rng(3)

    for _ in range(500):
        config = space.sample(rng)
        sgd = config["optimizer"] == "sgd"
        assert ("momentum" in config) == sgd, config
        assert ("nesterov" in config) == sgd, config
        assert ("beta" in config) == (config["optimizer"] == "adam"), config
        warmup_active = sgd and config["nesterov"] is True
        assert ("warmup" in config) == warmup_active, config


def test_every_branch_is_sampled() -> None:
    space = conditional_space()
    rng = np.random.default_rng(4)

    shapes = {tuple(sorted(space.sample(rng))) for _ in range(500)}

    assert shapes == {
        ("optimizer", "units"),
        ("beta", "optimizer", "units"),
        ("momentum", "nesterov", "optimizer", "units"),
        ("momentum", "nesterov", "optimizer", "units", "warmup"),
    }


def test_repeated_name_active_under_either_parent() -> None:
    space = SearchSpace(
        (
            CategoricalParam("model", ("mlp", "cnn", "linear")),
            IntParam("width", 8, 64, condition=Condition("model", ("mlp",))),
            IntParam("width", 8, 64, condition=Condition("model", ("cnn",))),
        )
    )

    assert space.names == ["model", "width"]
    assert space.is_active("width", {"model": "mlp"})
    assert space.is_active("width", {"model": "cnn"})
    assert not space.is_active("width", {"model": "linear"})


def test_child_inactive_when_parent_missing() -> None:
    space = conditional_space()

    assert not space.is_active("warmup", {"optimizer": "adam", "units": 1})
    assert not space.is_active("momentum", {})


# -- grids ----------------------------------------------------------------------------------------


def test_grid_count_with_conditions() -> None:
    space = conditional_space()

    # units (3) x [adam: beta (2)  +  rmsprop (1)  +  sgd: momentum (3) x (nesterov True: warmup (3) + False (1))]
    expected = 3 * (2 + 1 + 3 * (3 + 1))
    points = list(space.iter_grid())

    assert len(points) == expected
    assert space.grid_size() == expected


def test_grid_points_are_unique() -> None:
    points = list(conditional_space().iter_grid())

    assert len({config_key(point) for point in points}) == len(points)


def test_grid_points_respect_conditions() -> None:
    space = conditional_space()

    for point in space.iter_grid():
        for name in space.names:
            assert (name in point) == space.is_active(name, point), (name, point)


def test_grid_with_repeated_name_counts_once() -> None:
    space = SearchSpace(
        (
            CategoricalParam("model", ("mlp", "cnn", "linear")),
            IntParam("width", 1, 4, condition=Condition("model", ("mlp",))),
            IntParam("width", 1, 4, condition=Condition("model", ("cnn",))),
        )
    )

    assert space.grid_size() == 4 + 4 + 1


def test_continuous_space_has_infinite_grid() -> None:
    space = SearchSpace((FloatParam("lr", 1e-4, 1e-1, log=True), IntParam("units", 1, 3)))

    assert not space.is_discrete()
    assert space.grid_size() == math.inf
    with pytest.raises(ValueError, match="step"):
        next(space.iter_grid())


# -- configuration keys ---------------------------------------------------------------------------


def test_config_key_ignores_key_order() -> None:
    assert config_key({"a": 1, "b": "x", "c": 0.5}) == config_key({"c": 0.5, "b": "x", "a": 1})


def test_config_key_accepts_numpy_scalars() -> None:
    plain = {"lr": 0.25, "units": 3, "scale": 2.0}
    numpy = {"lr": np.float64(0.25), "units": np.int64(3), "scale": np.float32(2.0)}

    assert config_key(numpy) == config_key(plain)


def test_config_key_equal_for_equal_numbers() -> None:
    # config_key promises equal keys for equal values, and 2 == 2.0 in Python.
    assert {"units": 2} == {"units": 2.0}
    assert config_key({"units": 2}) == config_key({"units": 2.0})


def test_config_key_differs_for_different_configs() -> None:
    keys = {
        config_key({"a": 1}),
        config_key({"a": 2}),
        config_key({"a": "1"}),
        config_key({"a": 1, "b": None}),
        config_key({"b": 1}),
        config_key({"a": True}),
    }

    assert len(keys) == 6
