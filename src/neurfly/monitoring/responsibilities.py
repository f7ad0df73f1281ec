"""The responsibility file: who is responsible, accountable, consulted and informed (RACI) per category.

It also configures the notifiers, the routes of each party to them, the
repeat and escalation intervals, and dataset owners. Without a file every
party is notified through the ``log`` notifier, and the built-in RACI below
applies: a search's team owns its code, configuration and findings, the
dataset's owner owns its data, and the platform team owns infrastructure.

Party names may use placeholders: ``$team`` (the search's team),
``$data_owner`` (the owner of the search's dataset, the search's team unless
``datasets`` names another) and ``$platform`` (``platform_team``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neurfly.errors import NeurflyError, SpecError
from neurfly.monitoring.alerts import Severity

_logger = logging.getLogger(__name__)

TEAM = "$team"
DATA_OWNER = "$data_owner"
PLATFORM = "$platform"
# The party entry whose routes apply to every party without an entry of its own.
ANY_PARTY = "*"
FILE_NAME = "responsibilities.yaml"
ENV_VAR = "NEURFLY_RESPONSIBILITIES"

_SEVERITY_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class ResponsibilityError(SpecError):
    """A responsibility file is missing or invalid; ``problems`` name each field and fix."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        super().__init__(problems, source)
        where = f" {source}" if source else ""
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        self.args = (f"invalid responsibility file{where}:\n{lines}",)


class RaciCategory(str, Enum):
    """Categories the responsibility file assigns; failures are split by their class."""

    USER_CODE = "user_code"
    CONFIGURATION = "configuration"
    DATA = "data"
    INFRASTRUCTURE = "infrastructure"
    DIVERGENCE = "divergence"
    PLATEAU = "plateau"
    STALL = "stall"
    RESOURCE = "resource"
    BUDGET = "budget"


class Role(str, Enum):
    RESPONSIBLE = "responsible"
    ACCOUNTABLE = "accountable"
    CONSULTED = "consulted"
    INFORMED = "informed"


def severity_at_least(severity: str, minimum: Severity) -> bool:
    """Return whether ``severity`` (a ``Severity`` value) is ``minimum`` or more urgent."""
    return _SEVERITY_ORDER[Severity(severity)] >= _SEVERITY_ORDER[minimum]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RaciEntry(_Strict):
    responsible: str = Field(min_length=1)
    accountable: str = Field(min_length=1)
    consulted: tuple[str, ...] = ()
    informed: tuple[str, ...] = ()


class Route(_Strict):
    """One way to reach a party: a configured notifier and, for email, the addresses."""

    notifier: str = Field(min_length=1)
    to: tuple[str, ...] = ()
    min_severity: Severity = Severity.INFO


class PartyConfig(_Strict):
    routes: tuple[Route, ...] = ()


class AlertingConfig(_Strict):
    """Timing of notifications.

    Attributes:
        repeat_interval_s: Least time between two notifications of one alert.
        ack_timeout_s: Time an alert may stay unacknowledged before it is escalated to the accountable party.
        escalate_min_severity: Alerts less severe than this are never escalated.
        retry_initial_s: Wait before the first retry of a failed delivery; it doubles with each retry.
        retry_max_s: Longest wait between retries.
        max_tries: Tries of one delivery before it is given up.
    """

    repeat_interval_s: float = Field(default=3600.0, gt=0)
    ack_timeout_s: float = Field(default=1800.0, gt=0)
    escalate_min_severity: Severity = Severity.WARNING
    retry_initial_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=600.0, gt=0)
    max_tries: int = Field(default=8, ge=1)


_DEFAULT_RACI = {
    RaciCategory.USER_CODE: RaciEntry(responsible=TEAM, accountable=TEAM),
    RaciCategory.CONFIGURATION: RaciEntry(responsible=TEAM, accountable=TEAM),
    RaciCategory.DATA: RaciEntry(responsible=DATA_OWNER, accountable=DATA_OWNER, consulted=(TEAM,)),
    RaciCategory.INFRASTRUCTURE: RaciEntry(responsible=PLATFORM, accountable=PLATFORM, informed=(TEAM,)),
    RaciCategory.DIVERGENCE: RaciEntry(responsible=TEAM, accountable=TEAM),
    RaciCategory.PLATEAU: RaciEntry(responsible=TEAM, accountable=TEAM),
    RaciCategory.STALL: RaciEntry(responsible=TEAM, accountable=TEAM),
    RaciCategory.RESOURCE: RaciEntry(responsible=TEAM, accountable=TEAM, informed=(PLATFORM,)),
    RaciCategory.BUDGET: RaciEntry(responsible=TEAM, accountable=TEAM),
}


