"""Notification rounds, escalation and delivery of alerts with retries.

The controller's tick schedules deliveries (rows in ``alert_deliveries``)
in the same transaction as the alert state that caused them. A dispatcher
thread of the lease holder then sends due deliveries, one short
transaction per delivery, and retries failures with exponential back-off.
Because both the rounds and the deliveries are rows, a restarted controller
neither repeats a round nor resends a delivery that was recorded as sent.
A controller killed between a send and its record resends that one
delivery, so delivery is at least once. The delivery id in every
notification lets a receiver drop such a duplicate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.monitoring.alerts import Alert, AlertCategory, AlertState
from neurfly.monitoring.notifiers import Notification, NotificationError
from neurfly.monitoring.records import Delivery, DeliveryReason, DeliveryState
from neurfly.monitoring.responsibilities import Raci, RaciCategory, Responsibilities, Role, severity_at_least
from neurfly.store import Store

_logger = logging.getLogger(__name__)

# Deliveries sent per dispatcher pass; the rest wait for the next pass.
BATCH_SIZE = 20


def raci_category(alert: Alert) -> RaciCategory | None:
    """Return the responsibility category of an alert, or ``None`` for a category the file cannot name.

    A failure's category comes from its class in the evidence.
    """
    if alert.category == AlertCategory.FAILURE.value:
        try:
            return RaciCategory(alert.evidence.get("failure_category", RaciCategory.INFRASTRUCTURE.value))
        except ValueError:
            return RaciCategory.INFRASTRUCTURE
    try:
        return RaciCategory(alert.category)
    except ValueError:
        return None


def _raci(alert: Alert, responsibilities: Responsibilities) -> Raci:
    category = raci_category(alert)
    if category is None:
        # Only the owner that raised the alert is known, so it is also the party to escalate to.
        return Raci(responsible=alert.owner, accountable=alert.owner, consulted=(), informed=())
    return responsibilities.raci(category, alert.team, alert.evidence.get("data_owner"))


def schedule_notifications(session: Session, responsibilities: Responsibilities, now: float) -> int:
    """Create the deliveries of every firing alert whose round or escalation is due.

    A first round goes out when an alert starts firing. A repeat goes out
    when it has fired again since the last round and ``repeat_interval_s``
    has passed. An alert at or above ``escalate_min_severity`` that is not
    acknowledged within ``ack_timeout_s`` of its start is escalated once to
    the accountable party.

    Returns:
        The number of deliveries created.
    """
    alerting = responsibilities.alerting
    created = 0
    for alert in session.scalars(select(Alert).where(Alert.state == AlertState.FIRING.value)):
        if alert.notified_at is None:
            created += _schedule_round(session, alert, responsibilities, DeliveryReason.FIRING, now)
        elif alert.count > alert.notified_count and now - alert.notified_at >= alerting.repeat_interval_s:
            created += _schedule_round(session, alert, responsibilities, DeliveryReason.REPEAT, now)
        if _escalation_due(alert, responsibilities, now):
            created += _escalate(session, alert, responsibilities, now)
    return created


def _schedule_round(session: Session, alert: Alert, responsibilities: Responsibilities, reason: DeliveryReason, now: float) -> int:
    raci = _raci(alert, responsibilities)
    parties: dict[str, Role] = {alert.owner: Role.RESPONSIBLE}
    for party in raci.consulted:
        parties.setdefault(party, Role.CONSULTED)
    for party in raci.informed:
        parties.setdefault(party, Role.INFORMED)

    alert.notify_round += 1
    alert.notified_at, alert.notified_count = now, alert.count
    created = sum(_add_deliveries(session, alert, responsibilities, party, role, reason, alert.notify_round, now)
                  for party, role in parties.items())
    _logger.info("alert %d (%s): %s round %d, %d deliveries", alert.id, alert.key, reason.value, alert.notify_round, created)
    return created


def _escalation_due(alert: Alert, responsibilities: Responsibilities, now: float) -> bool:
    alerting = responsibilities.alerting
    if alert.escalation_level > 0 or not severity_at_least(alert.severity, alerting.escalate_min_severity):
        return False
    return now - alert.first_at >= alerting.ack_timeout_s


def _escalate(session: Session, alert: Alert, responsibilities: Responsibilities, now: float) -> int:
    raci = _raci(alert, responsibilities)
    alert.escalation_level, alert.escalated_at, alert.escalated_to = 1, now, raci.accountable
    created = _add_deliveries(session, alert, responsibilities, raci.accountable, Role.ACCOUNTABLE, DeliveryReason.ESCALATION,
                              alert.notify_round, now)
    _logger.warning("alert %d (%s) not acknowledged within %.0f s; escalated to %s", alert.id, alert.key,
                    responsibilities.alerting.ack_timeout_s, raci.accountable)
    return created


def _add_deliveries(session: Session, alert: Alert, responsibilities: Responsibilities, party: str, role: Role,
                    reason: DeliveryReason, round_number: int, now: float) -> int:
    created = 0
    for route in responsibilities.routes(party, alert.team):
        if not severity_at_least(alert.severity, route.min_severity):
            continue
        kind = responsibilities.document.notifiers.get(route.notifier, {}).get("type", route.notifier)
        session.add(Delivery(
            alert_id=alert.id, reason=reason.value, round=round_number, party=party, role=role.value,
            route=route.notifier, notifier=kind, recipients=list(route.to), state=DeliveryState.PENDING.value,
            tries=0, next_try_at=now, created_at=now,
        ))
        created += 1
    return created


class Dispatcher:
    """Sends due deliveries from a background thread while this controller leads.

    Args:
        store: The store.
        responsibilities: Notifiers and retry timing.
        is_leader: Returns whether this process still holds the controller
            lease; the thread ends when it returns ``False``.
        clock: Seconds since the epoch.
        poll_s: Pause between passes.
    """

    def __init__(self, store: Store, responsibilities: Responsibilities, is_leader: Callable[[], bool],
                 clock: Callable[[], float] = time.time, poll_s: float = 0.25) -> None:
        self.store = store
        self.responsibilities = responsibilities
        self.is_leader = is_leader
        self.clock = clock
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="neurfly-alert-dispatcher", daemon=True)
        self._thread.start()
        _logger.info("alert dispatcher started")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.is_leader():
                    break
                self.run_once()
            except Exception:  # noqa: BLE001 - the thread must outlive a database hiccup; the next pass retries
                _logger.exception("alert dispatcher pass failed; retrying in %.1f s", self.poll_s)
            self._stop.wait(self.poll_s)
        _logger.info("alert dispatcher stopped")

    def run_once(self) -> int:
        """Send every due delivery once; returns how many were tried."""
        batch = self._due()
        for delivery_id, notification, route, recipients in batch:
            self._send(delivery_id, notification, route, recipients)
        return len(batch)

    def _due(self) -> list[tuple[int, Notification | None, str, list[str]]]:
        now = self.clock()
        with self.store.session() as session:
            rows = session.scalars(
                select(Delivery).where(Delivery.state == DeliveryState.PENDING.value, Delivery.next_try_at <= now)
                .order_by(Delivery.next_try_at, Delivery.id).limit(BATCH_SIZE)
            ).all()
            return [(row.id, _notification(session, row), row.route, list(row.recipients)) for row in rows]

    def _send(self, delivery_id: int, notification: Notification | None, route: str, recipients: list[str]) -> None:
        notifier = self.responsibilities.notifiers.get(route)
        if notification is None:
            self._record(delivery_id, DeliveryState.FAILED, "the alert was deleted")
            return
        if notification.state != AlertState.FIRING.value and notification.reason != DeliveryReason.ESCALATION.value:
            self._record(delivery_id, DeliveryState.CANCELLED, f"the alert is {notification.state}")
            return
        if notifier is None:
            self._record(delivery_id, DeliveryState.FAILED, f"notifier {route!r} is no longer in the responsibility file")
            return
        try:
            notifier.send(notification, recipients)
        except NotificationError as exc:
            self._retry(delivery_id, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a broken plug-in fails its delivery, not the dispatcher
            _logger.exception("notifier %r raised an unexpected error on delivery %d", route, delivery_id)
            self._retry(delivery_id, f"{type(exc).__name__}: {exc}")
            return
        self._record(delivery_id, DeliveryState.SENT, None)
        _logger.info("delivery %d of alert %d sent through %s to %s", delivery_id, notification.alert_id, route, notification.party)

    def _retry(self, delivery_id: int, error: str) -> None:
        alerting = self.responsibilities.alerting
        with self.store.session() as session:
            row = session.get(Delivery, delivery_id)
            row.tries += 1
            row.last_error = error
            if row.tries >= alerting.max_tries:
                row.state = DeliveryState.FAILED.value
                _logger.error("delivery %d of alert %d through %s failed %d times; giving up: %s",
                              delivery_id, row.alert_id, row.route, row.tries, error)
            else:
                wait = min(alerting.retry_max_s, alerting.retry_initial_s * 2 ** (row.tries - 1))
                row.next_try_at = self.clock() + wait
                _logger.warning("delivery %d of alert %d through %s failed (try %d of %d), retrying in %.1f s: %s",
                                delivery_id, row.alert_id, row.route, row.tries, alerting.max_tries, wait, error)
            session.commit()

    def _record(self, delivery_id: int, state: DeliveryState, note: str | None) -> None:
        with self.store.session() as session:
            row = session.get(Delivery, delivery_id)
            row.state = state.value
            row.tries += 1
            row.last_error = note
            if state is DeliveryState.SENT:
                row.sent_at = self.clock()
            session.commit()


def _notification(session: Session, row: Delivery) -> Notification | None:
    alert = session.get(Alert, row.alert_id)
    if alert is None:
        return None
    return Notification(
        delivery_id=row.id, alert_id=alert.id, key=alert.key, category=alert.category, severity=alert.severity,
        state=alert.state, owner=alert.owner, team=alert.team, search_id=alert.search_id, trial_id=alert.trial_id,
        attempt_id=alert.attempt_id, message=alert.message, count=alert.count, first_at=alert.first_at,
        last_at=alert.last_at, reason=row.reason, party=row.party, role=row.role, evidence=dict(alert.evidence or {}),
    )


__all__ = ["Dispatcher", "raci_category", "schedule_notifications"]
