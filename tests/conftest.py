"""Fixtures shared by the whole suite: an isolated NeurFly home and spec files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from neurfly.store import Store
from support import make_spec

@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A NeurFly home in a temporary folder, used by this process and by CLI subprocesses."""
    folder = tmp_path / "home"
    monkeypatch.setenv("NEURFLY_HOME", str(folder))
    monkeypatch.delenv("NEURFLY_DATABASE_URL", raising=False)
    return folder


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{home / 'neurfly.db'}")
    yield opened
    opened.dispose()


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    def write(filename: str = "spec.yaml", **overrides: Any) -> Path:
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(make_spec(**overrides), sort_keys=False))
        return path

    return write


