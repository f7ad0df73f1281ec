"""Evaluation metric plug-ins: values on hand-computed examples, and the Metric contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurfly.core.spec import Direction
from neurfly.errors import NotFoundError
from neurfly.metrics import Metric, evaluate, metrics

BINARY = np.array([0, 1])

# Four samples of two classes; rows of probabilities for classes 0 and 1.
# Predicted labels (argmax) are 0, 0, 1, 1 against true labels 0, 0, 0, 1.
Y_TRUE = np.array([0, 0, 0, 1])
Y_PROBA = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])

HAND_COMPUTED = {
    # 3 of 4 labels right.
    "accuracy": 0.75,
    # Recall of class 0 is 2/3, of class 1 is 1/1; their mean.
    "balanced_accuracy": (2 / 3 + 1) / 2,
    # F1 of class 0: precision 1, recall 2/3 -> 0.8. Class 1: precision 1/2, recall 1 -> 2/3.
    "f1_macro": (0.8 + 2 / 3) / 2,
    # Mean negative log-probability of the true class.
    "log_loss": -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.7)) / 4,
    # The one positive (0.7) outranks all three negatives (0.1, 0.2, 0.6).
    "roc_auc": 1.0,
}


def test_every_builtin_has_example() -> None:
    builtin = {"accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc"}

    assert builtin <= set(metrics.names())
    assert set(HAND_COMPUTED) == builtin


@pytest.mark.parametrize(("name", "expected"), sorted(HAND_COMPUTED.items()))
def test_metric_value_by_hand(name: str, expected: float) -> None:
    value = metrics.get(name)().compute(Y_TRUE, Y_PROBA, BINARY)

    assert value == pytest.approx(expected, abs=1e-12)


def test_roc_auc_with_one_misordered_pair() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])

    # Of the four positive-negative pairs, only (0.35, 0.4) is in the wrong order.
    assert metrics.get("roc_auc")().compute(y_true, y_proba, BINARY) == pytest.approx(0.75)


def test_labels_come_from_classes() -> None:
    classes = np.array([3, 5, 7])
    y_true = np.array([7, 3, 5, 5])
    y_proba = np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])

    assert metrics.get("accuracy")().compute(y_true, y_proba, classes) == pytest.approx(0.75)


def test_multiclass_roc_auc_separable() -> None:
    classes = np.array([0, 1, 2])
    y_true = np.array([0, 1, 2, 0, 1, 2])
    y_proba = np.eye(3)[y_true] * 0.8 + 0.2 / 3

    assert metrics.get("roc_auc")().compute(y_true, y_proba, classes) == pytest.approx(1.0)


def test_log_loss_nan_for_nan_input() -> None:
    y_proba = Y_PROBA.copy()
    y_proba[1] = [math.nan, math.nan]

    assert math.isnan(metrics.get("log_loss")().compute(Y_TRUE, y_proba, BINARY))


def test_roc_auc_nan_for_one_class() -> None:
    value = metrics.get("roc_auc")().compute(np.array([1, 1, 1, 1]), Y_PROBA, BINARY)

    assert math.isnan(value)


def test_log_loss_is_minimized() -> None:
    assert metrics.get("log_loss").direction is Direction.MINIMIZE


@pytest.mark.parametrize("name", ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc"])
def test_scores_are_maximized(name: str) -> None:
    assert metrics.get(name).direction is Direction.MAXIMIZE


def test_evaluate_uses_registry() -> None:
    values = evaluate(("accuracy", "log_loss"), Y_TRUE, Y_PROBA, BINARY)

    assert values == pytest.approx({"accuracy": HAND_COMPUTED["accuracy"], "log_loss": HAND_COMPUTED["log_loss"]})


def test_evaluate_unknown_metric_lists_names() -> None:
    with pytest.raises(NotFoundError) as raised:
        evaluate(("top5",), Y_TRUE, Y_PROBA, BINARY)

    assert "'top5'" in str(raised.value)
    assert "accuracy" in str(raised.value)


# -- the Metric contract, on every registered plug-in ---------------------------------------------


@pytest.fixture(params=metrics.names())
def metric(request: pytest.FixtureRequest) -> Metric:
    plugin = metrics.get(request.param)
    assert plugin.name == request.param
    return plugin()


def random_predictions(seed: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = np.concatenate([np.arange(classes), rng.integers(0, classes, size=40)])
    scores = rng.random((len(y_true), classes))
    return y_true, scores / scores.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("classes", [2, 3])
def test_metric_returns_float(metric: Metric, classes: int) -> None:
    y_true, y_proba = random_predictions(0, classes)

    value = metric.compute(y_true, y_proba, np.arange(classes))

    assert isinstance(value, float)
    assert math.isfinite(value)


def test_metric_is_pure(metric: Metric) -> None:
    y_true, y_proba = random_predictions(1, 3)
    before = (y_true.copy(), y_proba.copy())

    first = metric.compute(y_true, y_proba, np.arange(3))
    second = metric.compute(y_true, y_proba, np.arange(3))

    assert first == second
    np.testing.assert_array_equal(y_true, before[0])
    np.testing.assert_array_equal(y_proba, before[1])


def test_metric_declares_direction(metric: Metric) -> None:
    assert isinstance(metric.direction, Direction)
