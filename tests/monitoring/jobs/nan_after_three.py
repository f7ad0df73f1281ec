"""A trial whose loss falls for three steps and is NaN from step 4 on (imported by workers as monitoring.jobs.nan_after_three)."""

from __future__ import annotations

import math

from neurfly import trial


def train(params: dict) -> None:
    for step in range(1, trial.max_steps() + 1):
        loss = 1.0 / step if step < 4 else math.nan
        trial.report(step, objective=loss, loss=loss)
