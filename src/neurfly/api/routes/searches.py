"""Searches: submit, list, inspect and cancel; their trials, attempts, metrics and events."""

from __future__ import annotations

import logging
import math
import time
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from sqlalchemy import func, select, update

from neurfly.api.access import Access, Caller, Context, access, visible
from neurfly.api.context import MAX_DOCUMENT_DEPTH, finite_json
from neurfly.api.queries import (
    attempt_counts,
    attempt_row,
    metric_value,
    resolve_search,
    resolve_trial,
    summaries,
    trial_by_number,
    trial_numbers,
    trial_row,
)
from neurfly.api.schemas import (
    MAX_ID,
    NAME_REGEX,
    AttemptRow,
    CancelResponse,
    EventRow,
    MetricPoint,
    SearchCurves,
    SearchDetail,
    SearchPage,
    SubmitRequest,
    SubmitResponse,
    TrialDetail,
    TrialPage,
    TrialRow,
)
from neurfly.auth import Role
from neurfly.controller.lease import Lease
from neurfly.controller.runtime import stored_value
from neurfly.core.states import SearchState, TrialState
from neurfly.errors import NeurflyError, SpecError
from neurfly.service import cancel_without_controller, leaderboard, parse_yaml, submit_search, validate_spec
from neurfly.store import Attempt, Event, MetricRecord, Search, Trial

_logger = logging.getLogger(__name__)

router = APIRouter(tags=["searches"])

SearchKey = Annotated[str, Path(pattern=r"^([0-9]{1,10}|[a-z0-9][a-z0-9._-]{0,62})$", description="Search id, or name (the newest search of that name).")]
TeamFilter = Annotated[str | None, Query(pattern=NAME_REGEX, description="Only searches of this team.")]
TrialNumber = Annotated[int, Path(ge=0, le=MAX_ID, description="Trial number within its search.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip.")]


@router.post(
    "/searches",
    response_model=SubmitResponse,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": SubmitResponse, "description": "A search of that team, name and spec exists; it is returned."}},
    openapi_extra=access(Access.MEMBER),
)
def submit(body: SubmitRequest, ctx: Context, who: Caller, response: Response) -> dict[str, Any]:
    """Submit a search spec; the controller starts its trials.

    A running search of the same team, name and spec is returned instead of a
    new one (``resumed``), and an ended one is returned as it is (``finished``)
    unless ``new`` is true. The caller must be a member of the spec's team.
    """
    document = body.spec if body.spec is not None else _parse_yaml(body.spec_yaml or "")
    _check_document(document)
    team = document.get("team")
    if isinstance(team, str) and not who.can(team, Role.MEMBER):
        role = who.role_in(team)
        held = f"is {role.value} of" if role else "is not a member of"
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"user {who.user!r} {held} team {team!r}; submitting needs member or above")

    try:
        spec, warnings = validate_spec(document, ctx.cluster, "request body")
        if not who.can(spec.team, Role.MEMBER):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"user {who.user!r} is not a member of team {spec.team!r}")
        submission = submit_search(ctx.store, spec, document, new=body.new, cluster=ctx.cluster)
    except SpecError as exc:
        raise _spec_error(exc) from None
    except NeurflyError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None

    with ctx.store.session() as session:
        row = session.get(Search, submission.search_id)
        summary = summaries(session, [row])[0]
    if submission.resumed or submission.finished:
        response.status_code = status.HTTP_200_OK
    else:
        _logger.info("user %s submitted search %d (%s/%s)", who.user, row.id, row.team, row.name)
    return {"search": summary, "resumed": submission.resumed, "finished": submission.finished, "warnings": warnings}


