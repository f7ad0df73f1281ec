"""The Ray executor: runs each attempt as a Ray actor on the node the policy chose.

The controller stays the only scheduler. For every ``launch`` this executor
creates one actor (``TrialActor``) pinned with a hard node affinity to the
Ray node that carries the custom resource ``neurfly_node_<node>``, and requests
as many units of that resource as the attempt has slots, so two
deployments that share a Ray cluster cannot oversubscribe a node. Messages
travel as actor method calls: ``deliver`` carries decisions and stop
requests to the trial, and a long-polling ``fetch`` carries the trial's
reports, checkpoints and final message back.

A Ray node that dies ends its attempts as infrastructure failures
(``Outcome.CRASHED``), so the controller resumes their trials elsewhere from
their last checkpoints. The controller machine and every Ray node must reach
the checkpoint root (a shared folder or an object store URL).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from neurfly.core.detectors import ResourceSample
from neurfly.core.scheduling.snapshot import Node
from neurfly.core.states import FailureKind, StepDecision, StopRequest
from neurfly.errors import NeurflyError
from neurfly.executors._ray_actor import TrialActor
from neurfly.executors._ray_nodes import NodeMatch, match_nodes, node_resource
from neurfly.executors.base import Executor
from neurfly.executors.protocol import (
    ExecutorEvent,
    Exited,
    LaunchSpec,
    MessageKind,
    Outcome,
    event_from_message,
)

_logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "neurfly"
# Seconds after a kill before the attempt is reported as killed even if Ray has not confirmed the actor's death.
KILL_CONFIRM_S = 10.0
# Seconds to wait for the Ray head's port before giving up on the connection.
CONNECT_TIMEOUT_S = 5.0
# Seconds between retries of a fetch whose actor Ray reports as temporarily unavailable.
UNAVAILABLE_RETRY_S = 0.5


class RayExecutorError(NeurflyError):
    """The Ray cluster cannot be reached or cannot run an attempt where the policy placed it."""


@dataclass
class _Attempt:
    attempt_id: int
    node: str
    ray_node_id: str
    actor: Any
    fetch: Any = None
    retry_at: float | None = None
    unavailable_since: float | None = None
    killed_at: float | None = None
    # Wall time of the last fetch that returned; a lost node's attempts end there.
    last_contact: float = field(default_factory=time.time)
    sample: ResourceSample | None = None
    deliveries: list[Any] = field(default_factory=list)


class RayExecutor(Executor):
    """Runs attempts as Ray actors on an existing Ray cluster.

    Args:
        address: The Ray cluster: ``host:port`` of its head (GCS), ``ray://host:10001``
            for Ray Client, ``auto`` for the cluster started on this machine
            (or ``RAY_ADDRESS``), or ``None`` to start a private one-machine
            Ray instance. Ignored when this process is already connected.
        namespace: Ray namespace of this deployment's actors.
        log_to_driver: Copy the trials' output into the controller's output.
        node_refresh_s: How often the Ray node table is read again, in seconds.
        fetch_wait_s: How long one fetch call waits for a trial's messages, in seconds.
        unavailable_limit_s: Seconds an attempt's actor may stay unreachable
            before the attempt is reported as an infrastructure failure.
        actor_concurrency: Threads of each trial actor for message calls (2 or more).
        sample_interval_s: Seconds between resource samples (CPU, memory, I/O,
            device load) of each attempt's actor process; ``None`` turns sampling off.
        runtime_env: Ray runtime environment of the trial actors, for example
            ``{"pip": [...]}`` where the Ray nodes lack the trial's packages.

    Raises:
        ValueError: An option is out of range.
        TypeError: An option has the wrong type.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = "auto",
        namespace: str = DEFAULT_NAMESPACE,
        log_to_driver: bool = False,
        node_refresh_s: float = 1.0,
        fetch_wait_s: float = 1.0,
        unavailable_limit_s: float = 60.0,
        actor_concurrency: int = 4,
        runtime_env: dict[str, Any] | None = None,
        sample_interval_s: float | None = 5.0,
    ) -> None:
        _check_options(address, namespace, node_refresh_s, fetch_wait_s, unavailable_limit_s, actor_concurrency, runtime_env)
        if sample_interval_s is not None:
            _check_seconds("sample_interval_s", sample_interval_s)
        self.address = address
        self.namespace = namespace
        self.log_to_driver = log_to_driver
        self.node_refresh_s = float(node_refresh_s)
        self.fetch_wait_s = float(fetch_wait_s)
        self.unavailable_limit_s = float(unavailable_limit_s)
        self.actor_concurrency = int(actor_concurrency)
        self.runtime_env = runtime_env
        self.sample_interval_s = None if sample_interval_s is None else float(sample_interval_s)
        self._connected = False
        self._owns_connection = False
        self._attempts: dict[int, _Attempt] = {}
        self._configured: tuple[Node, ...] = ()
        self._match = NodeMatch((), {}, {}, frozenset())
        self._refreshed_at = -float("inf")
        self._warned_local_checkpoints = False

    # -- Executor contract -----------------------------------------------------------------------

    def launch(self, spec: LaunchSpec) -> int | None:
        """Create the attempt's actor on the Ray node of ``spec.node``; returns ``None`` (no local process)."""
        self._connect()
        if spec.node not in self._match.placement:
            self._refresh_nodes(force=True)
        ray_node_id = self._match.placement.get(spec.node)
        if ray_node_id is None:
            raise RayExecutorError(
                f"no live Ray node carries {node_resource(spec.node)!r} for NeurFly node {spec.node!r}; "
                f"start one with: ray start --address <head> --resources '{{\"{node_resource(spec.node)}\": <devices>}}'"
            )

        spec = self._portable(spec, ray_node_id)
        resources = {node_resource(spec.node): len(spec.slots)} if spec.slots else {}
        actor = TrialActor.options(
            num_cpus=0,
            resources=resources,
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray_node_id, soft=False),
            max_concurrency=self.actor_concurrency,
            runtime_env=self.runtime_env,
        ).remote(spec, self.sample_interval_s)
        attempt = _Attempt(spec.attempt_id, spec.node, ray_node_id, actor)
        attempt.fetch = actor.fetch.remote(self.fetch_wait_s)
        self._attempts[spec.attempt_id] = attempt
        _logger.debug("attempt %d placed on Ray node %s (NeurFly node %s)", spec.attempt_id, ray_node_id, spec.node)
        return None

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        self._connect()
        self._refresh_nodes()
        events = self._receive_ready(timeout)
        events.extend(self._end_lost_attempts())
        events.extend(self._confirm_kills())
        self._retry_unavailable()
        self._reap_deliveries()
        return events

    def decide(self, attempt_id: int, step: int, decision: StepDecision) -> None:
        self._deliver(attempt_id, (MessageKind.DECISION, step, decision.value))

    def request_stop(self, attempt_id: int, reason: StopRequest) -> None:
        self._deliver(attempt_id, (MessageKind.STOP, reason.value))

    def kill(self, attempt_id: int) -> None:
        attempt = self._attempts.get(attempt_id)
        if attempt is None or attempt.killed_at is not None:
            return
        attempt.killed_at = time.monotonic()
        _kill_actor(attempt)
        _logger.info("attempt %d killed (its Ray actor on node %s)", attempt_id, attempt.node)

    def active(self) -> set[int]:
        return set(self._attempts)

    def shutdown(self) -> None:
        for attempt in self._attempts.values():
            _kill_actor(attempt)
        self._attempts.clear()
        if self._connected and self._owns_connection:
            ray.shutdown()
        self._connected = False
        _logger.info("Ray executor shut down")

    def sample_resources(self) -> list[ResourceSample]:
        """Return the resource samples received from running attempts since the last call."""
        samples = [a.sample for a in self._attempts.values() if a.sample is not None]
        for attempt in self._attempts.values():
            attempt.sample = None
        return samples

    def nodes(self, configured: Sequence[Node]) -> list[Node] | None:
        """Return the cluster file's nodes, schedulable where a live Ray node carries them."""
        self._connect()
        configured = tuple(configured)
        self._refresh_nodes(force=configured != self._configured, configured=configured)
        return list(self._match.nodes)

    # -- connection and node table ---------------------------------------------------------------

    def _connect(self) -> None:
        if self._connected:
            return
        if ray.is_initialized():
            self._owns_connection = False
        else:
            _logger.info("connecting to the Ray cluster at %s (namespace %s)", self.address or "a new local instance", self.namespace)
            _check_reachable(self.address)
            try:
                ray.init(
                    address=self.address,
                    namespace=self.namespace,
                    log_to_driver=self.log_to_driver,
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError, ValueError, RayError) as exc:
                raise RayExecutorError(
                    f"could not connect to the Ray cluster at {self.address!r}: {exc}; "
                    f"check that 'ray status --address {self.address}' works from this machine"
                ) from exc
            self._owns_connection = True
        self._connected = True

    def _refresh_nodes(self, force: bool = False, configured: tuple[Node, ...] | None = None) -> None:
        now = time.monotonic()
        if configured is not None:
            self._configured = configured
        if not force and now - self._refreshed_at < self.node_refresh_s:
            return
        self._refreshed_at = now
        previous = self._match
        self._match = match_nodes(self._configured, ray.nodes())
        # Until the controller passes the cluster file's nodes, every carried name would look unknown.
        if self._configured:
            _log_changes(previous if previous.nodes else None, self._match)

    # -- receiving -------------------------------------------------------------------------------

    def _receive_ready(self, timeout: float) -> list[ExecutorEvent]:
        waiting = {a.fetch: a for a in self._attempts.values() if a.fetch is not None}
        if not waiting:
            time.sleep(timeout)
            return []
        refs = list(waiting)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        events: list[ExecutorEvent] = []
        for ref in ready:
            events.extend(self._receive(waiting[ref], ref))
        return events

    def _receive(self, attempt: _Attempt, ref: Any) -> list[ExecutorEvent]:
        attempt.fetch = None
        try:
            messages, sample = ray.get(ref)
        except ActorUnavailableError as exc:
            return self._unavailable(attempt, exc)
        except RayActorError as exc:
            return [self._finish(attempt, self._death_event(attempt, exc))]
        except RayError as exc:
            message = f"fetching messages from the Ray actor failed: {_one_line(exc)}"
            return [self._finish(attempt, _crashed(attempt.attempt_id, message))]

        attempt.unavailable_since = None
        attempt.last_contact = time.time()
        attempt.sample = sample or attempt.sample
        events: list[ExecutorEvent] = []
        for message in messages:
            event = event_from_message(attempt.attempt_id, message)
            if isinstance(event, Exited):
                events.append(self._finish(attempt, event))
                return events
            events.append(event)
        attempt.fetch = attempt.actor.fetch.remote(self.fetch_wait_s)
        return events

    def _unavailable(self, attempt: _Attempt, exc: Exception) -> list[ExecutorEvent]:
        now = time.monotonic()
        attempt.unavailable_since = attempt.unavailable_since or now
        if now - attempt.unavailable_since > self.unavailable_limit_s:
            _kill_actor(attempt)
            message = f"the Ray actor stayed unreachable for more than {self.unavailable_limit_s:.0f} s: {_one_line(exc)}"
            return [self._finish(attempt, _crashed(attempt.attempt_id, message))]
        attempt.retry_at = now + UNAVAILABLE_RETRY_S
        _logger.debug("attempt %d: Ray actor unavailable (%s); retrying", attempt.attempt_id, _one_line(exc))
        return []

    def _retry_unavailable(self) -> None:
        now = time.monotonic()
        for attempt in self._attempts.values():
            if attempt.fetch is None and attempt.retry_at is not None and now >= attempt.retry_at:
                attempt.retry_at = None
                attempt.fetch = attempt.actor.fetch.remote(self.fetch_wait_s)

    def _death_event(self, attempt: _Attempt, exc: RayActorError) -> Exited:
        if attempt.killed_at is not None:
            return Exited(attempt.attempt_id, Outcome.KILLED, time.time(), message="killed by the controller")
        self._refresh_nodes(force=True)
        if self._match.is_lost(attempt.ray_node_id):
            return _crashed(attempt.attempt_id, self._lost_message(attempt), attempt.last_contact)
        if exc.actor_init_failed:
            message = f"the trial actor could not start on Ray node {attempt.ray_node_id}: {_one_line(exc)}; check that neurfly is installed there"
        else:
            message = f"the trial actor died on Ray node {attempt.ray_node_id}: {_one_line(exc)}"
        return _crashed(attempt.attempt_id, message)

    def _end_lost_attempts(self) -> list[ExecutorEvent]:
        lost = [a for a in self._attempts.values() if self._match.is_lost(a.ray_node_id)]
        events = []
        for attempt in lost:
            _kill_actor(attempt)
            if attempt.killed_at is not None:
                event = Exited(attempt.attempt_id, Outcome.KILLED, time.time(), message="killed by the controller; its Ray node was lost")
            else:
                event = _crashed(attempt.attempt_id, self._lost_message(attempt), attempt.last_contact)
            events.append(self._finish(attempt, event))
        return events

    def _confirm_kills(self) -> list[ExecutorEvent]:
        now = time.monotonic()
        overdue = [a for a in self._attempts.values() if a.killed_at is not None and now - a.killed_at > KILL_CONFIRM_S]
        events = []
        for attempt in overdue:
            _logger.warning("attempt %d: Ray did not confirm its actor's death within %.0f s of the kill", attempt.attempt_id, KILL_CONFIRM_S)
            message = f"killed by the controller; Ray did not confirm within {KILL_CONFIRM_S:.0f} s"
            events.append(self._finish(attempt, Exited(attempt.attempt_id, Outcome.KILLED, time.time(), message=message)))
        return events

    def _finish(self, attempt: _Attempt, event: Exited) -> Exited:
        self._attempts.pop(attempt.attempt_id, None)
        if event.outcome is not Outcome.KILLED:
            _kill_actor(attempt)
        if event.outcome is Outcome.CRASHED:
            _logger.warning("attempt %d on NeurFly node %s: %s", attempt.attempt_id, attempt.node, event.message)
        return event

    def _lost_message(self, attempt: _Attempt) -> str:
        node = self._match.ray_nodes.get(attempt.ray_node_id)
        where = f" ({node.address})" if node is not None and node.address else ""
        return f"Ray node {attempt.ray_node_id}{where} of NeurFly node {attempt.node} was lost"

    # -- sending ---------------------------------------------------------------------------------

    def _deliver(self, attempt_id: int, message: tuple) -> None:
        attempt = self._attempts.get(attempt_id)
        if attempt is None or attempt.killed_at is not None:
            return
        attempt.deliveries.append(attempt.actor.deliver.remote(message))

    def _reap_deliveries(self) -> None:
        for attempt in self._attempts.values():
            if not attempt.deliveries:
                continue
            done, attempt.deliveries = ray.wait(attempt.deliveries, num_returns=len(attempt.deliveries), timeout=0)
            for ref in done:
                try:
                    ray.get(ref)
                except RayError as exc:
                    _logger.debug("attempt %d: a message could not be delivered: %s", attempt.attempt_id, _one_line(exc))

    # -- launch details --------------------------------------------------------------------------

    def _portable(self, spec: LaunchSpec, ray_node_id: str) -> LaunchSpec:
        """Make local checkpoint paths absolute, because Ray workers run in another folder."""
        root = _absolute(spec.checkpoint_root)
        checkpoint_in = spec.checkpoint_in
        if checkpoint_in is not None:
            checkpoint_in = (_absolute(checkpoint_in[0]), checkpoint_in[1])
        if "://" not in spec.checkpoint_root and not self._warned_local_checkpoints:
            self._warn_if_remote(root, ray_node_id)
        return replace(spec, checkpoint_root=root, checkpoint_in=checkpoint_in)

    def _warn_if_remote(self, root: str, ray_node_id: str) -> None:
        node = self._match.ray_nodes.get(ray_node_id)
        controller_address = ray.util.get_node_ip_address()
        if node is None or node.address in ("", controller_address):
            return
        self._warned_local_checkpoints = True
        _logger.warning(
            "checkpoints go to the local path %s, but trials run on other machines (%s); a trial resumes on another "
            "node only if every node mounts that path; pass --checkpoints with a URL every node reaches (s3://..., gs://...)",
            root, node.address,
        )


