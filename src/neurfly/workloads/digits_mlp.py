"""A multi-layer perceptron on the bundled digits data, trained epoch by epoch."""

from __future__ import annotations

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from neurfly import trial
from neurfly.workloads import Workload
from neurfly.workloads._common import load_trial_split, score


class DigitsMLP(Workload):
    """``MLPClassifier.partial_fit``, one call per step, so every epoch can be checkpointed.

    Parameters (all optional): ``hidden_units`` (int), ``layers`` (int),
    ``learning_rate_init``, ``alpha``, ``batch_size``, ``solver`` (adam or
    sgd), ``momentum``, ``activation``.
    """

    name = "digits-mlp"
    metrics = ("accuracy", "log_loss", "loss")
    default_dataset = "sklearn:digits"

    def run(self) -> None:
        params = trial.params()
        split = load_trial_split(self.default_dataset)
        scaler = StandardScaler().fit(split.x_train)
        x_train, x_val = scaler.transform(split.x_train), scaler.transform(split.x_val)

        state = trial.load_checkpoint()
        model = state["model"] if state else self._build(params)
        epoch = state["epoch"] if state else 0

        while epoch < trial.max_steps():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.partial_fit(x_train, split.y_train, classes=split.classes)
            epoch += 1
            trial.save_checkpoint({"model": model, "epoch": epoch}, step=epoch)
            trial.report(epoch, **score(split, model.predict_proba(x_val), ("accuracy",)))
            if trial.should_stop():
                return

    @staticmethod
    def _build(params: dict) -> MLPClassifier:
        width = int(params.get("hidden_units", 64))
        layers = int(params.get("layers", 1))
        return MLPClassifier(
            hidden_layer_sizes=(width,) * layers,
            activation=params.get("activation", "relu"),
            solver=params.get("solver", "adam"),
            alpha=float(params.get("alpha", 1e-4)),
            batch_size=int(params.get("batch_size", 64)),
            learning_rate_init=float(params.get("learning_rate_init", 1e-3)),
            momentum=float(params.get("momentum", 0.9)),
            random_state=trial.seed(),
        )