@router.get("/searches", response_model=SearchPage, openapi_extra=access(Access.VIEWER))
def list_searches(
    ctx: Context,
    who: Caller,
    team: TeamFilter = None,
    state: Annotated[SearchState | None, Query(description="Only searches in this state.")] = None,
    name: Annotated[str | None, Query(pattern=NAME_REGEX, description="Only searches of this name.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """List the searches of the caller's teams, oldest first."""
    conditions = [visible(who, Search.team)]
    if team is not None:
        conditions.append(Search.team == team)
    if state is not None:
        conditions.append(Search.state == state.value)
    if name is not None:
        conditions.append(Search.name == name)
    with ctx.store.session() as session:
        total = session.scalar(select(func.count()).select_from(Search).where(*conditions))
        rows = session.scalars(select(Search).where(*conditions).order_by(Search.id).limit(limit).offset(offset)).all()
        items = summaries(session, rows)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/searches/{search}", response_model=SearchDetail, openapi_extra=access(Access.VIEWER))
def get_search(search: SearchKey, ctx: Context, who: Caller, team: TeamFilter = None) -> dict[str, Any]:
    """Show a search: its summary and the spec as submitted."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.VIEWER)
        summary = summaries(session, [row])[0]
    return {**summary, "spec": finite_json(row.spec)}


@router.post("/searches/{search}/cancel", response_model=CancelResponse, openapi_extra=access(Access.MEMBER))
def cancel(search: SearchKey, ctx: Context, who: Caller, team: TeamFilter = None) -> dict[str, Any]:
    """Cancel a running search; the controller stops its running trials.

    Only the first of several cancel requests succeeds; the others get 409.
    """
    now = time.time()
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.MEMBER)
        result = session.execute(
            update(Search)
            .where(Search.id == row.id, Search.state == SearchState.RUNNING.value, Search.cancel_requested.is_(False))
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            session.rollback()
            raise HTTPException(status.HTTP_409_CONFLICT, _cancel_conflict(session, row.id))
        session.add(Event(at=now, kind="search.cancel_requested", message=f"cancel requested by {who.user}", search_id=row.id, data={}))
        session.commit()
        holder = Lease().holder(session, now)
    _logger.info("user %s requested cancel of search %d", who.user, row.id)

    if holder is None:
        cancel_without_controller(ctx.store, row.id)
        return {"search_id": row.id, "state": SearchState.CANCELLED, "cancel_requested": True, "message": f"search {row.id} cancelled"}
    return {
        "search_id": row.id,
        "state": SearchState.RUNNING,
        "cancel_requested": True,
        "message": f"search {row.id}: cancel requested; the controller stops its trials",
    }


def _cancel_conflict(session: Any, search_id: int) -> str:
    row = session.get(Search, search_id)
    session.refresh(row)
    if SearchState(row.state).is_final:
        return f"search {search_id} is already {row.state}; nothing to cancel"
    return f"search {search_id}: cancel was already requested; the controller is stopping its trials"


@router.get("/searches/{search}/trials", response_model=TrialPage, openapi_extra=access(Access.VIEWER))
def list_trials(
    search: SearchKey,
    ctx: Context,
    who: Caller,
    team: TeamFilter = None,
    state: Annotated[TrialState | None, Query(description="Only trials in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="Items per page.")] = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    """List the trials of a search by number."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.VIEWER)
        conditions = [Trial.search_id == row.id]
        if state is not None:
            conditions.append(Trial.state == state.value)
        total = session.scalar(select(func.count()).select_from(Trial).where(*conditions))
        trials = session.scalars(select(Trial).where(*conditions).order_by(Trial.number).limit(limit).offset(offset)).all()
        counts = attempt_counts(session, [t.id for t in trials])
    return {"items": [trial_row(t, counts.get(t.id, 0)) for t in trials], "total": total, "limit": limit, "offset": offset}


@router.get("/searches/{search}/leaderboard", response_model=list[TrialRow], openapi_extra=access(Access.VIEWER))
def get_leaderboard(
    search: SearchKey, ctx: Context, who: Caller, team: TeamFilter = None, limit: Limit = 100
) -> list[dict[str, Any]]:
    """Rank completed trials best first, then pruned ones; a non-finite value ranks last."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.VIEWER)
    board = leaderboard(ctx.store, row, limit=limit)
    return [{**entry, "value": metric_value(entry["value"]), "params": finite_json(entry["params"])} for entry in board]


@router.get("/searches/{search}/trials/{number}", response_model=TrialDetail, openapi_extra=access(Access.VIEWER))
def get_trial(search: SearchKey, number: TrialNumber, ctx: Context, who: Caller, team: TeamFilter = None) -> dict[str, Any]:
    """Show a trial: parameters, attempts and the learning curve of every metric."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.VIEWER)
        trial = trial_by_number(session, row, number)
        return _trial_detail(session, trial)


@router.get("/trials/{trial_id}", response_model=TrialDetail, openapi_extra=access(Access.VIEWER))
def get_trial_by_id(trial_id: Annotated[int, Path(ge=1, le=MAX_ID)], ctx: Context, who: Caller) -> dict[str, Any]:
    """Show a trial by its id."""
    with ctx.store.session() as session:
        _, trial = resolve_trial(session, who, trial_id)
        return _trial_detail(session, trial)


def _trial_detail(session: Any, trial: Trial) -> dict[str, Any]:
    attempts = session.scalars(select(Attempt).where(Attempt.trial_id == trial.id).order_by(Attempt.number)).all()
    records = session.execute(
        select(MetricRecord.step, MetricRecord.name, MetricRecord.value, MetricRecord.value_special)
        .where(MetricRecord.trial_id == trial.id)
        .order_by(MetricRecord.id)
    ).all()
    curves: dict[str, dict[int, float | None]] = {}
    for step, name, value, special in records:
        curves.setdefault(name, {})[step] = stored_value(value, special)
    detail = trial_row(trial, len(attempts))
    detail["attempts"] = [attempt_row(a, trial.number) for a in attempts]
    detail["curves"] = {name: [(step, metric_value(curve[step])) for step in sorted(curve)] for name, curve in curves.items()}
    return detail


@router.get("/searches/{search}/trials/{number}/metrics", response_model=list[MetricPoint], openapi_extra=access(Access.VIEWER))
def get_metrics(
    search: SearchKey,
    number: TrialNumber,
    ctx: Context,
    who: Caller,
    team: TeamFilter = None,
    name: Annotated[str | None, Query(min_length=1, max_length=127, pattern=r"^[A-Za-z0-9_.:/-]+$", description="Only this metric.")] = None,
) -> list[dict[str, Any]]:
    """List every metric report of a trial, in the order it arrived, with the attempt that sent it."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.VIEWER)
        trial = trial_by_number(session, row, number)
        query = select(MetricRecord).where(MetricRecord.trial_id == trial.id).order_by(MetricRecord.id)
        if name is not None:
            query = query.where(MetricRecord.name == name)
        records = session.scalars(query).all()
    return [
        {
            "attempt_id": r.attempt_id,
            "step": r.step,
            "name": r.name,
            "value": metric_value(stored_value(r.value, r.value_special)),
            "reported_at": r.reported_at,
        }
        for r in records
    ]


@router.get("/searches/{search}/attempts", response_model=list[AttemptRow], openapi_extra=access(Access.VIEWER))
def list_attempts(search: SearchKey, ctx: Context, who: Caller, team: TeamFilter = None) -> list[dict[str, Any]]:
    """List every attempt of a search by start time: its placement, steps, preemptions and failures."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.VIEWER)
        attempts = session.scalars(select(Attempt).where(Attempt.search_id == row.id).order_by(Attempt.started_at, Attempt.id)).all()
        numbers = trial_numbers(session, [a.trial_id for a in attempts])
    return [attempt_row(a, numbers.get(a.trial_id, -1)) for a in attempts]


@router.get("/searches/{search}/curves", response_model=SearchCurves, openapi_extra=access(Access.VIEWER))
def get_curves(
    search: SearchKey,
    ctx: Context,
    who: Caller,
    team: TeamFilter = None,
    metric: Annotated[str | None, Query(min_length=1, max_length=127, pattern=r"^[A-Za-z0-9_.:/-]+$", description="Metric; default: the objective.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Trials per page, by number.")] = 500,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Learning curves of a search's trials for one metric, for plotting."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.VIEWER)
        metric = metric or row.objective_metric
        trials = session.scalars(select(Trial).where(Trial.search_id == row.id).order_by(Trial.number).limit(limit).offset(offset)).all()
        records = session.execute(
            select(MetricRecord.trial_id, MetricRecord.step, MetricRecord.value, MetricRecord.value_special)
            .where(MetricRecord.trial_id.in_([t.id for t in trials]), MetricRecord.name == metric)
            .order_by(MetricRecord.id)
        ).all() if trials else []
    points: dict[int, dict[int, float | None]] = {}
    for trial_id, step, value, special in records:
        points.setdefault(trial_id, {})[step] = stored_value(value, special)
    curves = [
        {
            "id": t.id,
            "number": t.number,
            "state": t.state,
            "value": metric_value(stored_value(t.value, t.value_special)),
            "points": [(step, metric_value(points[t.id][step])) for step in sorted(points.get(t.id, {}))],
        }
        for t in trials
    ]
    return {"metric": metric, "direction": row.direction, "trials": curves}


@router.get("/searches/{search}/events", response_model=list[EventRow], openapi_extra=access(Access.VIEWER))
def list_events(
    search: SearchKey,
    ctx: Context,
    who: Caller,
    team: TeamFilter = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Only events with a larger id, for polling.")] = 0,
    limit: Limit = 200,
) -> list[dict[str, Any]]:
    """List the decision and audit log of a search: submissions, starts, decisions, preemptions, failures."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, team, Role.VIEWER)
        events = session.scalars(
            select(Event).where(Event.search_id == row.id, Event.id > after).order_by(Event.id).limit(limit)
        ).all()
    return [
        {"id": e.id, "at": e.at, "kind": e.kind, "trial_id": e.trial_id, "attempt_id": e.attempt_id, "message": e.message, "data": finite_json(e.data or {})}
        for e in events
    ]


def _parse_yaml(text: str) -> dict[str, Any]:
    """Parse a YAML spec strictly; aliases are rejected because they can expand a small text into a huge document."""
    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise SpecError(["spec_yaml: YAML aliases (*name) are not accepted; write the values out"], "request body")
        document = parse_yaml(text, "request body")
    except yaml.YAMLError as exc:
        raise _spec_error(SpecError([f"invalid YAML: {exc}"], "request body")) from None
    except SpecError as exc:
        raise _spec_error(exc) from None
    if not isinstance(document, dict):
        raise _spec_error(SpecError([f"the spec must be a mapping of fields, got {type(document).__name__}"], "request body"))
    return document


def _check_document(document: dict[str, Any]) -> None:
    problems = _document_problems(document, "spec", 0)
    if problems:
        raise _spec_error(SpecError(problems[:20], "request body"))


def _document_problems(value: Any, where: str, depth: int) -> list[str]:
    if depth > MAX_DOCUMENT_DEPTH:
        return [f"{where}: nested deeper than {MAX_DOCUMENT_DEPTH} levels; flatten the document"]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: {value!r} is not a finite number; JSON specs take finite numbers only"]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _document_problems(item, f"{where}.{key}", depth + 1)]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _document_problems(item, f"{where}[{index}]", depth + 1)]
    return []


def _spec_error(exc: SpecError) -> HTTPException:
    """Build a 422 shaped like FastAPI's validation errors, with one entry per problem."""
    detail = [{"loc": ["body", "spec"], "msg": problem, "type": "invalid_spec"} for problem in exc.problems]
    return HTTPException(422, detail)
