"""The trial SDK: what training code calls while NeurFly runs it.

Inside a trial::

    from neurfly import trial

    def train(params):
        state = trial.load_checkpoint()            # None on a fresh start
        epoch = state["epoch"] if state else 0
        model = state["model"] if state else build(params)
        while epoch < trial.max_steps():
            fit_one_epoch(model)
            epoch += 1
            trial.save_checkpoint({"epoch": epoch, "model": model})
            trial.report(epoch, loss=..., accuracy=...)
            if trial.should_stop():                # pause, prune, preemption, cancel
                return

Save the checkpoint before reporting a step: a trial paused or preempted at
that step resumes from the state saved there.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Any

from neurfly.checkpoints import CheckpointStore, load_checkpoint as _load_checkpoint
from neurfly.core.states import StepDecision
from neurfly.errors import NeurflyError, TrialInterrupted
from neurfly.executors.protocol import LaunchSpec, MessageKind

# How long a report at a decision step waits for the controller's decision, in seconds.
DECISION_TIMEOUT_S = 120.0


class TrialContext:
    """The running attempt as seen from inside its worker process."""

    def __init__(self, launch: LaunchSpec, connection: Connection) -> None:
        self.launch = launch
        self._connection = connection
        self._checkpoints = CheckpointStore(launch.checkpoint_root)
        self._last_step = launch.start_step
        self._decision_steps = frozenset(launch.decision_steps)
        self.stop_reason: str | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {**self.launch.fixed, **self.launch.params}

    def report(self, step: int, **metrics: float) -> None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"report step must be a positive integer, got {step!r}")
        if step <= self._last_step:
            raise ValueError(
                f"report step {step} is not after the last reported or resumed step {self._last_step}; "
                "steps must increase"
            )
        values = {name: _as_float(name, value) for name, value in metrics.items()}
        self._last_step = step
        self._send(MessageKind.REPORT, step, values, time.time())
        if step in self._decision_steps and step < self.launch.max_steps:
            self._await_decision(step)

    def save_checkpoint(self, state: Any, step: int | None = None) -> None:
        step = self._last_step if step is None else step
        prefix = f"search-{self.launch.search_id}/trial-{self.launch.trial_id}"
        saved = self._checkpoints.save(prefix, state)
        self._send(MessageKind.CHECKPOINT, step, saved.uri, saved.digest, saved.size_bytes, time.time())

    def load_checkpoint(self) -> Any:
        if self.launch.checkpoint_in is None:
            return None
        uri, digest = self.launch.checkpoint_in
        return _load_checkpoint(uri, digest)

    def should_stop(self) -> bool:
        self._drain()
        return self.stop_reason is not None or self._last_step >= self.launch.max_steps

    def record_data(self, **versions: Any) -> None:
        self._send(MessageKind.DATA, versions, time.time())

    def _await_decision(self, step: int) -> None:
        deadline = time.monotonic() + DECISION_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self._connection.poll(max(0.0, deadline - time.monotonic())):
                break
            message = self._recv()
            if message[0] == MessageKind.STOP:
                self.stop_reason = message[1]
                return
            if message[0] == MessageKind.DECISION and message[1] == step:
                decision = StepDecision(message[2])
                if decision is not StepDecision.CONTINUE:
                    self.stop_reason = decision.value
                return
        raise TrialInterrupted(f"no decision from the controller for step {step} within {DECISION_TIMEOUT_S:.0f} s")

    def _drain(self) -> None:
        while self._connection.poll(0):
            message = self._recv()
            if message[0] == MessageKind.STOP:
                self.stop_reason = message[1]

    def _recv(self) -> tuple:
        try:
            return self._connection.recv()
        except (EOFError, OSError) as exc:
            raise TrialInterrupted("the controller closed the connection") from exc

    def _send(self, *message: Any) -> None:
        try:
            self._connection.send(message)
        except (BrokenPipeError, OSError) as exc:
            raise TrialInterrupted("the controller closed the connection") from exc


def _as_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric {name!r} must be a number, got {value!r}") from None
    return number


_current: TrialContext | None = None


def _context() -> TrialContext:
    if _current is None:
        raise NeurflyError(
            "no trial is running in this process; neurfly.trial works only inside code that NeurFly launched"
        )
    return _current


def _activate(context: TrialContext | None) -> None:
    global _current
    _current = context


def params() -> dict[str, Any]:
    """Return the trial's parameters: the spec's fixed values, overridden by the searched ones."""
    return _context().params


def max_steps() -> int:
    """Steps (epochs) this trial may train at most."""
    return _context().launch.max_steps


def metrics() -> tuple[str, ...]:
    """Return the names of the evaluation metrics the spec requests, the objective first."""
    launch = _context().launch
    return tuple(dict.fromkeys((launch.objective, *launch.metrics)))


def data() -> dict[str, Any]:
    """Return the spec's data section: dataset, validation fraction and split seed."""
    return dict(_context().launch.data)


def seed() -> int:
    """Return a seed for the trial's own randomness, fixed per search seed and trial number."""
    launch = _context().launch
    return (launch.seed * 1_000_003 + launch.trial_number) % (2**31 - 1)


def report(step: int, **metrics: float) -> None:
    """Record metric values at ``step`` (1, 2, ...; increasing).

    At a strategy's decision step this waits for the decision; a pause or
    prune then makes ``should_stop()`` true.

    Raises:
        ValueError: ``step`` does not increase, or a value is not a number.
    """
    _context().report(step, **metrics)


def save_checkpoint(state: Any, step: int | None = None) -> None:
    """Save ``state`` (anything picklable) as the checkpoint at ``step`` (default: the last reported step)."""
    _context().save_checkpoint(state, step)


def load_checkpoint() -> Any:
    """Return the state this attempt resumes from, or ``None`` on a fresh start."""
    return _context().load_checkpoint()


def should_stop() -> bool:
    """True once the trial should save its state and return: paused, pruned, preempted, cancelled or done."""
    return _context().should_stop()


def record_data(**versions: Any) -> None:
    """Record the exact data versions this attempt uses, by role (``training=..., validation=...``)."""
    _context().record_data(**versions)
