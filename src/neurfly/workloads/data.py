"""Bundled scikit-learn datasets, split with a fixed seed and versioned by content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import train_test_split

from neurfly.errors import DataError

_LOADERS = {
    "sklearn:digits": sk_datasets.load_digits,
    "sklearn:breast_cancer": sk_datasets.load_breast_cancer,
    "sklearn:iris": sk_datasets.load_iris,
    "sklearn:wine": sk_datasets.load_wine,
}


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: np.ndarray
    versions: dict[str, dict[str, object]]


def content_hash(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 over every row of ``x`` and ``y``, with their shapes and dtypes.

    The arrays are hashed in C order in full, so two data sets that differ in
    any one value, at any row, get different versions.
    """
    digest = hashlib.sha256()
    for array in (x, y):
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.tobytes())
    return f"sha256:{digest.hexdigest()}"


def available_datasets() -> list[str]:
    return sorted(_LOADERS)


@lru_cache(maxsize=8)
def load_split(dataset: str, validation_fraction: float, split_seed: int) -> Split:
    """Load ``dataset`` and split it, stratified, into training and validation.

    Raises:
        DataError: ``dataset`` is not a bundled data set.
    """
    loader = _LOADERS.get(dataset)
    if loader is None:
        raise DataError(f"dataset {dataset!r} not found; bundled data sets are {', '.join(available_datasets())}")

    x, y = loader(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=validation_fraction, random_state=split_seed, stratify=y
    )
    versions = {
        "training": {"dataset": dataset, "version": content_hash(x_train, y_train), "rows": len(y_train)},
        "validation": {"dataset": dataset, "version": content_hash(x_val, y_val), "rows": len(y_val)},
    }
    return Split(x_train, y_train, x_val, y_val, np.unique(y), versions)
