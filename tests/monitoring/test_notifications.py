"""Notification rounds, repeats, escalation and delivery with retries, on a real store and servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from neurfly.monitoring.alerts import Alert, AlertCategory, Severity, acknowledge_alert, raise_alert, resolve_alert
from neurfly.monitoring.dispatch import Dispatcher, schedule_notifications
from neurfly.monitoring.records import Delivery
from neurfly.monitoring.responsibilities import load_responsibilities
from neurfly.store import Store
from support import run_cli

T0 = 1_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _raise(store: Store, now: float, key: str = "failure:infrastructure:1:killed", severity: Severity = Severity.WARNING,
           category: AlertCategory = AlertCategory.FAILURE) -> int:
    with store.session() as session:
        alert, _ = raise_alert(session, key=key, category=category, severity=severity, owner="platform", message="worker killed",
                               now=now, team="team-a", search_id=1, trial_id=2,
                               evidence={"failure_category": "infrastructure", "cause": "killed"})
        session.commit()
        return alert.id


def _schedule(store: Store, responsibilities, now: float) -> int:
    with store.session() as session:
        created = schedule_notifications(session, responsibilities, now)
        session.commit()
        return created


def _deliveries(store: Store) -> list[Delivery]:
    with store.session() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def _responsibilities(write_responsibilities, url: str = "http://127.0.0.1:9/unused", **alerting: float):
    return load_responsibilities(write_responsibilities({
        "alerting": {"repeat_interval_s": 60, "ack_timeout_s": 120, "retry_initial_s": 1, "retry_max_s": 4, "max_tries": 4, **alerting},
        "notifiers": {"hook": {"type": "webhook", "url": url, "timeout_s": 2}},
        "parties": {"*": {"routes": [{"notifier": "hook"}]}},
    }))


def test_first_round_reaches_responsible_and_informed(store: Store, write_responsibilities) -> None:
    responsibilities = _responsibilities(write_responsibilities)
    _raise(store, T0)

    created = _schedule(store, responsibilities, T0)
    again = _schedule(store, responsibilities, T0 + 1)

    rows = _deliveries(store)
    assert created == 2
    assert again == 0
    assert [(d.party, d.role, d.reason) for d in rows] == [("platform", "responsible", "firing"), ("team-a", "informed", "firing")]


def test_repeat_waits_for_interval_and_new_occurrence(store: Store, write_responsibilities) -> None:
    responsibilities = _responsibilities(write_responsibilities, ack_timeout_s=10_000)
    _raise(store, T0)
    _schedule(store, responsibilities, T0)

    _raise(store, T0 + 10)
    too_soon = _schedule(store, responsibilities, T0 + 59)
    repeated = _schedule(store, responsibilities, T0 + 60)
    nothing_new = _schedule(store, responsibilities, T0 + 200)

    assert too_soon == 0
    assert repeated == 2
    assert nothing_new == 0
    assert {d.reason for d in _deliveries(store)} == {"firing", "repeat"}


def test_unacknowledged_alert_escalates_once(store: Store, write_responsibilities) -> None:
    responsibilities = _responsibilities(write_responsibilities)
    alert_id = _raise(store, T0)
    _schedule(store, responsibilities, T0)

    before = _schedule(store, responsibilities, T0 + 119)
    escalated = _schedule(store, responsibilities, T0 + 120)
    later = _schedule(store, responsibilities, T0 + 500)

    escalations = [d for d in _deliveries(store) if d.reason == "escalation"]
    assert (before, escalated, later) == (0, 1, 0)
    assert [(d.party, d.role) for d in escalations] == [("platform", "accountable")]
    with store.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert.escalation_level == 1
        assert alert.escalated_to == "platform"


def test_acknowledged_alert_not_escalated(store: Store, write_responsibilities) -> None:
    responsibilities = _responsibilities(write_responsibilities)
    alert_id = _raise(store, T0)
    _schedule(store, responsibilities, T0)
    with store.session() as session:
        acknowledge_alert(session, alert_id, "alice", T0 + 5)
        session.commit()

    _raise(store, T0 + 100)
    created = _schedule(store, responsibilities, T0 + 1000)

    assert created == 0
    with store.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert.state == "acknowledged"
        assert alert.count == 2


def test_info_alert_never_escalates(store: Store, write_responsibilities) -> None:
    responsibilities = _responsibilities(write_responsibilities)
    _raise(store, T0, key="plateau:1:2:no_improvement", severity=Severity.INFO, category=AlertCategory.PLATEAU)
    _schedule(store, responsibilities, T0)

    created = _schedule(store, responsibilities, T0 + 10_000)

    assert created == 0


def test_refired_alert_starts_new_episode(store: Store, write_responsibilities) -> None:
    responsibilities = _responsibilities(write_responsibilities)
    alert_id = _raise(store, T0)
    _schedule(store, responsibilities, T0)
    with store.session() as session:
        resolve_alert(session, alert_id, "alice", T0 + 5)
        session.commit()

    again = _raise(store, T0 + 10)
    created = _schedule(store, responsibilities, T0 + 10)

    assert again == alert_id
    assert created == 2
    with store.session() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.state, alert.count, alert.first_at, alert.notify_round) == ("firing", 1, T0 + 10, 2)


def test_webhook_retried_until_accepted(store: Store, webhook, write_responsibilities) -> None:
    webhook.failures = 2
    responsibilities = _responsibilities(write_responsibilities, webhook.url)
    clock = Clock()
    _raise(store, T0)
    _schedule_only_platform(store, responsibilities)
    dispatcher = Dispatcher(store, responsibilities, is_leader=lambda: True, clock=clock)

    waits = []
    for _ in range(6):
        dispatcher.run_once()
        row = _deliveries(store)[0]
        waits.append(row.next_try_at - clock.now if row.state == "pending" else None)
        clock.now = row.next_try_at

    row = _deliveries(store)[0]
    assert len(webhook.attempts) == 3
    assert len(webhook.accepted) == 1
    assert waits[:3] == [1.0, 2.0, None]
    assert (row.state, row.tries, row.last_error) == ("sent", 3, None)
    body = webhook.accepted[0]
    assert (body["owner"], body["category"], body["team"], body["delivery_id"]) == ("platform", "failure", "team-a", row.id)
    assert body["evidence"]["failure_category"] == "infrastructure"


def _schedule_only_platform(store: Store, responsibilities) -> None:
    """Schedule one delivery: the platform's, for the first alert."""
    with store.session() as session:
        alert = session.scalars(select(Alert).order_by(Alert.id)).first()
        session.add(Delivery(alert_id=alert.id, reason="firing", round=1, party="platform", role="responsible", route="hook",
                             notifier="webhook", recipients=[], state="pending", tries=0, next_try_at=T0, created_at=T0))
        session.commit()