class ResponsibilityFile(_Strict):
    """The document of a responsibility file; every section is optional."""

    platform_team: str = Field(default="platform", min_length=1)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    notifiers: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"log": {"type": "log"}})
    parties: dict[str, PartyConfig] = Field(default_factory=dict)
    categories: dict[RaciCategory, RaciEntry] = Field(default_factory=dict)
    datasets: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_routes(self) -> ResponsibilityFile:
        problems = []
        for party, config in self.parties.items():
            for index, route in enumerate(config.routes):
                if route.notifier not in self.notifiers:
                    problems.append(f"parties.{party}.routes[{index}].notifier: {route.notifier!r} is not under "
                                    f"'notifiers'; define it there or use one of {sorted(self.notifiers)}")
        for name, options in self.notifiers.items():
            if not isinstance(options, dict) or "type" not in options:
                problems.append(f"notifiers.{name}: needs a 'type' (log, webhook, email or another registered notifier)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


@dataclass(frozen=True)
class Raci:
    """The parties of one category for one search, placeholders expanded."""

    responsible: str
    accountable: str
    consulted: tuple[str, ...]
    informed: tuple[str, ...]


class Responsibilities:
    """A loaded responsibility file, with its notifiers built.

    Args:
        document: The validated file.
        source: Where it came from, for messages; ``None`` for the defaults.

    Raises:
        ResponsibilityError: A notifier type is unknown or its options are invalid.
    """

    def __init__(self, document: ResponsibilityFile | None = None, source: str | None = None) -> None:
        self.document = document or ResponsibilityFile()
        self.source = source
        self.notifiers = _build_notifiers(self.document.notifiers, source)

    @property
    def alerting(self) -> AlertingConfig:
        return self.document.alerting

    @property
    def platform_team(self) -> str:
        return self.document.platform_team

    def data_owner(self, dataset: str | None, team: str) -> str:
        """Return the team that owns ``dataset``: the ``datasets`` entry, else the search's team.

        The monitoring service asks the governance dataset registry first; this is the fallback.
        """
        if dataset is not None and dataset in self.document.datasets:
            return self.document.datasets[dataset]
        return team

    def raci(self, category: RaciCategory, team: str | None, data_owner: str | None = None) -> Raci:
        """Return the parties of ``category`` for a search of ``team``."""
        entry = self.document.categories.get(category) or _DEFAULT_RACI[category]
        values = {TEAM: team or self.platform_team, DATA_OWNER: data_owner or team or self.platform_team,
                  PLATFORM: self.platform_team}

        def expand(party: str) -> str:
            return values.get(party, party)

        return Raci(
            responsible=expand(entry.responsible),
            accountable=expand(entry.accountable),
            consulted=tuple(dict.fromkeys(expand(p) for p in entry.consulted)),
            informed=tuple(dict.fromkeys(expand(p) for p in entry.informed)),
        )

    def routes(self, party: str, team: str | None) -> tuple[Route, ...]:
        """Return the routes of ``party``: its own entry, ``$team``'s for the search's team, else ``*``'s, else ``log``."""
        parties = self.document.parties
        if party in parties:
            return parties[party].routes
        if party == team and TEAM in parties:
            return parties[TEAM].routes
        if ANY_PARTY in parties:
            return parties[ANY_PARTY].routes
        if "log" in self.notifiers:
            return (Route(notifier="log"),)
        return ()


def _build_notifiers(configs: dict[str, dict[str, Any]], source: str | None) -> dict[str, Any]:
    from neurfly.monitoring.notifiers import notifiers

    built: dict[str, Any] = {}
    problems = []
    for name, config in configs.items():
        options = dict(config)
        kind = options.pop("type")
        try:
            plugin = notifiers.get(kind)
            built[name] = plugin(plugin.settings_model.model_validate(options))
        except ValidationError as exc:
            problems.extend(f"notifiers.{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                            for e in exc.errors())
        except NeurflyError as exc:
            problems.append(f"notifiers.{name}.type: {exc}")
    if problems:
        raise ResponsibilityError(problems, source)
    return built


def find_responsibility_file(explicit: str | Path | None = None, cluster_path: str | None = None) -> Path | None:
    """Return the responsibility file to use, or ``None`` for the defaults.

    The order is: ``explicit``, ``$NEURFLY_RESPONSIBILITIES``, the cluster
    file's ``responsibilities`` path, then ``$NEURFLY_HOME/responsibilities.yaml`` if it exists.
    """
    from neurfly.store import default_home

    for candidate in (explicit, os.environ.get(ENV_VAR) or None, cluster_path):
        if candidate:
            return Path(candidate)
    default = default_home() / FILE_NAME
    return default if default.is_file() else None


def load_responsibilities(path: str | Path | None) -> Responsibilities:
    """Read and validate a responsibility file; ``None`` gives the built-in defaults.

    Raises:
        ResponsibilityError: The file is missing, is not valid YAML, or has invalid fields.
    """
    if path is None:
        return Responsibilities()
    from neurfly.service import read_yaml

    try:
        document = read_yaml(path) or {}
    except SpecError as exc:
        raise ResponsibilityError(exc.problems, str(path)) from None
    try:
        parsed = ResponsibilityFile.model_validate(document)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()]
        raise ResponsibilityError(problems, str(path)) from None
    _logger.info("responsibilities loaded from %s", path)
    return Responsibilities(parsed, str(path))


__all__ = [
    "AlertingConfig",
    "Raci",
    "RaciCategory",
    "RaciEntry",
    "Responsibilities",
    "ResponsibilityError",
    "ResponsibilityFile",
    "Role",
    "Route",
    "find_responsibility_file",
    "load_responsibilities",
    "severity_at_least",
]
