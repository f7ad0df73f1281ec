"""A limit on request body size: larger requests are rejected with a JSON 413."""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Rejects request bodies larger than ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is rejected before any byte
    is read. A chunked body is counted as it arrives and rejected once it
    passes the limit, so a large upload is never read whole into memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            size = int(declared) if declared.isdigit() else -1
            if size < 0:
                await _reply(send, 400, f"invalid Content-Length header {declared.decode('latin-1')!r}")
                return
            if size > self.max_bytes:
                await _reply(send, 413, self._message(size))
                return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message(received, streamed=True))
            return message

        await self.app(scope, counting_receive, send)

    def _message(self, size: int, streamed: bool = False) -> str:
        amount = f"more than {size - 1}" if streamed else str(size)
        return f"request body of {amount} bytes is larger than the limit of {self.max_bytes} bytes; send a smaller spec"


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