def test_restart_does_not_resend(store: Store, webhook, write_responsibilities) -> None:
    webhook.failures = 2
    responsibilities = _responsibilities(write_responsibilities, webhook.url, retry_initial_s=0.01, retry_max_s=0.02)
    _raise(store, T0)
    _schedule(store, responsibilities, T0)
    clock = Clock(T0 + 10)
    first = Dispatcher(store, responsibilities, is_leader=lambda: True, clock=clock)
    for _ in range(5):
        first.run_once()
        clock.now += 1

    restarted = load_responsibilities(responsibilities.source)
    created = _schedule(store, restarted, T0 + 20)
    second = Dispatcher(store, restarted, is_leader=lambda: True, clock=Clock(T0 + 30))
    tried = second.run_once()

    assert created == 0
    assert tried == 0
    assert len(webhook.accepted) == 2
    assert sorted(b["party"] for b in webhook.accepted) == ["platform", "team-a"]
    assert len(webhook.attempts) == 4


def test_delivery_gives_up_after_max_tries(store: Store, webhook, write_responsibilities) -> None:
    webhook.failures = 100
    responsibilities = _responsibilities(write_responsibilities, webhook.url, max_tries=3)
    clock = Clock()
    _raise(store, T0)
    _schedule_only_platform(store, responsibilities)
    dispatcher = Dispatcher(store, responsibilities, is_leader=lambda: True, clock=clock)

    for _ in range(5):
        dispatcher.run_once()
        clock.now += 100

    row = _deliveries(store)[0]
    assert len(webhook.attempts) == 3
    assert (row.state, row.tries) == ("failed", 3)
    assert "HTTP 500" in row.last_error


