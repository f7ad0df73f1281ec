"""The search spec: what a team submits, validated before anything runs.

``parse_spec`` takes the already-parsed YAML mapping (the core does no I/O) and
returns a ``SearchSpec`` plus warnings, or raises ``SpecError`` listing every
problem with the field, the value received and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neurfly.core.detectors import MonitoringSpec
from neurfly.core.space import (
    CategoricalParam,
    Condition,
    ConstantParam,
    FloatParam,
    IntParam,
    Param,
    SearchSpace,
)
from neurfly.errors import SpecError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
ENTRYPOINT_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

# A grid this many times larger than max_trials gets a warning: most of it never runs.
GRID_WASTE_FACTOR = 10
# Trials of more steps than this, with a strategy that never stops a trial early, get a warning.
LONG_TRIAL_STEPS = 50


class Direction(str, Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Objective(_Strict):
    metric: str = Field(min_length=1)
    direction: Direction


class StrategySpec(_Strict):
    name: str = "random"
    seed: int = 0
    options: dict[str, Any] = Field(default_factory=dict)


class Budget(_Strict):
    max_trials: int = Field(ge=1, le=1_000_000)
    max_concurrent_trials: int = Field(default=1, ge=1)
    max_failed_trials: int | None = Field(default=None, ge=1)
    max_steps: int = Field(default=1, ge=1, description="epochs or steps per trial")
    report_timeout_s: float = Field(default=600.0, gt=0, description="kill a trial silent for this long")
    max_retries: int = Field(default=3, ge=0, description="resumes after infrastructure failures")


class Resources(_Strict):
    devices: int = Field(default=1, ge=1)
    hardware: str = "cpu"


class PoolsBusy(str, Enum):
    """What a search on region-pinned data does when every allowed pool is full at submission."""

    WAIT = "wait"
    REJECT = "reject"


DATA_REF_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}/[a-z0-9][a-z0-9._-]{0,62}(@[A-Za-z0-9:._-]+)?$")


class DataSpec(_Strict):
    """``dataset`` names a bundled set; ``training`` and ``validation`` name registered ``team/name[@version]``."""

    dataset: str | None = None
    training: str | None = None
    validation: str | None = None
    when_pools_busy: PoolsBusy = PoolsBusy.WAIT
    validation_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    split_seed: int = 0

    @field_validator("training", "validation")
    @classmethod
    def _check_ref(cls, value: str | None) -> str | None:
        if value is not None and not DATA_REF_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a dataset reference; write TEAM/NAME or TEAM/NAME@VERSION, e.g. team-a/customers")
        return value


class WarmStart(_Strict):
    """Start each new trial from a published artifact ``team/name[@version]``."""

    artifact: str

    @field_validator("artifact")
    @classmethod
    def _check_ref(cls, value: str) -> str:
        if not DATA_REF_PATTERN.match(value):
            raise ValueError(f"{value!r} is not an artifact reference; write TEAM/NAME or TEAM/NAME@VERSION, e.g. team-a/digits-base")
        return value


class SearchSpec(_Strict):
    """A validated search spec.

    ``space`` is the parsed search space; ``raw_space`` keeps the submitted
    definitions so the spec can be stored and shown as written.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str
    team: str
    objective: Objective
    space: SearchSpace
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    budget: Budget
    resources: Resources = Field(default_factory=Resources)
    priority: str = "search"
    data: DataSpec = Field(default_factory=DataSpec)
    warm_start: WarmStart | None = None
    entrypoint: str
    metrics: tuple[str, ...] = ()
    fixed: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)

    @field_validator("name", "team")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a valid name; use 1-63 lowercase letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("entrypoint")
    @classmethod
    def _check_entrypoint(cls, value: str) -> str:
        if ":" in value and not ENTRYPOINT_PATTERN.match(value):
            raise ValueError(f"{value!r} is not 'module:function'; write it as 'my_package.train:main'")
        return value

    @property
    def is_builtin_workload(self) -> bool:
        return ":" not in self.entrypoint


