"""The controller lease: one row in the store naming the controller that drives it."""

from __future__ import annotations

import logging
import os
import socket
import uuid

import psutil
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neurfly.store import ControllerLease

_logger = logging.getLogger(__name__)

# A lease whose holder has not renewed it for this long may be taken over.
LEASE_TTL_S = 15.0


class Lease:
    """Acquire, renew and release the single controller lease of a store.

    A lease is free when nobody holds it, when its holder stopped renewing it
    for ``LEASE_TTL_S``, or when its holder ran on this host and its process
    is gone (a controller killed with SIGKILL), so a restart takes over at once.
    """

    def __init__(self) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def try_acquire(self, session: Session, now: float) -> bool:
        row = session.get(ControllerLease, 1)
        if row is None:
            try:
                with session.begin_nested():
                    session.add(ControllerLease(id=1, owner=None, heartbeat_at=0.0))
            except IntegrityError:
                # Two processes started on a new store at once, and the other one created the row.
                _logger.debug("another process created the controller lease row first")
            row = session.get(ControllerLease, 1, populate_existing=True)
        if row.owner not in (None, self.owner) and not self._is_stale(row, now):
            return False

        result = session.execute(
            update(ControllerLease)
            .where(ControllerLease.id == 1, or_(ControllerLease.owner.is_(None), ControllerLease.owner == row.owner))
            .values(owner=self.owner, host=self.host, pid=self.pid, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        acquired = result.rowcount == 1
        if acquired and row.owner not in (None, self.owner):
            _logger.info("took over the controller lease from %s", row.owner)
        return acquired

    def renew(self, session: Session, now: float) -> bool:
        result = session.execute(
            update(ControllerLease)
            .where(ControllerLease.id == 1, ControllerLease.owner == self.owner)
            .values(heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    def release(self, session: Session) -> None:
        session.execute(
            update(ControllerLease)
            .where(ControllerLease.id == 1, ControllerLease.owner == self.owner)
            .values(owner=None, heartbeat_at=0.0)
            .execution_options(synchronize_session=False)
        )
        session.commit()

    def holder(self, session: Session, now: float) -> str | None:
        """The live holder's owner string, or ``None`` when the lease is free."""
        row = session.get(ControllerLease, 1)
        if row is None or row.owner is None or self._is_stale(row, now):
            return None
        return row.owner

    def _is_stale(self, row: ControllerLease, now: float) -> bool:
        if now - row.heartbeat_at > LEASE_TTL_S:
            return True
        return row.host == self.host and row.pid is not None and not _alive(row.pid)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
