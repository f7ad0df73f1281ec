"""Runs the controller in a background thread of the API process, when this process holds the lease.

Only one controller drives a store, because the lease in the store elects it.
Every API process may run a supervisor. The one that takes the lease drives
the searches, and the others retry, so one of them takes over when the
leader stops or dies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from neurfly.cli.runner import make_executor
from neurfly.controller import Controller, ControllerSettings
from neurfly.core.cluster import ClusterConfig
from neurfly.errors import ControllerLockedError
from neurfly.executors.base import Executor
from neurfly.store import Store

_logger = logging.getLogger(__name__)

# Seconds between attempts to take the lease while another controller holds it.
RETRY_S = 2.0
# Seconds to wait after the controller failed before it starts again.
RESTART_BACKOFF_S = 5.0


class ControllerSupervisor:
    """Keeps a controller running in a daemon thread while this process holds the lease.

    Args:
        store: The store to drive.
        cluster: Pools, nodes, teams and priority classes.
        settings: Loop timing and checkpoint location.
        executor_factory: Makes the executor of each controller; the cluster's executor by default.
        stop_grace_s: Time running attempts get to checkpoint when the server stops.
    """

    def __init__(
        self,
        store: Store,
        cluster: ClusterConfig,
        settings: ControllerSettings | None = None,
        executor_factory: Callable[[], Executor] | None = None,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.store = store
        self.cluster = cluster
        self.settings = settings or ControllerSettings()
        self.executor_factory = executor_factory or (lambda: make_executor(cluster))
        self.stop_grace_s = stop_grace_s
        self.leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="neurfly-controller", daemon=True)
        self._thread.start()
        _logger.info("controller supervisor started")

    def stop(self, timeout_s: float | None = None) -> None:
        """Hand running attempts back to the store, release the lease and join the thread."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout_s if timeout_s is not None else self.stop_grace_s + 30.0)
        if self._thread.is_alive():
            _logger.warning("controller thread did not stop within the timeout")
        self._thread = None
        _logger.info("controller supervisor stopped")

    def _run(self) -> None:
        waiting_logged = False
        while not self._stop.is_set():
            controller = Controller(self.store, self.cluster, self.executor_factory(), settings=self.settings)
            try:
                controller.start()
            except ControllerLockedError as exc:
                controller.executor.shutdown()
                if not waiting_logged:
                    _logger.info("%s; this process waits as a standby", exc)
                    waiting_logged = True
                self._stop.wait(RETRY_S)
                continue
            except Exception:  # noqa: BLE001 - a standby that stops retrying would never take over
                controller.executor.shutdown()
                _logger.exception("controller failed to start; retrying in %.0f s", RESTART_BACKOFF_S)
                self._stop.wait(RESTART_BACKOFF_S)
                continue
            waiting_logged = False
            self._lead(controller)

    def _lead(self, controller: Controller) -> None:
        self.leading = True
        failed = False
        try:
            controller.run(until=self._stop.is_set)
        except ControllerLockedError as exc:
            _logger.warning("%s", exc)
        except Exception:  # noqa: BLE001 - keep the API serving; the controller restarts after a pause
            _logger.exception("controller failed; restarting in %.0f s", RESTART_BACKOFF_S)
            failed = True
        finally:
            self.leading = False
            controller.stop(self.stop_grace_s)
        if failed:
            self._stop.wait(RESTART_BACKOFF_S)