def _check_options(address: str | None, namespace: str, node_refresh_s: float, fetch_wait_s: float,
                   unavailable_limit_s: float, actor_concurrency: int, runtime_env: dict[str, Any] | None) -> None:
    if address is not None and not _is_address(address):
        raise ValueError(f"address must be host:port, ray://host:port, 'auto' or None, got {address!r}; for example 10.0.0.5:6379")
    if not isinstance(namespace, str) or not namespace:
        raise ValueError(f"namespace must be a non-empty string, got {namespace!r}")
    for option, value in (("node_refresh_s", node_refresh_s), ("fetch_wait_s", fetch_wait_s), ("unavailable_limit_s", unavailable_limit_s)):
        _check_seconds(option, value)
    if isinstance(actor_concurrency, bool) or not isinstance(actor_concurrency, int) or actor_concurrency < 2:
        raise ValueError(f"actor_concurrency must be an integer of 2 or more, got {actor_concurrency!r}")
    if runtime_env is not None and not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env must be a mapping or None, got {type(runtime_env).__name__}")


def _check_seconds(option: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{option} must be a number of seconds above 0, got {value!r}")


def _is_address(address: object) -> bool:
    if not isinstance(address, str):
        return False
    if address == "auto":
        return True
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    return bool(host.strip()) and port.isdigit()


def _check_reachable(address: str | None) -> None:
    """Fail fast when a ``host:port`` address rejects connections, because ``ray.init`` (Ray 2.60) retries for over a minute."""
    if address is None or address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayExecutorError(
            f"could not connect to the Ray cluster at {address!r}: {exc.strerror or exc}; "
            f"check that the Ray head runs and that 'ray status --address {address}' works from this machine"
        ) from None


def _log_changes(previous: NodeMatch | None, current: NodeMatch) -> None:
    before = {n.name: n.schedulable for n in previous.nodes} if previous is not None else {}
    known = previous.problems if previous is not None else frozenset()
    for node in current.nodes:
        if before.get(node.name) == node.schedulable:
            continue
        if node.schedulable:
            _logger.info("NeurFly node %s runs on Ray node %s; schedulable", node.name, current.placement[node.name])
        else:
            _logger.warning("NeurFly node %s has no live Ray node carrying %s; not schedulable", node.name, node_resource(node.name))
    for problem in sorted(current.problems - known):
        _logger.warning("%s", problem)


def _crashed(attempt_id: int, message: str, at: float | None = None) -> Exited:
    """Return an infrastructure failure ending at ``at`` (default: now)."""
    at = time.time() if at is None else at
    return Exited(attempt_id, Outcome.CRASHED, at, error_kind=FailureKind.INFRASTRUCTURE.value, message=message)


def _kill_actor(attempt: _Attempt) -> None:
    try:
        ray.kill(attempt.actor, no_restart=True)
    except (RayError, ValueError) as exc:
        _logger.debug("attempt %d: killing its Ray actor failed: %s", attempt.attempt_id, exc)


def _absolute(location: str) -> str:
    if "://" in location:
        return location
    return os.path.abspath(location)


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """Return the error's message on one line, cut at ``limit`` characters."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["RayExecutor", "RayExecutorError"]
