"""Bundled data sets: content versions and stable splits."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from neurfly.errors import DataError
from neurfly.workloads.data import available_datasets, content_hash, load_split

ROWS = 12_000


@pytest.fixture
def large_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(ROWS, 8)), rng.integers(0, 3, size=ROWS)


@pytest.fixture
def fresh_splits() -> Iterator[None]:
    """Clear load_split's cache, so each call below reads and splits the data again."""
    load_split.cache_clear()
    yield
    load_split.cache_clear()


def test_same_data_same_hash(large_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = large_data

    assert content_hash(x, y) == content_hash(x.copy(), y.copy())


def test_hash_sees_late_feature_change(large_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = large_data
    changed = x.copy()
    changed[11_500, 3] += 1e-9

    assert np.array_equal(changed[:10_000], x[:10_000])
    assert content_hash(changed, y) != content_hash(x, y)


def test_hash_sees_late_label_change(large_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = large_data
    changed = y.copy()
    changed[-1] = (changed[-1] + 1) % 3

    assert content_hash(x, changed) != content_hash(x, y)


def test_hash_sees_extra_row(large_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = large_data

    assert content_hash(x[:-1], y[:-1]) != content_hash(x, y)


def test_hash_sees_dtype(large_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = large_data

    assert content_hash(x.astype(np.float32), y) != content_hash(x, y)


def test_hash_independent_of_memory_layout(large_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = large_data

    assert content_hash(np.asfortranarray(x), y) == content_hash(x, y)


def test_hash_names_algorithm(large_data: tuple[np.ndarray, np.ndarray]) -> None:
    version = content_hash(*large_data)

    assert version.startswith("sha256:")
    assert len(version.removeprefix("sha256:")) == 64


@pytest.mark.usefixtures("fresh_splits")
def test_split_versions_stable_across_calls() -> None:
    first = load_split("sklearn:iris", 0.25, 0).versions
    load_split.cache_clear()
    second = load_split("sklearn:iris", 0.25, 0).versions

    assert first == second


@pytest.mark.usefixtures("fresh_splits")
def test_split_seed_changes_versions() -> None:
    first = load_split("sklearn:iris", 0.25, 0).versions
    second = load_split("sklearn:iris", 0.25, 1).versions

    assert first["training"]["version"] != second["training"]["version"]
    assert first["validation"]["version"] != second["validation"]["version"]


@pytest.mark.usefixtures("fresh_splits")
def test_split_records_both_roles() -> None:
    split = load_split("sklearn:wine", 0.25, 0)
    training, validation = split.versions["training"], split.versions["validation"]

    assert training["dataset"] == validation["dataset"] == "sklearn:wine"
    assert training["version"] != validation["version"]
    assert training["rows"] == len(split.y_train)
    assert validation["rows"] == len(split.y_val)
    assert training["rows"] + validation["rows"] == 178


@pytest.mark.usefixtures("fresh_splits")
def test_split_versions_match_arrays() -> None:
    split = load_split("sklearn:breast_cancer", 0.3, 2)

    assert split.versions["training"]["version"] == content_hash(split.x_train, split.y_train)
    assert split.versions["validation"]["version"] == content_hash(split.x_val, split.y_val)


@pytest.mark.usefixtures("fresh_splits")
def test_split_is_stratified() -> None:
    split = load_split("sklearn:iris", 0.2, 0)

    assert np.bincount(split.y_val).tolist() == [10, 10, 10]
    assert split.classes.tolist() == [0, 1, 2]


def test_unknown_dataset_names_bundled_ones() -> None:
    with pytest.raises(DataError) as raised:
        load_split("sklearn:mnist", 0.25, 0)

    message = str(raised.value)
    assert "'sklearn:mnist'" in message
    for name in available_datasets():
        assert name in message


def test_bundled_datasets_listed() -> None:
    assert available_datasets() == ["sklearn:breast_cancer", "sklearn:digits", "sklearn:iris", "sklearn:wine"]
