"""A workload that trains nothing, to measure the platform's own overhead."""

from __future__ import annotations

import math
import time

from neurfly import trial
from neurfly.workloads import Workload


class NoOp(Workload):
    """Reports ``value`` (a parameter, default 0) at every step, with no data.

    Parameters: ``value`` (number) is reported as the ``objective`` metric;
    ``sleep_s`` waits that long per step; ``fail_at`` raises at that step;
    ``nan_if_above`` reports NaN when ``value`` exceeds it;
    ``checkpoint_every`` saves a checkpoint every that many steps (default 1,
    0 for never).
    """

    name = "noop"
    metrics = ("objective", "loss")

    def run(self) -> None:
        params = trial.params()
        value = float(params.get("value", params.get("x", 0.0)))
        threshold = params.get("nan_if_above")
        if threshold is not None and value > float(threshold):
            value = math.nan

        state = trial.load_checkpoint()
        step = state["step"] if state else 0
        while step < trial.max_steps():
            step += 1
            if params.get("sleep_s"):
                time.sleep(float(params["sleep_s"]))
            if params.get("fail_at") == step:
                raise RuntimeError(f"noop workload failed at step {step} as asked by fail_at")
            every = int(params.get("checkpoint_every", 1))
            if every and step % every == 0:
                trial.save_checkpoint({"step": step}, step=step)
            trial.report(step, objective=value, loss=value)
            if trial.should_stop():
                return
