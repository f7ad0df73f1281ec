"""Pieces shared by the scikit-learn workloads."""

from __future__ import annotations

import numpy as np

from neurfly import trial
from neurfly.errors import DataError
from neurfly.metrics import evaluate
from neurfly.workloads.data import Split, load_split


def load_trial_split(default_dataset: str) -> Split:
    """Load the spec's data split and record its versions with the attempt."""
    data = trial.data()
    if data.get("withheld"):
        raise DataError(data["withheld"])
    if isinstance(data.get("training"), str):
        raise DataError(f"data.training {data['training']!r} was not resolved to a registered version; the controller must run the governance service")
    if isinstance(data.get("training"), dict):
        # The controller resolved the spec's registered dataset references to version descriptors.
        from neurfly.governance.loading import load_registered_split

        split = load_registered_split(data["training"], data.get("validation"), float(data.get("validation_fraction", 0.25)), int(data.get("split_seed", 0)))
        trial.record_data(**split.versions)
        return split
    split = load_split(
        data.get("dataset") or default_dataset,
        float(data.get("validation_fraction", 0.25)),
        int(data.get("split_seed", 0)),
    )
    trial.record_data(**split.versions)
    return split


def score(split: Split, y_proba: np.ndarray, base: tuple[str, ...]) -> dict[str, float]:
    """The workload's own metrics plus every metric plug-in the spec asks for.

    ``loss`` is the validation log loss, reported under both names.
    """
    names = tuple(dict.fromkeys((*base, "log_loss", *(m for m in trial.metrics() if m != "loss"))))
    values = evaluate(names, split.y_val, y_proba, split.classes)
    values["loss"] = values["log_loss"]
    return values
