"""Fixtures of the governance tests; their helpers are in ``gov_support``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helpers module sits beside this file; pytest's importlib mode does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

from gov_support import LineageServer  # noqa: E402


@pytest.fixture
def lineage_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LineageServer]:
    """A local OpenLineage endpoint, configured through ``NEURFLY_OPENLINEAGE_URL``."""
    with LineageServer() as server:
        monkeypatch.setenv("NEURFLY_OPENLINEAGE_URL", server.url)
        yield server
