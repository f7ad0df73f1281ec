"""The Ray actor that runs one attempt: ``worker_main`` in a thread of a dedicated worker process."""

from __future__ import annotations

import logging
import os
import threading
import time

import psutil
import ray

from neurfly.core.detectors import ResourceSample
from neurfly.executors._ray_channel import ActorChannel
from neurfly.executors.protocol import LaunchSpec
from neurfly.executors.worker import worker_main
from neurfly.monitoring.resources import ProcessSampler

_logger = logging.getLogger(__name__)


@ray.remote(max_restarts=0, max_task_retries=0)
class TrialActor:
    """One attempt of a trial, running in its own Ray worker process.

    The constructor starts the trial in a thread and returns, so the actor's
    methods stay free to carry messages: ``deliver`` (executor to trial) and
    ``fetch`` (trial to executor, a long poll). A fetch also returns a
    resource sample of this process at most every ``sample_interval_s``
    seconds, and ``None`` turns sampling off. Ray restarts neither the actor
    nor its method calls, because a second run of the same attempt would
    duplicate the trial. The controller starts a new attempt instead.
    The executor creates the actor with ``max_concurrency`` of 2 or more, so a
    ``deliver`` call is not queued behind a waiting ``fetch``.
    """

    def __init__(self, launch: LaunchSpec, sample_interval_s: float | None = None) -> None:
        self._channel = ActorChannel()
        self._attempt_id = launch.attempt_id
        self._sample_interval_s = sample_interval_s
        self._sampled_at = -float("inf")
        self._sampler = _sampler(launch) if sample_interval_s else None
        self._thread = threading.Thread(
            target=worker_main,
            args=(self._channel, launch, None),
            name=f"neurfly-attempt-{launch.attempt_id}",
            daemon=True,
        )
        self._thread.start()
        _logger.debug("attempt %d started in Ray worker process %d", launch.attempt_id, os.getpid())

    def deliver(self, message: tuple) -> None:
        """Put a decision or stop request in the trial's inbox."""
        self._channel.deliver(message)

    def fetch(self, timeout_s: float) -> tuple[list[tuple], ResourceSample | None]:
        """Wait up to ``timeout_s`` seconds for the trial's messages; return them in order, and a sample when one is due."""
        messages, _ = self._channel.take(timeout_s)
        return messages, self._sample()

    def where(self) -> tuple[str, int]:
        """Return the Ray node id and process id that run this attempt."""
        return ray.get_runtime_context().get_node_id(), os.getpid()

    def _sample(self) -> ResourceSample | None:
        now = time.time()
        if self._sampler is None or now - self._sampled_at < self._sample_interval_s:
            return None
        self._sampled_at = now
        return self._sampler.sample(self._attempt_id, now)


def _sampler(launch: LaunchSpec) -> ProcessSampler | None:
    try:
        return ProcessSampler(os.getpid(), launch.hardware, launch.slots)
    except psutil.Error as exc:
        _logger.debug("attempt %d: no resource sampling (%s)", launch.attempt_id, exc)
        return None
