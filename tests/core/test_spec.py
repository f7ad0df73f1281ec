"""Spec guardrails: every bad spec is rejected with the field, the value and a fix."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from neurfly.core.cluster import default_cluster
from neurfly.core.space import CategoricalParam, ConstantParam
from neurfly.core.spec import SearchSpec, check_references, parse_spec
from neurfly.core.strategies import strategies
from neurfly.errors import SpecError
from neurfly.metrics import metrics
from neurfly.workloads import workload_metrics


def valid_document() -> dict[str, Any]:
    return {
        "name": "guardrails",
        "team": "team-a",
        "objective": {"metric": "objective", "direction": "minimize"},
        "space": {
            "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "units": {"type": "int", "low": 8, "high": 64},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        },
        "strategy": {"name": "random", "seed": 0},
        "budget": {"max_trials": 10, "max_concurrent_trials": 2, "max_steps": 5},
        "entrypoint": "noop",
    }


def with_changes(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(valid_document())
    change(document)
    return document


def set_param(name: str, definition: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["space"][name] = definition

    return change


def set_section(section: str, **values: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document.setdefault(section, {}).update(values)

    return change


def set_field(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document[name] = value

    return change


def set_space(space: Any) -> Callable[[dict[str, Any]], None]:
    return set_field("space", space)


def problems_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as raised:
        parse_spec(document)
    return raised.value.problems


def references_of(spec: SearchSpec) -> list[str]:
    return check_references(
        spec,
        strategies=strategies.names(),
        workloads=workload_metrics(),
        metrics=metrics.names(),
        priority_classes=[c.name for c in default_cluster().priority_classes],
    )


def one_problem_about(problems: list[str], field: str) -> str:
    matching = [problem for problem in problems if problem.startswith(field)]
    assert matching, f"no problem names {field!r}: {problems}"
    return matching[0]


@dataclass(frozen=True)
class BadSpec:
    """A spec mistake and the pieces its message must contain."""

    id: str
    change: Callable[[dict[str, Any]], None]
    field: str
    value: str
    fix: str


BAD_SPECS = [
    BadSpec(
        "log-scale-low-zero",
        set_param("lr", {"type": "float", "low": 0.0, "high": 0.1, "log": True}),
        "space.lr.low",
        "0.0",
        "set low to a small positive value",
    ),
    BadSpec(
        "log-scale-low-negative-int",
        set_param("units", {"type": "int", "low": -4, "high": 64, "log": True}),
        "space.units.low",
        "-4",
        "set low to a small positive value",
    ),
    BadSpec(
        "low-equals-high",
        set_param("units", {"type": "int", "low": 8, "high": 8}),
        "space.units",
        "low (8)",
        "swap them or widen the range",
    ),
    BadSpec(
        "low-above-high",
        set_param("lr", {"type": "float", "low": 0.5, "high": 0.1}),
        "space.lr",
        "low (0.5)",
        "swap them",
    ),
    BadSpec(
        "float-step-not-dividing",
        set_param("dropout", {"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}),
        "space.dropout.step",
        "0.3",
        "choose a step that divides",
    ),
    BadSpec(
        "int-step-not-dividing",
        set_param("units", {"type": "int", "low": 0, "high": 10, "step": 3}),
        "space.units.step",
        "3",
        "move high to 9",
    ),
    BadSpec(
        "duplicate-choices",
        set_param("optimizer", {"type": "categorical", "choices": ["adam", "sgd", "adam"]}),
        "space.optimizer.choices",
        "'adam'",
        "list each choice once",
    ),
    BadSpec(
        "empty-choices",
        set_param("optimizer", {"type": "categorical", "choices": []}),
        "space.optimizer.choices",
        "[]",
        "list at least one choice",
    ),
    BadSpec(
        "name-reused-with-other-distribution",
        set_space(
            [
                {"name": "units", "type": "int", "low": 8, "high": 64},
                {"name": "units", "type": "float", "low": 0.0, "high": 1.0},
            ]
        ),
        "space.units",
        "int 8..64 vs float 0.0..1.0",
        "rename one of them",
    ),
    BadSpec(
        "more-concurrent-than-trials",
        set_section("budget", max_trials=3, max_concurrent_trials=4),
        "budget.max_concurrent_trials",
        "4",
        "set it to at most 3",
    ),
    BadSpec(
        "entrypoint-without-function",
        set_field("entrypoint", "my_package.train:"),
        "entrypoint",
        "'my_package.train:'",
        "'my_package.train:main'",
    ),
    BadSpec(
        "entrypoint-with-two-colons",
        set_field("entrypoint", "pkg:train:main"),
        "entrypoint",
        "'pkg:train:main'",
        "'my_package.train:main'",
    ),
    BadSpec(
        "condition-on-later-parent",
        set_space(
            {
                "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer": "sgd"}},
                "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
            }
        ),
        "space.momentum.when",
        "'optimizer'",
        "must be defined before",
    ),
    BadSpec(
        "unknown-parameter-key",
        set_param("lr", {"type": "float", "low": 1e-4, "high": 1e-1, "logscale": True}),
        "space.lr",
        "logscale",
        "allowed: ['high', 'log', 'low', 'step', 'type', 'when']",
    ),
    BadSpec(
        "unknown-top-level-key",
        set_field("budgett", {"max_trials": 3}),
        "budgett",
        "budgett",
        "remove it or check its spelling",
    ),
    BadSpec(
        "unknown-budget-key",
        set_section("budget", max_trails=3),
        "budget.max_trails",
        "max_trails",
        "remove it or check its spelling",
    ),
]


@pytest.mark.parametrize("case", BAD_SPECS, ids=[case.id for case in BAD_SPECS])
def test_bad_spec_message_is_actionable(case: BadSpec) -> None:
    problem = one_problem_about(problems_of(with_changes(case.change)), case.field)

    assert case.value in problem
    assert case.fix in problem


def test_missing_parent_message_names_fix() -> None:
    document = with_changes(
        set_param("momentum", {"type": "float", "low": 0.5, "high": 0.99, "when": {"solver": "sgd"}})
    )

    problem = one_problem_about(problems_of(document), "space.momentum.when")

    assert "'solver'" in problem
    # The fix names the categorical parameters that a condition may use.
    assert "optimizer" in problem


def test_step_fix_suggests_rounded_high() -> None:
    document = with_changes(set_param("dropout", {"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}))

    problem = one_problem_about(problems_of(document), "space.dropout.step")

    assert "move high to 0.9" in problem
    assert "0.8999" not in problem


def test_float_log_with_step_rejected() -> None:
    # Optuna's FloatDistribution, and so the tpe strategy, reject step together with log.
    document = with_changes(set_param("lr", {"type": "float", "low": 1.0, "high": 10.0, "log": True, "step": 1.0}))

    problem = one_problem_about(problems_of(document), "space.lr")

    assert "log" in problem
    assert "step" in problem


def test_all_problems_reported_at_once() -> None:
    def several_mistakes(document: dict[str, Any]) -> None:
        document["space"]["lr"] = {"type": "float", "low": 0.0, "high": 0.1, "log": True}
        document["space"]["optimizer"] = {"type": "categorical", "choices": []}
        document["budget"].update(max_trials=3, max_concurrent_trials=4)
        document["budgett"] = 1

    problems = problems_of(with_changes(several_mistakes))

    assert any(p.startswith("space.lr.low") for p in problems), problems
    assert any(p.startswith("space.optimizer.choices") for p in problems), problems
    assert any(p.startswith("budgett") for p in problems), problems
    assert any(p.startswith("budget.max_concurrent_trials") for p in problems), problems


def test_space_problems_reported_together() -> None:
    def two_bad_params(document: dict[str, Any]) -> None:
        document["space"]["lr"] = {"type": "float", "low": 0.0, "high": 0.1, "log": True}
        document["space"]["units"] = {"type": "int", "low": 0, "high": 10, "step": 3}

    problems = problems_of(with_changes(two_bad_params))

    assert any(p.startswith("space.lr.low") for p in problems), problems
    assert any(p.startswith("space.units.step") for p in problems), problems


def test_error_message_names_source() -> None:
    document = with_changes(set_section("budget", max_trials=3, max_concurrent_trials=4))

    with pytest.raises(SpecError) as raised:
        parse_spec(document, source="team-a/spec.yaml")

    assert "team-a/spec.yaml" in str(raised.value)
    assert "budget.max_concurrent_trials" in str(raised.value)


def test_single_choice_becomes_constant() -> None:
    document = with_changes(set_param("optimizer", {"type": "categorical", "choices": ["adam"]}))

    spec, _ = parse_spec(document)

    param = spec.space.distribution("optimizer")
    assert isinstance(param, ConstantParam)
    assert param.value == "adam"


def test_two_choices_stay_categorical() -> None:
    spec, _ = parse_spec(valid_document())

    assert isinstance(spec.space.distribution("optimizer"), CategoricalParam)


def test_valid_spec_passes_checks() -> None:
    spec, warnings = parse_spec(valid_document())

    assert warnings == []
    assert references_of(spec) == []


# -- references to registries ---------------------------------------------------------------------


def test_unknown_objective_metric_rejected() -> None:
    document = with_changes(set_section("objective", metric="accuracy"))
    spec, _ = parse_spec(document)

    problem = one_problem_about(references_of(spec), "objective.metric")

    assert "'accuracy'" in problem
    assert "'noop'" in problem
    assert "objective" in problem.split("use one of", 1)[1]


def test_metric_plugin_makes_objective_known() -> None:
    document = with_changes(set_section("objective", metric="accuracy"))
    document["metrics"] = ["accuracy"]
    spec, _ = parse_spec(document)

    assert references_of(spec) == []


def test_unknown_workload_rejected() -> None:
    spec, _ = parse_spec(with_changes(set_field("entrypoint", "no-such-workload")))

    problem = one_problem_about(references_of(spec), "entrypoint")

    assert "'no-such-workload'" in problem
    assert "noop" in problem
    assert "'module:function'" in problem


def test_unknown_strategy_rejected() -> None:
    spec, _ = parse_spec(with_changes(set_section("strategy", name="bayes")))

    problem = one_problem_about(references_of(spec), "strategy.name")

    assert "'bayes'" in problem
    for name in strategies.names():
        assert name in problem


def test_unknown_priority_class_rejected() -> None:
    spec, _ = parse_spec(with_changes(set_field("priority", "urgent")))

    problem = one_problem_about(references_of(spec), "priority")

    assert "'urgent'" in problem
    assert "best-effort" in problem


def test_unknown_metric_plugin_rejected() -> None:
    spec, _ = parse_spec(with_changes(set_field("metrics", ["top5"])))

    problem = one_problem_about(references_of(spec), "metrics")

    assert "'top5'" in problem
    assert "accuracy" in problem


def test_custom_entrypoint_skips_workload_checks() -> None:
    document = with_changes(set_field("entrypoint", "my_package.train:main"))
    document["objective"]["metric"] = "val_bleu"
    spec, _ = parse_spec(document)

    assert references_of(spec) == []


def test_reference_problems_reported_together() -> None:
    document = with_changes(set_section("strategy", name="bayes"))
    document["entrypoint"] = "no-such-workload"
    document["priority"] = "urgent"
    spec, _ = parse_spec(document)

    problems = references_of(spec)

    assert any(p.startswith("strategy.name") for p in problems), problems
    assert any(p.startswith("entrypoint") for p in problems), problems
    assert any(p.startswith("priority") for p in problems), problems


# -- warnings -------------------------------------------------------------------------------------


def grid_document(points: int, max_trials: int) -> dict[str, Any]:
    document = valid_document()
    document["space"] = {"units": {"type": "int", "low": 1, "high": points}}
    document["strategy"] = {"name": "grid"}
    document["budget"] = {"max_trials": max_trials, "max_concurrent_trials": 1}
    return document


def test_large_grid_warns() -> None:
    _, warnings = parse_spec(grid_document(points=500, max_trials=10))

    assert len(warnings) == 1
    assert "500 points" in warnings[0]
    assert "max_trials is 10" in warnings[0]


@pytest.mark.timeout(3)
def test_huge_grid_warns_quickly() -> None:
    # Twelve parameters of ten values: 10**12 points, far too many to count one by one.
    document = grid_document(points=10, max_trials=10)
    document["space"] = {f"p{index}": {"type": "int", "low": 1, "high": 10} for index in range(12)}

    _, warnings = parse_spec(document)

    assert len(warnings) == 1
    assert "1000000000000 points" in warnings[0]


def test_small_grid_does_not_warn() -> None:
    _, warnings = parse_spec(grid_document(points=20, max_trials=10))

    assert warnings == []


def test_grid_needs_float_step() -> None:
    document = grid_document(points=5, max_trials=5)
    document["space"]["lr"] = {"type": "float", "low": 0.1, "high": 0.2}

    problem = one_problem_about(problems_of(document), "space")

    assert "lr" in problem
    assert "step" in problem


def test_long_trials_without_early_stopping_warn() -> None:
    _, warnings = parse_spec(with_changes(set_section("budget", max_steps=200)))

    assert len(warnings) == 1
    assert "200 steps" in warnings[0]
    assert "asha" in warnings[0]


def test_long_trials_with_asha_do_not_warn() -> None:
    document = with_changes(set_section("budget", max_steps=200))
    document["strategy"] = {"name": "asha"}

    _, warnings = parse_spec(document)

    assert warnings == []


def test_early_stopping_advice_is_usable() -> None:
    # The warning for long trials names a strategy; that strategy must exist
    # and must not warn about the same budget.
    document = with_changes(set_section("budget", max_steps=200))
    _, warnings = parse_spec(document)
    assert "strategy 'asha'" in warnings[0]
    assert "asha" in strategies.names()

    document["strategy"] = {"name": "asha"}
    _, asha_warnings = parse_spec(document)

    assert asha_warnings == []
