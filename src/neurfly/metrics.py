"""Evaluation metrics as plug-ins (entry-point group ``neurfly.metrics``).

A built-in workload computes its objective and every metric a spec lists
through this registry, so a team adds F1, AUC or its own latency metric by
registering a class, without touching a workload.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from sklearn import metrics as skm

from neurfly.core.spec import Direction
from neurfly.registry import Registry


class Metric(ABC):
    """A score of a classifier's validation predictions.

    Contract:
        * ``compute`` is pure: same inputs, same value; it may return NaN for
          an undefined score but never raises on well-formed inputs.
        * ``y_proba`` has one column per entry of ``classes``, rows summing to 1.
        * ``direction`` says whether larger or smaller values are better.
    """

    name: ClassVar[str] = ""
    direction: ClassVar[Direction] = Direction.MAXIMIZE

    @abstractmethod
    def compute(self, y_true: np.ndarray, y_proba: np.ndarray, classes: np.ndarray) -> float:
        """Score the predictions ``y_proba`` against ``y_true``."""


def _labels(y_proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return classes[np.argmax(y_proba, axis=1)]


class Accuracy(Metric):
    name = "accuracy"

    def compute(self, y_true: np.ndarray, y_proba: np.ndarray, classes: np.ndarray) -> float:
        return float(skm.accuracy_score(y_true, _labels(y_proba, classes)))


class BalancedAccuracy(Metric):
    name = "balanced_accuracy"

    def compute(self, y_true: np.ndarray, y_proba: np.ndarray, classes: np.ndarray) -> float:
        return float(skm.balanced_accuracy_score(y_true, _labels(y_proba, classes)))


class F1Macro(Metric):
    name = "f1_macro"

    def compute(self, y_true: np.ndarray, y_proba: np.ndarray, classes: np.ndarray) -> float:
        return float(skm.f1_score(y_true, _labels(y_proba, classes), average="macro", zero_division=0))


class LogLoss(Metric):
    name = "log_loss"
    direction = Direction.MINIMIZE

    def compute(self, y_true: np.ndarray, y_proba: np.ndarray, classes: np.ndarray) -> float:
        if not np.all(np.isfinite(y_proba)):
            return float("nan")
        return float(skm.log_loss(y_true, y_proba, labels=classes))


class RocAuc(Metric):
    """Area under the ROC curve; one-vs-rest macro average for more than two classes."""

    name = "roc_auc"

    def compute(self, y_true: np.ndarray, y_proba: np.ndarray, classes: np.ndarray) -> float:
        if not np.all(np.isfinite(y_proba)) or len(np.unique(y_true)) < 2:
            return float("nan")
        if len(classes) == 2:
            return float(skm.roc_auc_score(y_true, y_proba[:, 1]))
        return float(skm.roc_auc_score(y_true, y_proba, multi_class="ovr", labels=classes))


metrics: Registry[Metric] = Registry("neurfly.metrics", "evaluation metric")


def evaluate(names: tuple[str, ...], y_true: np.ndarray, y_proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Compute each named metric through the registry."""
    return {name: metrics.get(name)().compute(y_true, y_proba, classes) for name in names}
