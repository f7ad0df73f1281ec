"""The in-actor channel: pipe semantics for the trial, and worker_main over it without Ray."""

from __future__ import annotations

import threading
import time

import pytest

from neurfly.core.states import StopRequest
from neurfly.executors._ray_channel import ActorChannel
from neurfly.executors.protocol import LaunchSpec, MessageKind, Outcome
from neurfly.executors.worker import worker_main


def _launch(tmp_path, **changes) -> LaunchSpec:
    values = dict(
        attempt_id=1, trial_id=1, search_id=1, trial_number=0, entrypoint="noop", params={"x": 0.5},
        fixed={"sleep_s": 0.0}, max_steps=3, decision_steps=(), objective="objective", metrics=(), data={},
        seed=1, checkpoint_root=str(tmp_path / "checkpoints"),
    )
    values.update(changes)
    return LaunchSpec(**values)


def _collect(channel: ActorChannel, thread: threading.Thread, timeout: float = 30.0) -> list[tuple]:
    messages: list[tuple] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch, closed = channel.take(0.2)
        messages.extend(batch)
        if closed and not thread.is_alive():
            messages.extend(channel.take(0)[0])
            return messages
    raise AssertionError(f"the trial did not finish within {timeout} s; got {messages}")


def test_messages_keep_order() -> None:
    channel = ActorChannel()

    for step in range(5):
        channel.send(("report", step))
    messages, closed = channel.take(0)

    assert messages == [("report", step) for step in range(5)]
    assert not closed


def test_take_waits_for_message() -> None:
    channel = ActorChannel()
    threading.Timer(0.1, channel.send, args=(("late",),)).start()

    messages, _ = channel.take(5.0)

    assert messages == [("late",)]


def test_take_times_out_empty() -> None:
    channel = ActorChannel()
    started = time.monotonic()

    messages, closed = channel.take(0.1)

    assert messages == []
    assert not closed
    assert time.monotonic() - started >= 0.09


def test_poll_and_recv_deliveries() -> None:
    channel = ActorChannel()

    assert channel.poll(0) is False
    channel.deliver(("stop", "preempt"))
    assert channel.poll(0) is True
    assert channel.recv() == ("stop", "preempt")
    assert channel.poll(0.05) is False


def test_close_keeps_sent_messages() -> None:
    channel = ActorChannel()
    channel.send(("done",))

    channel.close()
    messages, closed = channel.take(0)

    assert messages == [("done",)]
    assert closed
    with pytest.raises(BrokenPipeError):
        channel.send(("after close",))


def test_worker_main_runs_trial(tmp_path) -> None:
    channel = ActorChannel()
    thread = threading.Thread(target=worker_main, args=(channel, _launch(tmp_path), None))

    thread.start()
    messages = _collect(channel, thread)

    kinds = [MessageKind(m[0]) for m in messages]
    assert kinds.count(MessageKind.REPORT) == 3
    assert kinds.count(MessageKind.CHECKPOINT) == 3
    assert kinds[-1] is MessageKind.DONE
    assert messages[-1][1] == Outcome.COMPLETED.value


def test_worker_main_yields_on_stop(tmp_path) -> None:
    channel = ActorChannel()
    channel.deliver((MessageKind.STOP, StopRequest.PREEMPT.value))
    thread = threading.Thread(target=worker_main, args=(channel, _launch(tmp_path, max_steps=50), None))

    thread.start()
    messages = _collect(channel, thread)

    reports = [m for m in messages if m[0] == MessageKind.REPORT]
    assert len(reports) == 1
    assert messages[-1][0] == MessageKind.DONE
    assert messages[-1][1] == Outcome.STOPPED.value


def test_worker_main_reports_user_error(tmp_path) -> None:
    channel = ActorChannel()
    launch = _launch(tmp_path, fixed={"sleep_s": 0.0, "fail_at": 2})
    thread = threading.Thread(target=worker_main, args=(channel, launch, None))

    thread.start()
    messages = _collect(channel, thread)

    assert messages[-1][0] == MessageKind.ERROR
    assert messages[-1][1] == "user"
    assert "fail_at" in messages[-1][2]
