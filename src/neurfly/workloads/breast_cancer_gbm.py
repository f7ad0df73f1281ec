"""Gradient boosting on the bundled breast cancer data, a block of trees per step."""

from __future__ import annotations

from sklearn.ensemble import GradientBoostingClassifier

from neurfly import trial
from neurfly.workloads import Workload
from neurfly.workloads._common import load_trial_split, score


class BreastCancerGBM(Workload):
    """``GradientBoostingClassifier`` with ``warm_start``: step k holds k * ``trees_per_step`` trees.

    Parameters (all optional): ``learning_rate``, ``max_depth``,
    ``subsample``, ``min_samples_leaf``, ``max_features``, ``trees_per_step``.
    """

    name = "breast-cancer-gbm"
    metrics = ("accuracy", "roc_auc", "log_loss", "loss")
    default_dataset = "sklearn:breast_cancer"

    def run(self) -> None:
        params = trial.params()
        split = load_trial_split(self.default_dataset)
        trees_per_step = int(params.get("trees_per_step", 10))

        state = trial.load_checkpoint()
        model = state["model"] if state else self._build(params)
        step = state["step"] if state else 0

        while step < trial.max_steps():
            step += 1
            model.set_params(n_estimators=step * trees_per_step)
            model.fit(split.x_train, split.y_train)
            trial.save_checkpoint({"model": model, "step": step}, step=step)
            trial.report(step, **score(split, model.predict_proba(split.x_val), ("accuracy", "roc_auc")))
            if trial.should_stop():
                return

    @staticmethod
    def _build(params: dict) -> GradientBoostingClassifier:
        max_features = params.get("max_features")
        return GradientBoostingClassifier(
            learning_rate=float(params.get("learning_rate", 0.1)),
            max_depth=int(params.get("max_depth", 3)),
            subsample=float(params.get("subsample", 1.0)),
            min_samples_leaf=int(params.get("min_samples_leaf", 1)),
            max_features=None if max_features in (None, "none") else max_features,
            n_estimators=1,
            warm_start=True,
            random_state=trial.seed(),
        )