def test_acknowledged_before_delivery_cancelled(store: Store, webhook, write_responsibilities) -> None:
    responsibilities = _responsibilities(write_responsibilities, webhook.url)
    alert_id = _raise(store, T0)
    _schedule_only_platform(store, responsibilities)
    with store.session() as session:
        acknowledge_alert(session, alert_id, "bob", T0 + 1)
        session.commit()

    Dispatcher(store, responsibilities, is_leader=lambda: True, clock=Clock(T0 + 2)).run_once()

    assert webhook.attempts == []
    assert _deliveries(store)[0].state == "cancelled"


def test_email_delivered_over_smtp(store: Store, smtp, write_responsibilities) -> None:
    responsibilities = load_responsibilities(write_responsibilities({
        "notifiers": {"mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "sender": "neurfly@example.org"}},
        "parties": {"platform": {"routes": [{"notifier": "mail", "to": ["oncall@example.org"]}]}, "*": {"routes": []}},
    }))
    _raise(store, T0)
    _schedule(store, responsibilities, T0)

    Dispatcher(store, responsibilities, is_leader=lambda: True, clock=Clock(T0 + 1)).run_once()

    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == "oncall@example.org"
    assert message["Subject"].startswith("[neurfly] warning failure search 1: worker killed")
    assert "neurfly alerts ack" in message.get_payload()
    assert [d.state for d in _deliveries(store)] == ["sent"]


def test_email_failure_retried(store: Store, write_responsibilities, free_port) -> None:
    responsibilities = load_responsibilities(write_responsibilities({
        "notifiers": {"mail": {"type": "email", "host": "127.0.0.1", "port": free_port, "sender": "n@example.org", "timeout_s": 1}},
        "parties": {"platform": {"routes": [{"notifier": "mail", "to": ["a@example.org"]}]}, "*": {"routes": []}},
    }))
    _raise(store, T0)
    _schedule(store, responsibilities, T0)

    Dispatcher(store, responsibilities, is_leader=lambda: True, clock=Clock(T0 + 1)).run_once()

    row = _deliveries(store)[0]
    assert (row.state, row.tries) == ("pending", 1)
    assert "email through 127.0.0.1" in row.last_error


def test_dispatcher_thread_stops_without_lease(store: Store, write_responsibilities) -> None:
    leading = [True]
    dispatcher = Dispatcher(store, _responsibilities(write_responsibilities), is_leader=lambda: leading[0], poll_s=0.01)
    dispatcher.start()
    assert dispatcher.running

    leading[0] = False
    dispatcher._thread.join(5)

    assert not dispatcher.running


def test_cli_lists_acks_and_resolves(home: Path, store: Store) -> None:
    alert_id = _raise(store, T0)

    listed = run_cli(home, "alerts", "--json", "--owner", "platform")
    acked = run_cli(home, "alerts", "ack", str(alert_id), "--by", "alice")
    with store.session() as session:
        after_ack = session.get(Alert, alert_id)
    resolved = run_cli(home, "alerts", "resolve", str(alert_id), "--by", "bob")

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(a["id"], a["owner"], a["team"], a["category"]) for a in rows] == [(alert_id, "platform", "team-a", "failure")]
    assert rows[0]["evidence"]["failure_category"] == "infrastructure"
    assert acked.returncode == 0, acked.stderr
    assert (after_ack.state, after_ack.acknowledged_by) == ("acknowledged", "alice")
    assert resolved.returncode == 0, resolved.stderr
    with store.session() as session:
        after_resolve = session.get(Alert, alert_id)
    assert (after_resolve.state, after_resolve.resolved_by) == ("resolved", "bob")


def test_unknown_alert_id_rejected(store: Store) -> None:
    from neurfly.errors import NotFoundError

    with store.session() as session, pytest.raises(NotFoundError, match="alert 999 not found"):
        acknowledge_alert(session, 999, "alice", T0)


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_service_rejects_bad_interval(value: float) -> None:
    from neurfly.monitoring.service import MonitoringService

    with pytest.raises(ValueError, match="sample_interval_s must be positive"):
        MonitoringService(sample_interval_s=value)
