"""Reading registered dataset versions inside a trial's worker.

The controller passes each version as a descriptor (see
``registry.version_descriptor``). This module reads the data and checks that
its bytes still match the version id, so a file changed after registration
is an error instead of silently another version.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurfly.errors import DataError

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Table:
    """Feature matrix, labels and column names of one dataset version."""

    columns: tuple[str, ...]
    label: str
    x: np.ndarray
    y: np.ndarray


def load_table(descriptor: dict[str, Any]) -> Table:
    """Read a registered version and check it against its id.

    Raises:
        DataError: The data is missing, unreadable, not numeric where
            features must be, or no longer matches the registered version.
    """
    source = descriptor.get("source")
    if source == "sklearn":
        return _load_sklearn(descriptor)
    if source == "lakefs":
        payload = _read_lakefs(descriptor)
    elif source == "dvc":
        payload = _read_dvc(descriptor)
    elif source == "file":
        payload = _read_file(descriptor)
    else:
        raise DataError(f"dataset {descriptor.get('dataset')}: unknown version source {source!r}")
    return _parse(payload, descriptor)


def preview(descriptor: dict[str, Any], rows: int) -> tuple[list[str], list[list[Any]]]:
    """Return the column names and the first ``rows`` rows of a version, label last."""
    table = load_table(descriptor)
    features = [c for c in table.columns if c != table.label]
    values = [[*map(_plain, table.x[i]), _plain(table.y[i])] for i in range(min(rows, len(table.y)))]
    return [*features, table.label], values


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# -- sources ------------------------------------------------------------------------------------


def _read_file(descriptor: dict[str, Any]) -> bytes:
    path = Path(descriptor["uri"])
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"dataset {descriptor['dataset']}@{descriptor['version']}: file {path} is gone; restore it or register the data again") from None
    actual = hashlib.sha256(payload).hexdigest()
    if actual != descriptor["digest"]:
        raise DataError(
            f"dataset {descriptor['dataset']}: file {path} now hashes to sha256:{actual}, not the registered "
            f"version {descriptor['version']}; versions are immutable, so register the changed file as a new version"
        )
    return payload


def _read_dvc(descriptor: dict[str, Any]) -> bytes:
    from neurfly.governance.versions import dvc_md5

    details = descriptor["details"]
    if details.get("directory"):
        raise DataError(f"dataset {descriptor['dataset']}: {details['path']} is a DVC-tracked directory; the built-in workloads read one CSV or Parquet file")
    repo = Path(details["repo"])
    md5 = descriptor["digest"]
    candidates = [repo / details["path"], repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:], repo / ".dvc" / "cache" / md5[:2] / md5[2:]]
    for candidate in candidates:
        if candidate.is_file() and dvc_md5(candidate, details.get("dvc_hash", "md5")) == md5:
            return candidate.read_bytes()
    raise DataError(
        f"dataset {descriptor['dataset']}@{descriptor['version']}: no file with DVC md5 {md5} in the workspace or the "
        f"DVC cache of {repo}; run 'dvc checkout {details['path']}' or 'dvc pull' at commit {details['commit'][:12]}"
    )


def _read_lakefs(descriptor: dict[str, Any]) -> bytes:
    import fsspec

    # NOTE: reading goes through the "lakefs" fsspec protocol of the lakefs-spec package; no test runs a lakeFS server.
    uri = descriptor["uri"]
    try:
        with fsspec.open(uri, "rb") as handle:
            return handle.read()
    except (ImportError, ValueError) as exc:
        raise DataError(f"dataset {descriptor['dataset']}: cannot open {uri} ({exc}); install lakefs-spec and configure its credentials") from None


def _load_sklearn(descriptor: dict[str, Any]) -> Table:
    from neurfly.workloads.data import _LOADERS, content_hash

    loader = _LOADERS.get(descriptor["uri"])
    if loader is None:
        raise DataError(f"dataset {descriptor['dataset']}: {descriptor['uri']!r} is not a bundled scikit-learn set")
    x, y = loader(return_X_y=True)
    actual = content_hash(x, y).removeprefix("sha256:")
    if actual != descriptor["digest"]:
        raise DataError(
            f"dataset {descriptor['dataset']}: the bundled {descriptor['uri']} now hashes to {actual}, not {descriptor['digest']} "
            "(a scikit-learn upgrade changed it); register it again as a new version"
        )
    columns = tuple(f"x{i}" for i in range(x.shape[1])) + ("label",)
    return Table(columns, "label", np.asarray(x, dtype=float), np.asarray(y))


# -- parsing ------------------------------------------------------------------------------------


def _parse(payload: bytes, descriptor: dict[str, Any]) -> Table:
    fmt = descriptor.get("format")
    if fmt == "csv":
        columns, rows = _csv_rows(payload, descriptor["dataset"])
    elif fmt == "parquet":
        columns, rows = _parquet_rows(payload, descriptor["dataset"])
    else:
        raise DataError(f"dataset {descriptor['dataset']}: format {fmt!r} cannot be read by the built-in workloads; use CSV or Parquet")
    label = descriptor.get("label_column") or columns[-1]
    if label not in columns:
        raise DataError(f"dataset {descriptor['dataset']}: label column {label!r} missing; the columns are {', '.join(columns)}")
    return _to_table(columns, rows, label, descriptor["dataset"])


def _csv_rows(payload: bytes, dataset: str) -> tuple[list[str], list[list[Any]]]:
    reader = csv.reader(io.StringIO(payload.decode("utf-8")))
    header = next(reader, None)
    if header is None:
        raise DataError(f"dataset {dataset}: the CSV file is empty")
    return [c.strip() for c in header], [row for row in reader if row]


def _parquet_rows(payload: bytes, dataset: str) -> tuple[list[str], list[list[Any]]]:
    from neurfly.governance.versions import import_pyarrow_parquet

    table = import_pyarrow_parquet(f"dataset {dataset}").read_table(io.BytesIO(payload))
    columns = table.column_names
    data = [table.column(name).to_pylist() for name in columns]
    return list(columns), [list(row) for row in zip(*data, strict=True)]


def _to_table(columns: list[str], rows: list[list[Any]], label: str, dataset: str) -> Table:
    index = columns.index(label)
    features = [c for c in columns if c != label]
    matrix = np.empty((len(rows), len(features)), dtype=float)
    labels = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise DataError(f"dataset {dataset}: row {number} has {len(row)} values for {len(columns)} columns")
        values = [v for i, v in enumerate(row) if i != index]
        try:
            matrix[number - 1] = [float(v) for v in values]
        except (TypeError, ValueError):
            bad = next(f for f, v in zip(features, values, strict=True) if not _is_number(v))
            raise DataError(f"dataset {dataset}: row {number}, column {bad!r} is not a number; the built-in workloads need numeric features") from None
        labels.append(row[index])
    return Table(tuple(columns), label, matrix, _label_array(labels))


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _label_array(labels: list[Any]) -> np.ndarray:
    if all(_is_number(v) for v in labels):
        numbers = np.asarray([float(v) for v in labels])
        return numbers.astype(int) if np.all(numbers == np.round(numbers)) else numbers
    return np.asarray([str(v) for v in labels])


# -- training and validation split --------------------------------------------------------------


def load_registered_split(training: dict[str, Any], validation: dict[str, Any] | None, validation_fraction: float, split_seed: int) -> Any:
    """Load the training version and either a validation version or a seeded split of the training one.

    Returns:
        A ``neurfly.workloads.data.Split`` whose ``versions`` name the
        registered versions and the content hash of each part.
    """
    from sklearn.model_selection import train_test_split

    from neurfly.workloads.data import Split, content_hash

    train = load_table(training)
    if validation is not None:
        val = load_table(validation)
        if val.x.shape[1] != train.x.shape[1]:
            raise DataError(f"validation dataset {validation['dataset']} has {val.x.shape[1]} features, training dataset {training['dataset']} has {train.x.shape[1]}")
        x_train, y_train, x_val, y_val = train.x, train.y, val.x, val.y
        parts = ("all", "all")
    else:
        _, counts = np.unique(train.y, return_counts=True)
        stratify = train.y if counts.min() >= 2 else None
        x_train, x_val, y_train, y_val = train_test_split(train.x, train.y, test_size=validation_fraction, random_state=split_seed, stratify=stratify)
        parts = ("train", "validation")
        validation = training

    versions = {
        "training": _version_record(training, parts[0], content_hash(x_train, y_train), len(y_train)),
        "validation": _version_record(validation, parts[1], content_hash(x_val, y_val), len(y_val)),
    }
    return Split(x_train, y_train, x_val, y_val, np.unique(np.concatenate([y_train, y_val])), versions)


def _version_record(descriptor: dict[str, Any], part: str, content: str, rows: int) -> dict[str, Any]:
    return {"dataset": descriptor["dataset"], "version": descriptor["version"], "part": part, "content": content, "rows": rows}
