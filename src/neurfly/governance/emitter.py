"""Sending OpenLineage events: to JSON-lines files always, and to an HTTP endpoint when configured.

File writes happen in the caller's thread (one line per event). HTTP posts
go through a bounded queue to one background thread, so a slow or absent
lineage server does not slow the controller. Events that do not fit the
queue, or that fail after the client's retries, are logged and dropped.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import requests
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunEvent
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider
from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG

from neurfly.store import default_home

_logger = logging.getLogger(__name__)

# Events waiting for the HTTP thread; more are dropped with a warning.
HTTP_QUEUE_SIZE = 10_000
# Seconds a process waits at exit for queued HTTP events.
EXIT_FLUSH_S = 10.0


@dataclass(frozen=True)
class LineageSettings:
    """Destinations of OpenLineage events.

    Attributes:
        directory: Folder of the JSON-lines files, one per search
            (``search-<id>.jsonl``); default ``$NEURFLY_HOME/openlineage``.
        url: Base URL of an OpenLineage HTTP endpoint (Marquez, for example);
            ``None`` sends nothing over HTTP.
        endpoint: Path of the lineage API under ``url``.
        api_key: Bearer token for the endpoint, if it needs one.
        namespace: OpenLineage namespace of NeurFly's jobs and datasets.
        timeout_s: Seconds one HTTP post may take.
        retries: Retries of a failed post, with exponential backoff from 0.3 s.
    """

    directory: Path | None = None
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    api_key: str | None = field(default=None, repr=False)
    namespace: str = "neurfly"
    timeout_s: float = 5.0
    retries: int = 5

    @classmethod
    def from_environment(cls) -> LineageSettings:
        """Read ``NEURFLY_OPENLINEAGE_URL``, ``_ENDPOINT``, ``_API_KEY``, ``_NAMESPACE`` and ``_DIR``."""
        directory = os.environ.get("NEURFLY_OPENLINEAGE_DIR")
        return cls(
            directory=Path(directory) if directory else None,
            url=os.environ.get("NEURFLY_OPENLINEAGE_URL") or None,
            endpoint=os.environ.get("NEURFLY_OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
            api_key=os.environ.get("NEURFLY_OPENLINEAGE_API_KEY") or None,
            namespace=os.environ.get("NEURFLY_OPENLINEAGE_NAMESPACE", "neurfly"),
        )

    def folder(self) -> Path:
        return self.directory or default_home() / "openlineage"


class LineageEmitter:
    """Writes events to per-search files and posts them to the HTTP endpoint, if one is set."""

    def __init__(self, settings: LineageSettings | None = None) -> None:
        self.settings = settings or LineageSettings.from_environment()
        self._files: dict[int, OpenLineageClient] = {}
        self._http: OpenLineageClient | None = None
        self._queue: queue.Queue[RunEvent | None] = queue.Queue(HTTP_QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._failures = 0

    def emit(self, search_id: int, event: RunEvent) -> None:
        """Write ``event`` to the search's file and queue it for HTTP, logging write and queue failures instead of raising them."""
        try:
            self._file_client(search_id).emit(event)
        except (OSError, RuntimeError) as exc:
            self._failed("file", exc)
        if self.settings.url:
            self._start_thread()
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self._failed("http", RuntimeError(f"queue of {HTTP_QUEUE_SIZE} events is full"))

    def flush(self, timeout_s: float = EXIT_FLUSH_S) -> bool:
        """Wait up to ``timeout_s`` for queued HTTP events; returns whether all were handled."""
        if self._thread is None:
            return True
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout_s)

    def close(self, search_id: int) -> None:
        """Forget the file client of an ended search."""
        self._files.pop(search_id, None)

    def _file_client(self, search_id: int) -> OpenLineageClient:
        client = self._files.get(search_id)
        if client is None:
            folder = self.settings.folder()
            folder.mkdir(parents=True, exist_ok=True)
            transport = FileTransport(FileConfig(log_file_path=str(folder / f"search-{search_id}.jsonl"), append=True))
            client = self._files[search_id] = OpenLineageClient(transport=transport)
        return client

    def _start_thread(self) -> None:
        if self._thread is not None:
            return
        auth: TokenProvider = ApiKeyTokenProvider({"api_key": self.settings.api_key}) if self.settings.api_key else TokenProvider({})
        retry = {**DEFAULT_RETRY_CONFIG, "total": self.settings.retries, "read": self.settings.retries, "connect": self.settings.retries}
        config = HttpConfig(url=self.settings.url, endpoint=self.settings.endpoint, timeout=self.settings.timeout_s, auth=auth, retry=retry)
        self._http = OpenLineageClient(transport=HttpTransport(config))
        self._thread = threading.Thread(target=self._post_loop, name="neurfly-openlineage-http", daemon=True)
        self._thread.start()
        atexit.register(self.flush)
        _logger.info("OpenLineage events go to %s/%s", self.settings.url.rstrip("/"), self.settings.endpoint)

    def _post_loop(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is not None:
                    self._http.emit(event)
            except (requests.RequestException, RuntimeError, ValueError) as exc:
                self._failed("http", exc)
            finally:
                self._queue.task_done()

    def _failed(self, where: str, exc: Exception) -> None:
        self._failures += 1
        # The first failure and every 100th after it are logged, so a dead endpoint does not flood the log.
        if self._failures == 1 or self._failures % 100 == 0:
            _logger.warning("OpenLineage %s emission failed (%d failures so far): %s", where, self._failures, exc)
