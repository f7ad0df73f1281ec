"""The in-process end of an attempt's channel inside its Ray actor.

The trial SDK talks to a ``multiprocessing`` ``Connection`` (``send``,
``poll``, ``recv``, ``close``). In a Ray actor the other end is the
controller's executor, which reaches the actor only through method calls, so
``ActorChannel`` buffers both directions in memory: the executor's calls
``deliver`` messages into the inbox and ``take`` messages from the outbox.
This module imports no Ray code, so it is tested without a cluster.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class ActorChannel:
    """A thread-safe, connection-like pair of mailboxes for one attempt.

    The trial's thread uses ``send``, ``poll``, ``recv`` and ``close`` as it
    would use a pipe, and the actor's method threads use ``deliver`` and
    ``take``. The executor ends an attempt by killing its actor process, so
    the channel needs no end-of-stream signal from the executor's side.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._inbox: deque[Any] = deque()
        self._outbox: list[Any] = []
        self._trial_closed = False

    # -- trial side: the Connection subset the SDK and worker_main use ----------------------------

    def send(self, message: Any) -> None:
        """Queue ``message`` for the executor.

        Raises:
            BrokenPipeError: The trial already closed its end.
        """
        with self._lock:
            if self._trial_closed:
                raise BrokenPipeError("the attempt's channel is closed")
            self._outbox.append(message)
            self._lock.notify_all()

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Wait up to ``timeout`` seconds (``None``: no limit) until ``recv`` would not block."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._lock:
            while not self._inbox:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def recv(self) -> Any:
        """Return the next message from the executor, waiting for one."""
        with self._lock:
            while not self._inbox:
                self._lock.wait()
            return self._inbox.popleft()

    def close(self) -> None:
        """Close the trial's end; messages sent before stay readable by ``take``."""
        with self._lock:
            self._trial_closed = True
            self._lock.notify_all()

    # -- executor side: called from the actor's methods ------------------------------------------

    def deliver(self, message: Any) -> None:
        """Put a message from the executor in the trial's inbox."""
        with self._lock:
            self._inbox.append(message)
            self._lock.notify_all()

    def take(self, timeout: float) -> tuple[list[Any], bool]:
        """Wait up to ``timeout`` seconds for messages from the trial and remove them.

        Returns:
            The messages in the order they were sent, and whether the trial
            has closed its end (so no message follows these).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            while not self._outbox and not self._trial_closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            messages, self._outbox = self._outbox, []
            return messages, self._trial_closed
