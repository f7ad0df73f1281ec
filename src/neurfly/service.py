"""Service functions behind the CLI: submit, query and cancel searches."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select, update

from neurfly.controller.runtime import stored_value
from neurfly.controller.services import ControllerService, default_services
from neurfly.core.cluster import ClusterConfig, default_cluster, parse_cluster
from neurfly.core.spec import SearchSpec, check_references, parse_spec
from neurfly.core.states import SearchState, TrialState
from neurfly.core.strategies import strategies
from neurfly.errors import NeurflyError, NotFoundError, SpecError
from neurfly.metrics import metrics
from neurfly.store import Attempt, Event, MetricRecord, Search, Store, Trial
from neurfly.workloads import workload_metrics
from neurfly.workloads.data import available_datasets

_logger = logging.getLogger(__name__)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects a key repeated in one mapping instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one mapping; keep one of them", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> Any:
    """Load a YAML file strictly.

    Raises:
        SpecError: The file is missing or is not valid YAML.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"file not found: {path}; check the path"], str(path)) from None
    except OSError as exc:
        raise SpecError([f"cannot read {path}: {exc.strerror}"], str(path)) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str | None = None) -> Any:
    """Load YAML text strictly: safe tags only, and a key repeated in one mapping is an error.

    Raises:
        SpecError: The text is not valid YAML.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError([f"invalid YAML: {exc}"], source) from None


def load_cluster(path: str | Path | None) -> ClusterConfig:
    """Load the cluster in ``path``, or the embedded default when ``path`` is None."""
    if path is None:
        return default_cluster()
    return parse_cluster(read_yaml(path), str(path))


def load_spec(path: str | Path, cluster: ClusterConfig) -> tuple[SearchSpec, dict[str, Any], list[str]]:
    """Read, validate and check a spec file against the registries and ``cluster``.

    Returns:
        The spec, the document as written (what the store keeps), and warnings.

    Raises:
        SpecError: Every problem found.
    """
    document = read_yaml(path)
    spec, warnings = validate_spec(document, cluster, str(path))
    return spec, document, warnings


def validate_spec(document: Any, cluster: ClusterConfig, source: str | None = None) -> tuple[SearchSpec, list[str]]:
    """Validate a spec document (a parsed mapping) and check it against the registries and ``cluster``.

    Returns:
        The spec and warnings.

    Raises:
        SpecError: Every problem found.
    """
    spec, warnings = parse_spec(document, source)
    problems = check_references(
        spec,
        strategies=strategies.names(),
        workloads=workload_metrics(),
        metrics=metrics.names(),
        priority_classes=[c.name for c in cluster.priority_classes],
    )
    if spec.strategy.name in strategies.names():
        problems.extend(_check_strategy(spec))
    problems.extend(_check_resources(spec, cluster))
    problems.extend(_check_dataset(spec))
    if problems:
        raise SpecError(problems, source)
    return spec, warnings


def _check_dataset(spec: SearchSpec) -> list[str]:
    """Reject a bundled data set name that does not exist, before any trial fails on it."""
    dataset = spec.data.dataset
    if dataset is None or not dataset.startswith("sklearn:") or dataset in available_datasets():
        return []
    return [f"data.dataset: bundled data set {dataset!r} not found; use one of {', '.join(available_datasets())}"]


def _check_strategy(spec: SearchSpec) -> list[str]:
    try:
        strategy_class = strategies.get(spec.strategy.name)
        strategy_class(spec.space, spec.objective.direction, spec.budget.max_steps, spec.strategy.options, spec.strategy.seed)
    except SpecError as exc:
        return exc.problems
    except (ValueError, NeurflyError) as exc:
        return [f"strategy: {exc}"]
    return []


def _check_resources(spec: SearchSpec, cluster: ClusterConfig) -> list[str]:
    pools = [p for p in cluster.pools if p.hardware == spec.resources.hardware]
    if not pools:
        kinds = sorted({p.hardware for p in cluster.pools})
        return [f"resources.hardware: no pool has hardware {spec.resources.hardware!r}; the cluster has {', '.join(kinds)}"]
    largest = max((n for p in pools for n in p.nodes), key=lambda n: n.devices)
    if spec.resources.devices > largest.devices:
        return [
            f"resources.devices: {spec.resources.devices} devices on one node can never be placed; "
            f"the largest {spec.resources.hardware} node, {largest.name}, has {largest.devices}"
        ]
    return []


@dataclass(frozen=True)
class Submission:
    search_id: int
    resumed: bool
    finished: bool = False


def submit_search(
    store: Store,
    spec: SearchSpec,
    document: dict[str, Any],
    new: bool = False,
    services: list[ControllerService] | None = None,
    cluster: ClusterConfig | None = None,
) -> Submission:
    """Create a search, or return the newest search of the same team, name and spec.

    A running search of that name is resumed and a finished one is returned
    as it is, so running a spec again never creates trials beyond its budget.
    ``new=True`` always creates a search. Each service's
    ``check_submission`` may reject a new search (budgets, data residency).

    Raises:
        NeurflyError: The newest search of that name has a different spec.
        SpecError: A service rejected the search; the message lists why.
    """
    with store.session() as session:
        existing = session.scalars(
            select(Search).where(Search.team == spec.team, Search.name == spec.name).order_by(Search.id.desc())
        ).first()
        if existing is not None and not new:
            if existing.spec != document:
                raise NeurflyError(
                    f"search {spec.team}/{spec.name} (id {existing.id}, {existing.state}) has a different spec; "
                    "give the new search another name, or pass --new to start another search of this name"
                )
            finished = SearchState(existing.state).is_final
            return Submission(existing.id, resumed=not finished, finished=finished)

        now = time.time()
        row = Search(
            name=spec.name, team=spec.team, state=SearchState.RUNNING.value, spec=document,
            strategy=spec.strategy.name, objective_metric=spec.objective.metric, direction=spec.objective.direction.value,
            max_trials=spec.budget.max_trials, priority=spec.priority, cancel_requested=False, created_at=now,
        )
        session.add(row)
        session.flush()
        checks = default_services() if services is None else services
        if cluster is not None:
            for service in checks:
                service.use_cluster(cluster)
        problems = [p for service in checks for p in service.check_submission(session, row)]
        if problems:
            session.rollback()
            raise SpecError(problems, f"search {spec.team}/{spec.name}")
        session.add(Event(at=now, kind="search.submitted", message=f"{spec.team}/{spec.name} submitted", search_id=row.id, data={}))
        session.commit()
        _logger.info("search %d (%s/%s) submitted", row.id, spec.team, spec.name)
        return Submission(row.id, resumed=False)


def find_search(store: Store, key: str | int) -> Search:
    """Look up a search by id, or by ``name`` or ``team/name`` (the newest of that name).

    Raises:
        NotFoundError: No search matches.
    """
    with store.session() as session:
        if isinstance(key, int) or str(key).isdigit():
            row = session.get(Search, int(key))
        else:
            team, _, name = str(key).rpartition("/")
            query = select(Search).where(Search.name == name).order_by(Search.id.desc())
            if team:
                query = query.where(Search.team == team)
            row = session.scalars(query).first()
        if row is None:
            raise NotFoundError("search", key, "list searches with 'neurfly status'")
        return row


def request_cancel(store: Store, key: str | int) -> Search:
    """Ask the controller to cancel a search; the controller stops its trials."""
    search = find_search(store, key)
    if SearchState(search.state).is_final:
        raise NeurflyError(f"search {search.id} is already {search.state}; nothing to cancel")
    with store.session() as session:
        session.execute(update(Search).where(Search.id == search.id).values(cancel_requested=True))
        session.add(Event(at=time.time(), kind="search.cancel_requested", message="cancel requested", search_id=search.id, data={}))
        session.commit()
    return search


def cancel_without_controller(store: Store, search_id: int) -> None:
    """Mark a search and its unfinished trials cancelled when no controller is running."""
    now = time.time()
    with store.session() as session:
        unfinished = [s.value for s in TrialState if not s.is_final]
        session.execute(
            update(Trial).where(Trial.search_id == search_id, Trial.state.in_(unfinished))
            .values(state=TrialState.STOPPED.value, finished_at=now, message="search cancelled")
        )
        session.execute(update(Search).where(Search.id == search_id).values(state=SearchState.CANCELLED.value, finished_at=now, message="cancelled on request"))
        session.commit()


# -- queries --------------------------------------------------------------------------------------


def search_summary(store: Store, search: Search) -> dict[str, Any]:
    with store.session() as session:
        counts = dict(session.execute(select(Trial.state, func.count()).where(Trial.search_id == search.id).group_by(Trial.state)).all())
    best = [row for row in leaderboard(store, search, limit=1) if row["state"] == TrialState.COMPLETED.value]
    return {
        "id": search.id,
        "team": search.team,
        "name": search.name,
        "state": search.state,
        "strategy": search.strategy,
        "objective": {"metric": search.objective_metric, "direction": search.direction},
        "max_trials": search.max_trials,
        "trials": {state: counts.get(state, 0) for state in (s.value for s in TrialState) if counts.get(state)},
        "best": best[0] if best else None,
        "created_at": search.created_at,
        "finished_at": search.finished_at,
        "message": search.message,
    }


def list_searches(store: Store) -> list[dict[str, Any]]:
    with store.session() as session:
        rows = session.scalars(select(Search).order_by(Search.id)).all()
    return [search_summary(store, row) for row in rows]


def trial_rows(store: Store, search: Search) -> list[dict[str, Any]]:
    """List every trial of a search, in number order."""
    with store.session() as session:
        rows = session.scalars(select(Trial).where(Trial.search_id == search.id).order_by(Trial.number)).all()
        attempts = dict(session.execute(select(Attempt.trial_id, func.count()).where(Attempt.search_id == search.id).group_by(Attempt.trial_id)).all())
    return [_trial_dict(row, attempts.get(row.id, 0)) for row in rows]


def leaderboard(store: Store, search: Search, limit: int | None = None) -> list[dict[str, Any]]:
    """Completed trials best first, then pruned ones by their last value.

    A trial whose objective is not finite ranks after every finite one.
    """
    ranked_states = (TrialState.COMPLETED.value, TrialState.PRUNED.value)
    rows = [r for r in trial_rows(store, search) if r["state"] in ranked_states]
    maximise = search.direction == "maximize"

    def rank(row: dict[str, Any]) -> tuple[bool, bool, float]:
        value = row["value"]
        finite = value is not None and math.isfinite(value)
        pruned = row["state"] == TrialState.PRUNED.value
        if not finite:
            return (pruned, True, 0.0)
        return (pruned, False, -value if maximise else value)

    rows.sort(key=rank)
    return rows[:limit] if limit else rows


def trial_detail(store: Store, search_key: str | int, number: int | None, trial_id: int | None = None) -> dict[str, Any]:
    """Describe a trial with its attempts and its learning curve per metric."""
    with store.session() as session:
        if trial_id is not None:
            row = session.get(Trial, trial_id)
        else:
            search = find_search(store, search_key)
            row = session.scalars(select(Trial).where(Trial.search_id == search.id, Trial.number == number)).first()
        if row is None:
            raise NotFoundError("trial", trial_id if trial_id is not None else f"{search_key}#{number}", "list trials with 'neurfly trials SEARCH'")
        attempts = session.scalars(select(Attempt).where(Attempt.trial_id == row.id).order_by(Attempt.number)).all()
        records = session.execute(
            select(MetricRecord.attempt_id, MetricRecord.step, MetricRecord.name, MetricRecord.value, MetricRecord.value_special)
            .where(MetricRecord.trial_id == row.id).order_by(MetricRecord.id)
        ).all()

    curves: dict[str, dict[int, float | None]] = {}
    for _attempt, step, name, value, special in records:
        curves.setdefault(name, {})[step] = stored_value(value, special)
    detail = _trial_dict(row, len(attempts))
    detail["attempts"] = [_attempt_dict(a) for a in attempts]
    detail["curves"] = {name: [[step, curve[step]] for step in sorted(curve)] for name, curve in curves.items()}
    return detail


def _trial_dict(row: Trial, attempts: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "search_id": row.search_id,
        "number": row.number,
        "state": row.state,
        "value": stored_value(row.value, row.value_special),
        "params": row.params,
        "step": row.step,
        "attempts": attempts,
        "message": row.message,
    }


def _attempt_dict(row: Attempt) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.number,
        "state": row.state,
        "pool": row.pool,
        "node": row.node,
        "slots": row.slots,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "start_step": row.start_step,
        "end_step": row.end_step,
        "reason": row.reason,
        "failure_kind": row.failure_kind,
        "progress_lost": row.progress_lost,
        "data_versions": row.data_versions,
        "traceback": row.traceback,
    }


def team_usage(store: Store, search_ids: list[int], now: float | None = None) -> list[dict[str, Any]]:
    """Sum device-hours, preemptions and steps lost per team over the given searches.

    An attempt still running counts up to ``now``.
    """
    now = time.time() if now is None else now
    with store.session() as session:
        rows = session.execute(
            select(Search.team, Attempt.devices, Attempt.started_at, Attempt.ended_at, Attempt.state, Attempt.progress_lost)
            .join(Search, Search.id == Attempt.search_id)
            .where(Attempt.search_id.in_(search_ids))
        ).all()
    totals: dict[str, dict[str, Any]] = {}
    for team, devices, started, ended, state, lost in rows:
        entry = totals.setdefault(team, {"team": team, "device_hours": 0.0, "attempts": 0, "preemptions": 0, "steps_lost": 0})
        entry["device_hours"] += devices * max(0.0, (ended or now) - started) / 3600.0
        entry["attempts"] += 1
        entry["preemptions"] += state == "preempted"
        entry["steps_lost"] += lost or 0
    return sorted(totals.values(), key=lambda e: e["team"])
