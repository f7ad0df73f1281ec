"""Shared state of the request handlers: the store, the cluster and the settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurfly.core.cluster import ClusterConfig
from neurfly.store import Store

if TYPE_CHECKING:
    from neurfly.api.supervisor import ControllerSupervisor
    from neurfly.governance.emitter import LineageEmitter

# Largest request body the API reads, in bytes; larger requests get 413.
DEFAULT_MAX_BODY_BYTES = 1 << 20
# Deepest nesting of lists and mappings accepted in a submitted spec document.
MAX_DOCUMENT_DEPTH = 32


@dataclass
class ApiSettings:
    """Settings of one API process.

    Attributes:
        max_body_bytes: Largest request body in bytes; larger ones get 413.
        dashboard: Whether to serve the web dashboard at ``/dashboard/``.
        data_roots: Folders on the server whose files and DVC repositories
            API callers may register as dataset versions. Empty: only
            scikit-learn and lakeFS versions can be registered through the API.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    dashboard: bool = True
    data_roots: tuple[Path, ...] = ()


@dataclass
class ApiContext:
    """The store and cluster an application serves, and its controller if it runs one."""

    store: Store
    cluster: ClusterConfig
    settings: ApiSettings = field(default_factory=ApiSettings)
    supervisor: ControllerSupervisor | None = None
    _lineage: LineageEmitter | None = field(default=None, init=False, repr=False)

    def lineage_emitter(self) -> LineageEmitter:
        """Return the process's OpenLineage emitter, configured from the environment on first use."""
        if self._lineage is None:
            from neurfly.governance.emitter import LineageEmitter

            self._lineage = LineageEmitter()
        return self._lineage


def finite_json(value: Any) -> Any:
    """Return ``value`` with every NaN or infinite float replaced by ``"nan"``, ``"inf"`` or ``"-inf"``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(key): finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value
