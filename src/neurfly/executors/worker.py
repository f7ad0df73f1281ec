"""The worker process: runs one attempt of a trial and reports over a pipe."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

from neurfly import trial as trial_sdk
from neurfly.core.states import FailureKind
from neurfly.errors import DataError, TrialInterrupted
from neurfly.executors.protocol import LaunchSpec, MessageKind, Outcome

_logger = logging.getLogger(__name__)

# How often the worker checks that the controller process is still alive.
WATCHDOG_INTERVAL_S = 0.5
# Exit status of a worker whose controller died; the next controller resumes the trial.
ORPHANED_EXIT_CODE = 70


def worker_main(connection: Connection, launch: LaunchSpec, controller_pid: int | None) -> None:
    """Run ``launch`` to its end and send a DONE or ERROR message.

    ``connection`` is a pipe end or any object with the same ``send``,
    ``poll``, ``recv`` and ``close`` methods. With a ``controller_pid`` the
    process exits by itself when that controller dies, so a killed controller
    leaves no trial running behind it; ``None`` skips that watchdog, for
    executors whose controller runs on another machine.
    """
    os.environ.update(launch.env)
    if controller_pid is not None:
        _start_watchdog(controller_pid)
    context = trial_sdk.TrialContext(launch, connection)
    trial_sdk._activate(context)

    try:
        _run_entrypoint(launch)
    except TrialInterrupted:
        os._exit(ORPHANED_EXIT_CODE)
    except DataError as exc:
        _send_error(connection, FailureKind.DATA, exc)
    except BaseException as exc:  # noqa: BLE001 - every failure of user code is reported, then the process ends
        _send_error(connection, FailureKind.USER, exc)
    else:
        outcome = Outcome.STOPPED if context.stop_reason else Outcome.COMPLETED
        _send(connection, (MessageKind.DONE, outcome.value, time.time()))
    finally:
        trial_sdk._activate(None)
        connection.close()


def spare_main(connection: Connection, controller_pid: int | None) -> None:
    """Wait for a LAUNCH message with a ``LaunchSpec``, then run it as ``worker_main`` does.

    A spare process is started before it is needed, so starting a trial costs
    the controller one message instead of a process start. It exits when the
    controller closes the pipe.
    """
    try:
        message = connection.recv()
    except (EOFError, OSError):
        os._exit(ORPHANED_EXIT_CODE)
    if message[0] != MessageKind.LAUNCH:
        os._exit(ORPHANED_EXIT_CODE)
    worker_main(connection, message[1], controller_pid)
    # The result is sent and every checkpoint is closed, so the process skips
    # interpreter teardown, which is slow in a process forked from a large one.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_entrypoint(launch: LaunchSpec) -> None:
    if ":" not in launch.entrypoint:
        from neurfly.workloads import workloads

        workloads.get(launch.entrypoint)().run()
        return

    module_name, function_name = launch.entrypoint.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        # The entrypoint's own package is missing, not one of its imports.
        raise ModuleNotFoundError(
            f"entrypoint {launch.entrypoint!r}: no module named {exc.name!r} in the worker's environment; install "
            f"the package there (pip install -e its folder) or add its folder to PYTHONPATH",
            name=exc.name,
        ) from exc
    function = getattr(module, function_name)
    if inspect.signature(function).parameters:
        function(trial_sdk.params())
    else:
        function()


def _send_error(connection: Connection, kind: FailureKind, exc: BaseException) -> None:
    message = f"{type(exc).__name__}: {exc}"
    _send(connection, (MessageKind.ERROR, kind.value, message, traceback.format_exc(), time.time()))


def _send(connection: Connection, message: tuple) -> None:
    try:
        connection.send(message)
    except (BrokenPipeError, OSError):
        os._exit(ORPHANED_EXIT_CODE)


def _start_watchdog(controller_pid: int) -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_INTERVAL_S)
            if os.getppid() != parent:
                os._exit(ORPHANED_EXIT_CODE)
            try:
                os.kill(controller_pid, 0)
            except ProcessLookupError:
                os._exit(ORPHANED_EXIT_CODE)
            except PermissionError:
                continue

    threading.Thread(target=watch, name="neurfly-watchdog", daemon=True).start()