def parse_spec(document: Mapping[str, Any], source: str | None = None) -> tuple[SearchSpec, list[str]]:
    """Validate a spec document and apply the guardrails.

    Args:
        document: The YAML mapping as loaded.
        source: Where it came from, for messages (a file path).

    Returns:
        The spec and a list of warnings about wasteful settings.

    Raises:
        SpecError: Every problem found, each naming the field, value and fix.
    """
    if not isinstance(document, Mapping):
        raise SpecError([f"the spec must be a mapping of fields, got {type(document).__name__}"], source)

    problems: list[str] = []
    fields = dict(document)
    raw_space = fields.pop("space", None)
    space = _parse_space(raw_space, problems)

    try:
        spec = SearchSpec.model_validate({**fields, "space": space or SearchSpace(())})
    except ValidationError as exc:
        problems.extend(_describe_validation_error(exc))
        problems.extend(_check_budget_alone(fields.get("budget")))
        raise SpecError(problems, source) from None

    problems.extend(_check_budget(spec))
    if problems:
        raise SpecError(problems, source)
    return spec, _warnings(spec)


def check_references(
    spec: SearchSpec,
    *,
    strategies: list[str],
    workloads: Mapping[str, frozenset[str]],
    metrics: list[str],
    priority_classes: list[str],
) -> list[str]:
    """Check that the names a spec uses exist; returns the problems found.

    Args:
        spec: A spec from ``parse_spec``.
        strategies: Registered strategy names.
        workloads: Built-in workload name to the metrics it reports.
        metrics: Registered evaluation metric plug-ins.
        priority_classes: Priority class names of the cluster.
    """
    problems: list[str] = []
    if spec.strategy.name not in strategies:
        problems.append(f"strategy.name: unknown strategy {spec.strategy.name!r}; choose one of {', '.join(strategies)}")
    if spec.priority not in priority_classes:
        problems.append(f"priority: unknown priority class {spec.priority!r}; choose one of {', '.join(priority_classes)}")
    for name in spec.metrics:
        if name not in metrics:
            problems.append(f"metrics: unknown metric {name!r}; choose from {', '.join(metrics)}")

    if not spec.is_builtin_workload:
        return problems
    if spec.entrypoint not in workloads:
        problems.append(
            f"entrypoint: unknown workload {spec.entrypoint!r}; use one of {', '.join(sorted(workloads))} "
            "or 'module:function' for your own training code"
        )
        return problems

    reported = set(workloads[spec.entrypoint]) | set(spec.metrics) | {"loss"}
    if spec.objective.metric not in reported:
        problems.append(
            f"objective.metric: workload {spec.entrypoint!r} does not report {spec.objective.metric!r}; "
            f"use one of {', '.join(sorted(reported))}, or add a metric plug-in under 'metrics'"
        )
    return problems


# -- search space -------------------------------------------------------------------------------


def _parse_space(raw: Any, problems: list[str]) -> SearchSpace | None:
    if raw is None:
        problems.append("space: missing; define at least one parameter, e.g. 'lr: {type: float, low: 1e-4, high: 1e-1, log: true}'")
        return None

    entries = _space_entries(raw, problems)
    params: list[Param] = []
    for index, (name, definition) in enumerate(entries):
        param = _parse_param(name, definition, f"space[{index}]" if isinstance(raw, list) else f"space.{name}", problems)
        if param is not None:
            params.append(param)

    if not params and not problems:
        problems.append("space: empty; define at least one parameter")
    _check_names_and_conditions(params, problems)
    return SearchSpace(tuple(params)) if not problems else None


def _space_entries(raw: Any, problems: list[str]) -> list[tuple[str, Any]]:
    if isinstance(raw, Mapping):
        return [(str(name), definition) for name, definition in raw.items()]
    if isinstance(raw, list):
        entries = []
        for index, item in enumerate(raw):
            if not isinstance(item, Mapping) or "name" not in item:
                problems.append(f"space[{index}]: each list entry needs a 'name' and a 'type', got {item!r}")
                continue
            definition = dict(item)
            entries.append((str(definition.pop("name")), definition))
        return entries
    problems.append(f"space: expected a mapping of parameter names to definitions, got {type(raw).__name__}")
    return []


_ALLOWED_KEYS = {
    "float": {"type", "low", "high", "log", "step", "when"},
    "int": {"type", "low", "high", "log", "step", "when"},
    "categorical": {"type", "choices", "when"},
    "constant": {"type", "value", "when"},
}


