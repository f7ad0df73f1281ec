"""Fixtures of the monitoring tests: a webhook receiver, an SMTP server and responsibility files."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that returns status 500 to the first ``failures`` POSTs, then 200."""

    failures: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with receiver.lock:
                receiver.attempts.append(body)
                failing = len(receiver.attempts) <= receiver.failures
                if not failing:
                    receiver.accepted.append(body)
            self.send_response(500 if failing else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@dataclass
class SmtpInbox:
    port: int
    messages: list[Any] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    return _free_port()


@pytest.fixture
def smtp() -> Iterator[SmtpInbox]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    inbox = SmtpInbox(_free_port())

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            inbox.messages.append(message)

    server = Controller(Collect(), hostname="127.0.0.1", port=inbox.port)
    server.start()
    yield inbox
    server.stop()


@pytest.fixture
def write_responsibilities(tmp_path: Path) -> Callable[..., Path]:
    def write(document: dict[str, Any], filename: str = "responsibilities.yaml") -> Path:
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    return write
