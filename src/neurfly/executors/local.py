"""The embedded executor: one worker process per attempt on this machine."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

import psutil

from neurfly.core.detectors import ResourceSample
from neurfly.core.states import FailureKind, StepDecision, StopRequest
from neurfly.executors.base import Executor
from neurfly.executors.protocol import (
    ExecutorEvent,
    Exited,
    LaunchSpec,
    MessageKind,
    Outcome,
    event_from_message,
)
from neurfly.executors.worker import ORPHANED_EXIT_CODE, spare_main
from neurfly.monitoring.resources import ProcessSampler

_logger = logging.getLogger(__name__)

# Modules the fork server imports once, so each worker starts without importing them again.
# Python 3.11's fork server also re-imports the parent's main script in every
# worker, so the modules the CLI imports are preloaded too.
PRELOAD = [
    "neurfly.executors.worker",
    "neurfly.workloads.digits_mlp",
    "neurfly.workloads.breast_cancer_gbm",
    "neurfly.workloads.noop",
    "neurfly.metrics",
    "neurfly.cli",
    "neurfly.controller",
]
# Seconds to wait for a worker to exit after its pipe closed, before treating it as killed.
JOIN_TIMEOUT_S = 5.0


@dataclass
class _Worker:
    attempt_id: int
    process: BaseProcess
    connection: Connection
    killed: bool = False
    finished: Exited | None = None
    sampler: ProcessSampler | None = None


class LocalExecutor(Executor):
    """Runs each attempt in its own process, started by a multiprocessing fork server.

    The fork server imports NumPy, scikit-learn and the workloads once, so a
    worker starts in milliseconds, and it is started before any other thread
    of the controller exists, so workers never inherit a held lock. A
    background thread keeps ``spares`` idle worker processes ready, and a
    launch hands its ``LaunchSpec`` to one of them; each process still runs
    one attempt only.

    Args:
        start_method: A multiprocessing start method.
        spares: Idle processes kept ready; 0 starts each process at launch.
    """

    name = "local"

    def __init__(self, start_method: str = "forkserver", spares: int = 4) -> None:
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._context.set_forkserver_preload(PRELOAD)
        self._workers: dict[int, _Worker] = {}
        self._spares: deque[tuple[BaseProcess, Connection]] = deque()
        self._spare_target = spares
        self._spare_lock = threading.Lock()
        self._wanted = threading.Event()
        self._closing = threading.Event()
        self._refill_thread: threading.Thread | None = None
        self._exiting: list[tuple[BaseProcess, float]] = []

    def launch(self, spec: LaunchSpec) -> int | None:
        with self._spare_lock:
            spare = self._spares.popleft() if self._spares else None
        process, connection = spare if spare is not None else self._start_spare()
        connection.send((MessageKind.LAUNCH, spec))
        self._workers[spec.attempt_id] = _Worker(spec.attempt_id, process, connection, sampler=_sampler(process.pid, spec))
        self._keep_spares()
        _logger.debug("attempt %d started in process %s", spec.attempt_id, process.pid)
        return process.pid

    def _start_spare(self) -> tuple[BaseProcess, Connection]:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(target=spare_main, args=(child_end, os.getpid()), name="neurfly-worker")
        process.start()
        child_end.close()
        return process, parent_end

    def _keep_spares(self) -> None:
        if self._spare_target <= 0:
            return
        if self._refill_thread is None:
            self._refill_thread = threading.Thread(target=self._refill, name="neurfly-spares", daemon=True)
            self._refill_thread.start()
        self._wanted.set()

    def _refill(self) -> None:
        while not self._closing.is_set():
            self._wanted.wait(timeout=1.0)
            self._wanted.clear()
            while not self._closing.is_set():
                with self._spare_lock:
                    if len(self._spares) >= self._spare_target:
                        break
                spare = self._start_spare()
                with self._spare_lock:
                    self._spares.append(spare)

    def _reap_exiting(self) -> None:
        still_exiting = []
        for process, deadline in self._exiting:
            if not process.is_alive():
                continue
            if time.monotonic() > deadline:
                _logger.warning("worker process %s did not exit after sending its result; killing it", process.pid)
                process.kill()
                process.join(JOIN_TIMEOUT_S)
                continue
            still_exiting.append((process, deadline))
        self._exiting = still_exiting

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        if self._exiting:
            self._reap_exiting()
        connections = {w.connection: w for w in self._workers.values() if w.finished is None}
        if not connections:
            time.sleep(timeout)
            return []
        events: list[ExecutorEvent] = []
        for connection in wait(list(connections), timeout):
            events.extend(self._drain(connections[connection]))
        return events

    def decide(self, attempt_id: int, step: int, decision: StepDecision) -> None:
        self._send(attempt_id, (MessageKind.DECISION, step, decision.value))

    def request_stop(self, attempt_id: int, reason: StopRequest) -> None:
        self._send(attempt_id, (MessageKind.STOP, reason.value))

    def kill(self, attempt_id: int) -> None:
        worker = self._workers.get(attempt_id)
        if worker is None or worker.finished is not None:
            return
        worker.killed = True
        if worker.process.is_alive():
            worker.process.kill()
        _logger.info("attempt %d killed (process %s)", attempt_id, worker.process.pid)

    def sample_resources(self) -> list[ResourceSample]:
        """Sample CPU, memory, I/O and device load of every running attempt's worker."""
        now = time.time()
        samples = (w.sampler.sample(w.attempt_id, now) for w in self._workers.values() if w.finished is None and w.sampler)
        return [sample for sample in samples if sample is not None]

    def active(self) -> set[int]:
        return {attempt_id for attempt_id, w in self._workers.items() if w.finished is None}

    def shutdown(self) -> None:
        self._closing.set()
        self._wanted.set()
        if self._refill_thread is not None:
            self._refill_thread.join(JOIN_TIMEOUT_S)
        with self._spare_lock:
            spares, self._spares = list(self._spares), deque()
        for process, connection in spares:
            connection.close()
            process.join(JOIN_TIMEOUT_S)
            if process.is_alive():
                process.kill()
        for worker in self._workers.values():
            if worker.process.is_alive():
                worker.process.kill()
        for worker in self._workers.values():
            worker.process.join(JOIN_TIMEOUT_S)
            worker.connection.close()
        self._workers.clear()
        for process, _ in self._exiting:
            process.join(JOIN_TIMEOUT_S)
            if process.is_alive():
                process.kill()
        self._exiting = []

    def _send(self, attempt_id: int, message: tuple) -> None:
        worker = self._workers.get(attempt_id)
        if worker is None or worker.finished is not None:
            return
        try:
            worker.connection.send(message)
        except (BrokenPipeError, OSError):
            _logger.debug("attempt %d: pipe closed before %s could be sent", attempt_id, message[0])

    def _drain(self, worker: _Worker) -> list[ExecutorEvent]:
        events: list[ExecutorEvent] = []
        try:
            while worker.connection.poll():
                event = event_from_message(worker.attempt_id, worker.connection.recv())
                events.append(event)
                if isinstance(event, Exited):
                    self._reap(worker, event)
                    return events
        except (EOFError, OSError):
            events.append(self._reap(worker, None))
        return events

    def _reap(self, worker: _Worker, exited: Exited | None) -> Exited:
        worker.connection.close()
        if exited is not None:
            # The attempt sent its result: let the process exit on its own and
            # reap it on a later poll, so the controller never waits for it.
            self._exiting.append((worker.process, time.monotonic() + JOIN_TIMEOUT_S))
        else:
            worker.process.join(JOIN_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(JOIN_TIMEOUT_S)
        if exited is None:
            exited = self._crash_event(worker)
        worker.finished = exited
        del self._workers[worker.attempt_id]
        return exited

    def _crash_event(self, worker: _Worker) -> Exited:
        code = worker.process.exitcode
        if worker.killed:
            return Exited(worker.attempt_id, Outcome.KILLED, time.time(), exitcode=code, message="killed by the controller")
        if code == ORPHANED_EXIT_CODE:
            message = "worker lost its controller"
        elif code is not None and code < 0:
            message = f"worker process killed by signal {-code}"
        else:
            message = f"worker process exited with status {code} without a result"
        _logger.warning("attempt %d: %s", worker.attempt_id, message)
        return Exited(
            worker.attempt_id,
            Outcome.CRASHED,
            time.time(),
            exitcode=code,
            error_kind=FailureKind.INFRASTRUCTURE.value,
            message=message,
        )


def _sampler(pid: int | None, spec: LaunchSpec) -> ProcessSampler | None:
    try:
        return ProcessSampler(pid, spec.hardware, spec.slots) if pid is not None else None
    except psutil.Error as exc:
        _logger.debug("attempt %d: no resource sampling (%s)", spec.attempt_id, exc)
        return None