def _parse_param(name: str, definition: Any, where: str, problems: list[str]) -> Param | None:
    if not isinstance(definition, Mapping):
        problems.append(f"{where}: expected a mapping with 'type', got {definition!r}")
        return None
    kind = definition.get("type")
    if kind not in _ALLOWED_KEYS:
        problems.append(f"{where}.type: {kind!r} is not a parameter type; use float, int, categorical or constant")
        return None
    unknown = set(definition) - _ALLOWED_KEYS[kind]
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)} for a {kind} parameter; allowed: {sorted(_ALLOWED_KEYS[kind])}")
        return None

    condition = _parse_condition(definition.get("when"), where, problems)
    if kind == "categorical":
        return _parse_categorical(name, definition.get("choices"), condition, where, problems)
    if kind == "constant":
        return ConstantParam(name, definition.get("value"), condition)
    return _parse_numeric(name, kind, definition, condition, where, problems)


def _parse_condition(raw: Any, where: str, problems: list[str]) -> Condition | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or len(raw) != 1:
        problems.append(f"{where}.when: expected one 'parent: value' pair (or 'parent: [values]'), got {raw!r}")
        return None
    parent, values = next(iter(raw.items()))
    values = tuple(values) if isinstance(values, list) else (values,)
    if not values:
        problems.append(f"{where}.when.{parent}: empty list of parent values; list at least one")
        return None
    return Condition(str(parent), values)


def _parse_categorical(
    name: str, choices: Any, condition: Condition | None, where: str, problems: list[str]
) -> Param | None:
    if not isinstance(choices, list) or not choices:
        problems.append(f"{where}.choices: expected a non-empty list, got {choices!r}; list at least one choice")
        return None
    for choice in choices:
        if not isinstance(choice, (str, int, float, bool)) and choice is not None:
            problems.append(f"{where}.choices: {choice!r} is not a scalar; choices must be strings, numbers, booleans or null")
            return None
    seen: set[Any] = set()
    duplicates = [c for c in choices if (repr(c) in seen) or seen.add(repr(c))]  # type: ignore[func-returns-value]
    if duplicates:
        problems.append(f"{where}.choices: duplicate choices {duplicates!r}; list each choice once")
        return None
    if len(choices) == 1:
        return ConstantParam(name, choices[0], condition)
    return CategoricalParam(name, tuple(choices), condition)


