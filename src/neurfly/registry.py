"""Plug-in registries filled from package entry points.

Each extension point (strategies, metrics, workloads, policies, executors, ...)
is an entry-point group. A registry loads a plug-in class by name on first use
and caches it; tests and embedding code can also register classes directly.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from neurfly.errors import NotFoundError, PluginError

_logger = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-in classes of one entry-point group.

    Args:
        group: Entry-point group, for example ``neurfly.strategies``.
        kind: What the plug-ins are, used in error messages ("search strategy").
    """

    def __init__(self, group: str, kind: str) -> None:
        self.group = group
        self.kind = kind
        self._loaded: dict[str, type[T]] = {}
        self._extra: dict[str, type[T]] = {}

    def names(self) -> list[str]:
        """Return every registered name, sorted."""
        found = {ep.name for ep in entry_points(group=self.group)}
        return sorted(found | set(self._extra))

    def register(self, name: str, plugin: type[T]) -> None:
        """Register ``plugin`` under ``name`` without an entry point (tests, notebooks)."""
        self._extra[name] = plugin
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._extra.pop(name, None)
        self._loaded.pop(name, None)

    def get(self, name: str) -> type[T]:
        """Load the plug-in class registered as ``name``.

        Raises:
            NotFoundError: No plug-in of that name; the message lists the known names.
            PluginError: The entry point exists but failed to import.
        """
        if name in self._extra:
            return self._extra[name]
        if name in self._loaded:
            return self._loaded[name]

        matches = [ep for ep in entry_points(group=self.group) if ep.name == name]
        if not matches:
            raise NotFoundError(self.kind, name, f"choose one of: {', '.join(self.names())}")

        try:
            plugin = matches[0].load()
        except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
            raise PluginError(f"{self.kind} {name!r} ({matches[0].value}) failed to load: {exc}") from exc

        _logger.debug("loaded %s %r from %s", self.kind, name, matches[0].value)
        self._loaded[name] = plugin
        return plugin
