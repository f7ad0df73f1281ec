"""Decayed device usage per team, fed to the scheduling policy's fair share."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.controller.services import ControllerService
from neurfly.core.scheduling.snapshot import Snapshot
from neurfly.core.usage import accrue, decay
from neurfly.store import Attempt, Search

if TYPE_CHECKING:
    from neurfly.controller import Controller


class UsageService(ControllerService):
    """Keeps each team's decayed device-seconds from its attempt records.

    Ended attempts are folded into a per-team total as they end; running
    attempts are added at each snapshot for the time they have held their
    devices so far. Both use the cluster's ``usage_half_life_s``.
    """

    def __init__(self) -> None:
        self._totals: dict[str, float] = {}
        self._as_of = 0.0
        self._half_life = 1.0

    def on_start(self, controller: Controller, session: Session) -> None:
        self._half_life = controller.cluster.usage_half_life_s
        self._as_of = controller.clock()
        self._totals = {}
        rows = session.execute(
            select(Search.team, Attempt.devices, Attempt.started_at, Attempt.ended_at)
            .join(Search, Search.id == Attempt.search_id)
            .where(Attempt.ended_at.is_not(None))
        )
        for team, devices, started, ended in rows:
            self._add(team, devices, started, ended)

    def on_attempt_ended(self, controller: Controller, session: Session, attempt: Attempt) -> None:
        search = controller.searches.get(attempt.search_id)
        team = search.team if search is not None else session.get(Search, attempt.search_id).team
        self._add(team, attempt.devices, attempt.started_at, attempt.ended_at or controller.clock())

    def refine_snapshot(self, controller: Controller, snapshot: Snapshot) -> Snapshot:
        now = snapshot.now
        usage = {team: decay(value, max(0.0, now - self._as_of), self._half_life) for team, value in self._totals.items()}
        for attempt in snapshot.running:
            usage[attempt.team] = usage.get(attempt.team, 0.0) + accrue(len(attempt.slots), max(0.0, now - attempt.started_at), self._half_life)
        teams = tuple(dataclasses.replace(team, decayed_usage=usage.get(team.name, 0.0)) for team in snapshot.teams)
        return dataclasses.replace(snapshot, teams=teams)

    def usage(self, team: str, now: float) -> float:
        """Decayed device-seconds of ended attempts of ``team`` as of ``now``."""
        return decay(self._totals.get(team, 0.0), max(0.0, now - self._as_of), self._half_life)

    def _add(self, team: str, devices: int, started: float, ended: float) -> None:
        held = accrue(devices, max(0.0, ended - started), self._half_life)
        # Move the lump from its end time to the common reference time.
        if ended <= self._as_of:
            held = decay(held, self._as_of - ended, self._half_life)
        else:
            held = held * 0.5 ** (-(ended - self._as_of) / self._half_life)
        self._totals[team] = self._totals.get(team, 0.0) + held
