"""The controller lease on each backend: processes that race for a new store's lease."""

from __future__ import annotations

import threading

from neurfly.controller.lease import Lease
from neurfly.store import Store


def test_racing_first_acquires_elect_one(any_store: Store) -> None:
    leases = [Lease() for _ in range(4)]
    barrier = threading.Barrier(len(leases))
    acquired: dict[str, bool] = {}
    errors: list[BaseException] = []

    def race(lease: Lease) -> None:
        try:
            with any_store.session() as session:
                barrier.wait()
                acquired[lease.owner] = lease.try_acquire(session, now=1000.0)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(acquired.values()) == 1
    with any_store.session() as session:
        holder = leases[0].holder(session, now=1001.0)
    assert acquired[holder] is True