def _parse_numeric(
    name: str, kind: str, definition: Mapping[str, Any], condition: Condition | None, where: str, problems: list[str]
) -> Param | None:
    low, high = definition.get("low"), definition.get("high")
    log = definition.get("log", False)
    step = definition.get("step")
    number = (int,) if kind == "int" else (int, float)

    before = len(problems)
    for key, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, number) or (isinstance(value, float) and not math.isfinite(value)):
            problems.append(f"{where}.{key}: expected a finite {'integer' if kind == 'int' else 'number'}, got {value!r}")
    if not isinstance(log, bool):
        problems.append(f"{where}.log: expected true or false, got {log!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, number) or step <= 0):
        problems.append(f"{where}.step: expected a positive {'integer' if kind == 'int' else 'number'}, got {step!r}")
    if len(problems) > before:
        return None

    if low >= high:
        problems.append(f"{where}: low ({low}) must be less than high ({high}); swap them or widen the range")
    if log and low <= 0:
        problems.append(f"{where}.low: log scale needs low > 0, got {low}; set low to a small positive value such as 1e-6")
    if log and step is not None and (kind == "float" or step != 1):
        problems.append(f"{where}: log scale cannot be combined with step {step}; drop one of them")
    if step is not None and low < high and not _divides(high - low, step):
        problems.append(
            f"{where}.step: {step} does not divide the range {low}..{high}; "
            f"choose a step that divides {high - low:.12g}, or move high to {low + step * math.floor((high - low) / step):.12g}"
        )
    if len(problems) > before:
        return None

    if kind == "int":
        return IntParam(name, int(low), int(high), bool(log), int(step or 1), condition)
    return FloatParam(name, float(low), float(high), bool(log), float(step) if step is not None else None, condition)


def _divides(span: float, step: float) -> bool:
    ratio = span / step
    return abs(ratio - round(ratio)) < 1e-9 * max(1.0, abs(ratio))


def _check_names_and_conditions(params: list[Param], problems: list[str]) -> None:
    first: dict[str, Param] = {}
    for param in params:
        previous = first.get(param.name)
        if previous is None:
            first[param.name] = param
            continue
        if not previous.same_distribution(param):
            problems.append(
                f"space.{param.name}: defined again with another distribution ({_describe(previous)} vs {_describe(param)}); "
                "use one distribution per name, or rename one of them"
            )
        elif previous.condition is None or param.condition is None:
            problems.append(f"space.{param.name}: defined twice; a repeated name needs a 'when' condition on each entry")

    declared: list[str] = []
    for param in params:
        condition = param.condition
        if condition is not None:
            _check_condition(param, condition, first, declared, problems)
        declared.append(param.name)


def _check_condition(
    param: Param, condition: Condition, first: dict[str, Param], declared: list[str], problems: list[str]
) -> None:
    parent = first.get(condition.parent)
    if parent is None:
        categorical = [name for name, p in first.items() if isinstance(p, (CategoricalParam, ConstantParam))]
        problems.append(
            f"space.{param.name}.when: parent {condition.parent!r} is not a parameter of this space; "
            f"define it before {param.name!r}, or condition on one of: {', '.join(categorical) or 'none defined'}"
        )
        return
    if condition.parent == param.name:
        problems.append(f"space.{param.name}.when: a parameter cannot depend on itself")
        return
    if condition.parent not in declared:
        problems.append(f"space.{param.name}.when: parent {condition.parent!r} must be defined before {param.name!r}")
        return
    if not isinstance(parent, (CategoricalParam, ConstantParam)):
        problems.append(f"space.{param.name}.when: parent {condition.parent!r} must be categorical to condition on its value")
        return
    allowed = parent.grid_values()
    missing = [value for value in condition.values if value not in allowed]
    if missing:
        problems.append(
            f"space.{param.name}.when: {missing!r} is not a choice of {condition.parent!r}; choose from {allowed!r}"
        )


def _describe(param: Param) -> str:
    if isinstance(param, CategoricalParam):
        return f"categorical {list(param.choices)}"
    if isinstance(param, ConstantParam):
        return f"constant {param.value!r}"
    kind = "int" if isinstance(param, IntParam) else "float"
    return f"{kind} {param.low}..{param.high}{' log' if param.log else ''}"


# -- budget and warnings ------------------------------------------------------------------------


def _check_budget_alone(raw: Any) -> list[str]:
    """Budget rules that need only the budget, checked when other fields failed validation."""
    try:
        budget = Budget.model_validate(raw)
    except ValidationError:
        return []
    return _budget_problems(budget)


def _check_budget(spec: SearchSpec) -> list[str]:
    problems = _budget_problems(spec.budget)
    if spec.strategy.name == "grid" and not spec.space.is_discrete():
        undiscrete = [p.name for p in spec.space.params if isinstance(p, FloatParam) and p.step is None]
        problems.append(f"space: grid search needs a step on every float parameter; add one to {', '.join(undiscrete)}")
    return problems


def _budget_problems(budget: Budget) -> list[str]:
    problems = []
    if budget.max_concurrent_trials > budget.max_trials:
        problems.append(
            f"budget.max_concurrent_trials: {budget.max_concurrent_trials} is more than max_trials "
            f"({budget.max_trials}); set it to at most {budget.max_trials}"
        )
    if budget.max_failed_trials is not None and budget.max_failed_trials > budget.max_trials:
        problems.append(
            f"budget.max_failed_trials: {budget.max_failed_trials} is more than max_trials ({budget.max_trials}); "
            f"set it to at most {budget.max_trials}"
        )
    return problems


def _warnings(spec: SearchSpec) -> list[str]:
    warnings = []
    budget = spec.budget
    if spec.strategy.name == "grid":
        size = spec.space.grid_size()
        if size > GRID_WASTE_FACTOR * budget.max_trials:
            warnings.append(
                f"the grid has {int(size)} points but max_trials is {budget.max_trials}: "
                f"only {budget.max_trials / size:.1%} of it will run; coarsen the grid or use random or tpe"
            )
    early_stopping = spec.strategy.name == "asha"
    if budget.max_steps > LONG_TRIAL_STEPS and not early_stopping:
        warnings.append(
            f"every trial runs {budget.max_steps} steps with no early stopping; "
            "use strategy 'asha' to stop poor trials early, or lower budget.max_steps"
        )
    return warnings


def _describe_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "spec"
        value = error.get("input")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            problems.append(f"{location}: unknown field; remove it or check its spelling")
        elif error["type"] == "missing":
            problems.append(f"{location}: missing; this field is required")
        else:
            message = message.removeprefix("Value error, ")
            detail = message if repr(value) in message else f"{message} (got {value!r})"
            problems.append(f"{location}: {detail}")
    return problems


__all__ = [
    "Budget",
    "DataSpec",
    "Direction",
    "Objective",
    "PoolsBusy",
    "Resources",
    "SearchSpec",
    "StrategySpec",
    "WarmStart",
    "check_references",
    "parse_spec",
]
