"""Plug-in registries filled from entry points: lookup, errors and direct registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurfly.core.scheduling import policies
from neurfly.core.strategies import strategies
from neurfly.errors import NotFoundError, PluginError
from neurfly.executors import executors
from neurfly.metrics import metrics
from neurfly.registry import Registry
from neurfly.workloads import workloads

REGISTRIES = {
    "strategies": strategies,
    "metrics": metrics,
    "workloads": workloads,
    "policies": policies,
    "executors": executors,
}


@pytest.fixture(params=list(REGISTRIES))
def registry(request: pytest.FixtureRequest) -> Registry:
    return REGISTRIES[request.param]


def test_names_sorted_and_present(registry: Registry) -> None:
    names = registry.names()

    assert names
    assert names == sorted(names)


def test_every_plugin_loads_with_its_name(registry: Registry) -> None:
    for name in registry.names():
        plugin = registry.get(name)
        assert isinstance(plugin, type)
        assert plugin.name == name


def test_unknown_name_lists_known_names(registry: Registry) -> None:
    with pytest.raises(NotFoundError) as raised:
        registry.get("no-such-plugin")

    message = str(raised.value)
    assert "'no-such-plugin'" in message
    assert registry.kind in message
    for name in registry.names():
        assert name in message


def test_not_found_is_lookup_error() -> None:
    with pytest.raises(LookupError):
        metrics.get("top5")


def test_get_returns_cached_class() -> None:
    assert strategies.get("random") is strategies.get("random")


def test_register_adds_plugin() -> None:
    registry: Registry[object] = Registry("neurfly.tests-empty", "test plug-in")

    class Probe:
        name = "probe"

    registry.register("probe", Probe)

    assert registry.names() == ["probe"]
    assert registry.get("probe") is Probe


def test_unregister_removes_plugin() -> None:
    registry: Registry[object] = Registry("neurfly.tests-empty", "test plug-in")
    registry.register("probe", object)

    registry.unregister("probe")

    assert registry.names() == []
    with pytest.raises(NotFoundError):
        registry.get("probe")


def test_registered_class_shadows_entry_point() -> None:
    entry_point_class = metrics.get("accuracy")

    class Replacement(entry_point_class):  # type: ignore[misc, valid-type]
        pass

    metrics.register("accuracy", Replacement)
    try:
        assert metrics.get("accuracy") is Replacement
    finally:
        metrics.unregister("accuracy")

    assert metrics.get("accuracy") is entry_point_class


def write_distribution(folder: Path, group: str, name: str, target: str) -> None:
    """Install a minimal distribution with one entry point into ``folder``."""
    dist_info = folder / "neurfly_test_plugins-0.0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: neurfly-test-plugins\nVersion: 0.0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[{group}]\n{name} = {target}\n")


def test_entry_point_plugin_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "neurfly_probe_plugin.py").write_text("class Probe:\n    name = 'probe'\n")
    write_distribution(tmp_path, "neurfly.tests-plugins", "probe", "neurfly_probe_plugin:Probe")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[object] = Registry("neurfly.tests-plugins", "test plug-in")

    assert registry.names() == ["probe"]
    assert registry.get("probe").__name__ == "Probe"


def test_broken_entry_point_raises_plugin_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(tmp_path, "neurfly.tests-broken", "broken", "neurfly_no_such_module:Thing")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[object] = Registry("neurfly.tests-broken", "test plug-in")

    with pytest.raises(PluginError) as raised:
        registry.get("broken")

    assert "'broken'" in str(raised.value)
    assert "neurfly_no_such_module:Thing" in str(raised.value)
